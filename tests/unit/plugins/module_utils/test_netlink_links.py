"""LinkSet (_netlink/_links.py) on this kernel's veth and vxlan links, under both pyroute2 generations.

Everything the tunnel modules do except creating the tunnel devices
themselves runs here for real: create in the module's namespace and move,
MTU, exact addresses, up/down, sysctls after the move, leftovers, recreate
on an attribute fixed at creation, uniqueness, the selection of
``overridden``, check mode, and a second run changing nothing.  Each call
runs inside a scratch namespace that plays the module's (public) one.
"""

import subprocess
import time

import pytest

from ...module_runner import addresses_of, link_of
from .netlink_driver import PYTHONS, linkset


@pytest.fixture(params=PYTHONS, ids=[label for label, _path in PYTHONS])
def python(request):
    return request.param[1]


@pytest.fixture
def public(scratch_netns_factory):
    """The namespace playing the module's own, with lo up as on a real host."""
    name = scratch_netns_factory("rvpub")
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


@pytest.fixture
def target(scratch_netns_factory):
    return scratch_netns_factory("rvpriv")


def ip(netns, *args):
    subprocess.run(["ip", "-n", netns] + list(args), check=True)


def sysctl(netns, key):
    proc = subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-n", key],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def veth(name, **options):
    return dict(options, name=name)


def test_create_moves_sets_everything_after_the_move_and_second_run_changes_nothing(python, public, target):
    wanted = [veth("rv-a", netns=target, mtu=1400, addresses=["2001:db8:ff::1/127", "169.254.0.1/31"])]
    result = linkset(python, public, "veth", wanted)
    assert result["changes"] == [
        "rv-a: create veth in netns %s" % target,
        "rv-a: mtu 1400",
        "rv-a: addresses +169.254.0.1/31 +2001:db8:ff::1/127",
        "rv-a: net.ipv4.conf.rv-a.disable_policy=1",
        "rv-a: net.ipv6.conf.rv-a.disable_policy=1",
        "rv-a: up",
    ], result
    link = link_of("rv-a", target)
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert link_of("rv-a", public) is None, "created in the module's namespace, then moved"
    assert link_of("prv-a", public) is not None, "the peer stays where the link was created"
    assert addresses_of("rv-a", target) == ["169.254.0.1/31", "2001:db8:ff::1/127"]
    assert sysctl(target, "net.ipv4.conf.rv-a.disable_policy") == "1"
    assert sysctl(target, "net.ipv6.conf.rv-a.disable_policy") == "1"
    assert result["interfaces"] == [{
        "name": "rv-a", "kind": "veth", "netns": target, "mtu": 1400, "enabled": True,
        "addresses": ["169.254.0.1/31", "2001:db8:ff::1/127"],
        "sysctls": {"net.ipv4.conf.rv-a.disable_policy": "1", "net.ipv6.conf.rv-a.disable_policy": "1"},
    }]
    assert result["diff"] == {"before": {}, "after": {"rv-a": result["interfaces"][0]}}

    again = linkset(python, public, "veth", wanted)
    assert again["changed"] is False, again["changes"]
    assert again["interfaces"] == result["interfaces"]


def test_check_mode_against_missing_links_reports_and_touches_nothing(python, public, target):
    wanted = [veth("rv-a", netns=target, addresses=["2001:db8:ff::1/127"])]
    result = linkset(python, public, "veth", wanted, check=True)
    assert result["changed"] is True
    assert result["changes"][0] == "rv-a: create veth in netns %s" % target
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["rv-a"]["addresses"] == ["2001:db8:ff::1/127"]
    assert link_of("rv-a", target) is None and link_of("rv-a", public) is None and link_of("prv-a", public) is None
    real = linkset(python, public, "veth", wanted)
    assert (real["changes"], real["interfaces"]) == (result["changes"], result["interfaces"]), \
        "check mode promised what the run did"


