# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The side of a peer the collection does not manage, rendered for its operator.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python (no Ansible imports, no I/O).  ``render``
turns one ``external_peers.NAME`` record of the plan (docs/plan.md) and the
pre-shared key of each of its links into the configuration its operator loads:

``junos``
    A Junos configuration fragment for ``load merge`` (SRX, vSRX): one
    ``st0`` unit, IKE gateway and policy and IPsec VPN per link, shared IKE
    and IPsec proposals, a ``private`` virtual-router holding the units and
    one external BGP group per family, import/export policies and the ECMP
    forwarding-table policy.  The shape is the reference lab's
    (../shared/seeds/lab-routed-vpn/junos-V3-2.conf).
``vyos``
    VyOS 1.4 (sagitta) ``set`` commands: a ``vti`` interface, a
    site-to-site peer and a pre-shared key per link, IKE and ESP groups, BGP
    neighbors with route-maps.
``generic``
    A sheet per tunnel for a device or a provider console this module does
    not know (a cloud VPN gateway): every value the other side must enter.

Where the tables come from (each name written is one the platform lists):

* strongSwan's proposal keywords and their meaning: the proposals are the
  planner's (strongSwan syntax), and strongSwan's ``check_proposal``
  (src/libstrongswan/crypto/proposal/proposal.c) drops integrity algorithms
  from an AEAD proposal and, in IKE, takes the PRF of the integrity algorithm
  when none is given (an AEAD IKE proposal without a PRF is refused).
* Junos: the reference lab ran strongSwan's ``aes256gcm16-prfsha384-ecp384``
  (IKE and ESP) against a vSRX with ``aes-256-gcm`` and ``group20`` in both
  proposals and ``perfect-forward-secrecy keys group20``.  Names from
  Juniper's CLI reference: ``proposal (Security IKE)`` (encryption-algorithm
  aes-128-cbc, aes-192-cbc, aes-256-cbc, aes-256-gcm; authentication-algorithm
  sha-256, sha-384, sha-512; dh-group group14, 15, 16, 19, 20, 21), the IPsec
  proposal (aes-128-gcm, aes-192-gcm, aes-256-gcm; hmac-sha-256-128,
  hmac-sha-384, hmac-sha-512), ``prf-algorithm`` (not written: Junos refuses
  it beside an AEAD cipher, and aes-256-gcm implies PRF-HMAC-SHA-384; without
  it the PRF follows the authentication algorithm, so a proposal whose PRF
  differs is refused here), ``unit`` (logical unit 0 through 16384) and
  ``dead-peer-detection`` (interval up to 60 s, threshold 1 through 5).
  AES-128-GCM in IKE is left out: which PRF Junos pairs with it is not
  documented where this table was made.
* VyOS 1.4: vyos-1x, branch sagitta: interface-definitions/vpn_ipsec.xml.in
  (encryption aes128 ... aes256gcm128, chacha20poly1305; hash sha256, sha384,
  sha512; prf prfsha256 ...; dh-group 14 ... 32; ESP pfs dh-groupN|disable;
  connection-type initiate|respond|none; authentication psk NAME id/secret),
  data/templates/ipsec/swanctl/peer.j2 (``respond`` installs a trap, i.e.
  start_action = trap; ``none`` only loads the connection),
  python/vyos/template.py ``get_esp_ike_cipher`` (a proposal is written only
  with both encryption and hash: the hash of an AEAD proposal is dropped by
  strongSwan, above), data/templates/frr/bgpd.frr.j2 (``no bgp
  ebgp-requires-policy``, ``no bgp network import-check``, ``no bgp default
  ipv4-unicast``); and the VyOS documentation, "IPsec Site-to-Site VPN"
  (vyos-documentation docs/configuration/vpn/ipsec/site2site_ipsec.md:
  route-based VPN with ``vti bind`` and ``options
  disable-route-autoinstall``).

Every value written goes through ``conf_text`` (or a stricter check here) and
is refused, naming the peer, when it could leave its place in the file; a
pre-shared key is checked without ever being shown in a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh import conf_text
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import ike_id_kind

PLATFORMS = ("junos", "vyos", "generic")
FILE_SUFFIXES = {"junos": "junos.conf", "vyos": "vyos.conf", "generic": "txt"}
# A file of ours in routevpn_external_peers_dir: a peer's name (inventory host name rules) and a suffix.
FILE_NAME = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\.(?P<suffix>junos\.conf|vyos\.conf|txt)$")

VARIABLE = "routevpn_external_peers"

# ------------------------------------------------------------------ the Linux ends' timers
# The timers each end of the record carries: the Linux gateway's, which starts and re-keys the link.
_TIMERS = (("ike_lifetime", 1, 315360000, "the IKE SA lifetime, s"),
           ("child_lifetime", 1, 315360000, "the CHILD SA lifetime, s"),
           ("bgp_hold_time", 0, 65535, "BGP's hold time, s"),
           ("bgp_keepalive_time", 1, 65535, "BGP's keepalive time, s"),
           ("bfd_interval_ms", 10, 60000, "BFD's interval, ms"),
           ("bfd_multiplier", 1, 255, "BFD's multiplier"))

# ------------------------------------------------------------------ strongSwan's proposal keywords
# keyword -> (transform type, canonical keyword); "aead" is an encryption algorithm with its own integrity.
_KEYWORDS = {
    "aes128": "encr", "aes192": "encr", "aes256": "encr",
    "aes128gcm16": "aead", "aes192gcm16": "aead", "aes256gcm16": "aead", "chacha20poly1305": "aead",
    "sha1": "integ", "sha256": "integ", "sha384": "integ", "sha512": "integ",
    "prfsha1": "prf", "prfsha256": "prf", "prfsha384": "prf", "prfsha512": "prf",
    "modp2048": "dh", "modp3072": "dh", "modp4096": "dh", "modp6144": "dh", "modp8192": "dh",
    "ecp256": "dh", "ecp384": "dh", "ecp521": "dh", "curve25519": "dh", "curve448": "dh",
    "esn": "esn", "noesn": "esn",
}
_ALIASES = {"aes128gcm128": "aes128gcm16", "aes192gcm128": "aes192gcm16", "aes256gcm128": "aes256gcm16",
            "sha": "sha1", "sha2_256": "sha256", "sha2_384": "sha384", "sha2_512": "sha512",
            "x25519": "curve25519", "x448": "curve448"}
