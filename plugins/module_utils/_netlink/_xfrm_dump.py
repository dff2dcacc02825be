# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the XFRM policies and SAs of a network namespace, as plain data.

Dumps XFRM_MSG_GETPOLICY and XFRM_MSG_GETSA over the NETLINK_XFRM socket of
``_xfrm_messages`` and turns each reply into a dict of names and numbers
(the shape is documented in the RETURN block of the xfrm_policy_facts
module).  Algorithm attributes are read for their names and lengths only;
the pyroute2 messages, which still reference the receive buffer and so the
keys, never leave this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import os
import socket

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import (
    NETNS_RUN_DIR,
    NetnsError,
    require_netns,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import NetlinkError
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_messages import (
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_GETPOLICY,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XfrmSocket,
    xfrm_dump_request,
    xfrm_userpolicy_id,
)

# Directions 3 and 4 are XFRM_POLICY_MAX + in/out: policies an IKE daemon
# attaches to its own sockets (setsockopt IP_XFRM_POLICY) so that IKE packets
# bypass the SPD.  They get names of their own so that a filter on "in" or
# "out" never picks them up.
DIRECTIONS = {0: "in", 1: "out", 2: "fwd", 3: "in-socket", 4: "out-socket"}
ACTIONS = {0: "allow", 1: "block"}
POLICY_FLAGS = {1: "localok", 2: "icmp"}
POLICY_TYPES = {0: "main", 1: "sub"}
STATE_FLAGS = {1: "noecn", 2: "decap-dscp", 4: "nopmtudisc", 8: "wildrecv", 16: "icmp", 32: "af-unspec",
               64: "align4", 128: "esn"}
MODES = {0: "transport", 1: "tunnel", 2: "ro", 3: "in_trigger", 4: "beet"}
# IPsec protocols of SAs and templates, named as `ip xfrm` names them.
XFRM_PROTOCOLS = {43: "route2", 50: "esp", 51: "ah", 60: "hao", 108: "comp", 255: "ipsec-any"}
# Selector protocols; 0 means any and is returned as None.
SELECTOR_PROTOCOLS = {1: "icmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp", 51: "ah",
                      58: "ipv6-icmp", 108: "comp", 132: "sctp", 136: "udplite"}
ENCAP_TYPES = {1: "espinudp-nonike", 2: "espinudp", 7: "espintcp"}
FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
ADDRESS_BYTES = {socket.AF_INET: 4, socket.AF_INET6: 16}


class XfrmError(Exception):
    """The XFRM state could not be read; the message says what to do."""


# -- decoding -----------------------------------------------------------------------


def _name(table, number):
    return table.get(number, str(number))


def _flag_names(table, value):
    return [name for bit, name in sorted(table.items()) if value & bit]


def _address(raw, family):
    if family not in ADDRESS_BYTES:
        return None
    return socket.inet_ntop(family, bytes(raw[:ADDRESS_BYTES[family]]))


def _spi(value):
    return "0x%08x" % value


def _attributes(msg, owner):
    """{name: decoded attribute} of a message.

    Each attribute is decoded here, not with pyroute2's get_attr(): on a
    decoding error that returns the attribute's raw bytes, which for
    XFRMA_ALG_* would be the key.
    """
    found = {}
    # msg["attrs"], not msg.get(): pyroute2 0.9's get() searches nested attributes by name.
    for slot in msg["attrs"] if "attrs" in msg else ():
        name, attribute = slot.cell
        if name == "UNKNOWN" or attribute is None:
            continue
        try:
            if not attribute.decoded:
                attribute.decode()
        except Exception as exc:  # pylint: disable=broad-except
            raise XfrmError("cannot decode %s of %s: %s" % (name, owner, exc))
        found[name] = attribute
    return found


def _selector(msg):
    family = msg["sel_family"]
    return {
        "family": FAMILIES.get(family),
        "src": "%s/%d" % (_address(msg["sel_saddr"], family), msg["sel_prefixlen_s"]) if family in FAMILIES else None,
        "dst": "%s/%d" % (_address(msg["sel_daddr"], family), msg["sel_prefixlen_d"]) if family in FAMILIES else None,
        "proto": _name(SELECTOR_PROTOCOLS, msg["sel_proto"]) if msg["sel_proto"] else None,
        "sport": msg["sel_sport"] if msg["sel_sport_mask"] else None,
        "dport": msg["sel_dport"] if msg["sel_dport_mask"] else None,
        "ifindex": msg["sel_ifindex"] or None,
    }


def _marks(record, attributes):
    mark = attributes.get("XFRMA_MARK")
    record["mark"] = mark["v"] if mark is not None else None
    record["mark_mask"] = mark["m"] if mark is not None else None
    if_id = attributes.get("XFRMA_IF_ID")
    record["if_id"] = if_id.getvalue() if if_id is not None else None


def _template(template):
    family = template["family"]
    return {
        "src": _address(template["saddr"], family),
        "dst": _address(template["id_daddr"], family),
        "family": FAMILIES.get(family),
        "proto": _name(XFRM_PROTOCOLS, template["id_proto"]),
        "spi": _spi(template["id_spi"]) if template["id_spi"] else None,
        "reqid": template["reqid"],
        "mode": _name(MODES, template["mode"]),
        "level": "use" if template["optional"] else "required",
    }


def policy_record(msg):
    """A plain dict for one XFRM_MSG_NEWPOLICY message."""
    attributes = _attributes(msg, "policy index %d" % msg["index"])
    policy_type = attributes.get("XFRMA_POLICY_TYPE")
    templates = attributes.get("XFRMA_TMPL")
    record = {
        "direction": _name(DIRECTIONS, msg["dir"]),
        "selector": _selector(msg),
        "priority": msg["priority"],
        "index": msg["index"],
        "action": _name(ACTIONS, msg["action"]),
        "flags": _flag_names(POLICY_FLAGS, msg["flags"]),
        "type": _name(POLICY_TYPES, policy_type["type"]) if policy_type is not None else "main",
        "templates": [_template(t) for t in templates.getvalue()] if templates is not None else [],
    }
    _marks(record, attributes)
    return record


def _algorithm_name(attribute):
    return bytes(attribute["alg_name"]).split(b"\0", 1)[0].decode("ascii", "replace")


def _algorithms(attributes):
    """Names and lengths (bits) of the SA's algorithms; the keys stay where they are."""
    found = {}
    aead = attributes.get("XFRMA_ALG_AEAD")
    if aead is not None:
        found["aead"] = {"name": _algorithm_name(aead), "key_bits": aead["alg_key_len"],
                         "icv_bits": aead["alg_icv_len"]}
    crypt = attributes.get("XFRMA_ALG_CRYPT")
    if crypt is not None:
        found["enc"] = {"name": _algorithm_name(crypt), "key_bits": crypt["alg_key_len"]}
    # The kernel sends an authenticated SA's algorithm twice, plain and with
    # its truncation length; the latter says more.
    auth = attributes.get("XFRMA_ALG_AUTH_TRUNC")
    if auth is not None:
        found["auth"] = {"name": _algorithm_name(auth), "key_bits": auth["alg_key_len"],
                         "trunc_bits": auth["alg_trunc_len"]}
    elif attributes.get("XFRMA_ALG_AUTH") is not None:
        auth = attributes["XFRMA_ALG_AUTH"]
        found["auth"] = {"name": _algorithm_name(auth), "key_bits": auth["alg_key_len"]}
    comp = attributes.get("XFRMA_ALG_COMP")
    if comp is not None:
        found["comp"] = {"name": _algorithm_name(comp)}
    return found


def state_record(msg):
    """A plain dict for one XFRM_MSG_NEWSA message, without key material."""
    family = msg["family"]
    attributes = _attributes(msg, "SA spi %s" % _spi(msg["id_spi"]))
    encap = attributes.get("XFRMA_ENCAP")
    output_mark = attributes.get("XFRMA_SET_MARK")
    output_mark_mask = attributes.get("XFRMA_SET_MARK_MASK")
    record = {
        "src": _address(msg["saddr"], family),
        "dst": _address(msg["id_daddr"], family),
        "family": FAMILIES.get(family),
        "proto": _name(XFRM_PROTOCOLS, msg["id_proto"]),
        "spi": _spi(msg["id_spi"]),
        "reqid": msg["reqid"],
        "mode": _name(MODES, msg["mode"]),
        "replay_window": msg["replay_window"],
        "flags": _flag_names(STATE_FLAGS, msg["flags"]),
        "selector": _selector(msg),
        "algorithms": _algorithms(attributes),
        "encap": {
            "type": _name(ENCAP_TYPES, encap["encap_type"]),
            "sport": encap["encap_sport"],
            "dport": encap["encap_dport"],
        } if encap is not None else None,
        "output_mark": output_mark.getvalue() if output_mark is not None else None,
        "output_mark_mask": output_mark_mask.getvalue() if output_mark_mask is not None else None,
        "counters": {
            "bytes": msg["curlft_bytes"],
            "packets": msg["curlft_packets"],
            "add_time": msg["curlft_add_time"],
            "use_time": msg["curlft_use_time"],
            "replay_window": msg["stats_replay_window"],
            "replay": msg["stats_replay"],
            "integrity_failed": msg["stats_integrity_failed"],
        },
    }
    _marks(record, attributes)
    return record


# -- the socket -----------------------------------------------------------------------


def _netns_fd(netns):
    """An open fd of /run/netns/NAME; a missing namespace is an error, never created."""
    if not netns or "/" in netns or netns in (".", ".."):
        raise XfrmError("netns %r is not a namespace name (as `ip netns list` shows them)" % (netns,))
    require_netns(netns)
    try:
        return os.open(os.path.join(NETNS_RUN_DIR, netns), os.O_RDONLY)
    except OSError as exc:
        raise NetnsError("network namespace %r cannot be opened: %s" % (netns, exc.strerror))


def open_xfrm_socket(netns=None):
    """A bound XfrmSocket in ``netns`` (None: the calling process's namespace).

    A netlink socket belongs to the namespace of the thread that creates it,
    so this thread enters the namespace by fd just long enough to make it.
    Entering by fd (rather than by name, or pyroute2's ``netns=``) means no
    code path can create the namespace, and it works the same with pyroute2
    0.7 (no ``netns`` argument on NetlinkSocket) and 0.9.
    """
    from pyroute2.netns import popns, pushns, setns

    try:
        if netns is None:
            sock = XfrmSocket()
        else:
            fd = _netns_fd(netns)
            try:
                pushns()
                try:
                    setns(fd)
                    sock = XfrmSocket()
                finally:
                    popns()
            finally:
                os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
            raise XfrmError("this kernel has no NETLINK_XFRM interface: load xfrm_user "
                            "(modprobe xfrm_user) or build CONFIG_XFRM_USER")
        raise XfrmError("cannot open a NETLINK_XFRM socket%s: %s"
                        % (" in network namespace %r" % netns if netns else "", exc))
    sock.bind()
    return sock


def _dump(sock, request_type, reply_type, convert, what):
    try:
        replies = list(sock.nlm_request(xfrm_dump_request(), request_type))
    except NetlinkError as exc:
        if exc.code == errno.EPERM:
            raise XfrmError("reading the XFRM %s needs CAP_NET_ADMIN: run the task as root (become: true)" % what)
        raise XfrmError("the kernel refused to dump the XFRM %s: %s" % (what, os.strerror(exc.code or 0)))
    records = []
    for msg in replies:
        error = msg["header"].get("error")
        if error is not None:
            raise XfrmError("cannot decode the XFRM %s: %s" % (what, error))
        if msg["header"]["type"] == reply_type:
            records.append(convert(msg))
    return records


def read_xfrm(netns=None, policies=True, states=True):
    """``{"policies": [...], "states": [...]}`` of ``netns``, in the kernel's order."""
    sock = open_xfrm_socket(netns)
    try:
        return {
            "policies": _dump(sock, XFRM_MSG_GETPOLICY, XFRM_MSG_NEWPOLICY, policy_record, "policies")
            if policies else [],
            "states": _dump(sock, XFRM_MSG_GETSA, XFRM_MSG_NEWSA, state_record, "states (SAs)")
            if states else [],
        }
    finally:
        sock.close()


# -- deleting -------------------------------------------------------------------------

_DIRECTION_NUMBERS = dict((name, number) for number, name in DIRECTIONS.items())
_NLM_F_REQUEST = 0x01
_NLM_F_ACK = 0x04


def _policy_id(source, destination, direction, if_id):
    """The XFRM_MSG_DELPOLICY request for the policy of selector source -> destination, direction and if_id."""
    src, dst = ipaddress.ip_network(source), ipaddress.ip_network(destination)
    if src.version != dst.version:
        raise XfrmError("selector %s -> %s mixes address families" % (source, destination))
    msg = xfrm_userpolicy_id()
    msg["sel_daddr"] = dst.network_address.packed.ljust(16, b"\0")
    msg["sel_saddr"] = src.network_address.packed.ljust(16, b"\0")
    for field in ("sel_dport", "sel_dport_mask", "sel_sport", "sel_sport_mask", "sel_proto", "sel_ifindex",
                  "sel_user", "index"):
        msg[field] = 0
    msg["sel_family"] = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    msg["sel_prefixlen_d"] = dst.prefixlen
    msg["sel_prefixlen_s"] = src.prefixlen
    msg["dir"] = _DIRECTION_NUMBERS[direction]
    msg["attrs"] = [("XFRMA_IF_ID", if_id)]
    return msg


def delete_policies(selectors, direction, if_id, netns=None):
    """Delete the policies of ``direction`` bound to ``if_id`` with each selector (source, destination) of
    ``selectors``, as ``ip xfrm policy delete src S dst D dir DIR if_id N`` does; returns the ones that were there
    and are gone, as "src S dst D dir DIR if_id N" (a policy that is not there is no error)."""
    if direction not in ("in", "out", "fwd"):
        raise XfrmError("direction %r is not in, out or fwd" % (direction,))
    requests = [(source, destination, _policy_id(source, destination, direction, if_id))
                for source, destination in selectors]
    sock = open_xfrm_socket(netns)
    deleted = []
    try:
        for source, destination, msg in requests:
            try:
                list(sock.nlm_request(msg, XFRM_MSG_DELPOLICY, msg_flags=_NLM_F_REQUEST | _NLM_F_ACK))
            except NetlinkError as exc:
                if exc.code == errno.ENOENT:
                    continue
                if exc.code == errno.EPERM:
                    raise XfrmError("deleting XFRM policies needs CAP_NET_ADMIN: run the task as root")
                raise XfrmError("the kernel refused to delete the policy src %s dst %s dir %s if_id %s: %s" % (
                    source, destination, direction, if_id, os.strerror(exc.code or 0)))
            deleted.append("src %s dst %s dir %s if_id %s" % (source, destination, direction, if_id))
    finally:
        sock.close()
    return deleted


# -- filtering ------------------------------------------------------------------------


def select(records, if_id=None, mark=None, directions=None):
    """The records with this if_id, this mark value and (policies) one of these directions."""
    return [
        record for record in records
        if (if_id is None or record["if_id"] == if_id)
        and (mark is None or record["mark"] == mark)
        and (not directions or record.get("direction") in directions)
    ]


class XfrmFacts:
    """What the xfrm_policy_facts module returns: read, then filter."""

    def __init__(self, netns=None, gather=("policies", "states"), if_id=None, mark=None, directions=None):
        self.netns = netns
        self.gather = set(gather)
        self.if_id = if_id
        self.mark = mark
        self.directions = set(directions or ())

    def read(self):
        found = read_xfrm(self.netns, "policies" in self.gather, "states" in self.gather)
        return {
            "policies": select(found["policies"], self.if_id, self.mark, self.directions),
            # SAs have no direction: the direction filter leaves them alone.
            "states": select(found["states"], self.if_id, self.mark),
        }
