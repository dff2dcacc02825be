"""The mesh filters, alone and inside playbooks/mesh.yml's validation play."""

import copy
import subprocess

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.mesh import mesh_link_psk, mesh_plan, mesh_planning
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk

from ..module_utils.mesh_inventory import MASTER, inventory
from ...collection_paths import ansible_bin, ansible_env


def test_mesh_plan_filter_returns_the_plan():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["unrelated"] = "{{ undefined_variable }}"
    result = mesh_plan(hostvars, ["v1-1", "v2-1"])
    assert [link["name"] for link in result["links"]] == ["11-21"]


def test_mesh_plan_filter_rejects_wrong_input_types():
    with pytest.raises(AnsibleFilterError, match="must be hostvars"):
        mesh_plan(["v1-1"], ["v1-1"])
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        mesh_plan({}, "routevpn_gateways")


def test_mesh_plan_filter_turns_plan_errors_into_filter_errors():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"]["routevpn_gateway_id"] = 11
    with pytest.raises(AnsibleFilterError, match="v2-1: routevpn_gateway_id: 11 is already used by v1-1"):
        mesh_plan(hostvars, ["v1-1", "v2-1"])


def test_the_planning_filters_pass_awx_s_job_variables_to_the_planner():
    hostvars = inventory({1: 1, 2: 1})
    job = {"awx_workflow_job_id": 16, "tower_workflow_job_id": 16}
    (problem,) = mesh_planning(hostvars, ["v1-1", "v2-1"], job=job)["problems"]
    assert problem.startswith("all: routevpn_expected_gateways: not set, and this run is a job launched by AWX "
                              "workflow job 16 (awx_workflow_job_id)")
    with pytest.raises(AnsibleFilterError, match="routevpn_expected_gateways: not set"):
        mesh_plan(hostvars, ["v1-1", "v2-1"], job=job)
    unset = {"awx_workflow_job_id": None, "tower_workflow_job_id": None}
    assert mesh_planning(hostvars, ["v1-1", "v2-1"], job=unset)["problems"] == []
    with pytest.raises(AnsibleFilterError, match="mesh_planning: job must map AWX's job variables"):
        mesh_planning(hostvars, ["v1-1", "v2-1"], job=["awx_workflow_job_id"])


def test_mesh_link_psk_filter():
    assert mesh_link_psk(MASTER, "11-21") == derive_psk(MASTER, "11-21")
    assert mesh_link_psk(MASTER, "11-21", {"11-21": "explicit-secret-for-link"}) == "explicit-secret-for-link"
    with pytest.raises(AnsibleFilterError, match="routevpn_psk_master is not set"):
        mesh_link_psk(None, "11-21")


def _write_inventory(tmp_path, hostvars):
    groups = {"routevpn_gateways": {"hosts": {}}}
    for name, variables in hostvars.items():
        # Unroutable documentation addresses: a play that tried to reach a
        # gateway would report it unreachable instead of passing silently.
        groups["routevpn_gateways"]["hosts"][name] = dict(
            variables, ansible_host="192.0.2.%d" % variables["routevpn_gateway_id"], ansible_connection="ssh",
            ansible_ssh_common_args="-o ConnectTimeout=2",
        )
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(groups))
    return path


def test_mesh_playbook_stops_in_its_first_play_with_every_problem(tmp_path):
    hostvars = inventory({1: 2, 2: 2})
    hostvars["v1-2"]["routevpn_gateway_id"] = 11
    hostvars["v2-1"]["routevpn_site"] = "mars"
    hostvars["v2-2"]["routevpn_public_address"] = "2001:db8:2::1:zz"
    result = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(_write_inventory(tmp_path, hostvars)), "routevpn.mesh.mesh"],
        capture_output=True, text=True, env=ansible_env(tmp_path), timeout=300, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for problem in ("v1-2: routevpn_gateway_id: 11 is already used by v1-1",
                    "v2-1: routevpn_site: unknown site 'mars'",
                    "v2-2: routevpn_public_address: '2001:db8:2::1:zz' is not an IP address"):
        assert problem in output
    recap = output.split("PLAY RECAP", 1)[1]
    assert "localhost" in recap
    for gateway in hostvars:
        assert gateway not in recap, "a gateway was contacted: " + recap
    assert "UNREACHABLE" not in output


def _run_mesh(tmp_path, inventory_path, *extra):
    result = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory_path), "routevpn.mesh.mesh"] + list(extra),
        capture_output=True, text=True, env=ansible_env(tmp_path), timeout=300, check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_an_unloaded_vault_a_typo_and_a_hostile_name_are_three_problems_each_listed_once(tmp_path):
    hostvars = inventory({1: 1, 2: 1})
    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    encrypted = subprocess.run(
        [ansible_bin("ansible-vault"), "encrypt_string", "--vault-password-file", str(password), MASTER],
        capture_output=True, text=True, env=ansible_env(tmp_path), check=True).stdout
    for variables in hostvars.values():
        variables.pop("routevpn_psk_master")

    def write(hosts):
        path = _write_inventory(tmp_path, hosts)
        path.write_text(path.read_text().replace(
            "routevpn_gateways:\n", "routevpn_gateways:\n  vars:\n    routevpn_psk_master: " +
            encrypted.replace("\n", "\n      ").rstrip() + "\n", 1))
        return path

    broken = copy.deepcopy(hostvars)
    broken["v1-1"]["routevpn_ike_deamon"] = "libreswan"
    broken["v2-1"]["routevpn_ike_id"] = "v2-1\n}\nconnections { evil {"
    path = write(broken)

    rc, output = _run_mesh(tmp_path, path)
    assert rc != 0, output
    expected = [
        "all: routevpn_psk_master: could not be templated: it is encrypted with ansible-vault and no matching vault "
        "password was given",
        "v1-1: routevpn_ike_deamon: unknown variable; no role of routevpn.mesh reads it; did you mean "
        "routevpn_ike_daemon?",
        "v2-1: routevpn_ike_id: 'v2-1\\\\n}\\\\nconnections { evil {' is not an IKE identity",
    ]
    for problem in expected:
        assert output.count(problem) == 1, (problem, output)
    assert "the inventory has 3 problem(s)" in output
    recap = output.split("PLAY RECAP", 1)[1]
    assert "v1-1" not in recap and "v2-1" not in recap, recap

    # Mended, and with the vault password: the plan is made and the roles would run.
    path = write(hostvars)
    rc, output = _run_mesh(tmp_path, path, "--vault-password-file", str(password), "--tags", "never")
    assert rc == 0, output
    assert "2 gateways in 2 sites, 1 link\"" in output


def test_an_undefined_variable_in_one_host_leaves_the_other_problems_listed(tmp_path):
    hostvars = inventory({1: 2, 2: 1})
    hostvars["v2-1"]["routevpn_public_address"] = "0.0.0.0"
    path = _write_inventory(tmp_path, hostvars)
    # _write_inventory derives ansible_host from the id: template the id in the file only.
    path.write_text(path.read_text().replace("routevpn_gateway_id: 12", "routevpn_gateway_id: '{{ undefined_id }}'"))
    rc, output = _run_mesh(tmp_path, path)
    assert rc != 0, output
    assert output.count("v1-2: routevpn_gateway_id: could not be templated: 'undefined_id' is undefined") == 1, output
    assert output.count("v2-1: routevpn_public_address: 0.0.0.0 is the unspecified address") == 1, output
    assert "the inventory has 2 problem(s)" in output
