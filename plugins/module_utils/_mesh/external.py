# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Peers the collection does not manage: ``routevpn_external_peers``, read and checked for the planner.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O.  An external peer is a gateway
Ansible never connects to (a Juniper SRX, a VyOS router, a cloud provider's
VPN endpoint): the planner numbers its links like any other, the roles build
the Linux ends, and the peer's side is rendered for its operator
(docs/plan.md, "Peers the collection does not manage").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import (
    GATEWAY_ID_MAX,
    PSK_MIN_LENGTH,
    STRONGSWAN_PROPOSALS,
    InputError,
    as_int,
    endpoint_problem,
    host_name_problem,
    ike_id_kind,
    shown,
    type_name,
)

VARIABLE = "routevpn_external_peers"
PLATFORMS = ("junos", "vyos", "generic")
KEYS = ("name", "platform", "gateway_id", "site", "public_address", "ike_id", "gateways", "tunnels",
        "ike_proposals", "esp_proposals", "dpd_delay", "bfd")
TUNNEL_KEYS = ("psk", "inside_v4", "peer_inside_v4", "inside_v6", "peer_inside_v6")
# The proposals of the mesh's strongSwan ends (routevpn_strongswan_proposals and _esp_proposals), which
# every platform named here negotiates: AES-256-GCM with ECP-384 (group 20) and a SHA-384 PRF is what the
# reference lab ran between strongSwan and a Juniper vSRX (../shared/seeds/lab-routed-vpn/junos-V3-2.conf:
# "aes-256-gcm", "group20"), and VyOS's IKE and ESP groups offer aes256gcm128, prfsha384 and dh-group 20.
DEFAULT_IKE_PROPOSALS = ("aes256gcm16-prfsha384-ecp384",)
DEFAULT_ESP_PROPOSALS = ("aes256gcm16-ecp384",)
# Inside addresses a provider hands out: a /30 (or /31) of IPv4, a /126 (or /127) of IPv6.
_INSIDE_LENGTHS = {4: (30, 31), 6: (126, 127)}


class ExternalPeer(object):
    """One entry of routevpn_external_peers, as far as it could be read; None where a value was refused."""

    def __init__(self, name):
        self.name = name
        self.platform = None
        self.gateway_id = None
        self.site = None
        self.public = {}  # family -> ip_address
        self.ike_id = None
        self.ike_id_kind = None
        self.gateways = None  # names of managed gateways, or None: every gateway of every other site
        self.tunnels = {}  # managed gateway name -> {"psk": bool, "v4": (ip_interface, peer ip), "v6": ...}
        self.ike_proposals = list(DEFAULT_IKE_PROPOSALS)
        self.esp_proposals = list(DEFAULT_ESP_PROPOSALS)
        self.dpd_delay = 10
        self.bfd = False
        self.custom_proposals = False

    def label(self, key=None):
        """The variable a problem names: routevpn_external_peers[NAME].key."""
        return "%s[%s]%s" % (VARIABLE, self.name, "." + key if key else "")


def _proposals(value, peer, key, problems):
    texts = value if isinstance(value, list) else [value]
    if not texts:
        problems.add("all", peer.label(key), "an empty list; give at least one proposal or leave it unset")
        return None
    result = []
    for text in texts:
        try:
            result.append(STRONGSWAN_PROPOSALS(text))
        except InputError as exc:
            problems.add("all", peer.label(key), "%s (strongSwan's proposal syntax, e.g. %s)"
                         % (exc, DEFAULT_IKE_PROPOSALS[0] if key == "ike_proposals" else DEFAULT_ESP_PROPOSALS[0]))
            return None
    return result


