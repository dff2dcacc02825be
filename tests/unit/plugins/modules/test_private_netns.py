"""private_netns against this machine's kernel: real namespaces, real veth pairs, both pyroute2 generations."""

import os
import subprocess
import uuid

import pytest

from ...conftest import delete_netns
from ...module_runner import addresses_of, debian_pyroute2_available, link_of, run_module

PYTHONS = [None, pytest.param("debian", marks=pytest.mark.skipif(
    not debian_pyroute2_available(), reason="Debian's python3-pyroute2 is not installed"))]


def ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True, text=True)


def sysctl_in(netns, name):
    proc = subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-n", name],
                          check=True, capture_output=True, text=True)
    return proc.stdout.strip()


@pytest.fixture
def lan(scratch_netns_factory):
    """A private namespace name (not yet created), and a veth whose one end is in the public namespace
    and whose other end sits in a scratch 'router' namespace, as a LAN interface would."""
    tag = uuid.uuid4().hex[:6]
    name = "rvpriv-" + tag
    router = scratch_netns_factory("rvrouter")
    lan_if, router_if = "rvl%s0" % tag, "rvl%s1" % tag
    ip("link", "add", lan_if, "type", "veth", "peer", "name", router_if, "netns", router)
    made = {"netns": name, "interface": lan_if, "router": router, "tag": tag}
    try:
        yield made
    finally:
        delete_netns(name)
        subprocess.run(["ip", "link", "del", lan_if], capture_output=True, check=False)


@pytest.mark.parametrize("python", PYTHONS)
def test_creates_moves_addresses_and_is_idempotent(lan, python):
    args = {"name": lan["netns"], "interfaces": [{"name": lan["interface"],
                                                  "addresses": ["10.1.0.1/24", "2001:db8:a1::1/64"]}]}
    checked = run_module("private_netns", args, check=True, python=python)
    assert checked["changed"] and checked["_rc"] == 0, checked
    assert not os.path.exists("/run/netns/" + lan["netns"]), "check mode created the namespace"
    assert link_of(lan["interface"]) is not None, "check mode moved the interface"
    assert checked["namespace"]["interfaces"][lan["interface"]]["netns"] == lan["netns"]

    applied = run_module("private_netns", args, python=python)
    assert applied["changed"] and applied["_rc"] == 0, applied
    assert applied["changes"][0] == "create netns %s" % lan["netns"]
    assert link_of(lan["interface"]) is None
    moved = link_of(lan["interface"], netns=lan["netns"])
    assert moved is not None and "UP" in moved["flags"]
    assert "UP" in link_of("lo", netns=lan["netns"])["flags"]
    assert addresses_of(lan["interface"], netns=lan["netns"]) == ["10.1.0.1/24", "2001:db8:a1::1/64"]
    assert sysctl_in(lan["netns"], "net.ipv4.ip_forward") == "1"
    assert sysctl_in(lan["netns"], "net.ipv6.conf.all.forwarding") == "1"
    assert sysctl_in(lan["netns"], "net.ipv6.conf.all.keep_addr_on_down") == "1"
    assert applied["leaks"] == []
    assert applied["diff"]["before"]["exists"] is False and applied["diff"]["after"]["exists"] is True
    assert applied["namespace"] == checked["namespace"], "check mode predicted another state"

    for check in (True, False):
        again = run_module("private_netns", args, check=check, python=python)
        assert not again["changed"] and again["changes"] == [], again


def test_keeps_ipv6_addresses_when_the_link_goes_down(lan):
    args = {"name": lan["netns"], "interfaces": [{"name": lan["interface"], "addresses": ["2001:db8:a1::1/64"]}]}
    assert run_module("private_netns", args)["_rc"] == 0
    ip("-n", lan["netns"], "link", "set", lan["interface"], "down")
    ip("-n", lan["netns"], "link", "set", lan["interface"], "up")
    assert addresses_of(lan["interface"], netns=lan["netns"]) == ["2001:db8:a1::1/64"]
    assert not run_module("private_netns", args)["changed"]


