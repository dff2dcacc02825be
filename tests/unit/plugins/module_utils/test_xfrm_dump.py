"""The NETLINK_XFRM parser against policies made by iproute2 in scratch namespaces.

Each policy is created with `ip xfrm policy add`, and the parser must return
exactly what the command said, field by field.  The same namespace read by
Debian's pyroute2 0.7 (in a subprocess) must give the same records as 0.9.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import NetnsError
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import (
    XfrmError,
    XfrmFacts,
    read_xfrm,
)

from ...module_runner import DEBIAN_PYTHON, _debian_path, debian_pyroute2_available
from ...collection_paths import COLLECTIONS_PATH


def selector(family, src, dst, proto=None, sport=None, dport=None, ifindex=None):
    return {"family": family, "src": src, "dst": dst, "proto": proto, "sport": sport, "dport": dport,
            "ifindex": ifindex}


def template(src, dst, family, proto="esp", spi=None, reqid=0, mode="tunnel", level="required"):
    return {"src": src, "dst": dst, "family": family, "proto": proto, "spi": spi, "reqid": reqid, "mode": mode,
            "level": level}


def policy(direction, sel, priority=0, action="allow", flags=(), mark=None, mark_mask=None, if_id=None,
           templates=()):
    return {"direction": direction, "selector": sel, "priority": priority, "action": action, "flags": list(flags),
            "type": "main", "mark": mark, "mark_mask": mark_mask, "if_id": if_id, "templates": list(templates)}


# (`ip xfrm policy add` arguments, the record the parser must return for it, index aside)
POLICIES = [
    ("src 10.1.0.0/16 dst 10.2.0.0/16 dir out priority 100 mark 0x2a mask 0xff if_id 4296 "
     "tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 7 mode tunnel",
     policy("out", selector("ipv4", "10.1.0.0/16", "10.2.0.0/16"), priority=100, mark=0x2A, mark_mask=0xFF,
            if_id=4296, templates=[template("192.0.2.1", "192.0.2.2", "ipv4", reqid=7)])),
    ("src 2001:db8:a2::/64 dst 2001:db8:a1::/64 dir in priority 200 if_id 4296 "
     "tmpl src 2001:db8:2::1 dst 2001:db8:1::1 proto esp reqid 8 mode tunnel level use",
     policy("in", selector("ipv6", "2001:db8:a2::/64", "2001:db8:a1::/64"), priority=200, if_id=4296,
            templates=[template("2001:db8:2::1", "2001:db8:1::1", "ipv6", reqid=8, level="use")])),
    ("src 0.0.0.0/0 dst 198.51.100.0/24 proto tcp dport 443 dir fwd action block priority 5",
     policy("fwd", selector("ipv4", "0.0.0.0/0", "198.51.100.0/24", proto="tcp", dport=443), priority=5,
            action="block")),
    # A mark without a mask: iproute2 sends mask 0xffffffff.
    ("src 2001:db8::/32 dst ::/0 proto tcp sport 22 dir fwd mark 0x10c8 "
     "tmpl src 2001:db8::1 dst 2001:db8::2 proto esp reqid 9 mode tunnel "
     "tmpl src 2001:db8::3 dst 2001:db8::4 proto ah spi 0x1234 reqid 10 mode transport level use",
     policy("fwd", selector("ipv6", "2001:db8::/32", "::/0", proto="tcp", sport=22), mark=0x10C8,
            mark_mask=0xFFFFFFFF,
            templates=[template("2001:db8::1", "2001:db8::2", "ipv6", reqid=9),
                       template("2001:db8::3", "2001:db8::4", "ipv6", proto="ah", spi="0x00001234", reqid=10,
                                mode="transport", level="use")])),
    # ICMP type and code travel in the port fields; lo is ifindex 1 in a new namespace.
    ("src 192.0.2.0/24 dst 0.0.0.0/0 dev lo proto icmp type 8 code 0 dir in flag localok priority 7",
     policy("in", selector("ipv4", "192.0.2.0/24", "0.0.0.0/0", proto="icmp", sport=8, dport=0, ifindex=1),
            priority=7, flags=["localok"])),
    # A template without addresses has them all-zero, in the selector's family.
    ("src ::/0 dst 2001:db8:ff::/64 proto udp sport 500 dport 4500 dir out if_id 1 priority 1 "
     "tmpl proto esp mode transport reqid 11",
     policy("out", selector("ipv6", "::/0", "2001:db8:ff::/64", proto="udp", sport=500, dport=4500), priority=1,
            if_id=1, templates=[template("::", "::", "ipv6", reqid=11, mode="transport")])),
    # Extremes: mark value 0 with a mask is a mark; all-ones if_id and reqid; an unnamed protocol number.
    ("src 198.51.100.7/32 dst 203.0.113.0/24 proto 253 dir out mark 0 mask 0xffff0000 if_id 0xffffffff "
     "tmpl src 198.51.100.7 dst 203.0.113.1 proto esp spi 0xdeadbeef mode beet reqid 4294967295",
     policy("out", selector("ipv4", "198.51.100.7/32", "203.0.113.0/24", proto="253"), mark=0,
            mark_mask=0xFFFF0000, if_id=0xFFFFFFFF,
            templates=[template("198.51.100.7", "203.0.113.1", "ipv4", spi="0xdeadbeef", reqid=0xFFFFFFFF,
                                mode="beet")])),
]


def ip(netns, arguments):
    subprocess.run(["ip", "-n", netns] + arguments.split(), check=True, capture_output=True, text=True)


def c_hex(number):
    """C's printf("%#x"), as iproute2 prints marks and if_ids: 0 has no 0x."""
    return "%#x" % number if number else "0"