def test_mtu_addresses_and_sysctls_change_in_place_and_link_local_stays(python, public, target):
    linkset(python, public, "veth", [veth("rv-a", netns=target, addresses=["2001:db8:ff::1/127", "10.0.0.1/24"])])
    index = link_of("rv-a", target)["ifindex"]
    ip(target, "addr", "add", "fe80::1234/64", "dev", "rv-a")
    ip(target, "addr", "add", "192.0.2.9/24", "dev", "rv-a")
    subprocess.run(["ip", "netns", "exec", target, "sysctl", "-qw", "net.ipv4.conf.rv-a.disable_policy=0"], check=True)

    result = linkset(python, public, "veth", [veth("rv-a", netns=target, mtu=1300, addresses=["2001:db8:ff::1/127"])])
    assert result["changes"] == [
        "rv-a: mtu 1500 -> 1300",
        "rv-a: addresses -10.0.0.1/24 -192.0.2.9/24",
        "rv-a: net.ipv4.conf.rv-a.disable_policy=1",
    ]
    link = link_of("rv-a", target)
    assert link["ifindex"] == index and link["mtu"] == 1300
    assert addresses_of("rv-a", target) == ["2001:db8:ff::1/127"]
    assert "fe80::1234" in subprocess.run(["ip", "-n", target, "addr", "show", "rv-a"], capture_output=True,
                                          text=True, check=False).stdout, "IPv6 link-local addresses are left alone"
    assert result["diff"]["before"]["rv-a"]["addresses"] == ["10.0.0.1/24", "192.0.2.9/24", "2001:db8:ff::1/127"]
    assert sysctl(target, "net.ipv4.conf.rv-a.disable_policy") == "1"

    untouched = linkset(python, public, "veth", [veth("rv-a", netns=target, mtu=1300)])
    assert untouched["changed"] is False, "addresses omitted: left alone"


def test_down_keeps_ipv6_addresses_and_up_again_needs_no_bounce(python, public, target):
    wanted = veth("rv-a", netns=target, addresses=["2001:db8:ff::1/127", "10.0.0.1/31"])
    linkset(python, public, "veth", [wanted])
    index = link_of("rv-a", target)["ifindex"]
    down = linkset(python, public, "veth", [dict(wanted, enabled=False)])
    assert down["changes"] == ["rv-a: down"]
    assert "UP" not in link_of("rv-a", target)["flags"]
    # The kernel flushed the IPv6 address when the link went down; the run put it back.
    assert addresses_of("rv-a", target) == ["10.0.0.1/31", "2001:db8:ff::1/127"]
    assert linkset(python, public, "veth", [dict(wanted, enabled=False)])["changed"] is False
    up = linkset(python, public, "veth", [wanted])
    assert up["changes"] == ["rv-a: up"]
    assert link_of("rv-a", target)["ifindex"] == index and "UP" in link_of("rv-a", target)["flags"]


def test_a_leftover_in_the_module_namespace_is_moved_not_duplicated(python, public, target):
    ip(public, "link", "add", "rv-a", "mtu", "1400", "type", "veth", "peer", "name", "prv-a")
    ip(public, "addr", "add", "10.9.9.9/24", "dev", "rv-a")
    result = linkset(python, public, "veth", [veth("rv-a", netns=target, mtu=1400, addresses=["10.0.0.1/31"])])
    assert result["changes"][0] == "rv-a: move into netns %s" % target
    assert "rv-a: mtu" not in " ".join(result["changes"]), "the MTU survives a move"
    assert "rv-a: addresses +10.0.0.1/31" in result["changes"], "a move drops addresses: all are added again"
    assert link_of("rv-a", public) is None
    assert addresses_of("rv-a", target) == ["10.0.0.1/31"]
    assert sysctl(target, "net.ipv4.conf.rv-a.disable_policy") == "1", "a move resets sysctls: set after it"
    assert result["diff"]["before"]["rv-a"]["netns"] is None


def test_a_leftover_beside_the_real_one_is_deleted(python, public, target):
    linkset(python, public, "veth", [veth("rv-a", netns=target)])
    ip(public, "link", "add", "rv-a", "type", "veth", "peer", "name", "stray-a")
    result = linkset(python, public, "veth", [veth("rv-a", netns=target)])
    assert result["changes"] == ["rv-a: delete from the module's namespace (a leftover copy)"]
    assert link_of("rv-a", public) is None and link_of("rv-a", target) is not None


