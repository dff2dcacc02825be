"""playbooks/mesh.yml given part of the fleet: it stops in its planning play, before any gateway is contacted.

The gateways' ansible_host are unroutable documentation addresses over SSH:
a play that tried to reach one would report it UNREACHABLE (and name it in
the recap) instead of passing silently.  The inventories are what AWX gives
a slice's ansible-playbook: its share of the hosts (by name, every count-th),
the group's variables kept; and the extra vars AWX adds to a job that a
workflow job launched.
"""

import json
import subprocess

import yaml

from ..collection_paths import ansible_bin, ansible_env
from ..plugins.module_utils.mesh_inventory import inventory

FLEET = ["v1-1", "v1-2", "v2-1", "v2-2"]
# AWX's awx_meta_vars for a slice job (AWX 24.6.1): no slice number among them.
SLICE_EXTRA_VARS = {"awx_job_id": 17, "tower_job_id": 17, "awx_workflow_job_id": 16, "tower_workflow_job_id": 16,
                    "awx_workflow_job_name": "mesh", "awx_job_template_name": "mesh",
                    "awx_job_launch_type": "workflow"}


def write_inventory(tmp_path, hosts, group_vars):
    hostvars = inventory({1: 2, 2: 2})
    mesh_wide = dict((key, value) for key, value in hostvars["v1-1"].items() if key in (
        "routevpn_sites", "routevpn_transfer_prefix_v6", "routevpn_transfer_prefix_v4", "routevpn_psk_master"))
    group = {"hosts": {}, "vars": dict(mesh_wide, **group_vars)}
    for name in hosts:
        own = dict((key, value) for key, value in hostvars[name].items() if key not in mesh_wide)
        group["hosts"][name] = dict(own, ansible_host="192.0.2.%d" % own["routevpn_gateway_id"],
                                    ansible_connection="ssh", ansible_ssh_common_args="-o ConnectTimeout=2")
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"routevpn_gateways": group}))
    return path


def run_mesh(tmp_path, inventory_path, *extra):
    # Linear: a few local tasks, Mitogen's start would cost more than it saves.
    result = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory_path), "routevpn.mesh.mesh"] + list(extra),
        capture_output=True, text=True, env=ansible_env(tmp_path, strategy="linear"), timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


def assert_stopped_in_planning(rc, output, problem):
    assert rc != 0, output
    assert output.count(problem) == 1, (problem, output)
    assert "no gateway was contacted" in output, output
    recap = output.split("PLAY RECAP", 1)[1]
    assert "localhost" in recap
    for gateway in FLEET:
        assert gateway not in recap, "a gateway was contacted: " + recap
    assert "UNREACHABLE" not in output and "PLAY [Configure the gateways]" not in output


def test_a_slice_of_a_sliced_awx_job_without_the_list_stops_in_planning(tmp_path):
    # Slice 1 of 2: v1-1 and v2-1 (AWX orders by name); planned alone they would lose the links to v1-2 and v2-2.
    path = write_inventory(tmp_path, ["v1-1", "v2-1"], {})
    rc, output = run_mesh(tmp_path, path, "-e", json.dumps(SLICE_EXTRA_VARS))
    assert_stopped_in_planning(rc, output, (
        "all: routevpn_expected_gateways: not set, and this run is a job launched by AWX workflow job 16 "
        "(awx_workflow_job_id), as every slice of a sliced job template is"))


def test_a_partial_inventory_stops_in_planning_naming_the_missing_gateways(tmp_path):
    # The list in group_vars (an AWX inventory's variables, or a file beside it), the hosts from a source that
    # returned half the fleet; outside AWX, and as a slice with the list set.
    path = write_inventory(tmp_path, ["v1-2", "v2-2"], {"routevpn_expected_gateways": FLEET})
    problem = ("all: routevpn_expected_gateways: v1-1, v2-1 are not in this run's group routevpn_gateways (2 of the "
               "4 expected gateways): planned without them, the roles would remove every link to them")
    rc, output = run_mesh(tmp_path, path)
    assert_stopped_in_planning(rc, output, problem)
    rc, output = run_mesh(tmp_path, path, "-e", json.dumps(SLICE_EXTRA_VARS))
    assert_stopped_in_planning(rc, output, problem)


def test_the_whole_inventory_plans_in_a_workflow_and_under_limit(tmp_path):
    # --tags never: the planning play (tagged always) runs, and nothing after it.
    path = write_inventory(tmp_path, FLEET, {"routevpn_expected_gateways": list(reversed(FLEET))})
    rc, output = run_mesh(tmp_path, path, "--tags", "never", "-e", json.dumps(SLICE_EXTRA_VARS))
    assert rc == 0 and '"4 gateways in 2 sites, 4 links"' in output, output
    # --limit leaves the groups whole: the list still matches, and v1-1 is planned with all its links.
    rc, output = run_mesh(tmp_path, path, "--tags", "never", "--limit", "v1-1,localhost")
    assert rc == 0 and '"4 gateways in 2 sites, 4 links"' in output, output


def test_a_limit_without_localhost_stops_before_any_gateway_is_contacted(tmp_path):
    # No planning play ran; the first role's check says why, on the controller (assert runs no module there).
    path = write_inventory(tmp_path, FLEET, {})
    rc, output = run_mesh(tmp_path, path, "--limit", "v1-1")
    assert rc != 0, output
    assert ("v1-1: no mesh plan for this host. Run the planning play of playbooks/mesh.yml first (it sets "
            "routevpn_mesh_plan on localhost; a --limit must keep localhost, as in --limit 'v1-1,localhost')") \
        in output, output
    assert "UNREACHABLE" not in output and "PLAY [Configure the gateways]" not in output, output