def test_keeps_exactly_the_listed_addresses_and_repairs_drift(lan):
    args = {"name": lan["netns"], "interfaces": [{"name": lan["interface"], "addresses": ["10.1.0.1/24"]}]}
    run_module("private_netns", args)
    ip("-n", lan["netns"], "addr", "add", "10.9.9.9/24", "dev", lan["interface"])
    ip("-n", lan["netns"], "link", "set", lan["interface"], "down")
    ip("netns", "exec", lan["netns"], "sysctl", "-qw", "net.ipv4.ip_forward=0")
    repaired = run_module("private_netns", args)
    assert sorted(repaired["changes"]) == sorted([
        "netns %s: net.ipv4.ip_forward=1" % lan["netns"],
        "%s: addresses 10.1.0.1/24, 10.9.9.9/24 -> 10.1.0.1/24" % lan["interface"],
        "%s: up" % lan["interface"],
    ])
    assert addresses_of(lan["interface"], netns=lan["netns"]) == ["10.1.0.1/24"]
    assert sysctl_in(lan["netns"], "net.ipv4.ip_forward") == "1"


def test_a_name_only_interface_keeps_its_addresses(lan):
    run_module("private_netns", {"name": lan["netns"], "interfaces": [lan["interface"]]})
    ip("-n", lan["netns"], "addr", "add", "10.7.0.1/24", "dev", lan["interface"])
    result = run_module("private_netns", {"name": lan["netns"], "interfaces": [lan["interface"]]})
    assert not result["changed"]
    assert addresses_of(lan["interface"], netns=lan["netns"]) == ["10.7.0.1/24"]


def test_a_missing_interface_is_named_with_the_fix(lan):
    result = run_module("private_netns", {"name": lan["netns"], "interfaces": ["rvnope0"]})
    assert result["failed"] and result["_rc"] != 0
    assert "rvnope0: no such interface in the public namespace nor in netns %s" % lan["netns"] in result["msg"]
    assert "routevpn_private_interfaces" in result["msg"]
    assert not os.path.exists("/run/netns/" + lan["netns"]), "failed before changing anything"


@pytest.mark.parametrize("python", PYTHONS)
def test_a_veth_between_public_and_private_is_a_leak(lan, python):
    leak_public, leak_private = "rvk%s0" % lan["tag"], "rvk%s1" % lan["tag"]
    run_module("private_netns", {"name": lan["netns"]}, python=python)
    ip("link", "add", leak_public, "type", "veth", "peer", "name", leak_private, "netns", lan["netns"])
    try:
        failed = run_module("private_netns", {"name": lan["netns"]}, python=python)
        assert failed["failed"], failed
        assert "netns %s is joined directly to the public namespace by" % lan["netns"] in failed["msg"]
        assert leak_public in failed["msg"] and leak_private in failed["msg"]

        reported = run_module("private_netns", {"name": lan["netns"], "forbid_leaks": False}, check=True,
                              python=python)
        assert not reported.get("failed") and not reported["changed"]
        assert sorted((leak["interface"], leak["netns"], leak["peer_netns"]) for leak in reported["leaks"]) == [
            (leak_public, None, lan["netns"]), (leak_private, lan["netns"], None)]
    finally:
        subprocess.run(["ip", "link", "del", leak_public], capture_output=True, check=False)
    # A veth to another namespace (the LAN's router) is not a leak.
    joined = run_module("private_netns", {"name": lan["netns"], "interfaces": [lan["interface"]]}, python=python)
    assert joined["_rc"] == 0 and joined["leaks"] == [], joined


def test_absent_deletes_the_namespace(lan):
    run_module("private_netns", {"name": lan["netns"]})
    checked = run_module("private_netns", {"name": lan["netns"], "state": "absent"}, check=True)
    assert checked["changed"] and os.path.exists("/run/netns/" + lan["netns"])
    removed = run_module("private_netns", {"name": lan["netns"], "state": "absent"})
    assert removed["changed"] and removed["changes"] == ["delete netns %s" % lan["netns"]]
    assert not os.path.exists("/run/netns/" + lan["netns"])
    assert not run_module("private_netns", {"name": lan["netns"], "state": "absent"})["changed"]


@pytest.mark.parametrize("bad, message", [
    ({"interfaces": ["lo"]}, "lo cannot be moved"),
    ({"interfaces": [{"name": "eth9", "addresses": ["10.0.0.1"]}]}, "must be written with its prefix length"),
    ({"interfaces": [{"name": "eth9", "mtu": 9000}]}, "must be a name or a dict with name and addresses"),
    ({"name": "../etc"}, "is not a usable network namespace name"),
])
def test_rejects_bad_input(bad, message):
    result = run_module("private_netns", dict({"name": "rvpriv-never"}, **bad))
    assert result["failed"] and message in result["msg"], result
