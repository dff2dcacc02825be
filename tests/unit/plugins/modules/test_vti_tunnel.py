"""vti_tunnel run as Ansible runs it: natively what this kernel allows, the rest in the VM tier.

Sysctls written inside the target namespace after the move are tested
natively on veth in tests/unit/plugins/module_utils/test_netlink_links.py;
here the module's own surface and, in the VM, real VTI and VTI6 devices.
"""

import subprocess

import pytest

from ...module_runner import (addresses_of, debian_pyroute2_available, ip_in, link_of, run_adhoc, run_module,
                              run_steps)

PYTHONS = [None] + (["debian"] if debian_pyroute2_available() else [])
V4 = dict(mode="vti", local="192.0.2.1", remote="192.0.2.2", address="169.254.65.144/31")
V6 = dict(mode="vti6", local="2001:db8:1::1", remote="2001:db8:2::1", address="2001:db8:ff::190/127")


def vti(**args):
    check = args.pop("_check", False)
    python = args.pop("_python", None)
    return run_module("vti_tunnel", args, check=check, python=python)


def sysctl(netns, key):
    command = (["ip", "netns", "exec", netns] if netns else []) + ["sysctl", "-n", key]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


# -- native tier ---------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (dict(name="rv-21", local="192.0.2.1", remote="2001:db8::2", key=5), "are of different families"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", mode="vti6", key=5), "mode vti6 needs IPv6 endpoints"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2"), "ikey (or key) is required"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=5, ikey=6), "key 5 contradicts ikey 6"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=2 ** 32), "ikey 4294967296 must be 1..4294967295"),
    (dict(name="rv-21", remote="192.0.2.2", key=5), "rv-21: local required to create a VTI device"),
    (dict(name="rv-21", local="192.0.2.300", remote="192.0.2.2", key=5), "does not appear to be an IPv4 or IPv6"),
    (dict(local="192.0.2.1", key=5, config=[{"name": "rv-21", "remote": "192.0.2.2"},
                                            {"name": "rv-31", "remote": "192.0.2.2"}]),
     "rv-31: local 192.0.2.1, remote 192.0.2.2, ikey 5 already used by rv-21"),
])
def test_argument_errors_are_clear(args, message):
    result = vti(**args)
    assert result.get("failed"), result
    assert message in result["msg"]


@pytest.mark.parametrize("python", PYTHONS)
def test_check_mode_plans_creation_and_disable_policy(scratch_netns, python):
    result = vti(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=4296, netns=scratch_netns, _check=True,
                 _python=python)
    assert result["changes"] == [
        "rv-21: create vti in netns %s" % scratch_netns,
        "rv-21: mtu 1500",
        "rv-21: net.ipv4.conf.rv-21.disable_policy=1",
        "rv-21: net.ipv6.conf.rv-21.disable_policy=1",
        "rv-21: up",
    ]
    assert result["interface"]["ikey"] == result["interface"]["okey"] == 4296
    assert link_of("rv-21", scratch_netns) is None and link_of("rv-21") is None


@pytest.mark.parametrize("python", PYTHONS)
def test_kernel_without_vti_gets_a_clear_error(scratch_netns, python):
    from ...conftest import kernel_supports

    if kernel_supports("vti"):
        pytest.skip("this kernel has VTI")
    result = vti(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=5, netns=scratch_netns, _python=python)
    assert result["msg"] == "rv-21: the kernel has no vti support (modprobe ip_vti)"
    result = vti(name="rv-21", local="2001:db8::1", remote="2001:db8::2", key=5, netns=scratch_netns, _python=python)
    assert result["msg"] == "rv-21: the kernel has no vti6 support (modprobe ip6_vti)"


@pytest.mark.parametrize("python", PYTHONS)
def test_through_ansible_check_mode_and_diff(tmp_path, scratch_netns, python):
    result = run_adhoc(tmp_path, "vti_tunnel", dict(netns=scratch_netns, local="192.0.2.1", state="merged", config=[
        {"name": "rv-21", "remote": "192.0.2.2", "key": 21, "addresses": ["169.254.0.0/31"]},
        {"name": "rv-31", "mode": "vti6", "local": "2001:db8:1::1", "remote": "2001:db8:3::1", "key": 31},
    ]), check=True, python=python)
    assert result["changed"] is True and result["_rc"] == 0, result
    assert [(i["name"], i["kind"], i["local"]) for i in result["interfaces"]] == [
        ("rv-21", "vti", "192.0.2.1"), ("rv-31", "vti6", "2001:db8:1::1")]
    assert result["diff"]["after"]["rv-21"]["addresses"] == ["169.254.0.0/31"]
    assert link_of("rv-21", scratch_netns) is None


# -- kernel tier -----------------------------------------------------------------

