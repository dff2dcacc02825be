"""xfrm_interface against real netlink: natively what this kernel allows, the rest in the VM tier."""

import subprocess

import pytest

from ...module_runner import addresses_of, debian_pyroute2_available, link_of, run_module

PYTHONS = [None] + (["debian"] if debian_pyroute2_available() else [])


def xfrm(**args):
    check = args.pop("_check", False)
    python = args.pop("_python", None)
    return run_module("xfrm_interface", args, check=check, python=python)


# -- native tier ---------------------------------------------------------------

def test_missing_namespace_is_an_error_and_is_not_created():
    result = xfrm(name="rv-21", if_id=7, netns="routevpn-test-nonexistent")
    assert result.get("failed") and "network namespace 'routevpn-test-nonexistent' does not exist" in result["msg"]
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.find(
        "routevpn-test-nonexistent") == -1


def test_check_mode_reports_the_creation_and_touches_nothing(scratch_netns):
    result = xfrm(name="rv-21", if_id=7, netns=scratch_netns, addresses=["2001:db8:ff::1/127"], _check=True)
    assert result["changed"] is True
    assert result["changes"][0] == "rv-21: create xfrm in netns %s" % scratch_netns
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["rv-21"]["if_id"] == 7
    assert link_of("rv-21", scratch_netns) is None and link_of("rv-21") is None


@pytest.mark.parametrize("args, message", [
    (dict(name="rv-21", if_id=0), "if_id 0 must be 1..4294967295"),
    (dict(name="rv-21"), "rv-21: if_id required to create the interface"),
    (dict(name="rv-21", if_id=5, addresses=["2001:db8::1"]), "must be written with its prefix length"),
    (dict(name="rv-21", if_id=5, state="overridden"), "with name (the single form), state must be present or absent"),
    (dict(config=[{"name": "rv-21", "if_id": 5}], state="present"), "with config (the list form), state must be"),
    (dict(name="rv-with-a-very-long-name", if_id=5), "interface names are at most 15 characters"),
])
def test_argument_errors_are_clear(args, message):
    result = xfrm(**args)
    assert result.get("failed"), result
    assert message in result["msg"]


@pytest.mark.parametrize("python", PYTHONS)
def test_kernel_without_xfrm_interfaces_gets_a_clear_error(scratch_netns, kernel_feature, python):
    from ...conftest import kernel_supports

    if kernel_supports("xfrm_interface"):
        pytest.skip("this kernel has XFRM interfaces")
    result = xfrm(name="rv-21", if_id=7, netns=scratch_netns, _python=python)
    assert result.get("failed")
    assert "this kernel has no xfrm device support" in result["msg"] and "xfrm_interface module" in result["msg"]
    assert link_of("rv-21") is None


