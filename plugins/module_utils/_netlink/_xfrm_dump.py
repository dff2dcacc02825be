# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the kernel's XFRM policies and SAs, read over NETLINK_XFRM.

pyroute2 has no NETLINK_XFRM message classes and ``ip xfrm`` has no JSON
output, so this module dumps XFRM_MSG_GETPOLICY / XFRM_MSG_GETSA itself and
decodes the structures of <linux/xfrm.h> with ``struct``.  It needs nothing
but the standard library, so it behaves the same under every pyroute2
release.  Algorithm attributes carry keys: only their names and lengths are
decoded, and the raw attributes are dropped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import socket
import struct

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import _in_netns

NETLINK_XFRM = 6
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_GETPOLICY = 0x15

XFRMA_ALG_AUTH = 1
XFRMA_ALG_CRYPT = 2
XFRMA_ALG_COMP = 3
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_MARK = 21
XFRMA_SET_MARK = 29
XFRMA_SET_MARK_MASK = 30
XFRMA_IF_ID = 31

NLMSG_HEADER = struct.Struct("=IHHII")
NLA_HEADER = struct.Struct("=HH")
# struct xfrm_selector: daddr, saddr, dport, dport_mask, sport, sport_mask (be16),
# family (u16), prefixlen_d, prefixlen_s, proto (u8), pad, ifindex (int), user (uid)
SELECTOR_SIZE = 56
LIFETIME_CFG_SIZE = 64
LIFETIME_CUR = struct.Struct("=QQQQ")  # bytes, packets, add_time, use_time
# xfrm_userpolicy_info: selector, lft, curlft, priority, index, dir, action, flags, share
POLICY_TAIL = struct.Struct("=IIBBBB")
POLICY_INFO_SIZE = 168
# xfrm_usersa_info after the selector: xfrm_id (daddr, spi be32, proto), saddr, lft, curlft,
# stats (3 x u32), seq, reqid, family, mode, replay_window, flags
SA_INFO_SIZE = 224
TEMPLATE_SIZE = 64
ALG_NAME_SIZE = 64

FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6", 0: "unspec"}
DIRECTIONS = {0: "in", 1: "out", 2: "fwd", 3: "in-socket", 4: "out-socket", 5: "fwd-socket"}
ACTIONS = {0: "allow", 1: "block"}
MODES = {0: "transport", 1: "tunnel", 2: "ro", 3: "in_trigger", 4: "beet"}
PROTOCOLS = {0: "any", 1: "icmp", 6: "tcp", 17: "udp", 50: "esp", 51: "ah", 58: "ipv6-icmp", 108: "comp"}


class XfrmError(Exception):
    """The XFRM state could not be read."""


def _address(raw, family):
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[:16])
    return None


def _protocol(number):
    return PROTOCOLS.get(number, str(number))


def _selector(data, offset):
    daddr, saddr = data[offset:offset + 16], data[offset + 16:offset + 32]
    dport, dport_mask, sport, sport_mask = struct.unpack_from("!HHHH", data, offset + 32)
    family, prefixlen_d, prefixlen_s, proto = struct.unpack_from("=HBBB", data, offset + 40)
    ifindex, = struct.unpack_from("=i", data, offset + 48)
    return {
        "family": FAMILIES.get(family, str(family)),
        "src": "%s/%d" % (_address(saddr, family), prefixlen_s) if family in (2, 10) else None,
        "dst": "%s/%d" % (_address(daddr, family), prefixlen_d) if family in (2, 10) else None,
        "proto": _protocol(proto),
        "sport": sport if sport_mask else None,
        "dport": dport if dport_mask else None,
        "ifindex": ifindex or None,
    }


