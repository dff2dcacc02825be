"""The common role: the defaults, plan lookup, service manager and packages the other roles share.

Run by ansible-playbook against this machine (connection local).
"""

import json

import yaml

from ..collection_paths import COLLECTION_ROOT
from .mesh_roles import documented_variables
from .role_runner import run_playbook, write_inventory, write_playbook

PLAN = {"gateways": {"gw": {"site": "1"}}, "hosts": {"gw": []}, "sites": {"1": {}}}


def _counted_run(tmp_path, plays, hostvars):
    counts = tmp_path / "module-runs.jsonl"
    env = dict(ANSIBLE_CALLBACK_PLUGINS=str(COLLECTION_ROOT / "bench" / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="module_runs", MODULE_RUNS_OUT=str(counts))
    inventory = write_inventory(tmp_path, {"gw": hostvars})
    run = run_playbook(tmp_path, inventory, write_playbook(tmp_path, plays), env=env, extra=("-v",))
    actions = json.loads(counts.read_text().splitlines()[-1])["hosts"]["gw"]["actions"] if counts.exists() else {}
    return run, actions


def _shown(run):
    return [result["ansible_facts"]["shown"] for result in run.task_results("Show the manager")]


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("common")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)


def test_every_default_is_defined_in_one_role_only():
    owners = {}
    for path in sorted((COLLECTION_ROOT / "roles").glob("*/defaults/main.yml")):
        for name in yaml.safe_load(path.read_text()) or {}:
            owners.setdefault(name, []).append(path.parent.parent.name)
    assert {name: roles for name, roles in owners.items() if len(roles) > 1} == {}


def test_every_role_but_common_depends_on_common():
    for meta in sorted((COLLECTION_ROOT / "roles").glob("*/meta/main.yml")):
        role = meta.parent.parent.name
        dependencies = yaml.safe_load(meta.read_text())["dependencies"]
        names = [item["role"] if isinstance(item, dict) else item for item in dependencies]
        assert names == ([] if role == "common" else ["routevpn.mesh.common"]), role


def test_a_role_without_the_plan_fails_naming_the_host_before_it_touches_the_host(tmp_path):
    plays = [{"hosts": "routevpn_gateways", "gather_facts": False, "roles": ["routevpn.mesh.tunnels"]}]
    run, actions = _counted_run(tmp_path, plays, {"routevpn_service_manager": "direct"})
    assert run.rc != 0, run
    assert "gw: no mesh plan for this host" in run.output, run
    # Only controller-side actions ran (the role's argument spec, the failed assert): no module reached the host.
    assert actions == {"ansible.builtin.validate_argument_spec": 1, "ansible.builtin.assert": 1}, actions


def test_the_service_manager_is_asked_once_per_host_and_run(tmp_path):
    include = {"ansible.builtin.include_role": {"name": "routevpn.mesh.common", "public": True}}
    show = {"name": "Show the manager",
            "ansible.builtin.set_fact": {"shown": "manager={{ __routevpn_service_manager }}"}}
    plays = [{"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [include, show]},
             {"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [include, include, show]}]
    run, actions = _counted_run(tmp_path, plays, {"routevpn_mesh_plan": PLAN, "routevpn_service_manager": "auto"})
    assert run.rc == 0, run
    assert actions["ansible.builtin.stat"] == 1, actions
    managers = _shown(run)
    assert len(managers) == 2 and managers[0] == managers[1], managers
    assert managers[0] in ("manager=systemd", "manager=direct"), managers

    run, actions = _counted_run(tmp_path, plays, {"routevpn_mesh_plan": PLAN, "routevpn_service_manager": "direct"})
    assert run.rc == 0, run
    assert "ansible.builtin.stat" not in actions, actions
    assert _shown(run) == ["manager=direct"] * 2


def test_installed_packages_cost_one_dpkg_query_per_host_and_run_and_no_apt_run(tmp_path):
    def packages(*names):
        return {"ansible.builtin.include_role": {"name": "routevpn.mesh.common", "tasks_from": "packages.yml"},
                "vars": {"__routevpn_packages": list(names)}}

    plays = [{"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [packages("iproute2", "procps")]},
             {"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [packages("procps"), packages()]}]
    run, actions = _counted_run(tmp_path, plays, {"routevpn_mesh_plan": PLAN})
    assert run.rc == 0 and run.changed("gw") == 0, run
    assert actions.get("ansible.builtin.command") == 1 and "ansible.builtin.apt" not in actions, actions


def test_a_missing_package_goes_to_apt_and_check_mode_says_so(tmp_path):
    task = {"ansible.builtin.include_role": {"name": "routevpn.mesh.common", "tasks_from": "packages.yml"},
            "vars": {"__routevpn_packages": ["iproute2", "routevpn-no-such-package"]}}
    plays = [{"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [task]}]
    inventory = write_inventory(tmp_path, {"gw": {"routevpn_mesh_plan": PLAN}})
    # apt is asked, and cannot find the package: the task names it.
    run = run_playbook(tmp_path, inventory, write_playbook(tmp_path, plays), check=True)
    assert run.rc != 0 and "routevpn-no-such-package" in run.output, run
