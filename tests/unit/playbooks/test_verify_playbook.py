"""playbooks/verify.yml, run by ansible-playbook against a gateway built on this machine's kernel.

The gateway v1-1 of a two-gateway mesh (link 11-21, if_id 4296) is made of
real namespaces: ansible-playbook runs inside a scratch namespace, its
"public" one, which holds real XFRM policies with the planned if_id; the
private namespace holds a veth named rv-21 (this kernel has no XFRM
interfaces; its peer sits in a third namespace, as a tunnel's far end would)
with the planned transfer addresses and a BIRD-protocol route through it.
Only the daemons' command-line tools are stand-ins: `swanctl` and `birdc`
print outputs captured from the real daemons on a real kernel
(tests/unit/plugins/module_utils/captured/).
"""

import os
import pathlib
import re
import stat
import subprocess
import uuid

import pytest

from ..conftest import delete_netns
from ..plugins.module_utils.mesh_inventory import inventory
from ..roles.role_runner import run_playbook, write_inventory

CAPTURED = pathlib.Path(__file__).parents[1] / "plugins" / "module_utils" / "captured"


def ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True, text=True)


def fake_tool(directory, name, capture):
    path = directory / name
    path.write_text("#!/bin/sh\n# Stand-in for %s: what the real one printed on a healthy mesh.\ncat %s\n"
                    % (name, CAPTURED / capture))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def xfrm_policy(public, direction, if_id=4296):
    ip("-n", public, "xfrm", "policy", "add", "dir", direction, "src", "::/0", "dst", "::/0", "if_id", str(if_id),
       "tmpl", "src", "2001:db8:1::1" if direction == "out" else "2001:db8:2::1",
       "dst", "2001:db8:2::1" if direction == "out" else "2001:db8:1::1", "proto", "esp", "mode", "tunnel")


@pytest.fixture
def gateway(tmp_path, scratch_netns_factory):
    public, far = scratch_netns_factory("rvpub"), scratch_netns_factory("rvfar")
    private = "rvpriv-" + uuid.uuid4().hex[:6]
    ip("netns", "add", private)
    ip("-n", private, "link", "add", "rv-21", "type", "veth", "peer", "name", "far0", "netns", far)
    for netns, name in ((private, "lo"), (private, "rv-21"), (far, "far0")):
        ip("-n", netns, "link", "set", name, "up")
    for address in ("2001:db8:ff::190/127", "169.254.1.144/31"):
        ip("-n", private, "address", "add", address, "dev", "rv-21", "nodad")
    ip("-n", private, "-6", "route", "add", "2001:db8:a2::/64", "via", "2001:db8:ff::191", "dev", "rv-21",
       "proto", "bird", "metric", "32")
    for name in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.keep_addr_on_down=1"):
        ip("netns", "exec", private, "sysctl", "-qw", name)
    for direction in ("in", "out", "fwd"):
        xfrm_policy(public, direction)
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_tool(tools, "swanctl", "swanctl-established.raw")
    fake_tool(tools, "birdc", "birdc-established.txt")

    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        variables["routevpn_sites"]["site2"]["prefixes"] = ["2001:db8:a2::/64"]
    hostvars["v1-1"]["routevpn_private_netns"] = private
    inventory_path = write_inventory(tmp_path, hostvars)

    def verify(check=False):
        return run_playbook(tmp_path, inventory_path, "routevpn.mesh.verify", check=check, netns=public,
                            extra=["--limit", "v1-1,localhost"], env={"PATH": "%s:%s" % (tools, os.environ["PATH"])})

    try:
        yield {"public": public, "private": private, "verify": verify}
    finally:
        delete_netns(private)


def test_a_healthy_gateway_passes_and_shows_its_row(gateway):
    run = gateway["verify"]()
    assert run.rc == 0, run
    assert re.search(r'"v1-1 +v2-1 +11-21 +ESTABLISHED +INSTALLED +4296 ok +Established +1 +ok"', run.output), run
    assert "1 of 1 link ends healthy" in run.output
    assert run.changed("v1-1") == 0 and run.changed("localhost") == 0
    assert gateway["verify"](check=True).rc == 0


def test_a_missing_policy_fails_the_run_and_names_it(gateway):
    ip("-n", gateway["public"], "xfrm", "policy", "del", "dir", "in", "src", "::/0", "dst", "::/0", "if_id", "4296")
    run = gateway["verify"]()
    assert run.rc != 0, run
    assert "4296 BAD" in run.output and "DOWN" in run.output
    assert "v1-1 -> v2-1: no XFRM policy with if_id 4296 for in" in run.output
    assert "1 link end(s) down" in run.output


def test_a_veth_between_the_namespaces_fails_the_run(gateway):
    ip("-n", gateway["public"], "link", "add", "leak0", "type", "veth", "peer", "name", "leak1",
       "netns", gateway["private"])
    run = gateway["verify"]()
    assert run.rc != 0, run
    assert "1 of 1 link ends healthy" in run.output, "the link itself is fine"
    assert "leak: " in run.output and "leak0" in run.output and "problems on v1-1" in run.output
