"""The namespace helper (_netlink/_netns.py) on real namespaces, under both pyroute2 generations."""

import os
import subprocess

import pytest

from .netlink_driver import PYTHONS, drive

MISSING = "routevpn-test-never-created"


@pytest.fixture(params=PYTHONS, ids=[label for label, _path in PYTHONS])
def python(request):
    return request.param[1]


@pytest.fixture
def no_missing_namespace():
    assert not os.path.exists("/run/netns/" + MISSING)
    yield
    created = os.path.exists("/run/netns/" + MISSING)
    subprocess.run(["ip", "netns", "del", MISSING], capture_output=True, check=False)
    assert not created, "the helper created the namespace it was asked to open"


def test_a_missing_namespace_is_an_error_naming_it(python, no_missing_namespace):
    answer = drive(python, None, "open_iproute", netns=MISSING)
    assert answer["error"] == "NetnsError"
    assert "network namespace %r does not exist" % MISSING in answer["msg"]


def test_the_socket_itself_does_not_create_a_missing_namespace(python, no_missing_namespace):
    """Past the existence check, pyroute2 alone must be told flags=0 (its default creates the namespace)."""
    answer = drive(python, None, "open_iproute", netns=MISSING, skip_require=True)
    assert "error" in answer, answer


def test_the_socket_works_inside_the_namespace(python, scratch_netns):
    answer = drive(python, None, "open_iproute", netns=scratch_netns, add_veth="rvt0")
    assert answer == {"links": ["lo"]}
    links = subprocess.run(["ip", "-n", scratch_netns, "-o", "link"],
                           capture_output=True, text=True, check=False).stdout
    assert "rvt0@prvt0" in links
    assert subprocess.run(["ip", "link", "show", "rvt0"], capture_output=True, check=False).returncode != 0


def test_sysctls_are_read_and_written_inside_the_namespace(python, scratch_netns):
    # A dotted device name: sysctl paths are built from components, not from a dotted key.
    subprocess.run(["ip", "-n", scratch_netns, "link", "add", "v.1", "type", "veth", "peer", "name", "v.2"], check=True)
    v4 = "/proc/sys/net/ipv4/conf/v.1/disable_policy"
    v6 = "/proc/sys/net/ipv6/conf/v.1/disable_policy"
    missing = "/proc/sys/net/ipv4/conf/v.1/no_such_sysctl"
    answer = drive(python, None, "sysctls", netns=scratch_netns, read=[v4, v6, missing])
    assert answer["values"] == {v4: "0", v6: "0", missing: None}
    answer = drive(python, None, "sysctls", netns=scratch_netns, write={v4: "1", missing: "1"}, skip_missing=True,
                   read=[v4, v6])
    assert answer["values"] == {v4: "1", v6: "0"}
    witness = subprocess.run(["ip", "netns", "exec", scratch_netns, "sysctl", "-n", "net/ipv4/conf/v.1/disable_policy"],
                             capture_output=True, text=True, check=False).stdout.strip()
    assert witness == "1"
    answer = drive(python, None, "sysctls", netns=scratch_netns, write={missing: "1"})
    assert answer["error"] == "NetnsError" and "in network namespace %s" % scratch_netns in answer["msg"]
    answer = drive(python, None, "sysctls", netns=None, read=[v4])
    assert answer["values"] == {v4: None}, "this namespace has no v.1"


def test_the_namespace_the_process_runs_in_is_recognised(python, scratch_netns_factory):
    mine, other = scratch_netns_factory(), scratch_netns_factory()
    assert drive(python, mine, "is_current_netns", netns=mine) == {"current": True}
    assert drive(python, mine, "is_current_netns", netns=other) == {"current": False}
    assert drive(python, mine, "is_current_netns", netns=MISSING) == {"current": False}