def _inside(tunnel, family, peer, gateway, problems):
    """(our ip_interface, the peer's ip_address) given for ``family`` (4 or 6), or None; problems otherwise."""
    mine_key, theirs_key = "inside_v%d" % family, "peer_inside_v%d" % family
    mine, theirs = tunnel.get(mine_key), tunnel.get(theirs_key)
    if mine is None and theirs is None:
        return None
    where = peer.label("tunnels.%s" % gateway)
    if mine is None or theirs is None:
        problems.add("all", where, "%s and %s go together (the provider gives both ends of the tunnel's inside "
                     "network)" % (mine_key, theirs_key))
        return None
    try:
        if not isinstance(mine, str) or "/" not in mine:
            raise ValueError("not an address with a prefix length")
        interface = ipaddress.ip_interface(mine)
        if not isinstance(theirs, str) or "/" in theirs:
            raise ValueError("%s is not an address without a prefix length" % shown(theirs))
        other = ipaddress.ip_address(theirs)
    except ValueError as exc:
        problems.add("all", where, "%s %s / %s %s: %s" % (mine_key, shown(mine), theirs_key, shown(theirs), exc))
        return None
    if interface.version != family or other.version != family:
        problems.add("all", where, "%s and %s must be IPv%d" % (mine_key, theirs_key, family))
        return None
    lengths = _INSIDE_LENGTHS[family]
    network = interface.network
    if network.prefixlen not in lengths:
        problems.add("all", where, "%s is a /%d; a tunnel's inside network is a /%d or /%d"
                     % (mine_key, network.prefixlen, lengths[0], lengths[1]))
        return None
    if other not in network or other == interface.ip:
        problems.add("all", where, "%s %s is not the other address of %s's network %s"
                     % (theirs_key, other, mine_key, network))
        return None
    if network.prefixlen == lengths[0] and (network.network_address in (interface.ip, other)
                                            or network.broadcast_address in (interface.ip, other)):
        problems.add("all", where, "in a /%d the first and last addresses of %s are not host addresses"
                     % (network.prefixlen, network))
        return None
    return interface, other


def _tunnels(value, peer, problems):
    if not isinstance(value, dict):
        problems.add("all", peer.label("tunnels"), "is %s; it maps a managed gateway's name to "
                     "{psk, inside_v4, peer_inside_v4, inside_v6, peer_inside_v6}" % type_name(value))
        return {}
    tunnels = {}
    for gateway in sorted(value, key=repr):
        spec = value[gateway]
        where = peer.label("tunnels.%s" % gateway)
        if not isinstance(spec, dict):
            problems.add("all", where, "is %s, not a dict" % type_name(spec))
            continue
        for key in sorted((key for key in spec if key not in TUNNEL_KEYS), key=repr):
            problems.add("all", where, "unknown key %s; a tunnel has %s" % (shown(key), ", ".join(TUNNEL_KEYS)))
        psk = spec.get("psk")
        if psk is not None and (not isinstance(psk, str) or len(psk) < PSK_MIN_LENGTH):
            problems.add("all", where, "psk must be a string of at least %d characters" % PSK_MIN_LENGTH)
        tunnels[gateway] = {"psk": psk is not None,
                            "v4": _inside(spec, 4, peer, gateway, problems),
                            "v6": _inside(spec, 6, peer, gateway, problems)}
    return tunnels


