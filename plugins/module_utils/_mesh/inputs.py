# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory boundary: every ``routevpn_*`` input, what it may hold, and why.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python (no Ansible imports, no I/O).

``RULES`` is the one table of the collection's inputs: the planner checks
every gateway's ``routevpn_*`` variables against it before it plans, so that
nothing a role turns into a file, a name, a number or a command argument
reaches a gateway unchecked; docs/plan.md's rule table is generated from it
(``scripts/plan-rules``).  A value is either accepted (and normalised: digit
strings become ints, boolean words become bools) or refused with a message
that says what is allowed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import ipaddress
import json
import re

IFNAMSIZ = 15
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with its NUL
ASN_MAX = 4294967295
GATEWAY_ID_MAX = 65535
IF_ID_MAX = 0xFFFFFFFF
PSK_MIN_LENGTH = 16

# Scopes: who must agree on a value.
GATEWAY = "gateway"  # each gateway its own
MESH = "mesh"  # the same on every gateway (group_vars)
SITE = "site"  # the same on the gateways of one site (they share its LAN)
LINK = "link"  # the same on both ends of every link
OUTPUT = "output"  # set by the collection; never read as input


class Untemplatable(object):
    """Stands for a variable whose value could not be templated (an undefined vault variable, bad Jinja)."""

    def __init__(self, message):
        self.message = message

    def __repr__(self):
        return "<could not be templated>"


class InputError(ValueError):
    """A value the rule refuses; the message says what is allowed."""


_ASCII_DIGITS = re.compile(r"^[0-9]+$")
_BOOLEAN_WORDS = {
    "yes": True, "on": True, "true": True, "y": True, "t": True, "1": True,
    "no": False, "off": False, "false": False, "n": False, "f": False, "0": False,
}


def shown(value, limit=60):
    """A value as a message shows it: repr (so a newline stays visible as \\n), shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def type_name(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    if value is None:
        return "null"
    return "a %s" % type(value).__name__


def as_int(value, low, high, what="a number"):
    """An int, or an INI inventory's string of ASCII digits, within [low, high]."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.match(value.strip()):
        number = int(value.strip())
    if number is None:
        raise InputError("%s is %s, not %s %d..%d" % (shown(value), type_name(value), what, low, high))
    if not low <= number <= high:
        raise InputError("%d is not %s %d..%d" % (number, what, low, high))
    return number


def as_text(value, what="a string"):
    if not isinstance(value, str):
        raise InputError("%s is %s, not %s" % (shown(value), type_name(value), what))
    return value


# ---------------------------------------------------------------- checkers
# A checker takes a value and returns it normalised, or raises InputError.


class Checker(object):
    allowed = ""

    def __call__(self, value):
        raise NotImplementedError


class Choice(Checker):
    def __init__(self, *options):
        self.options = options
        self.allowed = " | ".join(options)

    def __call__(self, value):
        if value not in self.options or not isinstance(value, str):
            raise InputError("%s is not one of %s" % (shown(value), ", ".join(self.options)))
        return value