def test_overridden_never_touches_other_kinds_or_names(scratch_netns):
    for name in ("rv-veth", "keep-veth"):
        subprocess.run(["ip", "-n", scratch_netns, "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                       check=True)
    result = xfrm(netns=scratch_netns, state="overridden", config=[])
    assert result["changed"] is False, result
    assert link_of("rv-veth", scratch_netns) and link_of("keep-veth", scratch_netns)


def test_a_foreign_device_of_the_same_name_is_refused(scratch_netns):
    subprocess.run(["ip", "-n", scratch_netns, "link", "add", "rv-21", "type", "veth", "peer", "name", "p21"], check=True)
    result = xfrm(name="rv-21", if_id=7, netns=scratch_netns)
    assert result.get("failed") and "a veth device of that name already exists" in result["msg"]
    assert link_of("rv-21", scratch_netns)["linkinfo"]["info_kind"] == "veth"


# -- kernel tier -----------------------------------------------------------------

@pytest.mark.parametrize("python", PYTHONS)
def test_create_idempotence_change_recreate_delete(scratch_netns, kernel_feature, python):
    kernel_feature("xfrm_interface")
    args = dict(name="rv-21", if_id=4296, netns=scratch_netns,
                addresses=["2001:db8:ff::190/127", "169.254.65.144/31"], _python=python)
    checked = xfrm(_check=True, **args)
    assert checked["changed"] and link_of("rv-21", scratch_netns) is None and link_of("rv-21") is None

    created = xfrm(**args)
    assert created["changed"], created
    link = link_of("rv-21", scratch_netns)
    assert link["linkinfo"]["info_kind"] == "xfrm"
    assert link["linkinfo"]["info_data"]["if_id"] in (4296, "0x10c8")
    assert link["mtu"] == 1500 and "UP" in link["flags"]
    assert addresses_of("rv-21", scratch_netns) == ["169.254.65.144/31", "2001:db8:ff::190/127"]
    assert link_of("rv-21") is None, "the interface must have left the public namespace"
    assert created["interface"]["if_id"] == 4296 and created["interface"]["netns"] == scratch_netns

    again = xfrm(**args)
    assert again["changed"] is False, again["changes"]

    index = link["ifindex"]
    in_place = xfrm(**dict(args, mtu=1400, addresses=["2001:db8:ff::190/127"]))
    assert in_place["changed"] and not any("recreate" in c for c in in_place["changes"])
    link = link_of("rv-21", scratch_netns)
    assert link["ifindex"] == index and link["mtu"] == 1400
    assert addresses_of("rv-21", scratch_netns) == ["2001:db8:ff::190/127"]

    recreated = xfrm(**dict(args, if_id=4297))
    assert "rv-21: recreate (if_id 4296 -> 4297)" in recreated["changes"]
    assert recreated["diff"]["before"]["rv-21"]["if_id"] == 4296
    assert recreated["diff"]["after"]["rv-21"]["if_id"] == 4297
    link = link_of("rv-21", scratch_netns)
    assert link["linkinfo"]["info_data"]["if_id"] in (4297, "0x10c9")
    assert link["mtu"] == 1500 and addresses_of("rv-21", scratch_netns) == ["169.254.65.144/31", "2001:db8:ff::190/127"]

    assert xfrm(name="rv-21", netns=scratch_netns, state="absent", _check=True)["changed"]
    assert link_of("rv-21", scratch_netns) is not None
    removed = xfrm(name="rv-21", netns=scratch_netns, state="absent", _python=python)
    assert removed["changed"] and link_of("rv-21", scratch_netns) is None
    assert xfrm(name="rv-21", netns=scratch_netns, state="absent")["changed"] is False


def test_leftover_in_the_public_namespace_is_moved_not_duplicated(scratch_netns, kernel_feature):
    kernel_feature("xfrm_interface")
    subprocess.run(["ip", "link", "add", "rv-31", "type", "xfrm", "dev", "lo", "if_id", "31"], check=True)
    try:
        result = xfrm(name="rv-31", if_id=31, netns=scratch_netns)
        assert "rv-31: move into netns %s" % scratch_netns in result["changes"]
        assert link_of("rv-31") is None and link_of("rv-31", scratch_netns) is not None
    finally:
        subprocess.run(["ip", "link", "del", "rv-31"], capture_output=True, check=False)


def test_list_form_overridden_removes_only_stale_collection_interfaces(scratch_netns, kernel_feature):
    kernel_feature("xfrm_interface")
    for name, if_id in (("rv-stale", 90), ("other0", 91)):
        subprocess.run(["ip", "link", "add", name, "type", "xfrm", "dev", "lo", "if_id", str(if_id)], check=True)
        subprocess.run(["ip", "link", "set", name, "netns", scratch_netns], check=True)
    subprocess.run(["ip", "-n", scratch_netns, "link", "add", "rv-veth", "type", "veth", "peer", "name", "rvp"], check=True)
    config = [{"name": "rv-%d" % i, "if_id": 100 + i, "addresses": ["2001:db8:ff::%x/127" % (2 * i)]} for i in range(1, 4)]
    result = run_module("xfrm_interface", dict(netns=scratch_netns, state="overridden", config=config))
    assert result["changed"]
    assert "rv-stale: delete from netns %s (not in the list)" % scratch_netns in result["changes"]
    assert link_of("rv-stale", scratch_netns) is None
    assert link_of("other0", scratch_netns) is not None, "a name without the prefix must survive"
    assert link_of("rv-veth", scratch_netns) is not None, "another kind must survive"
    for i in range(1, 4):
        assert link_of("rv-%d" % i, scratch_netns)["linkinfo"]["info_data"]["if_id"] in (100 + i, hex(100 + i))
    assert [i["name"] for i in result["interfaces"]] == ["rv-1", "rv-2", "rv-3"]
    again = run_module("xfrm_interface", dict(netns=scratch_netns, state="overridden", config=config))
    assert again["changed"] is False, again["changes"]
    shrunk = run_module("xfrm_interface", dict(netns=scratch_netns, state="overridden", config=config[:1]))
    assert link_of("rv-2", scratch_netns) is None and link_of("rv-3", scratch_netns) is None
    assert shrunk["diff"]["after"].get("rv-2@%s" % scratch_netns) is None
    deleted = run_module("xfrm_interface", dict(netns=scratch_netns, state="deleted", config=[{"name": "rv-1"}]))
    assert deleted["changed"] and link_of("rv-1", scratch_netns) is None