# strongSwan's integ_prf_map: the PRF an IKE proposal takes from its integrity algorithm.
_PRF_OF_INTEGRITY = {"sha1": "prfsha1", "sha256": "prfsha256", "sha384": "prfsha384", "sha512": "prfsha512"}
# IANA names, for the generic sheet.
_IANA = {
    "aes128": "AES-CBC 128", "aes192": "AES-CBC 192", "aes256": "AES-CBC 256",
    "aes128gcm16": "AES-GCM 128, 16-octet ICV", "aes192gcm16": "AES-GCM 192, 16-octet ICV",
    "aes256gcm16": "AES-GCM 256, 16-octet ICV", "chacha20poly1305": "ChaCha20-Poly1305",
    "sha1": "HMAC-SHA1-96", "sha256": "HMAC-SHA2-256-128", "sha384": "HMAC-SHA2-384-192",
    "sha512": "HMAC-SHA2-512-256",
    "prfsha1": "PRF-HMAC-SHA1", "prfsha256": "PRF-HMAC-SHA2-256", "prfsha384": "PRF-HMAC-SHA2-384",
    "prfsha512": "PRF-HMAC-SHA2-512",
    "modp2048": "group 14 (MODP 2048)", "modp3072": "group 15 (MODP 3072)", "modp4096": "group 16 (MODP 4096)",
    "modp6144": "group 17 (MODP 6144)", "modp8192": "group 18 (MODP 8192)", "ecp256": "group 19 (ECP 256)",
    "ecp384": "group 20 (ECP 384)", "ecp521": "group 21 (ECP 521)", "curve25519": "group 31 (Curve25519)",
    "curve448": "group 32 (Curve448)", "esn": "extended sequence numbers", "noesn": "no extended sequence numbers",
}