def test_an_attribute_fixed_at_creation_forces_a_recreate(python, public, target):
    wanted = dict(name="rv-x", vni=42, netns=target, addresses=["2001:db8:ff::1/127"])
    created = linkset(python, public, "vxlan", [wanted])
    assert created["interfaces"][0]["vni"] == 42 and created["interfaces"][0]["link"] == "lo"
    index = link_of("rv-x", target)["ifindex"]
    assert linkset(python, public, "vxlan", [wanted])["changed"] is False

    in_place = linkset(python, public, "vxlan", [dict(wanted, mtu=1400)])
    assert in_place["changes"] == ["rv-x: mtu 1500 -> 1400"]
    assert link_of("rv-x", target)["ifindex"] == index
    assert link_of("rv-x", target)["linkinfo"]["info_data"]["link"] == "lo", "an MTU change keeps the underlay"

    recreated = linkset(python, public, "vxlan", [dict(wanted, vni=43)])
    assert recreated["changes"][:2] == [
        "rv-x: delete from netns %s (to create it again)" % target,
        "rv-x: create vxlan in netns %s (vni 42 -> 43)" % target,
    ]
    link = link_of("rv-x", target)
    assert link["linkinfo"]["info_data"]["id"] == 43
    assert link["mtu"] == 1500 and "UP" in link["flags"]
    assert addresses_of("rv-x", target) == ["2001:db8:ff::1/127"]
    assert recreated["diff"]["before"]["rv-x"]["vni"] == 42 and recreated["diff"]["after"]["rv-x"]["vni"] == 43

    # A VXLAN device takes 50 bytes of its underlay's MTU.
    ip(public, "link", "add", "under0", "mtu", "9000", "type", "veth", "peer", "name", "punder0")
    relinked = linkset(python, public, "vxlan", [dict(wanted, vni=43, link="under0")])
    assert "rv-x: create vxlan in netns %s (link lo -> under0)" % target in relinked["changes"]
    assert linkset(python, public, "vxlan", [dict(wanted, vni=43, link="under0")])["changed"] is False


def test_uniqueness_is_checked_before_anything_changes(python, public, target):
    clash = linkset(python, public, "vxlan", [dict(name="rv-x", vni=7, netns=target),
                                              dict(name="rv-y", vni=7, netns=target)], error=True)
    assert clash["msg"] == "rv-y: vni 7 already used by rv-x (listed)"
    assert link_of("rv-x", target) is None

    ip(public, "link", "add", "other7", "type", "vxlan", "id", "7", "dstport", "4789", "dev", "lo")
    taken = linkset(python, public, "vxlan", [dict(name="rv-x", vni=7, netns=target)], error=True)
    assert taken["msg"] == ("rv-x: vni 7 already used by other7 in the module's namespace; "
                            "choose another or delete other7")

    # Moved out of sight, the VNI is still taken where it was created: the kernel's refusal is explained.
    ip(public, "link", "set", "other7", "netns", target)
    refused = linkset(python, public, "vxlan", [dict(name="rv-x", vni=7)], error=True)
    assert refused["error"] == "LinkError" and refused["msg"].startswith("rv-x: the kernel refused to create it")
    assert "vni" in refused["msg"]


def test_overridden_deletes_only_unlisted_links_of_the_kind_and_prefix(python, public, target, scratch_netns_factory):
    elsewhere = scratch_netns_factory("rvother")
    for netns, name, vni in ((target, "rv-stale", 90), (target, "keep-x", 91), (public, "rv-half", 92),
                             (elsewhere, "rv-far", 93)):
        ip(public, "link", "add", name, "type", "vxlan", "id", str(vni), "dstport", "4789", "dev", "lo")
        if netns != public:
            ip(public, "link", "set", name, "netns", netns)
    ip(target, "link", "add", "rv-veth", "type", "veth", "peer", "name", "pveth")
    wanted = [dict(name="rv-%d" % i, vni=100 + i, netns=target, addresses=["2001:db8:ff::%x/127" % (2 * i)])
              for i in range(3)]

    checked = linkset(python, public, "vxlan", wanted, state="overridden", scope=[target], check=True)
    assert "rv-stale: delete from netns %s (not listed)" % target in checked["changes"]
    assert link_of("rv-stale", target) is not None

    result = linkset(python, public, "vxlan", wanted, state="overridden", scope=[target])
    assert result["changes"][:2] == ["rv-half: delete from the module's namespace (not listed)",
                                     "rv-stale: delete from netns %s (not listed)" % target], result["changes"]
    assert link_of("rv-stale", target) is None and link_of("rv-half", public) is None
    assert link_of("keep-x", target) is not None, "a name without the prefix is never touched"
    assert link_of("rv-veth", target) is not None, "another kind is never touched"
    assert link_of("rv-far", elsewhere) is not None, "a namespace not involved is never touched"
    assert result["diff"]["before"]["rv-stale@%s" % target]["vni"] == 90
    assert "rv-stale@%s" % target not in result["diff"]["after"]
    assert [i["name"] for i in result["interfaces"]] == ["rv-0", "rv-1", "rv-2"]
    assert linkset(python, public, "vxlan", wanted, state="overridden", scope=[target])["changed"] is False

    shrunk = linkset(python, public, "vxlan", wanted[:1], state="overridden", scope=[target])
    assert sorted(shrunk["changes"]) == ["rv-1: delete from netns %s (not listed)" % target,
                                         "rv-2: delete from netns %s (not listed)" % target]
    emptied = linkset(python, public, "vxlan", [], state="overridden", scope=[target])
    assert emptied["changes"] == ["rv-0: delete from netns %s (not listed)" % target]

    refused = linkset(python, public, "vxlan", [], state="overridden", prefix="", scope=[target], error=True)
    assert "needs a non-empty prefix" in refused["msg"] and link_of("keep-x", target) is not None


