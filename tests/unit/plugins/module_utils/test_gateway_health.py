"""The gateway_health module's reader: what it runs, and how a failed read becomes the gateway's one-line problem.

The readers are given the outputs captured on a real kernel (captured/, see
test_mesh_health.py); the module itself runs for real, on real namespaces
and XFRM policies, in tests/unit/playbooks/test_verify_playbook.py, and
against real daemons in every lab scenario's verify.
"""

import errno
import re
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.gateway_health import (
    GatewayHealth,
    GatewayHealthError,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import cross_check

from .test_mesh_health import captured, mesh

BIRD_UP = captured("birdc-established.txt")


class Gateway:
    """Stand-in readers answering what one gateway's tools printed; records the commands run."""

    def __init__(self, swanctl=None, pluto=None, xfrm=None, birdc=BIRD_UP, routes=(), netns=None):
        self.answers = {"swanctl": swanctl, "ipsec": pluto, "birdc": birdc}
        self.routes = list(routes)
        self.xfrm = xfrm if xfrm is not None else {"policies": [], "states": []}
        self.netns = netns if netns is not None else {"changed": False, "changes": [], "leaks": []}
        self.commands = []

    def run(self, argv):
        self.commands.append(argv)
        tool = argv[4] if argv[:2] == ["ip", "netns"] else argv[0]
        if tool == "ip":
            return 0, self.routes.pop(0) if self.routes else "[]", ""
        answer = self.answers[tool]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, dict):
            return answer["rc"], answer["stdout"], answer["stderr"]
        return 0, answer or "", ""

    def read_xfrm(self):
        if isinstance(self.xfrm, Exception):
            raise self.xfrm
        return self.xfrm

    def check_netns(self):
        if isinstance(self.netns, Exception):
            raise self.netns
        return self.netns


def read(gateway, stand_in, ike_daemon="strongswan", the_plan=None, **kwargs):
    the_plan = the_plan or mesh()
    return GatewayHealth(the_plan["hosts"][gateway], stand_in.run, stand_in.read_xfrm, stand_in.check_netns,
                         ike_daemon=ike_daemon, sites=the_plan["sites"], **kwargs).read()


def pair_stand_in(step, gateway, **kwargs):
    kwargs.setdefault("xfrm", captured("pair-%s-%s.xfrm.json" % (step, gateway)))
    return Gateway(swanctl=captured("pair-%s-%s.swanctl.raw" % (step, gateway)), **kwargs)


def test_both_ends_of_a_healthy_link_read_on_their_gateways_agree():
    rows = []
    for gateway in ("v1-1", "v2-1"):
        found = read(gateway, pair_stand_in("up", gateway), require_prefixes=False)
        assert found["problems"] == []
        rows += found["links"]
    rows = {row["gateway"]: row for row in cross_check(rows)}
    # BIRD's capture is v1-1's: v2-1 lacks only its BGP session, the IKE, CHILD and kernel SAs agree.
    assert (rows["v1-1"]["status"], rows["v1-1"]["problems"]) == ("ok", [])
    assert rows["v2-1"]["problems"] == ["no BGP session with 169.254.1.144 or 2001:db8:ff::190"]
    assert rows["v1-1"]["evidence"]["kernel"] == {"in": ["c28154a3"], "out": ["c1ca2ab0"]}


def test_it_says_when_the_read_began_in_utc():
    """Each gateway by its own clock (the health report's read_at): the time before the first command."""
    began = datetime(2026, 12, 7, 22, 50, 20, tzinfo=timezone(timedelta(hours=1)))
    found = read("v1-1", pair_stand_in("up", "v1-1"), now=lambda: began)
    assert found["read_at"] == "2026-12-07T21:50:20Z"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", read("v1-1", pair_stand_in("up", "v1-1"))["read_at"])