# Each family once, each pyroute2 generation once: a module run costs tens of seconds under TCG.
@pytest.mark.parametrize("family, python", [(V4, None), (V6, PYTHONS[-1])], ids=["vti", "vti6"])
def test_create_in_namespace_with_policy_off_mtu_1500_and_idempotence(scratch_netns, kernel_feature, python, family):
    kernel_feature(family["mode"])
    endpoints = dict(name="rv-21", local=family["local"], remote=family["remote"], netns=scratch_netns,
                     addresses=[family["address"]], _python=python)
    args = dict(endpoints, key=4296)
    checked = vti(_check=True, **args)
    created = vti(**args)
    assert created["changed"], created
    link = link_of("rv-21", scratch_netns)
    assert link["linkinfo"]["info_kind"] == family["mode"]
    data = link["linkinfo"]["info_data"]
    assert data["local"] == family["local"] and data["remote"] == family["remote"]
    assert link["mtu"] == 1500, "the kernel's default (1332/1364) must be replaced"
    assert addresses_of("rv-21", scratch_netns) == [family["address"]]
    assert link_of("rv-21") is None, "the device must have left the public namespace"
    # Set after the move, which resets them.
    assert sysctl(scratch_netns, "net.ipv4.conf.rv-21.disable_policy") == "1"
    v6_policy = sysctl(scratch_netns, "net.ipv6.conf.rv-21.disable_policy")
    assert v6_policy in ("1", None)
    assert created["interface"]["sysctls"]["net.ipv4.conf.rv-21.disable_policy"] == "1"
    assert created["interface"]["ikey"] == created["interface"]["okey"] == 4296
    assert created["interface"] == checked["interface"], "check mode promised what the run did"
    assert vti(**args)["changed"] is False

    subprocess.run(["ip", "netns", "exec", scratch_netns, "sysctl", "-qw", "net.ipv4.conf.rv-21.disable_policy=0"],
                   check=True)
    repaired = vti(**args)
    assert repaired["changes"] == ["rv-21: net.ipv4.conf.rv-21.disable_policy=1"]

    rekeyed = vti(key=4297, **endpoints)
    assert "rv-21: create %s in netns %s (ikey 4296 -> 4297, okey 4296 -> 4297)" % (
        family["mode"], scratch_netns) in rekeyed["changes"]
    assert sysctl(scratch_netns, "net.ipv4.conf.rv-21.disable_policy") == "1", "a new device needs the sysctl again"
    assert vti(key=4297, **endpoints)["changed"] is False
    removed = vti(name="rv-21", netns=scratch_netns, state="absent", _python=python)
    assert removed["changed"] and link_of("rv-21", scratch_netns) is None


def test_the_ipv6_disable_policy_exists_on_this_kernel(scratch_netns, kernel_feature):
    """The module sets net.ipv6.conf.DEV.disable_policy where the kernel has it: Debian 12's 6.1 does."""
    kernel_feature("vti6")
    result = vti(name="rv-21", local=V6["local"], remote=V6["remote"], key=5, netns=scratch_netns)
    assert result["interface"]["sysctls"] == {"net.ipv4.conf.rv-21.disable_policy": "1",
                                              "net.ipv6.conf.rv-21.disable_policy": "1"}
    assert sysctl(scratch_netns, "net.ipv6.conf.rv-21.disable_policy") == "1"


def test_leftover_in_the_public_namespace_is_moved_and_gets_its_sysctls(scratch_netns, kernel_feature):
    kernel_feature("vti")
    subprocess.run(["ip", "link", "add", "rv-41", "type", "vti", "local", "192.0.2.1", "remote", "192.0.2.4",
                    "key", "41"], check=True)
    try:
        subprocess.run(["sysctl", "-qw", "net.ipv4.conf.rv-41.disable_policy=1"], check=True)
        result = vti(name="rv-41", local="192.0.2.1", remote="192.0.2.4", key=41, netns=scratch_netns)
        assert result["changes"][0] == "rv-41: move into netns %s" % scratch_netns
        assert "rv-41: net.ipv4.conf.rv-41.disable_policy=1" in result["changes"]
        assert link_of("rv-41") is None
        assert sysctl(scratch_netns, "net.ipv4.conf.rv-41.disable_policy") == "1"
    finally:
        subprocess.run(["ip", "link", "del", "rv-41"], capture_output=True, check=False)


def test_list_form_mixes_vti_and_vti6_and_overrides(scratch_netns, kernel_feature):
    kernel_feature("vti")
    kernel_feature("vti6")
    subprocess.run(["ip", "-n", scratch_netns, "link", "add", "keep-vti", "type", "vti", "local", "192.0.2.1",
                    "remote", "192.0.2.9", "key", "9"], check=True)
    config = [
        {"name": "rv-21", "remote": "192.0.2.2", "key": 21, "addresses": ["169.254.0.0/31"]},
        {"name": "rv6-21", "mode": "vti6", "local": "2001:db8:1::1", "remote": "2001:db8:2::1", "key": 21,
         "addresses": ["2001:db8:ff::/127"]},
        {"name": "rv-31", "remote": "192.0.2.3", "key": 31},
    ]
    args = dict(netns=scratch_netns, local="192.0.2.1", state="overridden", prefix="rv", config=config)
    first = run_module("vti_tunnel", args)
    assert first["changed"] and [i["kind"] for i in first["interfaces"]] == ["vti", "vti6", "vti"]
    assert run_module("vti_tunnel", args)["changed"] is False
    shrunk = run_module("vti_tunnel", dict(args, config=config[:2]))
    assert shrunk["changes"] == ["rv-31: delete from netns %s (not listed)" % scratch_netns]
    assert link_of("rv-31", scratch_netns) is None and link_of("rv6-21", scratch_netns) is not None
    assert link_of("keep-vti", scratch_netns) is not None, "a name without the prefix must survive"