def test_deleted_removes_listed_links_wherever_they_are_and_refuses_other_kinds(python, public, target):
    linkset(python, public, "veth", [veth("rv-a", netns=target)])
    ip(public, "link", "add", "rv-a", "type", "veth", "peer", "name", "stray-a")
    checked = linkset(python, public, "veth", [{"name": "rv-a", "netns": target}], state="deleted", check=True)
    assert len(checked["changes"]) == 2 and link_of("rv-a", target) and link_of("rv-a", public)
    deleted = linkset(python, public, "veth", [{"name": "rv-a", "netns": target}], state="deleted")
    assert sorted(deleted["changes"]) == ["rv-a: delete from netns %s (listed for deletion)" % target,
                                          "rv-a: delete from the module's namespace (listed for deletion)"]
    assert link_of("rv-a", target) is None and link_of("rv-a", public) is None
    assert deleted["interfaces"] == [] and deleted["diff"]["after"] == {}
    assert linkset(python, public, "veth", [{"name": "rv-a", "netns": target}], state="deleted")["changed"] is False

    ip(target, "link", "add", "rv-v", "type", "vxlan", "id", "5", "dstport", "4789")
    refused = linkset(python, public, "veth", [{"name": "rv-v", "netns": target}], state="deleted", error=True)
    assert refused["msg"] == "rv-v: is a vxlan device in netns %s, not one of veth; not deleting it" % target
    assert link_of("rv-v", target) is not None


def test_a_device_of_another_kind_with_the_name_is_refused(python, public, target):
    ip(target, "link", "add", "rv-a", "type", "vxlan", "id", "5", "dstport", "4789")
    result = linkset(python, public, "veth", [veth("rv-a", netns=target)], error=True)
    assert result["msg"] == ("rv-a: a vxlan device of that name exists in netns %s; this module manages only "
                             "veth devices: rename or delete it" % target)
    assert link_of("rv-a", target)["linkinfo"]["info_kind"] == "vxlan"


def test_the_module_namespace_named_as_target_is_not_a_leftover_of_itself(python, public):
    first = linkset(python, public, "veth", [veth("rv-a", netns=public)])
    assert first["changes"][0] == "rv-a: create veth in the module's namespace"
    again = linkset(python, public, "veth", [veth("rv-a", netns=public)])
    assert again["changed"] is False, again
    assert link_of("rv-a", public) is not None


@pytest.mark.parametrize("args, message", [
    (dict(entries=[veth("rv-a"), veth("rv-a")]), "rv-a: listed twice"),
    (dict(entries=[veth("rv-with-a-long-name")]), "an interface name has 1 to 15 characters"),
    (dict(entries=[veth("rv-a", addresses=["2001:db8::1"])]), "has no prefix length"),
    (dict(entries=[veth("rv-a", netns="routevpn-test-never-created")]),
     "network namespace 'routevpn-test-never-created' does not exist"),
    (dict(kind="vxlan", entries=[dict(name="rv-x", vni=5, link="nosuchdev")]),
     "rv-x: underlying device nosuchdev does not exist in the module's namespace"),
])
def test_errors_name_the_link_and_the_fix(python, public, args, message):
    args = dict(args)  # shared by the parametrized interpreters
    answer = linkset(python, public, args.pop("kind", "veth"), **args, error=True)
    assert message in answer["msg"]


@pytest.mark.parametrize("count", [200])
def test_hundreds_of_links_in_one_call(python, public, target, count):
    wanted = [dict(name="rv-%d" % i, vni=1000 + i, netns=target,
                   addresses=["2001:db8:ff::%x/127" % (2 * i), "169.254.%d.%d/31" % (i // 128, 2 * (i % 128))])
              for i in range(count)]
    start = time.monotonic()
    created = linkset(python, public, "vxlan", wanted, state="overridden", scope=[target])
    took = time.monotonic() - start
    assert len(created["interfaces"]) == count and "error" not in created
    start = time.monotonic()
    again = linkset(python, public, "vxlan", wanted, state="overridden", scope=[target])
    took_again = time.monotonic() - start
    assert again["changed"] is False
    print("%d links: %.1f s to create, %.1f s to find nothing to do" % (count, took, took_again))
    assert took_again < took
