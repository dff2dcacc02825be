"""playbooks/mesh.yml beyond its first play: the roles, in order, on a gateway of this machine.

ansible-playbook runs inside a scratch namespace (the gateway's public one)
with connection local.  This kernel has no XFRM interfaces, so the tunnels
are checked in check mode and up to the module's kernel error; the IKE and
BGP roles are other tests' business (tags select the roles under test).
"""

import json
import os
import re
import subprocess
import uuid

import pytest

from ..conftest import delete_netns, kernel_supports
from ..module_runner import link_of
from ..plugins.module_utils.mesh_inventory import inventory
from ..roles.role_runner import run_playbook, write_inventory


def ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True, text=True)


@pytest.fixture
def gateway(tmp_path, scratch_netns_factory):
    public, router = scratch_netns_factory("rvpub"), scratch_netns_factory("rvrouter")
    private = "rvpriv-" + uuid.uuid4().hex[:6]
    ip("-n", public, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", router)

    def run(tags, check=False, **variables):
        hostvars = inventory({1: 1, 2: 1})
        hostvars["v1-1"].update({
            "routevpn_private_netns": private,
            "routevpn_private_interfaces": [{"name": "lan0", "addresses": ["10.1.0.1/24"]}],
            "routevpn_private_netns_boot_unit": False,
            "routevpn_tunnels_boot_unit": False,
        }, **variables)
        return run_playbook(tmp_path, write_inventory(tmp_path, hostvars), "routevpn.mesh.mesh", check=check,
                            netns=public, extra=["--limit", "v1-1,localhost", "--tags", tags, "-v"])

    try:
        yield {"public": public, "private": private, "run": run}
    finally:
        delete_netns(private)


def test_check_mode_on_a_fresh_gateway_changes_nothing(gateway):
    checked = gateway["run"]("private_netns,tunnels", check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert "create netns %s" % gateway["private"] in checked.output
    assert link_of("lan0", netns=gateway["public"]) is not None
    assert not os.path.exists("/run/netns/" + gateway["private"])


def test_roles_run_in_order_and_the_tunnels_follow_the_plan(gateway):
    applied = gateway["run"]("private_netns")
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    assert link_of("lan0", netns=gateway["private"]) is not None

    checked = gateway["run"]("private_netns,tunnels", check=True)
    assert checked.rc == 0, checked
    tasks = re.findall(r"^TASK \[(?:routevpn\.mesh\.)?(\w+) : ", checked.output, re.MULTILINE)
    assert tasks.index("tunnels") > max(i for i, role in enumerate(tasks) if role == "private_netns")
    assert checked.changed("v1-1") == 1, "private_netns is already done; only the tunnels would change"
    assert "rv-21: create xfrm in netns %s" % gateway["private"] in checked.output


@pytest.mark.skipif(kernel_supports("xfrm_interface"), reason="this kernel has XFRM interfaces")
def test_without_xfrm_interfaces_the_run_stops_at_the_tunnels(gateway):
    run = gateway["run"]("private_netns,tunnels")
    assert run.rc != 0 and re.search(r"rv-21: (this|the) kernel has no xfrm \w* ?support", run.output), run


def test_libreswan_gateways_get_the_libreswan_role(gateway):
    # vti: the libreswan role refuses xfrm before it looks for charon.
    run = gateway["run"]("ike", routevpn_ike_daemon="libreswan", routevpn_tunnel_type="vti")
    # This machine runs strongSwan: the libreswan role's first guard stops it, which shows it was the one applied.
    assert run.rc != 0, run
    assert "v1-1: routevpn_ike_daemon is libreswan, but strongSwan's charon is installed here" in run.output
    assert "routevpn.mesh.strongswan" not in run.output


def test_pubkey_gateways_get_their_certificates_on_the_controller_before_any_gateway_is_configured(tmp_path):
    hostvars = inventory({1: 1, 2: 1}, routevpn_auth="pubkey")
    inventory_path = write_inventory(tmp_path, hostvars)
    stopped = run_playbook(tmp_path, inventory_path, "routevpn.mesh.mesh", extra=["--limit", "v1-1,localhost"])
    assert stopped.rc != 0, stopped
    assert "v1-1: routevpn_auth is pubkey, but routevpn_pki_certificate is not set" in stopped.output
    assert "PLAY [Configure the gateways]" not in stopped.output

    pki = tmp_path / "pki"
    issued = run_playbook(tmp_path, inventory_path, "routevpn.mesh.mesh", extra=[
        "--limit", "v1-1,localhost", "--tags", "pki",
        "-e", json.dumps({"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(pki)})])
    assert issued.rc == 0, issued
    assert sorted(path.name for path in pki.rglob("*.crt")) == ["ca.crt", "v1-1.crt"]