# ------------------------------------------------------------------ the platforms' names
JUNOS = {
    "ike_encryption": {"aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
                       "aes256gcm16": "aes-256-gcm"},
    "esp_encryption": {"aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
                       "aes128gcm16": "aes-128-gcm", "aes192gcm16": "aes-192-gcm", "aes256gcm16": "aes-256-gcm"},
    "ike_integrity": {"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"},
    "esp_integrity": {"sha256": "hmac-sha-256-128", "sha384": "hmac-sha-384", "sha512": "hmac-sha-512"},
    "dh": {"modp2048": "group14", "modp3072": "group15", "modp4096": "group16", "ecp256": "group19",
           "ecp384": "group20", "ecp521": "group21"},
    # The PRF Junos uses (not configurable beside AEAD): the authentication algorithm's, aes-256-gcm's PRF-384.
    "ike_prf": {"sha256": "prfsha256", "sha384": "prfsha384", "sha512": "prfsha512", "aes256gcm16": "prfsha384"},
    "esn": {"noesn": None},
}
VYOS = {
    "encryption": {"aes128": "aes128", "aes192": "aes192", "aes256": "aes256", "aes128gcm16": "aes128gcm128",
                   "aes192gcm16": "aes192gcm128", "aes256gcm16": "aes256gcm128",
                   "chacha20poly1305": "chacha20poly1305"},
    "hash": {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"},
    "prf": {"prfsha256": "prfsha256", "prfsha384": "prfsha384", "prfsha512": "prfsha512"},
    "dh": {"modp2048": "14", "modp3072": "15", "modp4096": "16", "modp6144": "17", "modp8192": "18",
           "ecp256": "19", "ecp384": "20", "ecp521": "21", "curve25519": "31", "curve448": "32"},
    "esn": {"noesn": None},
}

ST0_UNIT_MAX = 16384
JUNOS_DPD_INTERVAL = (2, 60)
JUNOS_DPD_THRESHOLD = 3
VYOS_DPD_INTERVAL = (2, 86400)
VYOS_MAXIMUM_PATHS = 256
# Characters a pre-shared key may not hold in each platform's quoted form: Junos reads "..." with backslash
# escapes, VyOS's set command takes '...' and writes the secret into swanctl.conf as "..." (no escape there).
_SECRET_REFUSED = {"junos": '"\\', "vyos": "'\"\\", "generic": ""}


class ExternalConfigError(ValueError):
    """The peer's configuration cannot be rendered; the message names the peer, the value and why."""


class _Peer(object):
    def __init__(self, name):
        self.name = name

    def error(self, where, message):
        return ExternalConfigError("%s[%s]%s: %s" % (VARIABLE, self.name, "." + where if where else "", message))


# ------------------------------------------------------------------ values, checked
def _checked(peer, function, value, where):
    try:
        return function(value, where)
    except conf_text.ConfTextError as exc:
        raise peer.error(where, "%s: %s" % (conf_text._shown(value), exc.reason))  # pylint: disable=protected-access


def _name(peer, value, where):
    return _checked(peer, conf_text.name, value, where)


def _token(peer, value, where):
    return _checked(peer, conf_text.token, value, where)


def _line(peer, value, where):
    return _checked(peer, conf_text.line, value, where)


def _int(peer, value, where, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise peer.error(where, "%s is not an integer %d..%d" % (conf_text._shown(value), low, high))  # pylint: disable=protected-access
    return value


def _address(peer, value, where):
    try:
        if not isinstance(value, str) or "/" in value or "%" in value:
            raise ValueError
        return ipaddress.ip_address(value)
    except ValueError:
        raise peer.error(where, "%s is not an IP address" % conf_text._shown(value))  # pylint: disable=protected-access


def _interface(peer, value, where):
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        return ipaddress.ip_interface(value)
    except ValueError:
        raise peer.error(where, "%s is not an address with a prefix length" % conf_text._shown(value))  # pylint: disable=protected-access


def _network(peer, value, where):
    try:
        if not isinstance(value, str):
            raise ValueError
        return ipaddress.ip_network(value)
    except ValueError:
        raise peer.error(where, "%s is not a network" % conf_text._shown(value))  # pylint: disable=protected-access


def _identity(peer, value, where):
    """(kind, text): an IKE identity a pre-shared key can prove, 'ip' (with its address), 'dns' or 'email'."""
    kind = ike_id_kind(value) if isinstance(value, str) else None
    if kind not in ("ip", "dns", "email"):
        raise peer.error(where, "%s is not a DNS name, user@DNS name or IP address (an identity a pre-shared key "
                         "proves)" % conf_text._shown(value))  # pylint: disable=protected-access
    return kind, _token(peer, value, where)


def _secret(peer, psks, link, platform):
    """The link's pre-shared key when it can be written in ``platform``'s quoted form; never shown in a message."""
    where = "tunnels (link %s)" % link
    secret = psks.get(link) if isinstance(psks, dict) else None
    if not isinstance(secret, str) or not secret:
        raise peer.error(where, "no pre-shared key was given for link %s" % link)
    refused = _SECRET_REFUSED[platform]
    for position, char in enumerate(secret):
        if not " " <= char <= "~":
            raise peer.error(where, "the pre-shared key of link %s has a character at position %d that is not "
                             "printable ASCII (a line break or a control character would end the line); set "
                             "another one (it is not shown here)" % (link, position))
        if char in refused:
            raise peer.error(where, "the pre-shared key of link %s has a %r at position %d, which %s cannot hold in "
                             "a quoted value; set another one (it is not shown here)"
                             % (link, char, position, platform))
    if platform == "vyos" and secret[:2].lower() in ("0x", "0s"):
        raise peer.error(where, "the pre-shared key of link %s starts with %r: VyOS writes it into swanctl.conf, "
                         "where strongSwan reads a 0x or 0s secret as hex or base64 and would use other bytes "
                         "than the Linux end; set another one (it is not shown here)" % (link, secret[:2]))
    return secret


# ------------------------------------------------------------------ proposals
class _Proposal(object):
    """One strongSwan proposal, one algorithm of each kind."""

    def __init__(self, text):
        self.text = text
        self.encryption = None
        self.aead = False
        self.integrity = None
        self.prf = None
        self.dh = None
        self.esn = None


def _proposals(peer, values, protocol):
    """The parsed proposals of ``values`` (the record's ike_proposals or esp_proposals)."""
    where = "%s_proposals" % protocol
    if not isinstance(values, list) or not values:
        raise peer.error(where, "%s is not a list of proposals" % conf_text._shown(values))  # pylint: disable=protected-access
    parsed = []
    for value in values:
        for text in _token(peer, value, where).split(","):
            parsed.append(_proposal(peer, text, protocol, where))
    return parsed


def _proposal(peer, text, protocol, where):
    proposal = _Proposal(text)
    for word in text.split("-"):
        keyword = _ALIASES.get(word.lower(), word.lower())
        kind = _KEYWORDS.get(keyword)
        if kind is None:
            raise peer.error(where, "%r in proposal %r is not an algorithm this renderer knows (%s)"
                             % (word, text, ", ".join(sorted(_KEYWORDS))))
        attribute = {"encr": "encryption", "aead": "encryption", "integ": "integrity"}.get(kind, kind)
        if getattr(proposal, attribute) is not None:
            raise peer.error(where, "proposal %r has two %s algorithms; write one proposal per combination, joined "
                             "by ',' (aes256gcm16-prfsha384-ecp384,aes256gcm16-prfsha256-ecp256)"
                             % (text, attribute))
        setattr(proposal, attribute, keyword)
        proposal.aead = proposal.aead or kind == "aead"
    if proposal.encryption is None:
        raise peer.error(where, "proposal %r has no encryption algorithm" % text)
    if proposal.aead:
        proposal.integrity = None  # strongSwan drops it from an AEAD proposal
    elif proposal.integrity is None:
        raise peer.error(where, "proposal %r has a classic cipher and no integrity algorithm" % text)
    if protocol == "ike":
        if proposal.prf is None:
            if proposal.aead:
                raise peer.error(where, "proposal %r has an AEAD cipher and no PRF (strongSwan refuses it; add "
                                 "one, e.g. prfsha384)" % text)
            proposal.prf = _PRF_OF_INTEGRITY[proposal.integrity]
        if proposal.dh is None:
            raise peer.error(where, "proposal %r has no key exchange (DH group), which IKE needs" % text)
        if proposal.esn is not None:
            raise peer.error(where, "proposal %r names %s, which is for ESP" % (text, proposal.esn))
    elif proposal.prf is not None:
        raise peer.error(where, "proposal %r names a PRF, which is for IKE" % text)
    return proposal


def _pfs_group(peer, esp):
    """The key exchange of the ESP proposals (PFS), one for all of them, or None."""
    groups = set(proposal.dh for proposal in esp)
    if len(groups) > 1:
        listed = ", ".join(proposal.text for proposal in esp)
        raise peer.error("esp_proposals", "the proposals %s use different PFS groups (%s); Junos and VyOS set one "
                         "group for all ESP proposals" % (listed, ", ".join(sorted(str(g) for g in groups))))
    return groups.pop()


def _mapped(peer, table, keyword, where, platform, proposal, what):
    if keyword not in table:
        raise peer.error(where, "%s %r of proposal %r has no %s name in routevpn.mesh's table (%s); use one of: %s"
                         % (what, keyword, proposal.text, platform, _TABLE_SOURCES[platform],
                            ", ".join(sorted(table))))
    return table[keyword]


_TABLE_SOURCES = {"junos": "external_config.JUNOS", "vyos": "external_config.VYOS"}


# ------------------------------------------------------------------ the record
class _Link(object):
    """One end of the record, checked: everything a renderer writes for one tunnel."""


def _links(peer, record, psks, platform):
    gateway_id = _int(peer, record.get("gateway_id"), "gateway_id", 1, 65535)
    ends = record.get("ends")
    if not isinstance(ends, list) or not ends:
        raise peer.error("gateways", "the plan gives this peer no link (no managed gateway of another site)")
    links = []
    for end in ends:
        if not isinstance(end, dict):
            raise peer.error("ends", "%s is not an end of a link" % conf_text._shown(end))  # pylint: disable=protected-access
        link = _Link()
        link.name = _name(peer, end.get("link"), "ends.link")
        ids = re.match(r"^([0-9]+)-([0-9]+)$", link.name)
        if not ids or gateway_id not in (int(ids.group(1)), int(ids.group(2))):
            raise peer.error("ends.link", "link %s is not a link of gateway id %d" % (link.name, gateway_id))
        other = [int(i) for i in ids.groups() if int(i) != gateway_id]
        link.gateway_id = other[0] if other else gateway_id
        where = "ends[%s]" % link.name
        link.gateway = _token(peer, end.get("peer"), where + ".peer")
        link.site = _name(peer, end.get("peer_site"), where + ".peer_site")
        if end.get("auth", "psk") != "psk":
            raise peer.error(where, "link %s authenticates with %s; a peer the collection does not manage is "
                             "rendered with pre-shared keys only" % (link.name, conf_text._shown(end.get("auth"))))  # pylint: disable=protected-access
        link.local_asn = _int(peer, end.get("local_asn"), where + ".local_asn", 1, 4294967295)
        link.peer_asn = _int(peer, end.get("peer_asn"), where + ".peer_asn", 1, 4294967295)
        link.local_ike = _address(peer, end.get("local_ike_address"), where + ".local_ike_address")
        link.remote_ike = _address(peer, end.get("remote_ike_address"), where + ".remote_ike_address")
        if link.local_ike.version != link.remote_ike.version:
            raise peer.error(where, "IKE addresses %s and %s are of different families"
                             % (link.local_ike, link.remote_ike))
        link.local_id = _identity(peer, end.get("local_id"), where + ".local_id")
        link.remote_id = _identity(peer, end.get("remote_id"), where + ".remote_id")
        link.inside = {}
        for family in ("v4", "v6"):
            mine, theirs = end.get("address_" + family), end.get("peer_address_" + family)
            if mine is None and theirs is None:
                continue
            interface = _interface(peer, mine, "%s.address_%s" % (where, family))
            other_address = _address(peer, theirs, "%s.peer_address_%s" % (where, family))
            if interface.version != int(family[1]) or other_address not in interface.network \
                    or other_address == interface.ip:
                raise peer.error(where, "address_%s %s and peer_address_%s %s are not the two ends of one IPv%s "
                                 "network" % (family, interface, family, other_address, family[1]))
            link.inside[family] = (interface, other_address)
        if not link.inside:
            raise peer.error(where, "link %s has no inside address (no transfer pool and none given)" % link.name)
        link.sessions = []
        for session in end.get("bgp_sessions") or []:
            family = session.get("family") if isinstance(session, dict) else None
            if family not in link.inside:
                raise peer.error(where + ".bgp_sessions", "%s is not a BGP session over one of the link's inside "
                                 "networks" % conf_text._shown(session))  # pylint: disable=protected-access
            local = _address(peer, session.get("local_address"), where + ".bgp_sessions.local_address")
            neighbor = _address(peer, session.get("neighbor_address"), where + ".bgp_sessions.neighbor_address")
            if (local, neighbor) != (link.inside[family][0].ip, link.inside[family][1]):
                raise peer.error(where + ".bgp_sessions", "session %s-%s is not between the link's inside "
                                 "addresses" % (local, neighbor))
            link.sessions.append((family, local, neighbor))
        link.children = []
        for child in end.get("children") or []:
            selectors = child.get("traffic_selectors") if isinstance(child, dict) else None
            if not isinstance(selectors, list) or not selectors:
                raise peer.error(where + ".children", "%s has no traffic selectors" % conf_text._shown(child))  # pylint: disable=protected-access
            link.children.append((_name(peer, child.get("name"), where + ".children.name"),
                                  [str(_network(peer, s, where + ".children.traffic_selectors")) for s in selectors]))
        link.if_id = end.get("if_id")
        link.timers = dict((key, _int(peer, end.get(key), "%s.%s" % (where, key), low, high))
                           for key, low, high, _what in _TIMERS)
        link.bfd = end.get("bfd")
        if not isinstance(link.bfd, bool):
            raise peer.error(where + ".bfd", "%s is not true or false" % conf_text._shown(link.bfd))  # pylint: disable=protected-access
        link.psk_given = bool(end.get("psk_given"))
        link.psk = _secret(peer, psks, link.name, platform)
        links.append(link)
    seen = set()
    for link in links:
        if link.gateway_id in seen:
            raise peer.error("ends", "two links with gateway id %d" % link.gateway_id)
        seen.add(link.gateway_id)
    return sorted(links, key=lambda link: link.gateway_id)


class _Context(object):
    """The record, checked, and what the renderers share."""

    def __init__(self, record, name, psks, platform, sites, transfer_pools):
        peer = self.peer = _Peer(name)
        if not isinstance(record, dict):
            raise peer.error(None, "the plan has no record of this peer")
        self.name = _line(peer, name, "name")
        self.platform = platform
        self.site = _name(peer, record.get("site"), "site")
        self.asn = _int(peer, record.get("asn"), "asn", 1, 4294967295)
        self.router_id = _address(peer, record.get("router_id"), "router_id")
        if self.router_id.version != 4:
            raise peer.error("router_id", "%s is not an IPv4 address" % self.router_id)
        self.ike = _proposals(peer, record.get("ike_proposals"), "ike")
        self.esp = _proposals(peer, record.get("esp_proposals"), "esp")
        self.pfs = _pfs_group(peer, self.esp)
        self.dpd = _int(peer, record.get("dpd_delay"), "dpd_delay", 1, 3600)
        self.own = dict((family, [_network(peer, p, "prefixes_" + family) for p in record.get("prefixes_" + family)
                                  or []]) for family in ("v4", "v6"))
        self.links = _links(peer, record, psks, platform)
        self.bfd = any(link.bfd for link in self.links)
        self.sites = {}
        for site_name in sorted(set(link.site for link in self.links)):
            spec = (sites or {}).get(site_name)
            if spec is None:
                self.sites[site_name] = None  # unknown prefixes: routes are taken by origin AS alone
                continue
            self.sites[site_name] = dict(
                (family, [_network(peer, p, "sites.%s.prefixes_%s" % (site_name, family))
                          for p in spec.get("prefixes_" + family) or []]) for family in ("v4", "v6"))
        self.site_asns = dict((link.site, link.peer_asn) for link in self.links)
        self.pools = [_network(peer, pool, "transfer_pools") for pool in transfer_pools or () if pool]
        # Never taken from nor sent to the mesh: default routes, transfer pools, the links' inside networks.
        self.never = {"v4": [ipaddress.ip_network("0.0.0.0/0")], "v6": [ipaddress.ip_network("::/0")]}
        for network in self.pools + [link.inside[f][0].network for link in self.links for f in link.inside]:
            family = "v%d" % network.version
            if not any(network.subnet_of(known) for known in self.never[family][1:]):
                self.never[family].append(network)

    def shared(self, key, links=None):
        """A timer ``key`` the platform holds once for several links (a Junos proposal, a VyOS group): every one
        of ``links`` (default: all) must run it alike, or the peer cannot be given one value."""
        links = self.links if links is None else links
        values = dict((link.gateway, link.bfd if key == "bfd" else link.timers[key]) for link in links)
        if len(set(values.values())) > 1:
            what = dict((k, w) for k, _low, _high, w in _TIMERS).get(key, key)
            raise self.peer.error("ends", "%s differs between the Linux gateways it peers with (%s), and %s holds "
                                  "one for all of them: set it alike on those gateways"
                                  % (what, ", ".join("%s %s" % item for item in sorted(values.items())),
                                     self.platform))
        return list(values.values())[0]


# ------------------------------------------------------------------ junos
def _junos_lines(nodes, depth=0):
    lines = []
    indent = "    " * depth
    for node in nodes:
        if isinstance(node, str):
            lines.append(indent + (node if node.startswith("#") else node + ";"))
            continue
        name, children = node
        lines.append("%s%s {" % (indent, name))
        lines.extend(_junos_lines(children, depth + 1))
        lines.append(indent + "}")
    return lines


def _junos_identity(identity):
    kind, text = identity
    if kind == "ip":
        return "%s %s" % ("inet" if ipaddress.ip_address(text).version == 4 else "inet6", text)
    if kind == "email":
        return 'user-at-hostname "%s"' % text
    return "hostname %s" % text


def _junos_proposals(ctx):
    peer, ike, esp = ctx.peer, [], []
    for number, proposal in enumerate(ctx.ike, 1):
        where = "ike_proposals"
        statements = ["authentication-method pre-shared-keys",
                      "dh-group " + _mapped(peer, JUNOS["dh"], proposal.dh, where, "junos", proposal, "key exchange"),
                      "encryption-algorithm " + _mapped(peer, JUNOS["ike_encryption"], proposal.encryption, where,
                                                        "junos", proposal, "encryption")]
        if not proposal.aead:
            statements.insert(0, "authentication-algorithm " + _mapped(
                peer, JUNOS["ike_integrity"], proposal.integrity, where, "junos", proposal, "integrity"))
        implied = JUNOS["ike_prf"][proposal.integrity or proposal.encryption]
        if proposal.prf != implied:
            raise peer.error(where, "proposal %r: Junos derives the PRF from the cipher or the authentication "
                             "algorithm (%s here) and cannot take %s beside it" % (proposal.text, implied,
                                                                                   proposal.prf))
        statements.append("lifetime-seconds %d" % ctx.shared("ike_lifetime"))
        ike.append(("proposal routevpn-ike-%d" % number, statements))
    for number, proposal in enumerate(ctx.esp, 1):
        where = "esp_proposals"
        statements = ["protocol esp"]
        if not proposal.aead:
            statements.append("authentication-algorithm " + _mapped(
                peer, JUNOS["esp_integrity"], proposal.integrity, where, "junos", proposal, "integrity"))
        statements.append("encryption-algorithm " + _mapped(peer, JUNOS["esp_encryption"], proposal.encryption,
                                                            where, "junos", proposal, "encryption"))
        if proposal.esn is not None:
            _mapped(peer, JUNOS["esn"], proposal.esn, where, "junos", proposal, "sequence number option")
        statements.append("lifetime-seconds %d" % ctx.shared("child_lifetime"))
        esp.append(("proposal routevpn-esp-%d" % number, statements))
    pfs = None
    if ctx.pfs is not None:
        pfs = _mapped(peer, JUNOS["dh"], ctx.pfs, "esp_proposals", "junos", ctx.esp[0], "key exchange (PFS)")
    return ike, esp, pfs


def _junos_route_filters(networks):
    return ["route-filter %s %s" % (network, "exact" if network.prefixlen == 0 else "orlonger")
            for network in networks]


def _junos_policies(ctx):
    """policy-options: the export policy (this site's prefixes), one import policy per site, ECMP."""
    own = ctx.own
    never = dict((family, ctx.never[family] + own[family]) for family in ("v4", "v6"))
    export = [("term no-transit", ["from protocol bgp", "then reject"])]
    for family in ("v4", "v6"):
        export.append(("term never-" + family, [("from", _junos_route_filters(ctx.never[family])), "then reject"]))
    if own["v4"] or own["v6"]:
        for family in ("v4", "v6"):
            if own[family]:
                export.append(("term site-" + family, [("from", _junos_route_filters(own[family])), "then accept"]))
        export.append("then reject")
    else:
        export.append("# site %s lists no prefixes (routevpn_sites): every route of the private side is "
                      "announced, as BIRD does" % ctx.site)
        export.append("then accept")
    nodes = []
    for site, asn in sorted(ctx.site_asns.items()):
        nodes.append('as-path routevpn-origin-%s ".* %d"' % (site, asn))
    nodes.append(("policy-statement routevpn-to-mesh", export))
    for site, asn in sorted(ctx.site_asns.items()):
        terms = []
        for family in ("v4", "v6"):
            terms.append(("term never-" + family, [("from", _junos_route_filters(never[family])), "then reject"]))
        prefixes = ctx.sites.get(site)
        if prefixes is None or not (prefixes["v4"] or prefixes["v6"]):
            terms.append(("term site", [("from", ["as-path routevpn-origin-%s" % site]), "then accept"]))
        else:
            for family in ("v4", "v6"):
                if prefixes[family]:
                    terms.append(("term site-" + family, [("from", ["as-path routevpn-origin-%s" % site]
                                                           + _junos_route_filters(prefixes[family])),
                                                          "then accept"]))
        terms.append("then reject")
        nodes.append(("policy-statement routevpn-from-%s" % site, terms))
    nodes.append(("policy-statement routevpn-ecmp", [("then", ["load-balance per-packet"])]))
    return nodes


def _render_junos(ctx):
    peer = ctx.peer
    low, high = JUNOS_DPD_INTERVAL
    if not low <= ctx.dpd <= high:
        raise peer.error("dpd_delay", "%d s: Junos's dead-peer-detection interval is %d to %d s" % (ctx.dpd, low,
                                                                                                    high))
    for link in ctx.links:
        if link.gateway_id > ST0_UNIT_MAX:
            raise peer.error("ends[%s]" % link.name, "the st0 unit of link %s is the Linux gateway's id %d (%s), "
                             "above Junos's last logical unit %d; give that gateway a routevpn_gateway_id of at "
                             "most %d to link it with a Junos peer" % (link.name, link.gateway_id, link.gateway,
                                                                       ST0_UNIT_MAX, ST0_UNIT_MAX))
    ike_proposals, esp_proposals, pfs = _junos_proposals(ctx)
    units, policies, gateways, vpns, instance_interfaces = [], [], [], [], []
    for link in ctx.links:
        unit = "st0.%d" % link.gateway_id
        families = []
        for family, junos_family in (("v4", "inet"), ("v6", "inet6")):
            if family in link.inside:
                families.append(("family " + junos_family, ["address %s" % link.inside[family][0].with_prefixlen]))
        units.append(("unit %d" % link.gateway_id,
                      ["description \"routevpn.mesh link %s to %s\"" % (link.name, link.gateway)] + families))
        policies.append(("policy routevpn-%s" % link.name,
                         ["proposals [ %s ]" % " ".join(header.split()[1] for header, _body in ike_proposals),
                          'pre-shared-key ascii-text "%s"' % link.psk]))
        gateways.append(("gateway routevpn-%s" % link.name, [
            "ike-policy routevpn-%s" % link.name,
            "address %s" % link.remote_ike,
            "local-address %s" % link.local_ike,
            "local-identity " + _junos_identity(link.local_id),
            "remote-identity " + _junos_identity(link.remote_id),
            ("dead-peer-detection", ["always-send", "interval %d" % ctx.dpd,
                                     "threshold %d" % JUNOS_DPD_THRESHOLD]),
            "# external-interface: set it to the interface holding %s, e.g." % link.local_ike,
            "#   set security ike gateway routevpn-%s external-interface ge-0/0/0.0" % link.name,
            "version v2-only",
        ]))
        vpn = ["bind-interface " + unit,
               ("ike", ["gateway routevpn-%s" % link.name, "ipsec-policy routevpn-ipsec"]),
               "establish-tunnels on-traffic"]
        if len(link.children) > 1:
            vpn.insert(0, "# %s runs libreswan: one CHILD_SA per family (%s) on the link's IKE SA, both bound to "
                       "%s without traffic selectors; check both with show security ipsec security-associations"
                       % (link.gateway, ", ".join(child for child, _selectors in link.children), unit))
        vpns.append(("vpn routevpn-%s" % link.name, vpn))
        instance_interfaces.append("interface " + unit)
    ipsec_policy = ["proposals [ %s ]" % " ".join(header.split()[1] for header, _body in esp_proposals)]
    if pfs:
        ipsec_policy.insert(0, "perfect-forward-secrecy keys " + pfs)

    groups = []
    for family, junos_family in (("v6", "inet6"), ("v4", "inet")):
        neighbors, grouped = [], []
        for link in ctx.links:
            for session_family, _local, neighbor in link.sessions:
                if session_family != family:
                    continue
                grouped.append(link)
                statements = ["description \"link %s, %s\"" % (link.name, link.gateway), "peer-as %d" % link.peer_asn,
                              "import routevpn-from-%s" % link.site]
                neighbors.append(("neighbor %s" % neighbor, statements))
        if not neighbors:
            continue
        group = ["type external", ("family " + junos_family, ["unicast"]), "local-as %d" % ctx.asn,
                 "hold-time %d" % ctx.shared("bgp_hold_time", grouped), "multipath", "export routevpn-to-mesh"]
        if ctx.shared("bfd", grouped):
            group.append(("bfd-liveness-detection", [
                "minimum-interval %d" % ctx.shared("bfd_interval_ms", grouped),
                "multiplier %d" % ctx.shared("bfd_multiplier", grouped)]))
        groups.append(("group routevpn-" + family, group + neighbors))

    config = [
        ("interfaces", [("st0", units)]),
        ("policy-options", _junos_policies(ctx)),
        ("routing-instances", [("private", [
            "instance-type virtual-router",
        ] + instance_interfaces + [
            ("routing-options", ["router-id %s" % ctx.router_id]),
            ("protocols", [("bgp", ["log-updown"] + groups)]),
        ])]),
        # Junos has no forwarding-table export in a routing instance: the main instance's applies to all of them.
        ("routing-options", [("forwarding-table", ["export routevpn-ecmp"])]),
        ("security", [
            ("ike", ike_proposals + policies + gateways),
            ("ipsec", esp_proposals + [("policy routevpn-ipsec", ipsec_policy)] + vpns),
        ]),
    ]
    return _header(ctx, "#", [
        "Load it with: load merge <this file>, set each gateway's external-interface (below), then commit check.",
        "Security zones and policies are yours: put the st0 units (%s) in the zone of the private side, with"
        % ", ".join("st0.%d" % link.gateway_id for link in ctx.links),
        "host-inbound-traffic protocols bgp%s; the external interface's zone needs system-services ike."
        % (" and bfd" if ctx.bfd else ""),
        "The Linux gateways start and re-key every tunnel; establish-tunnels on-traffic (the default) keeps this",
        "side from starting a second IKE SA at commit; it starts one only when traffic meets no SA.",
        "st0 unit N is the Linux gateway's routevpn_gateway_id N: units stay when links come and go.",
    ]) + "\n".join(_junos_lines(config)) + "\n"


# ------------------------------------------------------------------ vyos
def _vyos_value(peer, value, where):
    text = _line(peer, value, where)
    if "'" in text:
        raise peer.error(where, "%s has a ' that a VyOS set command cannot quote" % conf_text._shown(value))  # pylint: disable=protected-access
    return "'%s'" % text


def _render_vyos(ctx):
    peer = ctx.peer
    low, high = VYOS_DPD_INTERVAL
    if not low <= ctx.dpd <= high:
        raise peer.error("dpd_delay", "%d s: VyOS's dead-peer-detection interval is %d to %d s" % (ctx.dpd, low,
                                                                                                   high))
    lines = []

    def put(path, value=None, where=None):
        lines.append("set %s%s" % (path, "" if value is None else " " + _vyos_value(peer, value, where or path)))

    lines.append("# IPsec: one IKE and one ESP group for every link")
    put("vpn ipsec options disable-route-autoinstall")
    ike = "vpn ipsec ike-group ROUTEVPN-IKE"
    put(ike + " key-exchange", "ikev2")
    put(ike + " lifetime", ctx.shared("ike_lifetime"))
    put(ike + " disable-mobike")
    put(ike + " close-action", "none")
    put(ike + " dead-peer-detection action", "clear")
    put(ike + " dead-peer-detection interval", ctx.dpd)
    for number, proposal in enumerate(ctx.ike, 1):
        where = "ike_proposals"
        path = "%s proposal %d" % (ike, number)
        put(path + " encryption", _mapped(peer, VYOS["encryption"], proposal.encryption, where, "vyos", proposal,
                                          "encryption"))
        # VyOS writes a proposal only with a hash; strongSwan drops it beside an AEAD cipher.
        hash_ = proposal.integrity or proposal.prf[len("prf"):]
        put(path + " hash", _mapped(peer, VYOS["hash"], hash_, where, "vyos", proposal, "integrity"))
        put(path + " prf", _mapped(peer, VYOS["prf"], proposal.prf, where, "vyos", proposal, "PRF"))
        put(path + " dh-group", _mapped(peer, VYOS["dh"], proposal.dh, where, "vyos", proposal, "key exchange"))
    esp = "vpn ipsec esp-group ROUTEVPN-ESP"
    put(esp + " lifetime", ctx.shared("child_lifetime"))
    put(esp + " mode", "tunnel")
    put(esp + " pfs", "disable" if ctx.pfs is None else "dh-group" + _mapped(
        peer, VYOS["dh"], ctx.pfs, "esp_proposals", "vyos", ctx.esp[0], "key exchange (PFS)"))
    for number, proposal in enumerate(ctx.esp, 1):
        where = "esp_proposals"
        path = "%s proposal %d" % (esp, number)
        put(path + " encryption", _mapped(peer, VYOS["encryption"], proposal.encryption, where, "vyos", proposal,
                                          "encryption"))
        put(path + " hash", _mapped(peer, VYOS["hash"], proposal.integrity or "sha256", where, "vyos", proposal,
                                    "integrity"))
        if proposal.esn is not None:
            _mapped(peer, VYOS["esn"], proposal.esn, where, "vyos", proposal, "sequence number option")

    for link in ctx.links:
        vti = "vti%d" % link.gateway_id
        name = "routevpn-%s" % link.name
        lines.append("")
        lines.append("# Link %s to %s (%s, AS %d)" % (link.name, link.gateway, link.site, link.peer_asn))
        for family in ("v4", "v6"):
            if family in link.inside:
                put("interfaces vti %s address" % vti, link.inside[family][0].with_prefixlen)
        put("interfaces vti %s description" % vti, "routevpn.mesh link %s to %s" % (link.name, link.gateway))
        put("vpn ipsec authentication psk %s id" % name, link.local_id[1])
        put("vpn ipsec authentication psk %s id" % name, link.remote_id[1])
        put("vpn ipsec authentication psk %s secret" % name, link.psk, "the pre-shared key of link " + link.name)
        s2s = "vpn ipsec site-to-site peer " + name
        put(s2s + " authentication mode", "pre-shared-secret")
        put(s2s + " authentication local-id", link.local_id[1])
        put(s2s + " authentication remote-id", link.remote_id[1])
        # The Linux gateway starts the link: none only loads it (respond would install a trap).
        put(s2s + " connection-type", "none")
        put(s2s + " ike-group", "ROUTEVPN-IKE")
        put(s2s + " local-address", str(link.local_ike))
        put(s2s + " remote-address", str(link.remote_ike))
        put(s2s + " vti bind", vti)
        put(s2s + " vti esp-group", "ROUTEVPN-ESP")

    lines.append("")
    lines.append("# BGP: this site's prefixes to the mesh, each other site's own routes from it")
    _vyos_policies(ctx, put, lines)
    put("protocols bgp system-as", ctx.asn)
    put("protocols bgp parameters router-id", str(ctx.router_id))
    for family, afi in (("v4", "ipv4-unicast"), ("v6", "ipv6-unicast")):
        for network in ctx.own[family]:
            put("protocols bgp address-family %s network %s" % (afi, network))
        if any(s[0] == family for link in ctx.links for s in link.sessions):
            put("protocols bgp address-family %s maximum-paths ebgp" % afi,
                min(VYOS_MAXIMUM_PATHS, max(1, len(ctx.links))))
    for link in ctx.links:
        for family, _local, neighbor in link.sessions:
            afi = "ipv4-unicast" if family == "v4" else "ipv6-unicast"
            path = "protocols bgp neighbor %s" % neighbor
            put(path + " description", "routevpn.mesh link %s, %s" % (link.name, link.gateway))
            put(path + " remote-as", link.peer_asn)
            put(path + " timers holdtime", link.timers["bgp_hold_time"])
            put(path + " timers keepalive", link.timers["bgp_keepalive_time"])
            put(path + " address-family %s route-map import" % afi, "ROUTEVPN-FROM-%s" % link.site)
            put(path + " address-family %s route-map export" % afi, "ROUTEVPN-TO-MESH")
            if link.bfd:
                put(path + " bfd")
                put("protocols bfd peer %s interval transmit" % neighbor, link.timers["bfd_interval_ms"])
                put("protocols bfd peer %s interval receive" % neighbor, link.timers["bfd_interval_ms"])
                put("protocols bfd peer %s interval multiplier" % neighbor, link.timers["bfd_multiplier"])
    return _header(ctx, "#", [
        "Paste it into configure mode (VyOS 1.4), then commit and save.",
        "The Linux gateways start and re-key every tunnel: connection-type none only loads each peer here.",
        "vtiN is the Linux gateway's routevpn_gateway_id N: interfaces stay when links come and go.",
    ]) + "\n".join(lines) + "\n"


def _vyos_prefix_list(put, name, family, networks):
    kind = "prefix-list" if family == "v4" else "prefix-list6"
    top = 32 if family == "v4" else 128
    for number, network in enumerate(networks, 1):
        rule = "policy %s %s rule %d" % (kind, name, number * 10)
        put(rule + " action", "permit")
        put(rule + " prefix", str(network))
        if 0 < network.prefixlen < top:
            put(rule + " le", top)


def _vyos_policies(ctx, put, lines):
    for family in ("v4", "v6"):
        _vyos_prefix_list(put, "ROUTEVPN-NEVER-" + family.upper(), family, ctx.never[family] + ctx.own[family])
        if ctx.own[family]:
            _vyos_prefix_list(put, "ROUTEVPN-OWN-" + family.upper(), family, ctx.own[family])
    export = "policy route-map ROUTEVPN-TO-MESH"
    number = 10
    for family in ("v4", "v6"):
        if ctx.own[family]:
            put("%s rule %d action" % (export, number), "permit")
            put("%s rule %d match %s address prefix-list" % (export, number, "ip" if family == "v4" else "ipv6"),
                "ROUTEVPN-OWN-" + family.upper())
            number += 10
    if not (ctx.own["v4"] or ctx.own["v6"]):
        lines.append("# site %s lists no prefixes (routevpn_sites): nothing is announced (VyOS announces its "
                     "network statements only)" % ctx.site)
    put("%s rule 1000 action" % export, "deny")
    for site, asn in sorted(ctx.site_asns.items()):
        origin = "ROUTEVPN-ORIGIN-%s" % site
        put("policy as-path-list %s rule 10 action" % origin, "permit")
        put("policy as-path-list %s rule 10 regex" % origin, "_%d$" % asn)
        route_map = "policy route-map ROUTEVPN-FROM-%s" % site
        put(route_map + " rule 10 action", "deny")
        put(route_map + " rule 10 match ip address prefix-list", "ROUTEVPN-NEVER-V4")
        put(route_map + " rule 20 action", "deny")
        put(route_map + " rule 20 match ipv6 address prefix-list", "ROUTEVPN-NEVER-V6")
        prefixes = ctx.sites.get(site)
        if prefixes is None or not (prefixes["v4"] or prefixes["v6"]):
            put(route_map + " rule 100 action", "permit")
            put(route_map + " rule 100 match as-path", origin)
            continue
        for number, family in ((100, "v4"), (110, "v6")):
            if not prefixes[family]:
                continue
            name = "ROUTEVPN-SITE-%s-%s" % (site, family.upper())
            _vyos_prefix_list(put, name, family, prefixes[family])
            put("%s rule %d action" % (route_map, number), "permit")
            put("%s rule %d match as-path" % (route_map, number), origin)
            put("%s rule %d match %s address prefix-list" % (route_map, number, "ip" if family == "v4" else "ipv6"),
                name)


# ------------------------------------------------------------------ generic
def _describe(proposal):
    keywords = (proposal.encryption, proposal.integrity, proposal.prf, proposal.dh, proposal.esn)
    return ", ".join(_IANA[keyword] for keyword in keywords if keyword)


def _identity_text(identity):
    kind, text = identity
    return "%s (%s)" % (text, {"ip": "IP address", "dns": "FQDN", "email": "user FQDN (RFC 822)"}[kind])


def _render_generic(ctx):
    rows = []

    def row(label, value):
        rows.append("  %-26s %s" % (label + ":", _line(ctx.peer, value, label)))

    received = []
    for site, asn in sorted(ctx.site_asns.items()):
        prefixes = ctx.sites.get(site) or {"v4": [], "v6": []}
        listed = ", ".join(str(p) for p in prefixes["v4"] + prefixes["v6"])
        received.append("%s (AS %d): %s" % (site, asn, listed or "any route originated in AS %d" % asn))
    sections = []
    for link in ctx.links:
        rows = []
        row("Linux gateway", "%s (%s, AS %d)" % (link.gateway, link.site, link.peer_asn))
        row("IKE version", "2 (IKEv2 only)")
        row("Local IKE address", str(link.local_ike))
        row("Remote IKE address", str(link.remote_ike))
        row("Local identity", _identity_text(link.local_id))
        row("Remote identity", _identity_text(link.remote_id))
        row("Authentication", "pre-shared key" + (" (given in routevpn_external_peers)" if link.psk_given else ""))
        row("Pre-shared key", link.psk)
        row("Initiator", "%s starts and re-keys the tunnel; this side responds" % link.gateway)
        for proposal in ctx.ike:
            row("IKE proposal", "%s = %s" % (proposal.text, _describe(proposal)))
        for proposal in ctx.esp:
            row("ESP proposal", "%s = %s" % (proposal.text, _describe(proposal)))
        row("PFS group", _IANA[ctx.pfs] if ctx.pfs else "none")
        row("IKE SA lifetime", "%d s (the Linux end re-keys)" % link.timers["ike_lifetime"])
        row("CHILD SA lifetime", "%d s (the Linux end re-keys)" % link.timers["child_lifetime"])
        row("Dead peer detection", "every %d s" % ctx.dpd)
        for name, selectors in link.children:
            row("CHILD SA %s" % name, "traffic selectors %s both ways (route-based: the tunnel interface "
                "carries everything routed into it)" % ", ".join(selectors))
        for family in ("v4", "v6"):
            if family in link.inside:
                mine, theirs = link.inside[family]
                row("Inside IPv%s, this side" % family[1], mine.with_prefixlen)
                row("Inside IPv%s, Linux side" % family[1], "%s/%d" % (theirs, mine.network.prefixlen))
        row("BGP", "local AS %d, neighbor AS %d, hold time %d s, keepalive %d s" % (
            ctx.asn, link.peer_asn, link.timers["bgp_hold_time"], link.timers["bgp_keepalive_time"]))
        for family, local, neighbor in link.sessions:
            row("BGP session IPv%s" % family[1], "from %s to neighbor %s" % (local, neighbor))
        row("BFD", "yes (%d ms, multiplier %d)" % (link.timers["bfd_interval_ms"], link.timers["bfd_multiplier"])
            if link.bfd else "no")
        sections.append("[tunnel %s: %s <-> %s]\n%s" % (link.name, ctx.name, link.gateway, "\n".join(rows)))
    rows = []
    own = ctx.own["v4"] + ctx.own["v6"]
    row("Router id", str(ctx.router_id))
    row("May announce", ", ".join(str(p) for p in own) if own else "site %s lists no prefixes" % ctx.site)
    for text in received:
        row("Will receive", text)
    row("Never", "a default route, a transfer or inside network, a route learned from another tunnel (no transit)")
    sections.append("[routing: %s, %s, AS %d]\n%s" % (ctx.name, ctx.site, ctx.asn, "\n".join(rows)))
    return _header(ctx, "#", [
        "Every value the other side needs, one section per tunnel, then the routing.",
    ]) + "\n\n".join(sections) + "\n"


# ------------------------------------------------------------------ entry point
def _header(ctx, comment, notes):
    lines = ["Generated by routevpn.mesh for %s (%s, site %s, AS %d): its side of %d link(s)." % (
        ctx.name, ctx.platform, ctx.site, ctx.asn, len(ctx.links)),
        "It holds the links' pre-shared keys: keep it private, and regenerate it rather than edit it."] + notes
    return "".join("%s %s\n" % (comment, _line(ctx.peer, line, "header")) for line in lines) + "\n"


_RENDERERS = {"junos": _render_junos, "vyos": _render_vyos, "generic": _render_generic}


def render(record, name, psks, platform=None, sites=None, transfer_pools=None):
    """The configuration text of external peer ``name`` from its plan record.

    ``psks`` maps each link's name to its pre-shared key (plan.link_psk);
    ``platform`` overrides the record's (to render a generic sheet of a Junos
    peer, say); ``sites`` is the plan's ``sites`` (the prefixes each other
    site may announce: without it, routes are taken by origin AS alone);
    ``transfer_pools`` the plan's pools (never accepted as routes).  Raises
    ExternalConfigError naming the peer, the value and why.
    """
    peer = _Peer(name)
    chosen = platform if platform is not None else (record.get("platform") if isinstance(record, dict) else None)
    if chosen not in PLATFORMS:
        raise peer.error("platform", "%s is not one of %s" % (conf_text._shown(chosen), ", ".join(PLATFORMS)))  # pylint: disable=protected-access
    return _RENDERERS[chosen](_Context(record, name, psks, chosen, sites, transfer_pools))


def file_name(name, platform):
    """The file of peer ``name`` in routevpn_external_peers_dir: NAME.junos.conf, NAME.vyos.conf or NAME.txt."""
    text = "%s.%s" % (name, FILE_SUFFIXES.get(platform, ""))
    if platform not in FILE_SUFFIXES or not isinstance(name, str) or not FILE_NAME.match(text):
        raise _Peer(name).error(None, "no file name for platform %s (a peer's name is a host name: letters, digits, "
                                "'.', '_' and '-')" % conf_text._shown(platform))  # pylint: disable=protected-access
    return text