def without_index(record):
    return dict((key, value) for key, value in record.items() if key != "index")


@pytest.fixture
def policies_netns(scratch_netns):
    for arguments, _expected in POLICIES:
        ip(scratch_netns, "xfrm policy add " + arguments)
    return scratch_netns


def test_every_policy_is_decoded_as_created(policies_netns):
    found = read_xfrm(policies_netns)
    assert found["states"] == []
    got = sorted((without_index(p) for p in found["policies"]), key=json.dumps)
    want = sorted((expected for _arguments, expected in POLICIES), key=json.dumps)
    assert len(got) == len(want)
    for got_one, want_one in zip(got, want):
        assert got_one == want_one


def test_indexes_and_fields_agree_with_iproute2(policies_netns):
    """A cross-check against `ip -s xfrm policy`, whose text is read here and only here."""
    text = subprocess.run(["ip", "-s", "-n", policies_netns, "xfrm", "policy", "list"], capture_output=True,
                          text=True, check=True).stdout
    blocks = re.split(r"\n(?=src )", text.strip())
    by_index = {}
    for block in blocks:
        index = int(re.search(r"\bindex (\d+)", block).group(1))
        by_index[index] = block
    policies = read_xfrm(policies_netns)["policies"]
    assert sorted(by_index) == sorted(p["index"] for p in policies)
    for found in policies:
        block = by_index[found["index"]]
        assert block.startswith("src %s dst %s" % (found["selector"]["src"], found["selector"]["dst"]))
        assert re.search(r"\bdir %s\b" % found["direction"], block)
        assert re.search(r"\bpriority %d\b" % found["priority"], block)
        assert ("if_id %s" % c_hex(found["if_id"]) in block) == (found["if_id"] is not None)
        if found["mark"] is not None:
            assert "mark %s/%s" % (c_hex(found["mark"]), c_hex(found["mark_mask"])) in block
        for tmpl in found["templates"]:
            assert "reqid %d(" % tmpl["reqid"] in block and "mode %s" % tmpl["mode"] in block


