"""vti_tunnel against real netlink: natively what this kernel allows, the rest in the VM tier."""

import subprocess

import pytest

from ...module_runner import addresses_of, debian_pyroute2_available, link_of, run_module

PYTHONS = [None] + (["debian"] if debian_pyroute2_available() else [])


def vti(**args):
    check = args.pop("_check", False)
    python = args.pop("_python", None)
    return run_module("vti_tunnel", args, check=check, python=python)


def sysctl(netns, key):
    proc = subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-n", key], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.mark.parametrize("args, message", [
    (dict(name="rv-21", local="192.0.2.1", remote="2001:db8::2", key=5), "are of different families"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", mode="vti6", key=5), "mode vti6 needs IPv6 endpoints"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2"), "ikey (or key) is required"),
    (dict(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=5, ikey=6), "key 5 contradicts ikey 6"),
    (dict(name="rv-21", remote="192.0.2.2", key=5), "rv-21: local required to create the interface"),
    (dict(name="rv-21", local="192.0.2.300", remote="192.0.2.2", key=5), "does not appear to be an IPv4 or IPv6"),
])
def test_argument_errors_are_clear(args, message):
    result = vti(**args)
    assert result.get("failed"), result
    assert message in result["msg"]


def test_check_mode_plans_creation_and_disable_policy(scratch_netns):
    result = vti(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=4296, netns=scratch_netns, _check=True)
    assert result["changed"]
    assert "rv-21: create vti in netns %s" % scratch_netns in result["changes"]
    assert any("net.ipv4.conf.rv-21.disable_policy=1" in change for change in result["changes"])
    assert link_of("rv-21", scratch_netns) is None and link_of("rv-21") is None


@pytest.mark.parametrize("python", PYTHONS)
def test_kernel_without_vti_gets_a_clear_error(scratch_netns, python):
    from ...conftest import kernel_supports

    if kernel_supports("vti"):
        pytest.skip("this kernel has VTI")
    result = vti(name="rv-21", local="192.0.2.1", remote="192.0.2.2", key=5, netns=scratch_netns, _python=python)
    assert result.get("failed") and "this kernel has no vti device support" in result["msg"]


def test_disable_policy_is_written_inside_the_namespace(scratch_netns):
    """The sysctl helper the module uses, on a veth (this kernel has no VTI)."""
    from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import (
        read_sysctl,
        sysctl_path,
        write_sysctl,
    )

    subprocess.run(["ip", "-n", scratch_netns, "link", "add", "v.1", "type", "veth", "peer", "name", "v.2"], check=True)
    path = sysctl_path("net", "ipv4", "conf", "v.1", "disable_policy")
    assert read_sysctl(path, scratch_netns) == "0"
    write_sysctl(path, "1", scratch_netns)
    assert sysctl(scratch_netns, "net/ipv4/conf/v.1/disable_policy") == "1"
    assert read_sysctl(sysctl_path("net", "ipv4", "conf", "v.1", "no_such_key"), scratch_netns) is None
    assert read_sysctl(sysctl_path("net", "ipv4", "conf", "v.1", "disable_policy")) is None, \
        "the module's own namespace has no v.1"


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("mode, local, remote, address", [
    ("vti", "192.0.2.1", "192.0.2.2", "169.254.65.144/31"),
    ("vti6", "2001:db8:1::1", "2001:db8:2::1", "2001:db8:ff::190/127"),
])
def test_create_in_namespace_with_policy_off_mtu_1500_and_idempotence(scratch_netns, kernel_feature, python,
                                                                      mode, local, remote, address):
    kernel_feature(mode)
    args = dict(name="rv-21", local=local, remote=remote, key=4296, netns=scratch_netns, addresses=[address],
                _python=python)
    created = vti(**args)
    assert created["changed"], created
    link = link_of("rv-21", scratch_netns)
    assert link["linkinfo"]["info_kind"] == mode
    data = link["linkinfo"]["info_data"]
    assert data["local"] == local and data["remote"] == remote
    assert link["mtu"] == 1500, "the kernel's default (1332/1364) must be replaced"
    assert addresses_of("rv-21", scratch_netns) == [address]
    assert sysctl(scratch_netns, "net.ipv4.conf.rv-21.disable_policy") == "1"
    assert created["interface"]["ikey"] == created["interface"]["okey"] == 4296
    assert vti(**args)["changed"] is False

    rekeyed = vti(**dict(args, key=4297))
    assert any(c.startswith("rv-21: recreate (") and "ikey 4296 -> 4297" in c for c in rekeyed["changes"])
    assert sysctl(scratch_netns, "net.ipv4.conf.rv-21.disable_policy") == "1", "a new device needs the sysctl again"
    removed = vti(name="rv-21", netns=scratch_netns, state="absent")
    assert removed["changed"] and link_of("rv-21", scratch_netns) is None


def test_list_form_mixes_vti_and_vti6_and_overrides(scratch_netns, kernel_feature):
    kernel_feature("vti")
    kernel_feature("vti6")
    config = [
        {"name": "rv-21", "local": "192.0.2.1", "remote": "192.0.2.2", "key": 21, "addresses": ["169.254.0.0/31"]},
        {"name": "rv6-21", "local": "2001:db8:1::1", "remote": "2001:db8:2::1", "key": 21,
         "addresses": ["2001:db8:ff::/127"]},
        {"name": "rv-31", "local": "192.0.2.1", "remote": "192.0.2.3", "key": 31},
    ]
    first = run_module("vti_tunnel", dict(netns=scratch_netns, state="overridden", prefix="rv", config=config))
    assert first["changed"] and [i["kind"] for i in first["interfaces"]] == ["vti", "vti6", "vti"]
    again = run_module("vti_tunnel", dict(netns=scratch_netns, state="overridden", prefix="rv", config=config))
    assert again["changed"] is False, again["changes"]
    run_module("vti_tunnel", dict(netns=scratch_netns, state="overridden", prefix="rv", config=config[:2]))
    assert link_of("rv-31", scratch_netns) is None and link_of("rv6-21", scratch_netns) is not None