def test_through_ansible_check_apply_check_apply(tmp_path, scratch_netns, kernel_feature):
    kernel_feature("vti")
    args = dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=21, netns=scratch_netns,
                addresses=["169.254.0.0/31"])
    results = run_steps(tmp_path, "vti_tunnel", args, checks=[True, False, True, False], python=PYTHONS[-1])
    assert [result.get("failed", False) for result in results] == [False] * 4, results
    assert [result["changed"] for result in results] == [True, True, False, False], results
    assert results[0]["interface"] == results[1]["interface"], "check mode promised what the run did"
    assert sysctl(scratch_netns, "net.ipv4.conf.rv-21.disable_policy") == "1"


# -- what the kernel does with a VTI device (the tunnels role relies on it) -----------

OUTER = {
    "vti": ("192.0.2.1", "192.0.2.2", "24"),
    "vti6": ("2001:db8:1::1", "2001:db8:1::2", "64"),
}


def esp_packets(netns, src, dst, spi):
    """Packets the kernel counted on one ESP SA (`ip -s xfrm state`)."""
    output = ip_in(netns, "-s", "xfrm", "state", "get", "src", src, "dst", dst, "proto", "esp", "spi", spi,
                   "mark", "7")
    return int(output.split("lifetime current:", 1)[1].split("(bytes), ", 1)[1].split("(packets)", 1)[0])


@pytest.mark.parametrize("mode", ["vti", "vti6"])
def test_one_vti_device_carries_both_inner_families(scratch_netns_factory, kernel_feature, mode):
    """IPv4 and IPv6 through one VTI device, over ESP SAs in tunnel mode without an inner family.

    The SAs are made by hand, as an IKE daemon with 0.0.0.0/0 and ::/0
    selectors makes them (XFRM_STATE_AF_UNSPEC: strongSwan sets it when a
    CHILD_SA's selectors mix families), and bound to the device by its key.
    """
    kernel_feature(mode)
    kernel_feature("esp")
    ends = [scratch_netns_factory("rvvti"), scratch_netns_factory("rvvti")]
    outer_a, outer_b, outer_len = OUTER[mode]
    ip_in(ends[0], "link", "add", "pub0", "type", "veth", "peer", "name", "pub0", "netns", ends[1])
    inner = (("169.254.0.0/31", "2001:db8:ff::/127"), ("169.254.0.1/31", "2001:db8:ff::1/127"))
    key = "0x" + "3a" * 20
    for index, netns in enumerate(ends):
        local, remote = (outer_a, outer_b) if index == 0 else (outer_b, outer_a)
        ip_in(netns, "addr", "add", "%s/%s" % (local, outer_len), "dev", "pub0", "nodad")
        ip_in(netns, "link", "set", "pub0", "up")
        ip_in(netns, "link", "add", "vt0", "type", mode, "local", local, "remote", remote, "key", "7")
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.conf.vt0.disable_policy=1"],
                       check=True)
        ip_in(netns, "link", "set", "vt0", "mtu", "1400", "up")
        for address in inner[index]:
            ip_in(netns, "addr", "add", address, "dev", "vt0", "nodad")
        for src, dst, spi in ((local, remote, "0x%d00" % (index + 1)), (remote, local, "0x%d00" % (2 - index))):
            ip_in(netns, "xfrm", "state", "add", "src", src, "dst", dst, "proto", "esp", "spi", spi, "mode", "tunnel",
                  "mark", "7", "flag", "af-unspec", "aead", "rfc4106(gcm(aes))", key, "128")
        for everything in ("0.0.0.0/0", "::/0"):
            for direction, src, dst in (("out", local, remote), ("in", remote, local)):
                ip_in(netns, "xfrm", "policy", "add", "dir", direction, "src", everything, "dst", everything,
                      "mark", "7", "tmpl", "src", src, "dst", dst, "proto", "esp", "mode", "tunnel")

    for target in ("169.254.0.1", "2001:db8:ff::1"):
        ping = subprocess.run(["ip", "netns", "exec", ends[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", target],
                              capture_output=True, text=True, check=False)
        assert ping.returncode == 0, "%s over %s: %s%s" % (target, mode, ping.stdout, ping.stderr)
    # The six echo requests left through the device's SA and the replies came back on the peer's (the kernel
    # may add its own IPv6 multicast: at least six).
    assert esp_packets(ends[0], outer_a, outer_b, "0x100") >= 6
    assert esp_packets(ends[0], outer_b, outer_a, "0x200") >= 6