class Boolean(Checker):
    allowed = "true | false (yes/no, on/off accepted)"

    def __call__(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[value.strip().lower()]
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InputError("%s is not a boolean (true or false)" % shown(value))


class Integer(Checker):
    def __init__(self, low, high, unit="", extra=None):
        self.low, self.high, self.extra = low, high, extra
        self.allowed = "integer %d..%d%s" % (low, high, (" " + unit) if unit else "")

    def __call__(self, value):
        number = as_int(value, self.low, self.high)
        if self.extra:
            self.extra(number)
        return number


class OptionalInteger(Integer):
    def __init__(self, low, high, unit=""):
        super(OptionalInteger, self).__init__(low, high, unit)
        self.allowed = "null, or " + self.allowed

    def __call__(self, value):
        return None if value is None or value == "" else super(OptionalInteger, self).__call__(value)


class Pattern(Checker):
    """A string of a fixed shape: the shape is the documented rule."""

    def __init__(self, regex, allowed, empty=False, max_length=255):
        self.regex = re.compile(regex)
        self.allowed = allowed + (", or empty" if empty else "")
        self.empty, self.max_length = empty, max_length

    def __call__(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # a bare YAML number where a word is wanted (a duration of 10)
        text = as_text(value)
        if text == "" and self.empty:
            return text
        if len(text) > self.max_length or not self.regex.match(text):
            raise InputError("%s is not %s" % (shown(text), self.allowed))
        return text


class Path(Pattern):
    """An absolute path of safe characters, no '..' component (a socket: at most 107 bytes)."""

    def __init__(self, empty=False, home=False, socket=False):
        start = "[/~]" if home else "/"
        super(Path, self).__init__(
            r"^%s[A-Za-z0-9._/@+-]*$" % start,
            "an absolute path of letters, digits and . _ / @ + -%s%s" % (
                " (~ for the controller user's home)" if home else "",
                ", at most %d bytes (a unix socket)" % UNIX_PATH_MAX if socket else ""),
            empty=empty, max_length=UNIX_PATH_MAX if socket else 4095)

    def __call__(self, value):
        text = super(Path, self).__call__(value)
        if "/../" in text + "/" or "/./" in text + "/":
            raise InputError("%s has a '.' or '..' component; give the path itself" % shown(text))
        return text


class ListOf(Checker):
    def __init__(self, item, min_length=0, max_length=None, unique=True):
        self.item, self.min_length, self.max_length, self.unique = item, min_length, max_length, unique
        bounds = ""
        if max_length is not None and min_length == max_length:
            bounds = "exactly %d " % min_length
        elif min_length:
            bounds = "at least %d " % min_length
        self.allowed = "a list of %s%s" % (bounds, item.allowed)

    def __call__(self, value):
        if not isinstance(value, list):
            raise InputError("%s is %s, not a list" % (shown(value), type_name(value)))
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            raise InputError("has %d item(s); it must be %s" % (len(value), self.allowed))
        items = []
        for position, item in enumerate(value):
            try:
                items.append(self.item(item))
            except InputError as exc:
                raise InputError("item %d: %s" % (position + 1, exc))
        if self.unique:
            seen = set()
            for item in items:
                key = repr(item)
                if key in seen:
                    raise InputError("%s is listed twice" % shown(item))
                seen.add(key)
        return items


class Anything(Checker):
    def __init__(self, allowed):
        self.allowed = allowed

    def __call__(self, value):
        return value


class Special(Checker):
    """Checked by the planner itself (plan.py), with the other gateways in view."""

    def __init__(self, allowed):
        self.allowed = allowed

    def __call__(self, value):
        return value


class _ErrorWait(ListOf):
    def __call__(self, value):
        values = super(_ErrorWait, self).__call__(value)
        if values[0] > values[1]:
            raise InputError("the minimum %d is above the maximum %d" % tuple(values))
        return values


def _hold_time(number):
    if 0 < number < 3:
        raise InputError("%d: a BGP hold time is 0 (no keepalives) or at least 3 s (RFC 4271, 4.2)" % number)


# ---------------------------------------------------------------- shapes
# Names that reach configuration files, file names and command lines unquoted.
SITE_NAME = Pattern(r"^[A-Za-z][A-Za-z0-9_-]*$",
                    "a name of letters, digits, _ and -, starting with a letter, at most 32 characters",
                    max_length=32)
HOST_NAME_RULE = ("letters, digits, '.', '_' and '-', starting with a letter or digit, no '..', at most 63 "
                  "characters (it names the gateway's files on the controller and is its default IKE identity)")
_HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class _GatewayName(Checker):
    """An inventory host name as a gateway may have it (host_name_problem)."""

    allowed = "gateway inventory names (letters, digits, '.', '_' and '-')"

    def __call__(self, value):
        problem = host_name_problem(value)
        if problem:
            raise InputError(problem)
        return value


NETNS_NAME = Pattern(r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
                     "a name of letters, digits, _ and - (it names /run/netns/NAME, units and sockets), "
                     "at most 32 characters", max_length=32)
INTERFACE_PREFIX = Pattern(r"^[A-Za-z][A-Za-z0-9_-]*$",
                           "a prefix of letters, digits, _ and -, starting with a letter, at most 10 characters "
                           "(prefix + peer id <= %d, the kernel's IFNAMSIZ)" % IFNAMSIZ, max_length=10)
INTERFACE_NAME_RULE = ("1..%d characters of letters, digits, '.', '_' and '-', not '.' or '..' (the kernel refuses "
                       "'/', ':' and blanks; IFNAMSIZ)" % IFNAMSIZ)
_INTERFACE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,%d}$" % IFNAMSIZ)
DECIMAL = Pattern(r"^[0-9]{1,6}([.][0-9]{1,3})?$", "a decimal number (2.0)", max_length=10)
DURATION = Pattern(r"^[0-9]{1,9}[smhd]?$", "a duration: a number with an optional unit s, m, h or d (10s, 4h)")
STRONGSWAN_PROPOSALS = Pattern(
    r"^[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*(,[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*)*$",
    "a strongSwan proposal list: algorithm words joined by '-', proposals by ',' (aes256gcm16-prfsha384-ecp384)")
LIBRESWAN_PROPOSALS = Pattern(
    r"^[A-Za-z0-9_;+-]+(,[A-Za-z0-9_;+-]+)*$",
    "a libreswan proposal list: letters, digits, _ ; + -, proposals joined by ',' (aes_gcm256-sha2_384;dh20)")
DEBIAN_PACKAGE = Pattern(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$",
                         "a Debian package name, optionally =version (bird2, bird2=2.0.12-7)")
POSIX_NAME = Pattern(r"^[a-z_][a-z0-9_-]*$", "a user or group name: lower-case letters, digits, _ and -, "
                     "at most 32 characters", max_length=32)
SYSTEMD_SERVICE = Pattern(r"^[A-Za-z0-9_.@-]+[.]service$", "a systemd service name (ipsec.service)", max_length=255)
PLUGIN_NAME = Pattern(r"^[a-z0-9][a-z0-9-]*$", "a charon plugin name (connmark)", max_length=64)
PKI_TIME = Pattern(r"^([+-]([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?|[0-9]{14}Z|always|forever)$",
                   "a community.crypto time: +/-[w][d][h][m][s] relative (+825d) or ASN.1 YYYYMMDDHHMMSSZ")
ONE_LINE = Pattern(r"^[\x20-\x7e]*$", "one line of printable ASCII", max_length=64)
BIRD_LOG = Pattern(r'^(syslog|stderr|"[A-Za-z0-9._/-]+")( name "[A-Za-z0-9._-]+")?'
                   r'( all| [{] *[a-z]+( *, *[a-z]+)* *[}])?$',
                   'a BIRD log target and classes: syslog|stderr|"FILE" [name "NAME"] [all|{ class, ... }]')
_BIRD_EXTRA = Pattern(r"^[\x09\x0a\x20-\x7e]*$", "text of printable ASCII (tabs and newlines allowed)",
                      empty=True, max_length=1 << 20)


# ---------------------------------------------------------------- the table
class Rule(object):
    def __init__(self, name, check, scope=GATEWAY, default=None, why="", roles=("plan",), secret=False):
        self.name, self.check, self.scope, self.default = name, check, scope, default
        self.why, self.roles, self.secret = why, roles, secret

    @property
    def allowed(self):
        return self.check.allowed


def _rules(*rules):
    return dict((rule.name, rule) for rule in rules)


_B, _P, _S, _T, _N = ("bird",), ("private_netns",), ("strongswan",), ("tunnels",), ("libreswan",)
_ALL_ROLES = ("private_netns", "tunnels", "strongswan", "libreswan", "bird")

RULES = _rules(
    # The planner's own inputs (plan.py checks them with the other gateways in view).
    Rule("routevpn_site", Special("the name of a site of routevpn_sites"), why="which site the gateway serves"),
    Rule("routevpn_gateway_id", Special("integer 1..%d, unique" % GATEWAY_ID_MAX),
         why="every number of a link derives from its two ids (docs/plan.md)"),
    Rule("routevpn_public_address", Special(
        "an IPv4 or IPv6 unicast address, or a list of at most one per family; not unspecified, loopback, "
        "multicast, link-local, reserved, IPv4-mapped, nor inside a transfer pool; unique"),
        why="the IKE endpoint; the peers send IKE and ESP to it"),
    Rule("routevpn_sites", Special(
        "a dict: site name -> {asn, prefixes}; asn 1..%d except the reserved ones; prefixes: networks that "
        "overlap no other prefix, transfer pool or default route" % ASN_MAX), scope=MESH,
        why="each site's AS and the private prefixes it may announce", roles=("plan", "bird")),
    Rule("routevpn_transfer_prefix_v6", Special("an IPv6 network that holds every link's /127, or unset"),
         scope=MESH, why="BGP transfer addresses of the links", roles=("plan", "bird")),
    Rule("routevpn_transfer_prefix_v4", Special("an IPv4 network that holds every link's /31, or unset"),
         scope=MESH, why="BGP transfer addresses of the links", roles=("plan", "bird")),
    Rule("routevpn_external_peers", Special(
        "a list of peers the collection does not manage: {name, platform (junos, vyos, generic), gateway_id, site, "
        "public_address, and optional ike_id, gateways, tunnels (per managed gateway: psk, inside_v4/_v6 and "
        "peer_inside_v4/_v6), ike_proposals, esp_proposals, dpd_delay, bfd} (docs/plan.md)"), scope=MESH,
        default=[], secret=True, why="links to gateways Ansible never connects to, and their rendered side"),
    # Checked against the gateways the planner is given (plan.py): a partial inventory would plan, and the roles
    # remove, every link to the gateways it lacks (docs/awx.md).
    Rule("routevpn_expected_gateways", ListOf(_GatewayName(), min_length=1), scope=MESH,
         why="every gateway of routevpn_gateways, in any order: planning stops when the run's group lacks one (an AWX "
         "job slice, an inventory source that returned part of the fleet) or holds another, before the roles remove "
         "links; required in a job an AWX workflow launched (every slice is); elsewhere, unset: not checked"),
    Rule("routevpn_if_id_base", Integer(1, IF_ID_MAX), scope=MESH, default=4096,
         why="first XFRM if_id / VTI mark of the mesh; link index added"),
    Rule("routevpn_tunnel_type", Choice("xfrm", "vti"), default="xfrm", why="the tunnel device of this gateway"),
    Rule("routevpn_ike_daemon", Choice("strongswan", "libreswan"), default="strongswan",
         why="the IKE daemon of this gateway"),
    Rule("routevpn_auth", Choice("psk", "pubkey"), scope=LINK, default="psk",
         why="each end's configuration names one method for both sides"),
    Rule("routevpn_ike_id", Special(
        "a DNS name (letters, digits, . _ -), user@DNS name, an IP address, or (pubkey, strongSwan only) an X.500 "
        "DN of attr=value parts; unique; default: the inventory host name"),
        why="the IKE identity, written into both ends' swanctl/ipsec.conf and secrets"),
    Rule("routevpn_router_id", Special("an IPv4 address other than 0.0.0.0, unique; default: 0.0.0.<gateway id>"),
         why="BGP identifier (RFC 6286: non-zero, unique between peers)"),
    Rule("routevpn_reserved_if_ids", ListOf(Integer(1, IF_ID_MAX)), default=[],
         why="if_ids used by something else on this gateway; the plan must not allocate them"),
    Rule("routevpn_interface_prefix", INTERFACE_PREFIX, default="rv-", roles=("plan", "tunnels"),
         why="tunnel interfaces are PREFIX<peer id>; the tunnels role deletes unplanned ones with this prefix"),
    Rule("routevpn_private_interfaces", Special(
        "a list of interface names (%s) or {name, addresses: [address/length, ...]} dicts; no name starting "
        "with routevpn_interface_prefix" % INTERFACE_NAME_RULE), default=[], roles=("plan",) + _P + _B,
        why="LAN interfaces moved into the private namespace"),
    Rule("routevpn_psk_master", Special("a string of at least %d characters (never printed)" % PSK_MIN_LENGTH),
         scope=MESH, secret=True, roles=("plan",) + _S + _N,
         why="per-link PSKs derive from it; required when a gateway uses psk"),
    Rule("routevpn_psk_overrides", Special("a dict: link name ('11-21') -> secret of at least %d characters"
                                           % PSK_MIN_LENGTH), scope=MESH, default={}, secret=True,
         roles=("plan",) + _S + _N, why="an explicit PSK for a link"),
    # Role settings that both ends, or a site's gateways, must agree on.
    Rule("routevpn_bfd", Boolean(), scope=LINK, default=True, roles=_B,
         why="BFD on a link runs only when both ends speak it"),
    Rule("routevpn_bfd_interval_ms", Integer(10, 60000, "ms"), scope=LINK, default=300, roles=_B,
         why="both ends detect a lost peer in the same time"),
    Rule("routevpn_bfd_multiplier", Integer(1, 255), scope=LINK, default=3, roles=_B,
         why="both ends detect a lost peer in the same time"),
    Rule("routevpn_bird_ospf_area", Integer(0, 4294967295), scope=SITE, default=0, roles=_B,
         why="a site's OSPF gateways and routers share one area"),
    Rule("routevpn_bird_ospf_hello", Integer(1, 65535, "s"), scope=SITE, default=1, roles=_B,
         why="OSPF neighbours must use the same hello interval"),
    Rule("routevpn_bird_ospf_dead", Integer(2, 65535, "s"), scope=SITE, default=4, roles=_B,
         why="OSPF neighbours must use the same dead interval (above hello)"),
    Rule("routevpn_bird_ospf_tag", Integer(0, 4294967295), scope=SITE, default=29302, roles=_B,
         why="sibling gateways recognise each other's routes by it"),
    Rule("routevpn_bird_private_protocol", Choice("ospf", "none"), default="ospf", roles=_B,
         why="how the site's private routes reach BIRD"),
    # Role settings of one gateway.
    Rule("routevpn_private_netns", NETNS_NAME, default="private", roles=_P + _T + _B,
         why="/run/netns/NAME, unit instance names, BIRD's socket and config file names"),
    Rule("routevpn_private_forwarding", Boolean(), default=True, roles=_P, why="sysctl in the namespace"),
    Rule("routevpn_private_keep_addr_on_down", Boolean(), default=True, roles=_P, why="sysctl in the namespace"),
    Rule("routevpn_private_netns_boot_unit", Boolean(), default=True, roles=_P, why="boot unit on/off"),
    Rule("routevpn_private_netns_boot_wait", Integer(0, 3600, "s"), default=30, roles=_P,
         why="written into the boot unit's state file"),
    Rule("routevpn_private_netns_config_dir", Path(), default="/etc/routevpn/netns", roles=_P,
         why="a path on the gateway"),
    Rule("routevpn_libexec_dir", Path(), default="/usr/local/libexec/routevpn", roles=_P + _T + _N,
         why="a path on the gateway, run by systemd units"),
    Rule("routevpn_service_manager", Choice("auto", "systemd", "direct"), default="auto", roles=_ALL_ROLES,
         why="how daemons and boot units are run"),
    Rule("routevpn_tunnel_mtu", Integer(1280, 65535), default=1500, roles=_T,
         why="IPv6 needs at least 1280 on every link"),
    Rule("routevpn_tcp_mss_clamp", Boolean(), default=False, roles=_T, why="nftables rule on/off"),
    Rule("routevpn_tcp_mss", OptionalInteger(536, 65495), roles=_T, why="written into an nftables rule"),
    Rule("routevpn_tunnels_packages", ListOf(DEBIAN_PACKAGE), default=["nftables"], roles=_T,
         why="apt arguments"),
    Rule("routevpn_tunnels_boot_unit", Boolean(), default=True, roles=_T, why="boot unit on/off"),
    Rule("routevpn_tunnels_config_dir", Path(), default="/etc/routevpn/tunnels", roles=_T,
         why="a path on the gateway"),
    Rule("routevpn_tunnels_boot_python", Path(), default="/usr/bin/python3", roles=_T,
         why="a path on the gateway, run by a systemd unit"),
    Rule("routevpn_strongswan_packages", ListOf(DEBIAN_PACKAGE),
         default=["charon-systemd", "strongswan-swanctl", "libstrongswan-standard-plugins"], roles=_S,
         why="apt arguments"),
    Rule("routevpn_strongswan_proposals", STRONGSWAN_PROPOSALS, default="aes256gcm16-prfsha384-ecp384",
         roles=_S, why="written into swanctl.conf"),
    Rule("routevpn_strongswan_esp_proposals", STRONGSWAN_PROPOSALS, default="aes256gcm16-ecp384", roles=_S,
         why="written into swanctl.conf"),
    Rule("routevpn_strongswan_initiator", Choice("lower", "both"), default="lower", roles=("plan", "strongswan"),
         why="which end of a link initiates (the plan's starts)"),
    Rule("routevpn_strongswan_dpd_delay", DURATION, default="5s", roles=_S, why="written into swanctl.conf"),
    Rule("routevpn_strongswan_retransmit_tries", Integer(0, 100), default=2, roles=_S,
         why="written into strongswan.conf"),
    Rule("routevpn_strongswan_retransmit_timeout", DECIMAL, default="4.0", roles=_S,
         why="written into strongswan.conf"),
    Rule("routevpn_strongswan_retransmit_base", DECIMAL, default="1.8", roles=_S, why="written into strongswan.conf"),
    Rule("routevpn_strongswan_keyingtries", Integer(0, 65535), default=0, roles=_S, why="written into swanctl.conf"),
    Rule("routevpn_strongswan_reauth_timeout", Integer(1, 3600, "s"), default=60, roles=_S,
         why="how long a run waits for a re-authenticated link"),
    Rule("routevpn_strongswan_ike_rekey_time", DURATION, default="4h", roles=_S, why="written into swanctl.conf"),
    Rule("routevpn_strongswan_child_rekey_time", DURATION, default="1h", roles=_S, why="written into swanctl.conf"),
    Rule("routevpn_strongswan_disabled_plugins", ListOf(PLUGIN_NAME), default=["connmark", "bypass-lan"],
         roles=_S, why="section names in strongswan.conf"),
    Rule("routevpn_strongswan_swanctl_plugins", ListOf(PLUGIN_NAME, min_length=1),
         default=["aesni", "aes", "rc2", "sha2", "sha1", "md5", "mgf1", "random", "nonce", "x509", "revocation",
                  "constraints", "pubkey", "pkcs1", "pkcs7", "pkcs12", "pgp", "dnskey", "sshkey", "pem", "openssl",
                  "pkcs8", "fips-prf", "gmp", "agent", "xcbc", "hmac", "kdf", "gcm", "drbg"],
         roles=_S, why="plugin names in strongswan.conf"),
    Rule("routevpn_strongswan_service", SYSTEMD_SERVICE, default="strongswan.service", roles=_S,
         why="a systemd unit name"),
    Rule("routevpn_strongswan_swanctl_dir", Path(), default="/etc/swanctl", roles=_S, why="a path on the gateway"),
    Rule("routevpn_strongswan_conf_dir", Path(), default="/etc/strongswan.d", roles=_S, why="a path on the gateway"),
    Rule("routevpn_strongswan_conf_file", Path(), default="/etc/strongswan.conf", roles=_S,
         why="a path on the gateway"),
    Rule("routevpn_strongswan_vici_socket", Path(socket=True), default="/run/charon.vici", roles=_S,
         why="charon's control socket, written into strongswan.conf"),
    Rule("routevpn_strongswan_pid_file", Path(), default="/run/routevpn-charon.pid", roles=_S,
         why="a path on the gateway"),
    Rule("routevpn_strongswan_log_file", Path(empty=True), default="", roles=_S,
         why="written into strongswan.conf"),
    Rule("routevpn_libreswan_packages", ListOf(DEBIAN_PACKAGE), default=["libreswan", "libnss3-tools", "openssl"],
         roles=_N, why="apt arguments"),
    Rule("routevpn_libreswan_ike", LIBRESWAN_PROPOSALS, default="aes_gcm256-sha2_384;dh20", roles=_N,
         why="written into ipsec.conf"),
    Rule("routevpn_libreswan_esp", LIBRESWAN_PROPOSALS, default="aes_gcm256;dh20", roles=_N,
         why="written into ipsec.conf"),
    Rule("routevpn_libreswan_initiator", Choice("lower", "both"), default="lower", roles=("plan", "libreswan"),
         why="which end of a link initiates (the plan's starts)"),
    Rule("routevpn_libreswan_dpd_delay", DURATION, default="5s", roles=_N, why="written into ipsec.conf"),
    Rule("routevpn_libreswan_retransmit_timeout", DURATION, default="25s", roles=_N, why="written into ipsec.conf"),
    Rule("routevpn_libreswan_reauth_timeout", Integer(1, 3600, "s"), default=60, roles=_N,
         why="how long a run waits for a link started again"),
    Rule("routevpn_libreswan_keyingtries", Integer(0, 65535), default=0, roles=_N, why="written into ipsec.conf"),
    Rule("routevpn_libreswan_ike_lifetime", DURATION, default="4h", roles=_N, why="written into ipsec.conf"),
    Rule("routevpn_libreswan_ipsec_lifetime", DURATION, default="1h", roles=_N, why="written into ipsec.conf"),
    Rule("routevpn_libreswan_service", SYSTEMD_SERVICE, default="ipsec.service", roles=_N,
         why="a systemd unit name"),
    Rule("routevpn_libreswan_charon_paths", ListOf(Path()),
         default=["/usr/sbin/charon-systemd", "/usr/lib/ipsec/charon"], roles=_N, why="paths on the gateway"),
    Rule("routevpn_libreswan_ipsec", Path(), default="/usr/sbin/ipsec", roles=_N, why="a command on the gateway"),
    Rule("routevpn_libreswan_conf_file", Path(), default="/etc/ipsec.conf", roles=_N, why="a path on the gateway"),
    Rule("routevpn_libreswan_conf_dir", Path(), default="/etc/ipsec.d", roles=_N, why="a path on the gateway"),
    Rule("routevpn_libreswan_run_dir", Path(socket=True), default="/run/pluto", roles=_N,
         why="holds pluto's control socket"),
    Rule("routevpn_libreswan_nss_dir", Path(), default="/var/lib/ipsec/nss", roles=_N, why="a path on the gateway"),
    Rule("routevpn_libreswan_log_file", Path(empty=True), default="", roles=_N, why="a pluto argument"),
    Rule("routevpn_bird_packages", ListOf(DEBIAN_PACKAGE), default=["bird2"], roles=_B, why="apt arguments"),
    Rule("routevpn_bird_hold_time", Integer(0, 65535, "s", extra=_hold_time), default=6, roles=_B,
         why="written into bird.conf"),
    Rule("routevpn_bird_keepalive_time", Integer(1, 65535, "s"), default=2, roles=_B,
         why="written into bird.conf; below the hold time"),
    Rule("routevpn_bird_connect_retry_time", Integer(1, 65535, "s"), default=5, roles=_B,
         why="written into bird.conf"),
    Rule("routevpn_bird_error_wait_time", _ErrorWait(Integer(1, 65535), 2, 2, unique=False), default=[1, 10],
         roles=_B, why="written into bird.conf (minimum, maximum)"),
    Rule("routevpn_bird_announce_static", Boolean(), roles=_B, why="static protocol on/off"),
    Rule("routevpn_bird_extra_config", _BIRD_EXTRA, default="", roles=_B,
         why="appended to bird.conf on purpose, as written; `bird -p` checks it before it is used"),
    Rule("routevpn_bird_log", BIRD_LOG, default="syslog all", roles=_B, why="written into bird.conf"),
    Rule("routevpn_bird_config_dir", Path(), default="/etc/bird", roles=_B, why="a path on the gateway"),
    Rule("routevpn_bird_config", Path(), roles=_B, why="a path on the gateway"),
    Rule("routevpn_bird_run_dir", Path(socket=True), default="/run/routevpn-bird", roles=_B,
         why="holds BIRD's control socket"),
    Rule("routevpn_bird_control_socket", Path(socket=True), roles=_B, why="BIRD's control socket"),
    Rule("routevpn_bird_pid_file", Path(), roles=_B, why="a path on the gateway"),
    Rule("routevpn_bird_user", POSIX_NAME, default="bird", roles=_B, why="a bird -u argument"),
    Rule("routevpn_bird_group", POSIX_NAME, default="bird", roles=_B, why="a bird -g argument"),
    Rule("routevpn_systemd_unit_dir", Path(), default="/etc/systemd/system", roles=_P + _T + _B + _S,
         why="a path on the gateway"),
    # The controller's certificate authority (role pki); files are checked by the role, on the controller.
    Rule("routevpn_pki_own_ca", Boolean(), scope=MESH, default=False, roles=("pki",),
         why="one CA issues every gateway's certificate"),
    Rule("routevpn_pki_dir", Path(home=True), scope=MESH, default="~/.routevpn-mesh/pki", roles=("pki",),
         why="the CA's directory on the controller"),
    # playbooks/mesh.yml writes each external peer's configuration there (plugins/filter/mesh.py).
    Rule("routevpn_external_peers_dir", Path(home=True), scope=MESH, default="~/.routevpn-mesh/external-peers",
         roles=("mesh.yml",), why="the rendered configurations of routevpn_external_peers on the controller "
         "(mode 0700, files 0600: they hold pre-shared keys)"),
    Rule("routevpn_pki_ca_common_name", ONE_LINE, scope=MESH, default="routevpn.mesh CA", roles=("pki",),
         why="the CA certificate's subject (X.520: at most 64 characters)"),
    Rule("routevpn_pki_ca_not_after", PKI_TIME, scope=MESH, default="+3650d", roles=("pki",), why="CA validity"),
    Rule("routevpn_pki_certificate_not_after", PKI_TIME, scope=MESH, default="+825d", roles=("pki",),
         why="gateway certificate validity"),
    Rule("routevpn_pki_renew_before", PKI_TIME, scope=MESH, default="+30d", roles=("pki",),
         why="when a gateway certificate is issued again"),
    Rule("routevpn_pki_certificate", Path(home=True), roles=("pki",) + _S + _N,
         why="the gateway's certificate on the controller (routevpn_pki_own_ca false)"),
    Rule("routevpn_pki_private_key", Path(home=True), roles=("pki",) + _S + _N,
         why="the gateway's private key on the controller (routevpn_pki_own_ca false)"),
    Rule("routevpn_pki_ca_certificate", Path(home=True), roles=("pki",) + _S + _N,
         why="the mesh's CA certificate on the controller (routevpn_pki_own_ca false)"),
    # playbooks/verify.yml
    Rule("routevpn_verify_require_prefixes", Boolean(), default=True, roles=("verify",),
         why="verify fails when a site's prefixes are missing"),
    Rule("routevpn_verify_report", Path(home=True), scope=MESH, roles=("verify",),
         why="verify writes its health report there, on the controller (JSON, mode 0644, docs/health.md); "
         "unset: no report"),
    Rule("routevpn_verify_svg", Path(home=True), scope=MESH, roles=("verify",),
         why="verify draws its health report there, on the controller (SVG, mode 0644, docs/health.md); "
         "unset: no picture"),
    # Set by the collection itself (facts); accepted, never read as input by the planner.
    Rule("routevpn_mesh_plan", Anything("the plan (set by playbooks/mesh.yml)"), scope=OUTPUT,
         roles=_ALL_ROLES + ("pki",), why="a plan given to a role run alone"),
    Rule("routevpn_mesh_health", Anything("set by playbooks/verify.yml"), scope=OUTPUT, roles=("verify",)),
    Rule("routevpn_mesh_health_problems", Anything("set by playbooks/verify.yml"), scope=OUTPUT, roles=("verify",)),
    Rule("routevpn_mesh_health_read_at", Anything("set by playbooks/verify.yml"), scope=OUTPUT, roles=("verify",)),
    Rule("routevpn_verify_targets", Anything("set by playbooks/verify.yml"), scope=OUTPUT, roles=("verify",)),
    Rule("routevpn_xfrm_policies", Anything("set by xfrm_policy_facts"), scope=OUTPUT, roles=("xfrm_policy_facts",)),
    Rule("routevpn_xfrm_states", Anything("set by xfrm_policy_facts"), scope=OUTPUT, roles=("xfrm_policy_facts",)),
)


def suggestion(name):
    """The known variable nearest to a misspelled one, or None."""
    prefix = "routevpn_"
    tail = name[len(prefix):] if name.startswith(prefix) else name
    tails = dict((known[len(prefix):], known) for known in RULES)
    close = difflib.get_close_matches(tail, list(tails), n=1, cutoff=0.75)
    return tails[close[0]] if close else None


def host_name_problem(name):
    """Why an inventory host name cannot name a gateway, or None."""
    if not isinstance(name, str) or not _HOST_NAME_RE.match(name) or ".." in name:
        return "%s is not usable as a gateway name: use %s" % (shown(name), HOST_NAME_RULE)
    return None


def interface_name_problem(name):
    if not isinstance(name, str) or not _INTERFACE_NAME_RE.match(name) or name in (".", ".."):
        return "%s is not an interface name: %s" % (shown(name), INTERFACE_NAME_RULE)
    return None


# ---------------------------------------------------------------- addresses and numbers
_IPV4_SPECIAL = (
    (ipaddress.ip_network("0.0.0.0/8"), "in 0.0.0.0/8, 'this network' (RFC 1122)"),
    (ipaddress.ip_network("255.255.255.255/32"), "the limited broadcast address"),
)
_IPV6_SPECIAL = (
    (ipaddress.ip_network("::ffff:0:0/96"), "an IPv4-mapped address; write the IPv4 address itself"),
)


def endpoint_problem(address):
    """Why an address cannot be an IKE endpoint across the internet or a private WAN, or None."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address (valid on one segment only)"
    for network, why in _IPV4_SPECIAL if address.version == 4 else _IPV6_SPECIAL:
        if address in network:
            return why
    if address.is_reserved:
        return "in a reserved range (%s)" % ("240.0.0.0/4" if address.version == 4 else "IANA reserved")
    return None


def network_problem(network):
    """Why a network cannot be a site prefix or transfer pool, or None."""
    if network.prefixlen == 0:
        return "a default route, which would send every destination into the mesh"
    if network.is_multicast:
        return "a multicast range"
    if network.is_loopback:
        return "a loopback range"
    if network.is_unspecified:
        return "the unspecified address"
    return None


# RFC-reserved AS numbers that BGP must not use as a site's AS.
_RESERVED_ASNS = (
    (0, 0, "AS 0 is reserved (RFC 7607)"),
    (23456, 23456, "AS 23456 is AS_TRANS (RFC 6793)"),
    (64496, 64511, "AS 64496-64511 are for documentation (RFC 5398)"),
    (65535, 65535, "AS 65535 is reserved (RFC 7300)"),
    (65536, 65551, "AS 65536-65551 are for documentation (RFC 5398)"),
    (65552, 131071, "AS 65552-131071 are reserved by IANA (RFC 6996's registry)"),
    (4294967295, 4294967295, "AS 4294967295 is reserved (RFC 7300)"),
)


def asn_problem(asn):
    for low, high, why in _RESERVED_ASNS:
        if low <= asn <= high:
            return why
    return None


_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)%s(\.%s)*$" % (_LABEL, _LABEL))
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._+-]{1,64}@(?=.{1,253}$)%s(\.%s)*$" % (_LABEL, _LABEL))
_DN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[A-Za-z0-9 ._@+-]+(, ?[A-Za-z][A-Za-z0-9]*=[A-Za-z0-9 ._@+-]+)*$")


def ike_id_kind(text):
    """'dns', 'email', 'ip' or 'dn' for an acceptable IKE identity; None otherwise."""
    try:
        ipaddress.ip_address(text)
        return "ip"
    except ValueError:
        pass
    if _DNS_NAME_RE.match(text):
        return "dns"
    if _EMAIL_RE.match(text):
        return "email"
    if len(text) <= 255 and _DN_RE.match(text) and not text.endswith(" "):
        return "dn"
    return None


_SCOPE_TEXT = {
    GATEWAY: "per gateway",
    MESH: "mesh-wide: equal on every gateway",
    SITE: "equal on a site's gateways",
    LINK: "equal on both ends of a link",
    OUTPUT: "set by the collection",
}


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def rule_table_markdown():
    """docs/plan.md's table of every input, from RULES (scripts/plan-rules writes it there)."""
    lines = ["| variable | scope | allowed | default | why | read by |", "|---|---|---|---|---|---|"]
    for name in sorted(RULES):
        rule = RULES[name]
        default = "" if rule.default is None else "`%s`" % (
            rule.default if isinstance(rule.default, str) else json.dumps(rule.default))
        lines.append("| `%s` | %s | %s | %s | %s | %s |" % (
            name, _SCOPE_TEXT[rule.scope], _cell(rule.allowed), _cell(default), _cell(rule.why),
            ", ".join(rule.roles)))
    return "\n".join(lines) + "\n"
