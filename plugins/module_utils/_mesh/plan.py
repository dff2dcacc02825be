# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh plan: inventory in, every link of the mesh out.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  It is pure Python (no Ansible imports, no I/O) so that
the planner can be tested in milliseconds and reused by filters, lookups and
benchmarks alike.  docs/plan.md describes the allocation rules, the output and
the rule table of every input (inputs.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import (
    GATEWAY_ID_MAX,
    IF_ID_MAX,
    IFNAMSIZ,
    LINK,
    MESH,
    OUTPUT,
    PSK_MIN_LENGTH,
    RULES,
    SITE,
    SITE_NAME,
    InputError,
    Special,
    Untemplatable,
    as_int,
    asn_problem,
    endpoint_problem,
    host_name_problem,
    ike_id_kind,
    interface_name_problem,
    network_problem,
    shown,
    suggestion,
    type_name,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.external import read_external_peers
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.whole import VARIABLE as EXPECTED, whole_problems

PLAN_VERSION = 1
PSK_CONTEXT = "routevpn.mesh/psk/v1/"
VARIABLE_PREFIX = "routevpn_"


class PlanError(Exception):
    """The inventory cannot be planned; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(PlanError, self).__init__(
            "routevpn.mesh: the inventory has %d problem(s):\n- %s"
            % (len(self.problems), "\n- ".join(self.problems))
        )


def link_index(id_a, id_b):
    """Dense, order-free index of the unordered pair of gateway ids (>= 1).

    ``(hi - 1) * (hi - 2) / 2 + (lo - 1)`` numbers the pairs of ids 1..N as
    0 .. N(N-1)/2 - 1, so the index depends only on the two ids.
    """
    lo, hi = sorted((id_a, id_b))
    if lo < 1 or lo == hi:
        raise ValueError("link_index needs two different ids >= 1, got %r and %r" % (id_a, id_b))
    return (hi - 1) * (hi - 2) // 2 + (lo - 1)


def link_name(id_a, id_b):
    lo, hi = sorted((id_a, id_b))
    return "%d-%d" % (lo, hi)


def derive_psk(master, name):
    """Per-link pre-shared key: base64(HMAC-SHA256(master, context + link name)), 256 bits."""
    digest = hmac.new(
        master.encode("utf-8"), (PSK_CONTEXT + name).encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def link_psk(master, name, overrides=None, given=None):
    """The PSK of link ``name``: the one an external peer's operator gave, else an explicit override, else the
    derived key."""
    if given:
        return given
    if overrides and name in overrides:
        return overrides[name]
    if not master:
        raise ValueError("routevpn_psk_master is not set and link %s has no override" % name)
    return derive_psk(master, name)


class _Problems:
    """Every problem once, sorted by host ('all' first), then variable."""

    def __init__(self):
        self._found = set()

    def add(self, where, variable, message):
        self._found.add((where, variable or "", message))

    def __bool__(self):
        return bool(self._found)

    __nonzero__ = __bool__

    def has(self, variable):
        return any(found[1] == variable for found in self._found)

    @property
    def items(self):
        ordered = sorted(self._found, key=lambda found: (found[0] != "all", found[0], found[1], found[2]))
        return ["%s: %s: %s" % found if found[1] else "%s: %s" % (found[0], found[2]) for found in ordered]


class _Inputs:
    """Every gateway's routevpn_* variables, checked against inputs.RULES.

    ``value(host, variable)`` is the checked value, the rule's default when
    unset, or None when the value was refused (the refusal is a problem
    already, and checks that depend on it are skipped).
    """

    def __init__(self, hostvars, names, problems):
        self.checked = dict((name, {}) for name in names)
        self.refused = dict((name, set()) for name in names)
        self.raw = dict((name, {}) for name in names)
        untemplatable = {}  # variable -> {host: message}
        for name in names:
            variables = hostvars[name]
            if not hasattr(variables, "keys"):
                problems.add(name, "", "its variables are %s, not a mapping" % type_name(variables))
                continue
            for variable in sorted(key for key in variables.keys()
                                   if isinstance(key, str) and key.startswith(VARIABLE_PREFIX)):
                value = variables[variable]
                if isinstance(value, Untemplatable):
                    untemplatable.setdefault(variable, {})[name] = value.message
                    self.refused[name].add(variable)
                else:
                    self._check(name, variable, value, problems)
        for variable, messages in sorted(untemplatable.items()):
            # A group variable that fails on every gateway is one problem, not one per gateway.
            everywhere = len(messages) == len(names) and len(set(messages.values())) == 1
            for name, message in sorted(messages.items()):
                problems.add("all" if everywhere and len(names) > 1 else name, variable,
                             "could not be templated: %s" % message)

    def _check(self, name, variable, value, problems):
        rule = RULES.get(variable)
        if rule is None:
            near = suggestion(variable)
            problems.add(name, variable, "unknown variable; no role of routevpn.mesh reads it%s"
                         % ("; did you mean %s?" % near if near else " (docs/plan.md lists them all)"))
            return
        if variable == "routevpn_mesh_plan":
            problems.add(name, variable, "set on this gateway; the planning play computes the plan on the controller, "
                         "and the roles would take a gateway's own plan instead, unchecked (only a role run on its "
                         "own takes one): remove it")
            return
        if rule.scope == OUTPUT:
            return
        self.raw[name][variable] = value
        if isinstance(rule.check, Special):
            self.checked[name][variable] = value
            return
        try:
            self.checked[name][variable] = rule.check(value)
        except InputError as exc:
            message = ("must be %s" % rule.allowed) if rule.secret else "%s" % exc
            problems.add("all" if rule.scope == MESH else name, variable, message)
            self.refused[name].add(variable)

    def is_set(self, name, variable):
        return self.raw[name].get(variable) is not None

    def missing(self, name, variable):
        """Unset (or null), and not because it could not be templated (that is reported already)."""
        return not self.is_set(name, variable) and variable not in self.refused[name]

    def value(self, name, variable):
        if variable in self.refused[name]:
            return None
        if variable in self.checked[name]:
            return self.checked[name][variable]
        return RULES[variable].default


class _Site:
    def __init__(self, name, asn, prefixes):
        self.name = name
        self.asn = asn
        self.prefixes = prefixes


class _Gateway:
    def __init__(self, name):
        self.name = name
        self.site = None
        self.gateway_id = None
        self.public = {}  # family -> ip_address
        self.tunnel_type = None
        self.ike_daemon = None
        self.initiation = None
        self.auth = None
        self.ike_id = None
        self.ike_id_kind = None
        self.router_id = None
        self.router_id_explicit = False
        self.interface_prefix = None
        self.reserved_if_ids = set()
        self.lan_networks = []  # (interface, ip_interface)
        self.external = None  # external.ExternalPeer: a peer the collection does not manage
        self.timers = {}  # what this gateway runs its links with (_gateway_timers)

    def label(self, variable):
        """(where, variable) a problem of this gateway's ``variable`` names."""
        if self.external is None:
            return self.name, variable
        return "all", self.external.label({"routevpn_gateway_id": "gateway_id", "routevpn_ike_id": "ike_id",
                                           "routevpn_public_address": "public_address"}.get(variable, variable))


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# What a gateway's roles write from each variable, by IKE daemon: the lifetimes after which this end re-keys.
_LIFETIME_VARIABLES = {
    "strongswan": ("routevpn_strongswan_ike_rekey_time", "routevpn_strongswan_child_rekey_time"),
    "libreswan": ("routevpn_libreswan_ike_lifetime", "routevpn_libreswan_ipsec_lifetime"),
}


def _seconds(duration):
    """Seconds of a DURATION the rules have checked (4h, 90m, 3600s, 3600); None stays None."""
    if duration is None:
        return None
    text = str(duration)
    unit = text[-1] if text[-1] in _DURATION_UNITS else ""
    return int(text[:len(text) - len(unit)]) * _DURATION_UNITS[unit]


def _gateway_timers(name, inputs, ike_daemon):
    """The timers this gateway runs its links with, which a peer the collection does not manage must be given:
    the IKE and CHILD SA lifetimes after which this end re-keys, BGP's hold and keepalive times, and BFD's."""
    ike, child = _LIFETIME_VARIABLES.get(ike_daemon, _LIFETIME_VARIABLES["strongswan"])
    return {
        "ike_lifetime": _seconds(inputs.value(name, ike)),
        "child_lifetime": _seconds(inputs.value(name, child)),
        "bgp_hold_time": inputs.value(name, "routevpn_bird_hold_time"),
        "bgp_keepalive_time": inputs.value(name, "routevpn_bird_keepalive_time"),
        "bfd": inputs.value(name, "routevpn_bfd"),
        "bfd_interval_ms": inputs.value(name, "routevpn_bfd_interval_ms"),
        "bfd_multiplier": inputs.value(name, "routevpn_bfd_multiplier"),
    }


def _external_gateway(peer):
    """An external peer as the planner's other gateways are held: it numbers links, it has no roles."""
    gw = _Gateway(peer.name)
    gw.external = peer
    gw.site, gw.gateway_id, gw.public = peer.site, peer.gateway_id, dict(peer.public)
    gw.ike_id, gw.ike_id_kind, gw.auth = peer.ike_id, peer.ike_id_kind, "psk"
    if gw.gateway_id is not None:
        gw.router_id = str(ipaddress.IPv4Address(gw.gateway_id))  # for its BGP, as a gateway's default
    return gw


def _mesh_wide_settings(inputs, names, problems):
    """The value of each mesh-wide setting, which must be the same on every gateway."""
    settings = {}
    for variable, rule in sorted(RULES.items()):
        if rule.scope != MESH:
            continue
        first = None
        for name in names:
            if variable in inputs.refused[name] and not inputs.is_set(name, variable):
                continue  # could not be templated: reported already
            raw = inputs.raw[name].get(variable)
            if first is None:
                first = (name, raw)
            elif raw != first[1]:
                theirs = "not set" if raw is None else ("<secret>" if rule.secret else shown(raw))
                problems.add(name, variable, "%s differs from %s's; it is mesh-wide (set it once, in group_vars)"
                             % (theirs, first[0]))
        settings[variable] = inputs.value(first[0], variable) if first else rule.default
    return settings


def _read_sites(raw_sites, problems):
    variable = "routevpn_sites"
    sites = {}
    if raw_sites is None:
        problems.add("all", variable, "missing; it must map each site name to {asn, prefixes}")
        return sites
    if not isinstance(raw_sites, dict) or not raw_sites:
        problems.add("all", variable, "%s; it must be a dict mapping each site name to {asn, prefixes}"
                     % ("empty" if isinstance(raw_sites, dict) else "is %s" % type_name(raw_sites)))
        return sites
    asn_owner = {}
    for site_name in sorted(raw_sites, key=repr):
        spec = raw_sites[site_name]
        try:
            if not isinstance(site_name, str):
                raise InputError("%s is %s, not a string (quote it in YAML)" % (shown(site_name), type_name(site_name)))
            SITE_NAME(site_name)
        except InputError as exc:
            problems.add("all", variable, "site name %s" % exc)
            continue
        label = "%s.%s" % (variable, site_name)
        if not isinstance(spec, dict):
            problems.add("all", label, "is %s; it must be a dict with asn (and optional prefixes)"
                         % type_name(spec))
            continue
        for key in sorted((key for key in spec if key not in ("asn", "prefixes")), key=repr):
            problems.add("all", label, "unknown key %s; a site has asn and prefixes" % shown(key))
        asn = None
        if "asn" not in spec:
            problems.add("all", label + ".asn", "missing (the site's AS number)")
        else:
            try:
                asn = as_int(spec["asn"], 1, 4294967295, "an AS number")
                reserved = asn_problem(asn)
                if reserved:
                    raise InputError("%s; use a private AS (64512-65534, 4200000000-4294967294) or your own"
                                     % reserved)
            except InputError as exc:
                problems.add("all", label + ".asn", str(exc))
                asn = None
        if asn is not None and asn in asn_owner:
            problems.add("all", label + ".asn", "%d is already the AS of site %s; each site needs its own AS "
                         "for eBGP" % (asn, asn_owner[asn]))
        elif asn is not None:
            asn_owner[asn] = site_name
        prefixes = []
        raw_prefixes = spec.get("prefixes")
        if raw_prefixes is None:
            raw_prefixes = []
        if not isinstance(raw_prefixes, list):
            problems.add("all", label + ".prefixes", "is %s; it must be a list of prefixes" % type_name(raw_prefixes))
            raw_prefixes = []
        for text in raw_prefixes:
            network = _parse_network(text, problems, "all", label + ".prefixes")
            if network is None:
                continue
            why = network_problem(network) or (network.is_link_local and "a link-local range")
            if why:
                problems.add("all", label + ".prefixes", "%s is %s; a site prefix is a private network of the "
                             "site" % (network, why))
            else:
                prefixes.append(network)
        sites[site_name] = _Site(site_name, asn, prefixes)
    return sites


def _parse_network(text, problems, where, variable):
    if not isinstance(text, str):
        problems.add(where, variable, "%s is %s, not a prefix such as 10.1.0.0/16" % (shown(text), type_name(text)))
        return None
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        problems.add(where, variable, "%s is not a network prefix (%s)" % (shown(text), exc))
        return None
    if "/" not in text:
        problems.add(where, variable, "%s has no prefix length; write %s" % (shown(text), network))
        return None
    return network


def _parse_address(text, problems, where, variable):
    if not isinstance(text, str):
        problems.add(where, variable, "%s is %s, not an IP address" % (shown(text), type_name(text)))
        return None
    if text.strip() == "":
        problems.add(where, variable, "empty; give the address")
        return None
    if "%" in text:
        problems.add(where, variable, "%s has a zone index (%%...); give the address alone" % shown(text))
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        problems.add(where, variable, "%s is not an IP address" % shown(text))
        return None


def _read_gateway(name, inputs, sites, problems):
    gw = _Gateway(name)
    naming = host_name_problem(name)
    if naming:
        problems.add(name, "inventory_hostname", naming)

    if inputs.missing(name, "routevpn_gateway_id"):
        problems.add(name, "routevpn_gateway_id", "missing (a unique, stable number 1..%d)" % GATEWAY_ID_MAX)
    elif inputs.is_set(name, "routevpn_gateway_id"):
        try:
            gw.gateway_id = as_int(inputs.raw[name]["routevpn_gateway_id"], 1, GATEWAY_ID_MAX)
        except InputError as exc:
            problems.add(name, "routevpn_gateway_id", str(exc))

    site = inputs.raw[name].get("routevpn_site")
    if inputs.missing(name, "routevpn_site"):
        problems.add(name, "routevpn_site",
                     "missing (one of routevpn_sites: %s)" % (", ".join(sorted(sites)) or "none"))
    elif site is not None and not isinstance(site, str):
        problems.add(name, "routevpn_site", "%s is %s, not a site name" % (shown(site), type_name(site)))
    elif site is not None and site not in sites:
        problems.add(name, "routevpn_site", "unknown site %s (routevpn_sites has: %s)"
                     % (shown(site), ", ".join(sorted(sites)) or "none"))
    elif site is not None:
        gw.site = site

    _read_public_addresses(gw, inputs, problems)

    gw.tunnel_type = inputs.value(name, "routevpn_tunnel_type")
    gw.ike_daemon = inputs.value(name, "routevpn_ike_daemon")
    if gw.ike_daemon:
        gw.initiation = inputs.value(name, "routevpn_%s_initiator" % gw.ike_daemon)
    gw.auth = inputs.value(name, "routevpn_auth")
    gw.timers = _gateway_timers(name, inputs, gw.ike_daemon)
    gw.interface_prefix = inputs.value(name, "routevpn_interface_prefix")
    gw.reserved_if_ids = set(inputs.value(name, "routevpn_reserved_if_ids") or [])

    ike_id = inputs.raw[name].get("routevpn_ike_id")
    if ike_id is None or ike_id == "":
        if "routevpn_ike_id" not in inputs.refused[name] and not naming:
            gw.ike_id, gw.ike_id_kind = name, ike_id_kind(name)
    elif not isinstance(ike_id, str) or ike_id_kind(ike_id) is None:
        problems.add(name, "routevpn_ike_id", "%s is not an IKE identity: use %s"
                     % (shown(ike_id), RULES["routevpn_ike_id"].allowed))
    else:
        gw.ike_id, gw.ike_id_kind = ike_id, ike_id_kind(ike_id)
        if gw.ike_id_kind == "dn" and gw.auth != "pubkey":
            problems.add(name, "routevpn_ike_id", "%s is a DN, which only a certificate can prove "
                         "(routevpn_auth: pubkey)" % shown(ike_id))

    router_id = inputs.raw[name].get("routevpn_router_id")
    if router_id is not None:
        address = _parse_address(router_id, problems, name, "routevpn_router_id")
        if address is not None and address.version != 4:
            problems.add(name, "routevpn_router_id", "%s must be written as an IPv4 address" % router_id)
        elif address is not None and int(address) == 0:
            problems.add(name, "routevpn_router_id", "0.0.0.0 is not a BGP identifier (RFC 6286: non-zero)")
        elif address is not None:
            gw.router_id = str(address)
            gw.router_id_explicit = True
    elif gw.gateway_id is not None:
        gw.router_id = str(ipaddress.IPv4Address(gw.gateway_id))

    _read_private_interfaces(gw, inputs, problems)
    _check_gateway_settings(gw, inputs, problems)
    return gw


def _read_public_addresses(gw, inputs, problems):
    variable = "routevpn_public_address"
    if inputs.missing(gw.name, variable):
        problems.add(gw.name, variable, "missing (the IKE endpoint, IPv4 or IPv6)")
    if not inputs.is_set(gw.name, variable):
        return
    raw = inputs.raw[gw.name][variable]
    texts = raw if isinstance(raw, list) else [raw]
    if not texts:
        problems.add(gw.name, variable, "an empty list; give the IKE endpoint (at most one address per family)")
    if len(texts) > 2:
        problems.add(gw.name, variable, "%d addresses; give at most one per family" % len(texts))
        return
    for text in texts:
        address = _parse_address(text, problems, gw.name, variable)
        if address is None:
            continue
        why = endpoint_problem(address)
        family = "ipv%d" % address.version
        if why:
            problems.add(gw.name, variable, "%s is %s; an IKE endpoint must be a unicast address the peers "
                         "reach across the internet or a private WAN" % (address, why))
        elif family in gw.public:
            problems.add(gw.name, variable, "two %s addresses (%s, %s); give at most one per family"
                         % (family, gw.public[family], address))
        else:
            gw.public[family] = address


def _read_private_interfaces(gw, inputs, problems):
    variable = "routevpn_private_interfaces"
    interfaces = inputs.raw[gw.name].get(variable)
    if interfaces is None:
        return
    if not isinstance(interfaces, list):
        problems.add(gw.name, variable, "is %s; it must be a list of interface names or {name, addresses} dicts"
                     % type_name(interfaces))
        return
    seen = set()
    for item in interfaces:
        addresses = []
        if isinstance(item, dict):
            for key in sorted((key for key in item if key not in ("name", "addresses")), key=repr):
                problems.add(gw.name, variable, "unknown key %s; an interface has name and addresses" % shown(key))
            ifname, addresses = item.get("name"), item.get("addresses")
            if addresses is None:
                addresses = []
            elif not isinstance(addresses, list):
                problems.add(gw.name, variable, "%s: addresses is %s, not a list" % (shown(ifname),
                                                                                     type_name(addresses)))
                addresses = []
        else:
            ifname = item
        naming = interface_name_problem(ifname)
        if naming:
            problems.add(gw.name, variable, naming)
            continue
        if ifname in seen:
            problems.add(gw.name, variable, "%s is listed twice" % ifname)
        seen.add(ifname)
        if gw.interface_prefix and ifname.startswith(gw.interface_prefix):
            problems.add(gw.name, variable, "%s starts with routevpn_interface_prefix %s, whose interfaces the "
                         "tunnels role owns (and deletes when unplanned)" % (ifname, shown(gw.interface_prefix)))
        for text in addresses:
            try:
                if not isinstance(text, str) or "/" not in text or "%" in text:
                    raise ValueError
                address = ipaddress.ip_interface(text)
            except ValueError:
                problems.add(gw.name, variable, "%s: %s is not an address with a prefix length"
                             % (ifname, shown(text)))
                continue
            why = endpoint_problem(address.ip) if not address.ip.is_link_local else None
            if why:
                problems.add(gw.name, variable, "%s: %s is %s" % (ifname, text, why))
            else:
                gw.lan_networks.append((ifname, address))


def _check_gateway_settings(gw, inputs, problems):
    """Settings whose values depend on each other on one gateway."""
    hold = inputs.value(gw.name, "routevpn_bird_hold_time")
    keepalive = inputs.value(gw.name, "routevpn_bird_keepalive_time")
    if hold and keepalive and keepalive >= hold:
        problems.add(gw.name, "routevpn_bird_keepalive_time", "%d is not below routevpn_bird_hold_time %d "
                     "(BGP sends keepalives within the hold time; a third of it is usual)" % (keepalive, hold))
    hello = inputs.value(gw.name, "routevpn_bird_ospf_hello")
    dead = inputs.value(gw.name, "routevpn_bird_ospf_dead")
    if hello and dead and dead <= hello:
        problems.add(gw.name, "routevpn_bird_ospf_dead", "%d is not above routevpn_bird_ospf_hello %d"
                     % (dead, hello))
    mss, mtu = inputs.value(gw.name, "routevpn_tcp_mss"), inputs.value(gw.name, "routevpn_tunnel_mtu")
    if mss and mtu and mss > mtu - 40:
        problems.add(gw.name, "routevpn_tcp_mss", "%d does not fit routevpn_tunnel_mtu %d (at most MTU - 40, the "
                     "IPv4 and TCP headers)" % (mss, mtu))
    if mss and inputs.value(gw.name, "routevpn_tcp_mss_clamp") is False:
        problems.add(gw.name, "routevpn_tcp_mss", "is set but routevpn_tcp_mss_clamp is false; set "
                     "routevpn_tcp_mss_clamp: true for it to take effect")


class _TransferPool:
    """Hands out the /127 (IPv6) or /31 (IPv4) of a link from its index."""

    def __init__(self, variable, network):
        self.variable = variable
        self.network = network
        self.link_length = network.max_prefixlen - 1
        self.capacity = 2 ** (self.link_length - network.prefixlen) if network.prefixlen <= self.link_length else 0

    def subnet(self, index):
        base = int(self.network.network_address) + 2 * index
        return ipaddress.ip_network((base, self.link_length))

    def check(self, links, problems):
        if self.capacity == 0:
            problems.add("all", self.variable, "%s is too small for even one /%d link"
                         % (self.network, self.link_length))
            return False
        overflow = [link for link in links if link["index"] >= self.capacity]
        if overflow:
            worst = max(overflow, key=lambda link: link["index"])
            problems.add(
                "all", self.variable,
                "%s holds %d /%d links (indices 0..%d) but %d link(s) need more, up to link %s "
                "(%s) with index %d; use a shorter prefix or smaller routevpn_gateway_id values"
                % (self.network, self.capacity, self.link_length, self.capacity - 1,
                   len(overflow), worst["name"], " <-> ".join(worst["gateways"]), worst["index"]),
            )
            return False
        return True


def _transfer_pools(settings, problems):
    pools = {}
    for family, variable in (("v6", "routevpn_transfer_prefix_v6"), ("v4", "routevpn_transfer_prefix_v4")):
        text = settings.get(variable)
        if text is None or text == "":
            continue
        network = _parse_network(text, problems, "all", variable)
        if network is None:
            continue
        if "v%d" % network.version != family:
            problems.add("all", variable, "%s is not an IP%s prefix" % (text, family))
            continue
        why = network_problem(network)
        if why:
            problems.add("all", variable, "%s is %s" % (network, why))
            continue
        pools[family] = _TransferPool(variable, network)
    if not pools and not (problems.has("routevpn_transfer_prefix_v6") or problems.has("routevpn_transfer_prefix_v4")):
        problems.add("all", "routevpn_transfer_prefix_v6", "missing (and no routevpn_transfer_prefix_v4); "
                     "the links need transfer addresses")
    return pools


def _check_overlaps(sites, pools, gateways, problems):
    """Site prefixes, transfer pools and public addresses must not overlap (a sweep over sorted ranges)."""
    ranges = []
    for site in sites.values():
        for network in site.prefixes:
            ranges.append((network, "routevpn_sites.%s.prefixes" % site.name, "site %s's prefix %s"
                           % (site.name, network)))
    for pool in pools.values():
        ranges.append((pool.network, pool.variable, "the transfer pool %s" % pool.network))
    ranges.sort(key=lambda item: (item[0].version, int(item[0].network_address), -item[0].prefixlen))
    widest = None
    for network, variable, label in ranges:
        if widest is not None and widest[0].version == network.version and \
                int(network.network_address) <= int(widest[0].broadcast_address):
            problems.add("all", variable, "%s overlaps %s; the mesh routes each prefix to one site"
                         % (label, widest[2]))
        if widest is None or widest[0].version != network.version or \
                int(network.broadcast_address) > int(widest[0].broadcast_address):
            widest = (network, variable, label)
    for gw in gateways:
        for address in gw.public.values():
            for pool in pools.values():
                if address in pool.network:
                    problems.add(*gw.label("routevpn_public_address"),
                                 message="%s is inside the transfer pool %s (%s); IKE would be routed into the "
                                 "tunnels it carries" % (address, pool.network, pool.variable))
        for ifname, address in gw.lan_networks:
            for pool in pools.values():
                if address.network.overlaps(pool.network):
                    problems.add(gw.name, "routevpn_private_interfaces", "%s: %s overlaps the transfer pool %s (%s)"
                                 % (ifname, address, pool.network, pool.variable))


def _check_agreement(gateways, links, inputs, problems):
    """Settings both ends of a link, or the gateways of a site, must agree on."""
    for variable, rule in sorted(RULES.items()):
        if rule.scope == LINK and variable != "routevpn_auth":
            for link in links:
                lo, hi = link["_ends"]
                if link["external"]:
                    continue  # an external peer has no role settings; its side is rendered from the plan
                if variable != "routevpn_bfd" and not (inputs.value(lo.name, "routevpn_bfd")
                                                       and inputs.value(hi.name, "routevpn_bfd")):
                    continue  # BFD timers matter only where BFD runs
                mine, theirs = inputs.value(lo.name, variable), inputs.value(hi.name, variable)
                if mine is not None and theirs is not None and mine != theirs:
                    problems.add("%s, %s" % (lo.name, hi.name), variable,
                                 "link %s joins %s (%s) and %s (%s); both ends of a link must agree (%s)"
                                 % (link["name"], lo.name, mine, hi.name, theirs, rule.why))
        elif rule.scope == SITE:
            # OSPF settings: only the site's gateways that run OSPF with its routers must agree.
            first = {}
            for gw in gateways:
                value = inputs.value(gw.name, variable)
                if (gw.site is None or value is None
                        or inputs.value(gw.name, "routevpn_bird_private_protocol") != "ospf"):
                    continue
                if gw.site not in first:
                    first[gw.site] = (gw.name, value)
                elif first[gw.site][1] != value:
                    problems.add("%s, %s" % (first[gw.site][0], gw.name), variable,
                                 "%s on %s, %s on %s; the gateways of site %s must agree (%s)"
                                 % (first[gw.site][1], first[gw.site][0], value, gw.name, gw.site, rule.why))


def _interface_name(gw, peer):
    # Every end's device is the collection's (role tunnels), whatever the IKE
    # daemon: libreswan 5.2's ipsec-interface-managed=no leaves the XFRM
    # interface to it, as strongSwan does.
    return "%s%d" % (gw.interface_prefix, peer.gateway_id)


# Route-based: the tunnel device (if_id or mark) selects the SA, so a CHILD_SA's
# traffic selectors are everything of its inner families, in both directions.
_EVERYTHING = (("v4", "0.0.0.0/0"), ("v6", "::/0"))
# What the certificate of an identity of each kind (inputs.ike_id_kind) names it
# in its subjectAltName, as strongSwan looks for it; a DN is the subject itself.
_SAN_TYPES = {"ip": "IP", "email": "email", "dns": "DNS"}


def _children(gw, peer, connection):
    """The CHILD_SAs of an end: one per inner family where an end is libreswan, else one for both.

    libreswan 4 takes one subnet family per conn, so the libreswan role
    writes a conn per family (<connection>-v4 and -v6, on the link's one IKE
    SA), and a libreswan peer would narrow a CHILD_SA for both families to
    one of them: where either end is libreswan, one child per family, each
    negotiated, trapped, rekeyed and restarted on its own.
    """
    if "libreswan" in (gw.ike_daemon, peer.ike_daemon):
        return [{"name": "%s-%s" % (connection, family), "traffic_selectors": [everything]}
                for family, everything in _EVERYTHING]
    return [{"name": connection, "traffic_selectors": [everything for family, everything in _EVERYTHING]}]


def _certificate_san(gw):
    """The subjectAltName a certificate for the gateway's IKE identity carries; None for a DN (its subject)."""
    kind = _SAN_TYPES.get(gw.ike_id_kind)
    return "%s:%s" % (kind, gw.ike_id) if kind else None


def _end(gw, peer, link, sites, family, pools_addresses, psk_given=False):
    """``gw``'s end of ``link`` to ``peer`` (docs/plan.md, "An end"): its numbers and the decisions its roles print.

    ``initiator`` (the lower gateway id: the link's one initiator), ``starts``
    (the initiator, or an end whose gateway's routevpn_<ike_daemon>_initiator
    is both), ``children`` (its CHILD_SAs) and ``bgp_sessions`` (one per
    transfer family): no template compares ids or splits families.
    """
    connection = "%s%d" % (gw.interface_prefix, peer.gateway_id) if not gw.external else None
    end = {
        "link": link["name"],
        "gateway": gw.name,
        "peer": peer.name,
        "site": gw.site,
        "peer_site": peer.site,
        "interface": None if gw.external else _interface_name(gw, peer),
        "connection": connection,
        "tunnel_type": gw.tunnel_type,
        "ike_daemon": gw.ike_daemon,
        # A link to an external peer authenticates as the peer does, whatever this gateway's other links do.
        "auth": peer.auth if peer.external else gw.auth,
        "if_id": link["if_id"],
        "mark": link["if_id"],
        "local_asn": sites[gw.site].asn,
        "peer_asn": sites[peer.site].asn,
        "local_ike_address": str(gw.public[family]),
        "remote_ike_address": str(peer.public[family]),
        "local_id": gw.ike_id,
        "remote_id": peer.ike_id,
        "router_id": gw.router_id,
        # One end starts the link (the lower gateway id), the other only responds: two initiators cross.
        "initiator": gw.gateway_id < peer.gateway_id,
        "initiation": gw.initiation,
        # routevpn_<ike_daemon>_initiator both: this end starts its links as well.
        "starts": gw.gateway_id < peer.gateway_id or gw.initiation == "both",
        "children": _children(gw, peer, connection),
        "bgp_sessions": [],
        # A link to a peer the collection does not manage (routevpn_external_peers): this end always starts it,
        # and takes the peer's proposals, DPD delay and BFD setting and, where given, its pre-shared key.
        "peer_external": bool(peer.external),
        "peer_platform": peer.external.platform if peer.external else None,
        "psk_given": psk_given,
        "ike_proposals": list(peer.external.ike_proposals) if peer.external else None,
        "esp_proposals": list(peer.external.esp_proposals) if peer.external else None,
        "dpd_delay": peer.external.dpd_delay if peer.external else None,
        "bfd": peer.external.bfd if peer.external else None,
    }
    if gw.external:
        # The peer's side, for its operator: no interface or connection of the collection's.
        # The timers are the Linux gateway's (peer's), which starts and re-keys the link; BFD runs where both
        # ends run it.
        end.update(interface=None, connection=None, children=_children(gw, peer, link["name"]),
                   starts=False, initiator=False, peer_external=False, peer_platform=None,
                   ike_proposals=list(gw.external.ike_proposals), esp_proposals=list(gw.external.esp_proposals),
                   dpd_delay=gw.external.dpd_delay, bfd=bool(gw.external.bfd and peer.timers.get("bfd")),
                   **dict((key, value) for key, value in peer.timers.items() if key != "bfd"))
    elif peer.external:
        end.update(initiator=True, starts=True)
    for version in ("v6", "v4"):
        mine, theirs = pools_addresses.get(version, (None, None))
        end["address_" + version] = None if mine is None else mine.with_prefixlen
        end["peer_address_" + version] = None if theirs is None else str(theirs)
        if mine is not None:
            # One eBGP session per transfer family, between the link's two transfer addresses.
            end["bgp_sessions"].append({"name": "%s-%s" % (connection or link["name"], version), "family": version,
                                        "local_address": str(mine.ip), "neighbor_address": str(theirs)})
    return end


def given_psk(external_peers, peer, gateway):
    """The pre-shared key routevpn_external_peers gives for the tunnel between ``peer`` and ``gateway``, or None."""
    for spec in external_peers or []:
        if isinstance(spec, dict) and spec.get("name") == peer:
            tunnel = (spec.get("tunnels") or {}).get(gateway) or {}
            return tunnel.get("psk") if isinstance(tunnel, dict) else None
    return None


def _external_pairs(externals, gateways, planned, problems):
    """(external, managed gateway) for each link of an external peer: its ``gateways``, or every gateway of every
    other site; a listed gateway of its own site, or not in the inventory's gateways, is a problem."""
    by_name = dict((gw.name, gw) for gw in gateways)
    pairs = []
    for ext in externals:
        peer = ext.external
        if ext.gateway_id is None or ext.site is None or not ext.public:
            continue  # reported already
        if peer.gateways is None:
            targets = [gw for gw in planned if gw.site != ext.site]
        else:
            targets = []
            for name in peer.gateways:
                gw = by_name.get(name)
                if gw is None:
                    problems.add("all", peer.label("gateways"), "%s is not in the group routevpn_gateways"
                                 % shown(name))
                elif gw.site == ext.site:
                    problems.add("all", peer.label("gateways"), "%s is of the peer's own site %s; links join "
                                 "sites" % (name, ext.site))
                elif gw in planned:
                    targets.append(gw)
        if peer.custom_proposals:
            for gw in targets:
                if gw.ike_daemon == "libreswan":
                    problems.add("all", peer.label("ike_proposals"), "set, but %s (a link of this peer) runs "
                                 "libreswan, whose proposals are its routevpn_libreswan_ike and routevpn_libreswan_esp "
                                 "(libreswan's syntax): set those on %s instead" % (gw.name, gw.name))
        for name in sorted(set(peer.tunnels) - set(gw.name for gw in targets)):
            if name in by_name and (peer.gateways is None or name in peer.gateways) and by_name[name] not in planned:
                continue  # that gateway's own problem is reported
            problems.add("all", peer.label("tunnels"), "%s is not a gateway this peer has a link with" % shown(name))
        pairs.extend((ext, gw) for gw in targets)
    return pairs


def _external_tunnel(link):
    """The routevpn_external_peers tunnel entry of ``link`` (a dict, possibly empty), or None for a mesh link."""
    lo, hi = link["_ends"]
    ext, managed = (lo, hi) if lo.external else (hi, lo)
    if not ext.external:
        return None
    return ext.external.tunnels.get(managed.name) or {}


def _link_auth(link):
    """How a link authenticates: a link to an external peer as the peer does (whatever routevpn_auth its Linux
    gateway gives its mesh links: certificates in the mesh and a pre-shared key to a cloud's gateway is common);
    another link as both its ends do (_check_links refuses two methods)."""
    lo, hi = link["_ends"]
    external = lo if lo.external else hi if hi.external else None
    return external.auth if external else lo.auth


def _given_psk(link):
    tunnel = _external_tunnel(link)
    return bool(tunnel and tunnel.get("psk"))


def _given_inside(link, lo, hi):
    """{version: ((lo's interface, hi's peer address), (hi's interface, lo's peer address))} given for ``link``."""
    tunnel = _external_tunnel(link)
    given = {}
    for version in ("v6", "v4"):
        if not tunnel or not tunnel.get(version):
            continue
        mine, theirs = tunnel[version]  # the managed end's interface, the peer's address
        theirs_interface = ipaddress.ip_interface((theirs, mine.network.prefixlen))
        link["transfer_" + version] = str(mine.network)
        if lo.external:
            given[version] = ((theirs_interface, mine.ip), (mine, theirs))
        else:
            given[version] = ((mine, theirs), (theirs_interface, mine.ip))
    return given


def _check_inside_networks(links, sites, pools, problems):
    """Given inside networks overlap no site prefix, transfer pool or other given network."""
    seen = []
    for link in links:
        tunnel = _external_tunnel(link)
        for version in ("v6", "v4"):
            if not tunnel or not tunnel.get(version):
                continue
            network = tunnel[version][0].network
            where = "%s[%s].tunnels" % ("routevpn_external_peers", link["external"])
            for site in sites.values():
                for prefix in site.prefixes:
                    if prefix.version == network.version and prefix.overlaps(network):
                        problems.add("all", where, "link %s: %s overlaps site %s's prefix %s"
                                     % (link["name"], network, site.name, prefix))
            for pool in pools.values():
                if pool.network.version == network.version and pool.network.overlaps(network):
                    problems.add("all", where, "link %s: %s overlaps the transfer pool %s (%s)"
                                 % (link["name"], network, pool.network, pool.variable))
            for other_link, other in seen:
                if other.version == network.version and other.overlaps(network):
                    problems.add("all", where, "link %s: %s overlaps %s, given for link %s"
                                 % (link["name"], network, other, other_link))
            seen.append((link["name"], network))


def _external_record(ext, sites, ends):
    """``external_peers.NAME`` of the plan: what the renderers print for the peer's operator."""
    peer = ext.external
    return {
        "platform": peer.platform,
        "site": ext.site,
        "gateway_id": ext.gateway_id,
        "asn": sites[ext.site].asn,
        "public_addresses": [str(ext.public[f]) for f in ("ipv6", "ipv4") if f in ext.public],
        "router_id": ext.router_id,
        "prefixes_v4": [str(p) for p in sites[ext.site].prefixes if p.version == 4],
        "prefixes_v6": [str(p) for p in sites[ext.site].prefixes if p.version == 6],
        "ike_id": ext.ike_id,
        "ike_proposals": list(peer.ike_proposals),
        "esp_proposals": list(peer.esp_proposals),
        "dpd_delay": peer.dpd_delay,
        "bfd": peer.bfd,
        "ends": ends,
    }


def check(hostvars, gateway_names, job=None):
    """Every problem of the inventory, sorted by host then variable; [] when it can be planned."""
    try:
        plan(hostvars, gateway_names, job)
    except PlanError as exc:
        return exc.problems
    return []


def plan(hostvars, gateway_names, job=None):
    """Plan the mesh of ``gateway_names``; ``hostvars`` maps each name to its variables.

    Returns the plan dict of docs/plan.md; raises PlanError listing every
    problem of the inventory.  A variable whose value is an ``Untemplatable``
    is reported as such, and the other problems are still listed.  ``job``
    maps AWX's job variables (awx_workflow_job_id, ...) to their values: a job
    a workflow launched may be a slice, and must prove the inventory whole
    (whole.py).
    """
    problems = _Problems()
    names = sorted(set(gateway_names or []), key=repr)
    if not names:
        raise PlanError(["all: no gateways (the group routevpn_gateways is empty or missing)"])
    missing = [name for name in names if name not in hostvars]
    if missing:
        raise PlanError(["%s: not in the inventory's hostvars" % name for name in missing])

    inputs = _Inputs(hostvars, names, problems)
    settings = _mesh_wide_settings(inputs, names, problems)
    if not any(EXPECTED in inputs.refused[name] for name in names):  # else reported already
        for variable, message in whole_problems(settings[EXPECTED], names, job):
            problems.add("all", variable, message)
    sites = _read_sites(settings["routevpn_sites"], problems)
    gateways = [_read_gateway(name, inputs, sites, problems) for name in names]
    pools = _transfer_pools(settings, problems)
    if_id_base = settings["routevpn_if_id_base"]

    externals = [_external_gateway(peer)
                 for peer in read_external_peers(settings.get("routevpn_external_peers"), sites, problems)]
    for ext in externals:
        if ext.name in hostvars:
            problems.add("all", ext.external.label("name"), "%s is also an inventory host; an external peer is "
                         "one Ansible never connects to" % ext.name)

    _check_unique(gateways + externals, problems)
    _check_overlaps(sites, pools, gateways + externals, problems)

    planned = [gw for gw in gateways
               if gw.gateway_id is not None and gw.site is not None and gw.public and gw.interface_prefix]
    pairs = [(gw_a, gw_b) for i, gw_a in enumerate(planned) for gw_b in planned[i + 1:] if gw_a.site != gw_b.site]
    pairs += _external_pairs(externals, gateways, planned, problems)
    links = []
    for gw_a, gw_b in pairs:
        lo, hi = sorted((gw_a, gw_b), key=lambda gw: gw.gateway_id)
        if lo.gateway_id == hi.gateway_id:
            continue  # reported as a duplicate id already
        index = link_index(lo.gateway_id, hi.gateway_id)
        links.append({
            "name": link_name(lo.gateway_id, hi.gateway_id),
            "index": index,
            "gateways": [lo.name, hi.name],
            "if_id": None if if_id_base is None else if_id_base + index,
            "external": next((gw.name for gw in (lo, hi) if gw.external), None),
            "_ends": (lo, hi),
        })
    links.sort(key=lambda link: link["index"])
    _check_inside_networks(links, sites, pools, problems)
    # The master is needed unless every pre-shared key is one an external peer's operator gave.
    psk_links = [link for link in links if _link_auth(link) == "psk"]
    if (any(gw.auth == "psk" for gw in gateways) or psk_links) \
            and not (psk_links and all(_given_psk(link) for link in psk_links)):
        _check_psk_settings(settings, inputs, names, problems)

    usable_pools = dict((family, pool) for family, pool in pools.items() if pool.check(links, problems))
    _check_links(links, problems)
    _check_agreement(gateways, links, inputs, problems)
    _check_overrides(settings, links, problems)
    if problems:
        raise PlanError(problems.items)
    external_ends = dict((ext.name, []) for ext in externals)

    hosts = dict((gw.name, []) for gw in gateways)
    for link in links:
        lo, hi = link["_ends"]
        psk_given = _given_psk(link)
        family = "ipv6" if "ipv6" in lo.public and "ipv6" in hi.public else "ipv4"
        pairs = {}
        for version, pool in usable_pools.items():
            subnet = pool.subnet(link["index"])
            first, second = subnet[0], subnet[1]
            link["transfer_" + version] = str(subnet)
            pairs[version] = (
                (ipaddress.ip_interface((first, subnet.prefixlen)), second),
                (ipaddress.ip_interface((second, subnet.prefixlen)), first),
            )
        pairs.update(_given_inside(link, lo, hi))
        del link["_ends"]
        for version in ("v6", "v4"):
            link.setdefault("transfer_" + version, None)
        link["ike_family"] = family
        link["ends"] = [
            _end(lo, hi, link, sites, family, dict((v, p[0]) for v, p in pairs.items()), psk_given),
            _end(hi, lo, link, sites, family, dict((v, p[1]) for v, p in pairs.items()), psk_given),
        ]
        for end in link["ends"]:
            if end["gateway"] in hosts:
                hosts[end["gateway"]].append(end)
            else:
                external_ends[end["gateway"]].append(end)

    return {
        "version": PLAN_VERSION,
        "summary": "%s in %s, %s" % (_count(len(gateways), "gateway"), _count(len(sites), "site"),
                                     _count(len(links), "link")),
        "sites": dict(
            (site.name, {
                "asn": site.asn,
                "prefixes": [str(p) for p in site.prefixes],
                "prefixes_v4": [str(p) for p in site.prefixes if p.version == 4],
                "prefixes_v6": [str(p) for p in site.prefixes if p.version == 6],
                "gateways": sorted(gw.name for gw in gateways if gw.site == site.name),
                "external_peers": sorted(ext.name for ext in externals if ext.site == site.name),
            })
            for site in sites.values()
        ),
        "transfer_pool_v6": str(pools["v6"].network) if "v6" in pools else None,
        "transfer_pool_v4": str(pools["v4"].network) if "v4" in pools else None,
        "gateways": dict(
            (gw.name, {
                "site": gw.site,
                "gateway_id": gw.gateway_id,
                "asn": sites[gw.site].asn,
                # Every other site of routevpn_sites, by name: BIRD accepts from each only its own routes.
                "other_sites": sorted(name for name in sites if name != gw.site),
                "router_id": gw.router_id,
                "ike_daemon": gw.ike_daemon,
                "initiation": gw.initiation,
                "tunnel_type": gw.tunnel_type,
                "auth": gw.auth,
                "ike_id": gw.ike_id,
                "certificate_san": _certificate_san(gw),
                "public_addresses": [str(gw.public[f]) for f in ("ipv6", "ipv4") if f in gw.public],
            })
            for gw in gateways
        ),
        "external_peers": dict((ext.name, _external_record(ext, sites, external_ends[ext.name]))
                               for ext in externals),
        "links": links,
        "hosts": hosts,
    }


def _count(number, noun):
    """``1 link``, ``2 links``: what mesh.yml prints of the plan."""
    return "%d %s%s" % (number, noun, "" if number == 1 else "s")


def _check_unique(gateways, problems):
    """Report values two gateways share; a duplicated gateway id is dropped from planning."""
    for attribute, variable in (
        ("gateway_id", "routevpn_gateway_id"),
        ("router_id", "routevpn_router_id"),
        ("ike_id", "routevpn_ike_id"),
    ):
        owner = {}
        for gw in gateways:
            value = getattr(gw, attribute)
            if value is None:
                continue
            # IKE compares DNS names and e-mail identities without regard to case.
            key = value.lower() if attribute == "ike_id" else value
            if key not in owner:
                owner[key] = gw
                continue
            value = "%s (%s)" % (value, owner[key].ike_id) if attribute == "ike_id" and value != owner[key].ike_id \
                else value
            if attribute == "router_id" and not (gw.router_id_explicit or owner[key].router_id_explicit):
                continue  # both derived from one gateway id: reported once, as that id
            problems.add(*gw.label(variable), message="%s is already used by %s" % (value, owner[key].name))
            if attribute == "gateway_id":
                gw.gateway_id = None
    owner = {}
    for gw in gateways:
        for address in gw.public.values():
            if address in owner:
                problems.add(*gw.label("routevpn_public_address"), message="%s is already the address of %s"
                             % (address, owner[address]))
            else:
                owner[address] = gw.name


def _check_psk_settings(settings, inputs, names, problems):
    master = settings.get("routevpn_psk_master")
    if any("routevpn_psk_master" in inputs.refused[name] for name in names):
        return  # could not be templated: reported already
    if master is None or master == "":
        problems.add("all", "routevpn_psk_master", "missing; per-link PSKs derive from it "
                     "(or set routevpn_auth: pubkey)")
    elif not isinstance(master, str):
        problems.add("all", "routevpn_psk_master", "is %s; it must be a string of at least %d characters"
                     % (type_name(master), PSK_MIN_LENGTH))
    elif len(master) < PSK_MIN_LENGTH:
        problems.add("all", "routevpn_psk_master", "too short; use at least %d characters "
                     "(e.g. `openssl rand -base64 32`, kept in a vault)" % PSK_MIN_LENGTH)


def _check_overrides(settings, links, problems):
    overrides = settings.get("routevpn_psk_overrides")
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        problems.add("all", "routevpn_psk_overrides", "is %s; it must map link names (e.g. '11-21') to secrets"
                     % type_name(overrides))
        return
    names = set(link["name"] for link in links)
    for name in sorted(overrides, key=repr):
        if name not in names:
            problems.add("all", "routevpn_psk_overrides", "%s is not a link of this mesh" % shown(name))
        elif not isinstance(overrides[name], str) or len(overrides[name]) < PSK_MIN_LENGTH:
            problems.add("all", "routevpn_psk_overrides", "the secret of link %s is not a string of at least %d "
                         "characters" % (name, PSK_MIN_LENGTH))
    for link in links:
        if link["name"] in overrides and _given_psk(link):
            problems.add("all", "routevpn_psk_overrides", "link %s has a psk given in routevpn_external_peers[%s]"
                         ".tunnels; set it in one place" % (link["name"], link["external"]))


_IDENTITY_KINDS_OF_LIBRESWAN = ("dns", "email")


def _check_links(links, problems):
    used = {}
    for link in links:
        lo, hi = link["_ends"]
        pair = "%s, %s" % (lo.name, hi.name)
        if not set(lo.public) & set(hi.public):
            problems.add(pair, "routevpn_public_address",
                         "no address family in common (%s is %s, %s is %s); give one of them an address of the "
                         "other's family" % (lo.name, "/".join(sorted(lo.public)), hi.name,
                                             "/".join(sorted(hi.public))))
        if not link["external"] and lo.auth and hi.auth and lo.auth != hi.auth:
            # Each end's configuration names one method for both sides: a psk
            # end would wait for a PSK the certificate end never sends.
            problems.add(pair, "routevpn_auth", "link %s joins %s (%s) and %s (%s); both ends of a link must use "
                         "the same method" % (link["name"], lo.name, lo.auth, hi.name, hi.auth))
        if "libreswan" in (lo.ike_daemon, hi.ike_daemon):
            # libreswan's conns write identities as @name (a literal FQDN); an
            # IP address or DN would be another ID type on the strongSwan end.
            for gw in (lo, hi):
                if gw.ike_id_kind and gw.ike_id_kind not in _IDENTITY_KINDS_OF_LIBRESWAN:
                    problems.add(*gw.label("routevpn_ike_id"),
                                 message="%s is an %s identity, but link %s has a libreswan end, whose identities "
                                 "are DNS names or user@DNS names"
                                 % (shown(gw.ike_id), "IP" if gw.ike_id_kind == "ip" else "X.500 DN", link["name"]))
        if link["if_id"] is None:
            continue
        if link["if_id"] > IF_ID_MAX:
            problems.add("all", "routevpn_if_id_base", "link %s: if_id %d exceeds %d; lower routevpn_if_id_base"
                         % (link["name"], link["if_id"], IF_ID_MAX))
        for gw, peer in ((lo, hi), (hi, lo)):
            if gw.external:
                continue  # the peer's own device is its operator's (rendered: an st0 unit, a vti)
            if link["if_id"] in gw.reserved_if_ids:
                problems.add(gw.name, "routevpn_reserved_if_ids", "if_id %d is reserved here but link %s "
                             "(to %s) is allocated it; change routevpn_if_id_base"
                             % (link["if_id"], link["name"], peer.name))
            ifname = _interface_name(gw, peer)
            if len(ifname) > IFNAMSIZ:
                problems.add(gw.name, "routevpn_interface_prefix", "interface %s (link %s) is longer than %d "
                             "characters" % (ifname, link["name"], IFNAMSIZ))
            key = (gw.name, ifname)
            if key in used:
                problems.add(gw.name, "routevpn_interface_prefix", "interface %s is planned for links %s and %s"
                             % (ifname, used[key], link["name"]))
            used[key] = link["name"]