def _attributes(data, offset, end):
    """Yield (type, payload) for the netlink attributes between offset and end."""
    while offset + NLA_HEADER.size <= end:
        length, kind = NLA_HEADER.unpack_from(data, offset)
        if length < NLA_HEADER.size:
            break
        yield kind & 0x3FFF, data[offset + NLA_HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _template(raw, offset):
    daddr = raw[offset:offset + 16]
    spi, = struct.unpack_from("!I", raw, offset + 16)
    proto, = struct.unpack_from("=B", raw, offset + 20)
    family, = struct.unpack_from("=H", raw, offset + 24)
    saddr = raw[offset + 28:offset + 44]
    reqid, mode, share, optional = struct.unpack_from("=IBBB", raw, offset + 44)
    return {
        "src": _address(saddr, family),
        "dst": _address(daddr, family),
        "family": FAMILIES.get(family, str(family)),
        "proto": _protocol(proto),
        "spi": spi or None,
        "reqid": reqid,
        "mode": MODES.get(mode, str(mode)),
        "optional": bool(optional),
    }


def _mark(payload):
    value, mask = struct.unpack_from("=II", payload)
    return {"value": value, "mask": mask}


def _common_attributes(kind, payload, record):
    if kind == XFRMA_MARK:
        record["mark"] = _mark(payload)
    elif kind == XFRMA_IF_ID:
        record["if_id"], = struct.unpack_from("=I", payload)
    elif kind == XFRMA_SET_MARK:
        record["output_mark"] = struct.unpack_from("=I", payload)[0]
    else:
        return False
    return True


def parse_policy(data, offset, end):
    base = offset
    record = {"selector": _selector(data, base)}
    current = LIFETIME_CUR.unpack_from(data, base + SELECTOR_SIZE + LIFETIME_CFG_SIZE)
    priority, index, direction, action, flags, share = POLICY_TAIL.unpack_from(
        data, base + SELECTOR_SIZE + LIFETIME_CFG_SIZE + LIFETIME_CUR.size)
    record.update(
        direction=DIRECTIONS.get(direction, str(direction)),
        priority=priority,
        index=index,
        action=ACTIONS.get(action, str(action)),
        flags=flags,
        mark=None,
        if_id=None,
        templates=[],
        add_time=current[2],
    )
    for kind, payload in _attributes(data, base + POLICY_INFO_SIZE, end):
        if _common_attributes(kind, payload, record):
            continue
        if kind == XFRMA_TMPL:
            record["templates"] = [_template(payload, i) for i in range(0, len(payload) - TEMPLATE_SIZE + 1,
                                                                        TEMPLATE_SIZE)]
    return record


def _algorithm(kind, payload):
    """Name and sizes of an algorithm; the key that follows them is never read."""
    name = payload[:ALG_NAME_SIZE].split(b"\0", 1)[0].decode("ascii", "replace")
    key_bits, = struct.unpack_from("=I", payload, ALG_NAME_SIZE)
    algorithm = {"name": name, "key_bits": key_bits}
    if kind == XFRMA_ALG_AEAD:
        algorithm["icv_bits"], = struct.unpack_from("=I", payload, ALG_NAME_SIZE + 4)
    elif kind == XFRMA_ALG_AUTH_TRUNC:
        algorithm["trunc_bits"], = struct.unpack_from("=I", payload, ALG_NAME_SIZE + 4)
    return algorithm


ALGORITHM_SLOTS = {
    XFRMA_ALG_AEAD: "aead",
    XFRMA_ALG_CRYPT: "enc",
    XFRMA_ALG_AUTH: "auth",
    XFRMA_ALG_AUTH_TRUNC: "auth",
    XFRMA_ALG_COMP: "comp",
}


def parse_state(data, offset, end):
    base = offset
    record = {"selector": _selector(data, base)}
    pos = base + SELECTOR_SIZE
    daddr = data[pos:pos + 16]
    spi, = struct.unpack_from("!I", data, pos + 16)
    proto, = struct.unpack_from("=B", data, pos + 20)
    saddr = data[pos + 24:pos + 40]
    pos += 40 + LIFETIME_CFG_SIZE
    current_bytes, current_packets, add_time, use_time = LIFETIME_CUR.unpack_from(data, pos)
    pos += LIFETIME_CUR.size
    replay_window_stat, replay, integrity_failed = struct.unpack_from("=III", data, pos)
    seq, reqid, family, mode, replay_window, flags = struct.unpack_from("=IIHBBB", data, pos + 12)
    record.update(
        src=_address(saddr, family),
        dst=_address(daddr, family),
        family=FAMILIES.get(family, str(family)),
        proto=_protocol(proto),
        spi="0x%08x" % spi,
        reqid=reqid,
        mode=MODES.get(mode, str(mode)),
        replay_window=replay_window,
        flags=flags,
        mark=None,
        if_id=None,
        algorithms={},
        encap=None,
        counters={"bytes": current_bytes, "packets": current_packets, "add_time": add_time,
                  "use_time": use_time, "replay_errors": replay, "integrity_failed": integrity_failed},
    )
    for kind, payload in _attributes(data, base + SA_INFO_SIZE, end):
        if _common_attributes(kind, payload, record):
            continue
        if kind in ALGORITHM_SLOTS:
            record["algorithms"][ALGORITHM_SLOTS[kind]] = _algorithm(kind, payload)
        elif kind == XFRMA_ENCAP:
            encap_type, = struct.unpack_from("=H", payload)
            sport, dport = struct.unpack_from("!HH", payload, 2)
            record["encap"] = {"type": encap_type, "sport": sport, "dport": dport}
    return record


def _dump(sock, message_type, parse, wanted_type):
    sequence = 1
    request = NLMSG_HEADER.pack(NLMSG_HEADER.size, message_type, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0)
    sock.send(request)
    records = []
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + NLMSG_HEADER.size <= len(data):
            length, kind, _flags, _seq, _pid = NLMSG_HEADER.unpack_from(data, offset)
            if length < NLMSG_HEADER.size:
                raise XfrmError("malformed netlink message")
            if kind == NLMSG_DONE:
                return records
            if kind == NLMSG_ERROR:
                code, = struct.unpack_from("=i", data, offset + NLMSG_HEADER.size)
                if code == 0:
                    return records
                raise XfrmError("the kernel refused the XFRM dump: %s" % os.strerror(-code))
            if kind == wanted_type:
                records.append(parse(data, offset + NLMSG_HEADER.size, offset + length))
            offset += (length + 3) & ~3


def read_xfrm(policies=True, states=True):
    """Policies and SAs of the calling process's network namespace."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
            raise XfrmError("this kernel has no XFRM netlink interface (CONFIG_XFRM_USER)")
        raise
    try:
        sock.bind((0, 0))
        result = {"policies": [], "states": []}
        if policies:
            result["policies"] = _dump(sock, XFRM_MSG_GETPOLICY, parse_policy, XFRM_MSG_NEWPOLICY)
        if states:
            result["states"] = _dump(sock, XFRM_MSG_GETSA, parse_state, XFRM_MSG_NEWSA)
        return result
    finally:
        sock.close()


def read_xfrm_in(netns=None, policies=True, states=True):
    """Like read_xfrm, in network namespace ``netns`` (None: this one)."""
    if netns is None:
        return read_xfrm(policies, states)
    return json.loads(_in_netns(netns, lambda: json.dumps(read_xfrm(policies, states))))


def select(records, if_id=None, mark=None, directions=None):
    """Filter records by if_id, by mark value, and (policies only) by direction."""
    chosen = []
    for record in records:
        if if_id is not None and record.get("if_id") != if_id:
            continue
        if mark is not None and (record.get("mark") or {}).get("value") != mark:
            continue
        if directions and record.get("direction") not in directions:
            continue
        chosen.append(record)
    return chosen
