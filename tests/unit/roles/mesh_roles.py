"""The reference lab's plan, fed to one role at a time by ansible-playbook.

The inventory is the reference lab (3 sites x 2 gateways, built like the
planner's tests build hostvars); the playbook plans on localhost the way
playbooks/mesh.yml does, then applies one role to the gateways named in
``--limit``.  Each gateway under test runs ansible-playbook inside its own
scratch network namespace, so that the daemons a role starts (charon in the
"public" namespace) live there and nowhere else.
"""

import json
import re
import subprocess
import sys
import time

import yaml

from ..collection_paths import COLLECTION_ROOT, ansible_bin, ansible_env
from ..plugins.module_utils.mesh_inventory import inventory
from .role_runner import PlaybookRun

REFERENCE_LAYOUT = {1: 2, 2: 2, 3: 2}
SITE_PREFIXES = {
    "site1": ["10.1.0.0/16", "2001:db8:a1::/64"],
    "site2": ["10.2.0.0/16", "2001:db8:a2::/64"],
    "site3": ["10.3.0.0/16", "2001:db8:a3::/64"],
}


def lab_hostvars(drop=(), **extra):
    """hostvars of the reference lab, without the gateways in ``drop``."""
    hostvars = inventory(REFERENCE_LAYOUT, **extra)
    for variables in hostvars.values():
        variables["routevpn_sites"] = dict(
            (site, dict(spec, prefixes=SITE_PREFIXES[site])) for site, spec in variables["routevpn_sites"].items())
    for name in drop:
        del hostvars[name]
    return hostvars


def write_inventory(tmp_path, hostvars, host_vars=None, name="inventory.yml"):
    """Every gateway reachable with connection local; ``host_vars`` adds per-host settings (paths, namespaces)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {}
    for host, variables in hostvars.items():
        hosts[host] = dict(variables, **local)
        hosts[host].update((host_vars or {}).get(host, {}))
    data = {"all": {"hosts": {"localhost": dict(local)}, "children": {"routevpn_gateways": {"hosts": hosts}}}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_role_playbook(tmp_path, role):
    """``role``: one role, or a list applied in order (routevpn.mesh.pki before an IKE daemon's role)."""
    roles = [role] if isinstance(role, str) else list(role)
    plays = [
        {"name": "Plan on the controller, as playbooks/mesh.yml does", "hosts": "localhost", "gather_facts": False,
         "tasks": [{"ansible.builtin.set_fact": {
             "routevpn_mesh_plan": "{{ hostvars | routevpn.mesh.mesh_plan(groups['routevpn_gateways']) }}"}}]},
        {"name": "Apply " + ", ".join(roles), "hosts": "routevpn_gateways", "gather_facts": False, "roles": roles},
    ]
    path = tmp_path / ("play-%s.yml" % "-".join(name.rsplit(".", 1)[-1] for name in roles))
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def run_role(tmp_path, inventory_path, playbook, host, netns=None, check=False, extra_vars=None, timeout=600,
             env=None):
    command = [ansible_bin("ansible-playbook"), "-i", str(inventory_path), str(playbook), "--diff", "-v",
               "--limit", "localhost,%s" % host]
    if check:
        command.append("--check")
    if extra_vars:
        command.extend(["-e", yaml.safe_dump(extra_vars, default_flow_style=True).strip()])
    if netns:
        command = ["ip", "netns", "exec", netns] + command
    proc = subprocess.run(command, capture_output=True, text=True, env=ansible_env(tmp_path, **(env or {})),
                          timeout=timeout, check=False)
    return PlaybookRun(proc)


def reconverge_module_runs(tmp_path, role, hostvars, host, variables, netns, env=None):
    """``host``'s module runs (bench/callback_plugins/module_runs.py: every loop item one run) in a re-converge of
    ``role``: the role is applied, then applied again, which must change nothing.  {"remote", "actions", ...}."""
    counts = tmp_path / "module-runs.jsonl"
    env = dict(env or {}, ANSIBLE_CALLBACK_PLUGINS=str(COLLECTION_ROOT / "bench" / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="module_runs", MODULE_RUNS_OUT=str(counts))
    inventory_path = write_inventory(tmp_path, hostvars, {host: variables}, name="inventory-%d.yml" % len(hostvars))
    playbook = write_role_playbook(tmp_path, role)
    first = run_role(tmp_path, inventory_path, playbook, host, netns=netns, env=env)
    again = run_role(tmp_path, inventory_path, playbook, host, netns=netns, env=env)
    assert first.rc == 0 and again.rc == 0 and again.changed(host) == 0, (first, again)
    return json.loads(counts.read_text().splitlines()[-1])["hosts"][host]


def run(*command, check=True):
    return subprocess.run(command, capture_output=True, text=True, check=check)


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, message))
        time.sleep(interval)


def documented_variables(role):
    """(argument_specs options, README table rows, defaults/main.yml keys) of a role."""
    root = COLLECTION_ROOT / "roles" / role
    spec = yaml.safe_load((root / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    table = re.findall(r"^\| `([a-z0-9_]+)` \|", (root / "README.md").read_text(), re.MULTILINE)
    defaults = yaml.safe_load((root / "defaults" / "main.yml").read_text()) or {}
    return sorted(spec), sorted(table), sorted(defaults)