def test_what_it_runs_and_where():
    stand_in = pair_stand_in("up", "v1-1")
    read("v1-1", stand_in, netns="inside", vici_socket="/run/x.vici", birdc_socket="/run/b.ctl")
    assert stand_in.commands == [
        ["swanctl", "--list-sas", "--pretty", "--uri", "unix:///run/x.vici"],
        ["ip", "netns", "exec", "inside", "birdc", "-s", "/run/b.ctl", "show", "protocols", "all"],
        ["ip", "-j", "-4", "-n", "inside", "route", "show"],
        ["ip", "-j", "-6", "-n", "inside", "route", "show"],
    ]


def test_libreswan_gateways_are_read_with_whack():
    stand_in = Gateway(pluto=captured("pluto-5.2-showstates.txt"))
    read("v1-1", stand_in, ike_daemon="libreswan", pluto_socket="/run/p/pluto.ctl")
    assert stand_in.commands[0] == ["ipsec", "whack", "--ctlsocket", "/run/p/pluto.ctl", "--showstates"]
    assert not [argv for argv in stand_in.commands if argv[0] == "swanctl"]


def test_a_dead_charon_is_one_line_and_its_ends_are_down_naming_why():
    found = read("v1-1", Gateway(swanctl=captured("swanctl-refused.result.json")))
    assert found["problems"] == ["charon is not running: /run/cap/a/charon.vici refused the connection"]
    (row,) = found["links"]
    assert row["ok"] is False
    assert any("charon is not running" in problem for problem in row["problems"]), row["problems"]


def test_a_tool_that_is_not_installed():
    missing = OSError(errno.ENOENT, "No such file or directory: b'swanctl'")
    found = read("v1-1", Gateway(swanctl=missing))
    assert found["problems"] == ["swanctl is not installed (not found on PATH)"]
    assert found["links"][0]["ok"] is False


def test_the_kernel_not_read_is_a_problem_and_no_sa_is_judged_stale():
    found = read("v1-1", pair_stand_in("up", "v1-1", xfrm=RuntimeError("netlink: permission denied")),
                 require_prefixes=False)
    assert found["problems"] == ["reading the kernel's XFRM state failed: netlink: permission denied"]
    (row,) = found["links"]
    assert row["evidence"]["kernel"] is None
    # No policy read either: the end is down for that, and for no SA judged stale.
    assert row["problems"] == ["no XFRM policy with if_id 4296 for in and out"], row["problems"]


def test_the_private_namespace_leak_and_drift_are_the_gateways_problems():
    netns = {"changed": True, "changes": ["set net.ipv4.ip_forward to 1 in netns private"],
             "leaks": [{"interface": "leak0", "kind": "veth", "netns": None, "peer_netns": "private"}]}
    found = read("v1-1", pair_stand_in("up", "v1-1", netns=netns), require_prefixes=False)
    assert found["problems"] == [
        "leak: leak0 (veth) joins the public namespace to netns private directly; only tunnel devices may cross",
        "drift: set net.ipv4.ip_forward to 1 in netns private",
    ]


def test_a_namespace_that_cannot_be_read():
    found = read("v1-1", pair_stand_in("up", "v1-1", netns=RuntimeError("netns private does not exist")),
                 require_prefixes=False)
    assert found["problems"] == ["private_netns failed: netns private does not exist"]


@pytest.mark.parametrize("kwargs, message", [
    ({"ike_daemon": "racoon"}, "ike_daemon must be one of strongswan, libreswan, not 'racoon'"),
])
def test_arguments_it_cannot_judge(kwargs, message):
    with pytest.raises(GatewayHealthError, match=message):
        read("v1-1", Gateway(), **kwargs)


def test_ends_of_two_gateways():
    the_plan = mesh()
    ends = the_plan["hosts"]["v1-1"] + the_plan["hosts"]["v2-1"]
    stand_in = Gateway()
    with pytest.raises(GatewayHealthError, match="ends must be one gateway's, not those of v1-1, v2-1"):
        GatewayHealth(ends, stand_in.run, stand_in.read_xfrm, stand_in.check_netns)
