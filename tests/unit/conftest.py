"""Shared fixtures for the unit tier: scratch network namespaces and kernel features.

Tests that need a kernel feature this machine may lack (XFRM interfaces, VTI,
ESP) ask for it with the ``kernel_feature`` fixture.  Natively they are
skipped; the VM tier sets ROUTEVPN_REQUIRE_KERNEL=1 so that a missing feature
fails the run instead of hiding behind a skip.
"""

import ctypes
import os
import subprocess
import uuid

import pytest

_FEATURE_PROBES = {
    # Each probe runs inside a scratch namespace and must succeed when the
    # kernel supports the feature.
    "xfrm_interface": ["ip", "link", "add", "probe0", "type", "xfrm", "dev", "lo", "if_id", "7"],
    "vti": ["ip", "link", "add", "probe0", "type", "vti", "local", "192.0.2.1", "remote", "192.0.2.2", "key", "7"],
    "vti6": ["ip", "link", "add", "probe0", "type", "vti6", "local", "2001:db8::1", "remote", "2001:db8::2",
             "key", "7"],
    "esp": ["ip", "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "spi", "0x100",
            "mode", "tunnel", "aead", "rfc4106(gcm(aes))", "0x" + "11" * 20, "128"],
}
_feature_cache = {}
_CLONE_NEWNET = 0x40000000


def _run(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def new_netns(prefix="rvt"):
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    _run("ip", "netns", "add", name)
    return name


def delete_netns(name):
    _run("ip", "netns", "del", name, check=False)


@pytest.fixture
def scratch_netns():
    """A fresh, empty network namespace (lo down), removed afterwards."""
    name = new_netns()
    try:
        yield name
    finally:
        delete_netns(name)


@pytest.fixture
def scratch_netns_factory():
    """Make as many scratch namespaces as a test needs; all removed afterwards."""
    made = []

    def make(prefix="rvt"):
        made.append(new_netns(prefix))
        return made[-1]

    try:
        yield make
    finally:
        for name in made:
            delete_netns(name)


def kernel_supports(feature):
    if feature not in _feature_cache:
        for module in ("xfrm_interface", "ip_vti", "ip6_vti", "esp4", "esp6"):
            subprocess.run(["modprobe", "-q", module], capture_output=True, check=False)
        ns = new_netns("rvprobe")
        try:
            probe = subprocess.run(["ip", "-n", ns] + _FEATURE_PROBES[feature][1:],
                                   capture_output=True, text=True, check=False)
            _feature_cache[feature] = probe.returncode == 0
        finally:
            delete_netns(ns)
    return _feature_cache[feature]


def _own_public_namespace():
    """Moves this process into a network namespace of its own, with its loopback up.

    The tunnel modules make a device in their own ("public") namespace and
    then move it into the private one, as on a gateway.  Two xdist workers of
    the VM tier sharing the VM's namespace would both make rv-21 there at
    once; each worker gets its own, which the modules, daemons and
    ``ip`` it starts inherit (named namespaces stay shared under /run/netns).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) for xdist worker %s"
                      % os.environ.get("PYTEST_XDIST_WORKER"))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "kernel: needs a kernel feature this machine may lack (the VM tier runs it)")
    if os.environ.get("ROUTEVPN_IN_VM") == "1" and os.environ.get("PYTEST_XDIST_WORKER"):
        _own_public_namespace()


def pytest_collection_modifyitems(items):
    for item in items:
        if "kernel_feature" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture
def kernel_feature():
    """Call with a feature name; skips (natively) or fails (VM tier) when it is missing."""

    def require(feature):
        if kernel_supports(feature):
            return
        message = "this kernel lacks %s" % feature
        if os.environ.get("ROUTEVPN_REQUIRE_KERNEL") == "1":
            pytest.fail(message + " but ROUTEVPN_REQUIRE_KERNEL=1 (VM tier)")
        pytest.skip(message + " (runs in the VM tier)")

    return require