def test_per_socket_policies_have_directions_of_their_own(scratch_netns):
    """An IKE daemon's bypass policies (setsockopt IP_XFRM_POLICY) are dumped as in-socket / out-socket."""
    holder = subprocess.Popen(["ip", "netns", "exec", scratch_netns, sys.executable, "-c", SOCKET_POLICY_HOLDER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        policies = read_xfrm(scratch_netns)["policies"]
        assert sorted(p["direction"] for p in policies) == ["in-socket", "out-socket"]
        assert all(without_index(p) == policy(p["direction"], selector("ipv4", "0.0.0.0/0", "0.0.0.0/0"))
                   for p in policies)
        assert XfrmFacts(scratch_netns, directions=["in", "out"]).read()["policies"] == []
        assert [p["direction"] for p in XfrmFacts(scratch_netns, directions=["out-socket"]).read()["policies"]] == [
            "out-socket"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


SOCKET_POLICY_HOLDER = r"""
import socket, struct, sys
IP_XFRM_POLICY = 17
def info(direction):  # struct xfrm_userpolicy_info: selector (family AF_INET), lifetimes, dir, action
    sel = bytearray(56)
    struct.pack_into("=H", sel, 40, socket.AF_INET)
    lifetimes = struct.pack("=8Q", *[2 ** 64 - 1] * 8) + bytes(32)
    return bytes(sel) + lifetimes + struct.pack("=IIBBBB4x", 0, 0, direction, 0, 0, 0)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for direction in (0, 1):
    sock.setsockopt(socket.IPPROTO_IP, IP_XFRM_POLICY, info(direction))
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("filters, wanted", [
    (dict(if_id=4296), ["in 200", "out 100"]),
    (dict(mark=0x2A), ["out 100"]),
    (dict(mark=0), ["out 0"]),
    (dict(mark=0x10C8), ["fwd 0"]),
    (dict(directions=["fwd"]), ["fwd 0", "fwd 5"]),
    (dict(directions=["in", "fwd"], if_id=4296), ["in 200"]),
    (dict(if_id=1, mark=None), ["out 1"]),
    (dict(if_id=4296, mark=0x2A, directions=["in"]), []),
    (dict(if_id=12345), []),
])
def test_filters(policies_netns, filters, wanted):
    found = XfrmFacts(policies_netns, **filters).read()
    assert sorted("%s %d" % (p["direction"], p["priority"]) for p in found["policies"]) == wanted
    assert found["states"] == []


def test_gather_only_what_is_asked(policies_netns):
    assert XfrmFacts(policies_netns, gather=["states"]).read() == {"policies": [], "states": []}
    assert len(XfrmFacts(policies_netns, gather=["policies"]).read()["policies"]) == len(POLICIES)


def test_an_empty_namespace_has_empty_lists(scratch_netns):
    assert read_xfrm(scratch_netns) == {"policies": [], "states": []}


def test_the_own_namespace_is_read_without_netns(policies_netns):
    """netns=None reads the caller's namespace: run in the scratch one, it sees the scratch policies."""
    code = ("import json; from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump "
            "import read_xfrm; print(len(read_xfrm()['policies']))")
    proc = subprocess.run(["ip", "netns", "exec", policies_netns, sys.executable, "-c", code], capture_output=True,
                          text=True, check=True, env=dict(os.environ, PYTHONPATH=str(COLLECTIONS_PATH)))
    assert int(proc.stdout) == len(POLICIES)


def test_reading_leaves_this_process_in_its_namespace(policies_netns):
    before = os.readlink("/proc/self/ns/net")
    read_xfrm(policies_netns)
    assert os.readlink("/proc/self/task/%d/ns/net" % os.getpid()) == before
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_a_missing_namespace_is_an_error_and_is_not_created():
    name = "rvt-missing-%d" % os.getpid()
    with pytest.raises(NetnsError, match="network namespace '%s' does not exist" % name):
        read_xfrm(name)
    assert not os.path.exists("/run/netns/" + name)


@pytest.mark.parametrize("name", ["../../proc/1/ns/net", ".", "..", ""])
def test_a_path_is_not_a_namespace_name(name):
    with pytest.raises(XfrmError, match="not a namespace name"):
        read_xfrm(name)


DEBIAN_READER = (
    "import json, sys\n"
    "import pyroute2\n"
    "from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import read_xfrm\n"
    "print(json.dumps({'version': getattr(pyroute2, '__version__', 'unknown'), 'found': read_xfrm(sys.argv[1])}))\n"
)


@pytest.mark.skipif(not debian_pyroute2_available(), reason="Debian's python3-pyroute2 is not installed")
def test_pyroute2_0_7_reads_the_same_records(policies_netns):
    import pyroute2

    proc = subprocess.run([DEBIAN_PYTHON, "-c", DEBIAN_READER, policies_netns], capture_output=True, text=True,
                          check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join([_debian_path(),
                                                                                      str(COLLECTIONS_PATH)])))
    debian = json.loads(proc.stdout)
    assert pyroute2.__version__.startswith("0.9") and debian["version"] != pyroute2.__version__
    assert debian["found"] == read_xfrm(policies_netns)
    assert len(debian["found"]["policies"]) == len(POLICIES)


def test_a_large_dump_spans_many_netlink_reads(scratch_netns):
    """Enough policies that the kernel splits the dump over several messages batches."""
    count = 400
    commands = "".join("xfrm policy add src 10.%d.%d.0/24 dst 0.0.0.0/0 dir out priority %d if_id %d\n"
                       % (i // 256, i % 256, i, i + 1) for i in range(count))
    subprocess.run(["ip", "-n", scratch_netns, "-batch", "-"], input=commands, text=True, check=True,
                   capture_output=True)
    start = time.monotonic()
    policies = read_xfrm(scratch_netns)["policies"]
    assert time.monotonic() - start < 30
    assert sorted(p["priority"] for p in policies) == list(range(count))
    assert all(p["if_id"] == p["priority"] + 1 for p in policies)