def read_external_peers(raw, sites, problems):
    """The external peers of ``raw`` (routevpn_external_peers); every problem is added to ``problems``."""
    peers = []
    if raw is None or raw == []:
        return peers
    if not isinstance(raw, list):
        problems.add("all", VARIABLE, "is %s; it must be a list of peers ({name, platform, gateway_id, site, "
                     "public_address, ...})" % type_name(raw))
        return peers
    seen = set()
    for position, spec in enumerate(raw):
        if not isinstance(spec, dict):
            problems.add("all", "%s[%d]" % (VARIABLE, position), "is %s, not a dict" % type_name(spec))
            continue
        name = spec.get("name")
        naming = host_name_problem(name) if isinstance(name, str) else "missing or not a string"
        if naming:
            problems.add("all", "%s[%d].name" % (VARIABLE, position), naming)
            continue
        if name in seen:
            problems.add("all", "%s[%s]" % (VARIABLE, name), "is listed twice")
            continue
        seen.add(name)
        peer = ExternalPeer(name)
        for key in sorted((key for key in spec if key not in KEYS), key=repr):
            problems.add("all", peer.label(), "unknown key %s; an external peer has %s"
                         % (shown(key), ", ".join(KEYS)))

        platform = spec.get("platform")
        if platform not in PLATFORMS:
            problems.add("all", peer.label("platform"), "%s; it must be one of %s (the configuration rendered "
                         "for the peer's operator)" % ("missing" if platform is None else shown(platform),
                                                       ", ".join(PLATFORMS)))
        else:
            peer.platform = platform

        if spec.get("gateway_id") is None:
            problems.add("all", peer.label("gateway_id"), "missing (a unique, stable number 1..%d: its links are "
                         "numbered from it, as a routevpn_gateway_id)" % GATEWAY_ID_MAX)
        else:
            try:
                peer.gateway_id = as_int(spec["gateway_id"], 1, GATEWAY_ID_MAX)
            except InputError as exc:
                problems.add("all", peer.label("gateway_id"), str(exc))

        site = spec.get("site")
        if site is None:
            problems.add("all", peer.label("site"), "missing (a site of routevpn_sites: its AS and prefixes)")
        elif not isinstance(site, str) or site not in sites:
            problems.add("all", peer.label("site"), "unknown site %s (routevpn_sites has: %s)"
                         % (shown(site), ", ".join(sorted(sites)) or "none"))
        else:
            peer.site = site

        _public(spec.get("public_address"), peer, problems)

        ike_id = spec.get("ike_id")
        if ike_id is None or ike_id == "":
            peer.ike_id, peer.ike_id_kind = name, ike_id_kind(name)
        elif not isinstance(ike_id, str) or ike_id_kind(ike_id) in (None, "dn"):
            problems.add("all", peer.label("ike_id"), "%s is not an IKE identity a pre-shared key can prove: a "
                         "DNS name, user@DNS name or an IP address" % shown(ike_id))
        else:
            peer.ike_id, peer.ike_id_kind = ike_id, ike_id_kind(ike_id)

        gateways = spec.get("gateways")
        if gateways is not None:
            if not isinstance(gateways, list) or not gateways or not all(isinstance(g, str) for g in gateways):
                problems.add("all", peer.label("gateways"), "must be a non-empty list of managed gateways' "
                             "names, or unset (every gateway of every other site)")
            elif len(set(gateways)) != len(gateways):
                problems.add("all", peer.label("gateways"), "lists a gateway twice")
            else:
                peer.gateways = sorted(gateways)

        if spec.get("tunnels") is not None:
            peer.tunnels = _tunnels(spec["tunnels"], peer, problems)
        for key in ("ike_proposals", "esp_proposals"):
            if spec.get(key) is not None:
                value = _proposals(spec[key], peer, key, problems)
                if value is not None:
                    setattr(peer, key, value)
                    peer.custom_proposals = True
        if spec.get("dpd_delay") is not None:
            try:
                peer.dpd_delay = as_int(spec["dpd_delay"], 1, 3600, "seconds")
            except InputError as exc:
                problems.add("all", peer.label("dpd_delay"), str(exc))
        if spec.get("bfd") is not None:
            if not isinstance(spec["bfd"], bool):
                problems.add("all", peer.label("bfd"), "%s is not true or false" % shown(spec["bfd"]))
            else:
                peer.bfd = spec["bfd"]
        peers.append(peer)
    return peers


def _public(value, peer, problems):
    where = peer.label("public_address")
    if value is None:
        problems.add("all", where, "missing (its IKE endpoint, IPv4 or IPv6)")
        return
    texts = value if isinstance(value, list) else [value]
    if not texts or len(texts) > 2:
        problems.add("all", where, "give one address, or at most one per family")
        return
    for text in texts:
        try:
            if not isinstance(text, str) or "%" in text:
                raise ValueError
            address = ipaddress.ip_address(text)
        except ValueError:
            problems.add("all", where, "%s is not an IP address" % shown(text))
            continue
        why = endpoint_problem(address)
        family = "ipv%d" % address.version
        if why:
            problems.add("all", where, "%s is %s; an IKE endpoint must be a unicast address the gateways reach"
                         % (address, why))
        elif family in peer.public:
            problems.add("all", where, "two %s addresses; give at most one per family" % family)
        else:
            peer.public[family] = address
