# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh plan: inventory in, every link of the mesh out.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  It is pure Python (no Ansible imports, no I/O) so that
the planner can be tested in milliseconds and reused by filters, lookups and
benchmarks alike.  docs/plan.md describes the allocation rules and the output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import ipaddress
import re

PLAN_VERSION = 1
GATEWAY_ID_MAX = 65535
IF_ID_MAX = 0xFFFFFFFF
IFNAMSIZ = 15
DEFAULTS = {
    "routevpn_tunnel_type": "xfrm",
    "routevpn_ike_daemon": "strongswan",
    "routevpn_auth": "psk",
    "routevpn_if_id_base": 4096,
    "routevpn_interface_prefix": "rv-",
}
TUNNEL_TYPES = ("xfrm", "vti")
IKE_DAEMONS = ("strongswan", "libreswan")
AUTH_METHODS = ("psk", "pubkey")
PSK_MIN_LENGTH = 16
PSK_CONTEXT = "routevpn.mesh/psk/v1/"
# Settings that both ends of a link must agree on, so they must be equal on
# every gateway (normally they are group variables).
MESH_WIDE = (
    "routevpn_sites",
    "routevpn_transfer_prefix_v6",
    "routevpn_transfer_prefix_v4",
    "routevpn_if_id_base",
    "routevpn_psk_master",
    "routevpn_psk_overrides",
)
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


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


def link_psk(master, name, overrides=None):
    """The PSK of link ``name``: an explicit override wins over the derived key."""
    if overrides and name in overrides:
        return overrides[name]
    if not master:
        raise ValueError("routevpn_psk_master is not set and link %s has no override" % name)
    return derive_psk(master, name)


class _Problems:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append("%s: %s" % (where, message))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value):
    """Inventory values arrive as int or as digit strings (INI inventories)."""
    if _is_int(value):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _parse_network(text, problems, where, variable):
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError as exc:
        problems.add(where, "%s: %r is not a network prefix (%s)" % (variable, text, exc))
        return None


def _parse_address(text, problems, where, variable):
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        problems.add(where, "%s: %r is not an IP address" % (variable, text))
        return None


class _Site:
    def __init__(self, name, asn, prefixes):
        self.name = name
        self.asn = asn
        self.prefixes = prefixes
        self.gateways = []


class _Gateway:
    def __init__(self, name):
        self.name = name
        self.site = None
        self.gateway_id = None
        self.public = {}  # family -> ip_address
        self.tunnel_type = None
        self.ike_daemon = None
        self.auth = None
        self.ike_id = name
        self.router_id = None
        self.router_id_explicit = False
        self.interface_prefix = None
        self.reserved_if_ids = set()


def _mesh_wide_settings(hostvars, names, problems):
    """Read the settings both ends of a link share; they must be equal everywhere."""
    settings = {}
    for variable in MESH_WIDE:
        first_host, first_value = None, None
        for name in names:
            value = hostvars[name].get(variable)
            if first_host is None:
                first_host, first_value = name, value
            elif value != first_value:
                shown = "<secret>" if "psk" in variable else repr(value)
                problems.add(
                    name,
                    "%s %s differs from %s's; it is mesh-wide (set it once, in group_vars)"
                    % (variable, shown, first_host),
                )
        settings[variable] = first_value
    return settings


def _read_sites(raw_sites, problems):
    where = "routevpn_sites"
    sites = {}
    if not isinstance(raw_sites, dict) or not raw_sites:
        problems.add("all", "routevpn_sites: missing or empty; it must map each site name to {asn, prefixes}")
        return sites
    asn_owner = {}
    for site_name in sorted(raw_sites):
        spec = raw_sites[site_name]
        label = "%s.%s" % (where, site_name)
        if not isinstance(spec, dict):
            problems.add("all", "%s: must be a dict with asn (and optional prefixes)" % label)
            continue
        asn = _as_int(spec.get("asn"))
        if asn is None or not 1 <= asn <= 4294967295:
            problems.add("all", "%s.asn: %r is not an AS number (1..4294967295)" % (label, spec.get("asn")))
            asn = None
        elif asn in asn_owner:
            problems.add(
                "all", "%s.asn: %d is already the AS of site %s; each site needs its own AS for eBGP"
                % (label, asn, asn_owner[asn])
            )
        else:
            asn_owner[asn] = site_name
        prefixes = []
        raw_prefixes = spec.get("prefixes") or []
        if not isinstance(raw_prefixes, list):
            problems.add("all", "%s.prefixes: must be a list of prefixes" % label)
            raw_prefixes = []
        for text in raw_prefixes:
            network = _parse_network(text, problems, "all", label + ".prefixes")
            if network is not None:
                prefixes.append(network)
        sites[site_name] = _Site(site_name, asn, prefixes)
    return sites


def _read_gateway(name, hv, sites, problems):
    gw = _Gateway(name)

    def setting(variable):
        value = hv.get(variable)
        return DEFAULTS.get(variable) if value is None else value

    raw_id = hv.get("routevpn_gateway_id")
    gateway_id = _as_int(raw_id)
    if raw_id is None:
        problems.add(name, "routevpn_gateway_id: missing (a unique, stable number 1..%d)" % GATEWAY_ID_MAX)
    elif gateway_id is None or not 1 <= gateway_id <= GATEWAY_ID_MAX:
        problems.add(name, "routevpn_gateway_id: %r is not a number 1..%d" % (raw_id, GATEWAY_ID_MAX))
    else:
        gw.gateway_id = gateway_id

    site = hv.get("routevpn_site")
    if site is None:
        problems.add(name, "routevpn_site: missing")
    elif site not in sites:
        problems.add(name, "routevpn_site: unknown site %r (routevpn_sites has: %s)"
                     % (site, ", ".join(sorted(sites)) or "none"))
    else:
        gw.site = site

    raw_public = hv.get("routevpn_public_address")
    if raw_public is None:
        problems.add(name, "routevpn_public_address: missing (the IKE endpoint, IPv4 or IPv6)")
    else:
        for text in raw_public if isinstance(raw_public, list) else [raw_public]:
            address = _parse_address(text, problems, name, "routevpn_public_address")
            if address is None:
                continue
            family = "ipv%d" % address.version
            if family in gw.public:
                problems.add(name, "routevpn_public_address: two %s addresses (%s, %s); give at most one per family"
                             % (family, gw.public[family], address))
            else:
                gw.public[family] = address

    for attribute, variable, allowed in (
        ("tunnel_type", "routevpn_tunnel_type", TUNNEL_TYPES),
        ("ike_daemon", "routevpn_ike_daemon", IKE_DAEMONS),
        ("auth", "routevpn_auth", AUTH_METHODS),
    ):
        value = setting(variable)
        if value not in allowed:
            problems.add(name, "%s: %r is not one of %s" % (variable, value, ", ".join(allowed)))
        else:
            setattr(gw, attribute, value)

    gw.ike_id = str(hv.get("routevpn_ike_id") or name)
    router_id = hv.get("routevpn_router_id")
    if router_id is not None:
        address = _parse_address(router_id, problems, name, "routevpn_router_id")
        if address is not None and address.version != 4:
            problems.add(name, "routevpn_router_id: %s must be written as an IPv4 address" % router_id)
        elif address is not None:
            gw.router_id = str(address)
            gw.router_id_explicit = True
    elif gw.gateway_id is not None:
        gw.router_id = str(ipaddress.IPv4Address(gw.gateway_id))

    prefix = setting("routevpn_interface_prefix")
    if not isinstance(prefix, str) or not _IFNAME_RE.match(prefix):
        problems.add(name, "routevpn_interface_prefix: %r is not usable in an interface name" % (prefix,))
    else:
        gw.interface_prefix = prefix

    reserved = hv.get("routevpn_reserved_if_ids") or []
    for value in reserved if isinstance(reserved, list) else [reserved]:
        number = _as_int(value)
        if number is None:
            problems.add(name, "routevpn_reserved_if_ids: %r is not a number" % (value,))
        else:
            gw.reserved_if_ids.add(number)

    _check_private_interfaces(name, hv.get("routevpn_private_interfaces"), problems)
    return gw


def _check_private_interfaces(name, interfaces, problems):
    variable = "routevpn_private_interfaces"
    if interfaces is None:
        return
    if not isinstance(interfaces, list):
        problems.add(name, "%s: must be a list of interface names or {name, addresses} dicts" % variable)
        return
    for item in interfaces:
        ifname, addresses = (item.get("name"), item.get("addresses") or []) if isinstance(item, dict) else (item, [])
        if not isinstance(ifname, str) or not _IFNAME_RE.match(ifname) or len(ifname) > IFNAMSIZ:
            problems.add(name, "%s: %r is not a valid interface name (at most %d characters)"
                         % (variable, ifname, IFNAMSIZ))
        for text in addresses:
            try:
                ipaddress.ip_interface(str(text))
                if "/" not in str(text):
                    raise ValueError
            except ValueError:
                problems.add(name, "%s: %s: %r is not an address with a prefix length"
                             % (variable, ifname, text))


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
            problems.add("all", "%s: %s is too small for even one /%d link"
                         % (self.variable, self.network, self.link_length))
            return False
        overflow = [link for link in links if link["index"] >= self.capacity]
        if overflow:
            worst = max(overflow, key=lambda link: link["index"])
            problems.add(
                "all",
                "%s: %s holds %d /%d links (indices 0..%d) but %d link(s) need more, up to link %s "
                "(%s) with index %d; use a shorter prefix or smaller routevpn_gateway_id values"
                % (self.variable, self.network, self.capacity, self.link_length, self.capacity - 1,
                   len(overflow), worst["name"], " <-> ".join(worst["gateways"]), worst["index"]),
            )
            return False
        return True


def _transfer_pools(settings, problems):
    pools = {}
    for family, variable in (("v6", "routevpn_transfer_prefix_v6"), ("v4", "routevpn_transfer_prefix_v4")):
        text = settings.get(variable)
        if not text:
            continue
        network = _parse_network(text, problems, "all", variable)
        if network is None:
            continue
        if "v%d" % network.version != family:
            problems.add("all", "%s: %s is not an IP%s prefix" % (variable, text, family))
            continue
        pools[family] = _TransferPool(variable, network)
    if not pools and not any("routevpn_transfer_prefix" in p for p in problems.items):
        problems.add("all", "routevpn_transfer_prefix_v6: missing (and no routevpn_transfer_prefix_v4); "
                     "the links need transfer addresses")
    return pools


def _interface_name(gw, peer):
    # Every end's device is the collection's (role tunnels), whatever the IKE
    # daemon: libreswan 5.2's ipsec-interface-managed=no leaves the XFRM
    # interface to it, as strongSwan does.
    return "%s%d" % (gw.interface_prefix, peer.gateway_id)


def _end(gw, peer, link, sites, family, pools_addresses):
    end = {
        "link": link["name"],
        "gateway": gw.name,
        "peer": peer.name,
        "site": gw.site,
        "peer_site": peer.site,
        "interface": _interface_name(gw, peer),
        "connection": "%s%d" % (gw.interface_prefix, peer.gateway_id),
        "tunnel_type": gw.tunnel_type,
        "ike_daemon": gw.ike_daemon,
        "auth": gw.auth,
        "if_id": link["if_id"],
        "mark": link["if_id"],
        "local_asn": sites[gw.site].asn,
        "peer_asn": sites[peer.site].asn,
        "local_ike_address": str(gw.public[family]),
        "remote_ike_address": str(peer.public[family]),
        "local_id": gw.ike_id,
        "remote_id": peer.ike_id,
        "router_id": gw.router_id,
    }
    for version in ("v6", "v4"):
        mine, theirs = pools_addresses.get(version, (None, None))
        end["address_" + version] = mine
        end["peer_address_" + version] = theirs
    return end


def plan(hostvars, gateway_names):
    """Plan the mesh of ``gateway_names``; ``hostvars`` maps each name to its variables.

    Returns the plan dict of docs/plan.md; raises PlanError listing every
    problem of the inventory.
    """
    problems = _Problems()
    names = sorted(set(gateway_names or []))
    if not names:
        raise PlanError(["all: no gateways (the group routevpn_gateways is empty or missing)"])
    missing = [name for name in names if name not in hostvars]
    if missing:
        raise PlanError(["%s: not in the inventory's hostvars" % name for name in missing])

    settings = _mesh_wide_settings(hostvars, names, problems)
    sites = _read_sites(settings["routevpn_sites"], problems)
    gateways = [_read_gateway(name, hostvars[name], sites, problems) for name in names]
    pools = _transfer_pools(settings, problems)
    if_id_base = _as_int(settings["routevpn_if_id_base"] if settings["routevpn_if_id_base"] is not None
                         else DEFAULTS["routevpn_if_id_base"])
    if if_id_base is None or not 1 <= if_id_base <= IF_ID_MAX:
        problems.add("all", "routevpn_if_id_base: %r is not a number 1..%d"
                     % (settings["routevpn_if_id_base"], IF_ID_MAX))
        if_id_base = None

    _check_unique(gateways, problems)
    if any(gw.auth == "psk" for gw in gateways):
        _check_psk_settings(settings, problems)

    planned = [gw for gw in gateways if gw.gateway_id is not None and gw.site is not None and gw.public]
    links = []
    for i, gw_a in enumerate(planned):
        for gw_b in planned[i + 1:]:
            if gw_a.site == gw_b.site:
                continue
            lo, hi = sorted((gw_a, gw_b), key=lambda gw: gw.gateway_id)
            if lo.gateway_id == hi.gateway_id:
                continue  # reported as a duplicate id already
            index = link_index(lo.gateway_id, hi.gateway_id)
            links.append({
                "name": link_name(lo.gateway_id, hi.gateway_id),
                "index": index,
                "gateways": [lo.name, hi.name],
                "if_id": None if if_id_base is None else if_id_base + index,
                "_ends": (lo, hi),
            })
    links.sort(key=lambda link: link["index"])

    usable_pools = {family: pool for family, pool in pools.items() if pool.check(links, problems)}
    _check_links(links, problems)
    _check_overrides(settings, links, problems)
    if problems.items:
        raise PlanError(problems.items)

    hosts = {gw.name: [] for gw in gateways}
    for link in links:
        lo, hi = link.pop("_ends")
        family = "ipv6" if "ipv6" in lo.public and "ipv6" in hi.public else "ipv4"
        addresses = {}
        for version, pool in usable_pools.items():
            subnet = pool.subnet(link["index"])
            first, second = subnet[0], subnet[1]
            addresses[version] = subnet
            link["transfer_" + version] = str(subnet)
            link.setdefault("_pairs", {})[version] = (
                ("%s/%d" % (first, subnet.prefixlen), str(second)),
                ("%s/%d" % (second, subnet.prefixlen), str(first)),
            )
        for version in ("v6", "v4"):
            link.setdefault("transfer_" + version, None)
        pairs = link.pop("_pairs", {})
        link["ike_family"] = family
        link["ends"] = [
            _end(lo, hi, link, sites, family, {v: p[0] for v, p in pairs.items()}),
            _end(hi, lo, link, sites, family, {v: p[1] for v, p in pairs.items()}),
        ]
        for end in link["ends"]:
            hosts[end["gateway"]].append(end)

    return {
        "version": PLAN_VERSION,
        "sites": {
            site.name: {
                "asn": site.asn,
                "prefixes": [str(p) for p in site.prefixes],
                "gateways": sorted(gw.name for gw in gateways if gw.site == site.name),
            }
            for site in sites.values()
        },
        "gateways": {
            gw.name: {
                "site": gw.site,
                "gateway_id": gw.gateway_id,
                "asn": sites[gw.site].asn,
                "router_id": gw.router_id,
                "ike_daemon": gw.ike_daemon,
                "tunnel_type": gw.tunnel_type,
                "auth": gw.auth,
                "ike_id": gw.ike_id,
                "public_addresses": [str(gw.public[f]) for f in ("ipv6", "ipv4") if f in gw.public],
            }
            for gw in gateways
        },
        "links": links,
        "hosts": hosts,
    }


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
            if value not in owner:
                owner[value] = gw
                continue
            if attribute == "router_id" and not (gw.router_id_explicit or owner[value].router_id_explicit):
                continue  # both derived from one gateway id: reported once, as that id
            problems.add(gw.name, "%s %s is already used by %s" % (variable, value, owner[value].name))
            if attribute == "gateway_id":
                gw.gateway_id = None
    owner = {}
    for gw in gateways:
        for address in gw.public.values():
            if address in owner:
                problems.add(gw.name, "routevpn_public_address %s is already the address of %s"
                             % (address, owner[address]))
            else:
                owner[address] = gw.name


def _check_psk_settings(settings, problems):
    master = settings.get("routevpn_psk_master")
    if not master:
        problems.add("all", "routevpn_psk_master: missing; per-link PSKs derive from it "
                     "(or set routevpn_auth: pubkey)")
    elif not isinstance(master, str) or len(master) < PSK_MIN_LENGTH:
        problems.add("all", "routevpn_psk_master: too short; use at least %d characters "
                     "(e.g. `openssl rand -base64 32`, kept in a vault)" % PSK_MIN_LENGTH)


def _check_overrides(settings, links, problems):
    overrides = settings.get("routevpn_psk_overrides") or {}
    if not isinstance(overrides, dict):
        problems.add("all", "routevpn_psk_overrides: must map link names (e.g. '11-21') to secrets")
        return
    names = set(link["name"] for link in links)
    for name in sorted(overrides):
        if name not in names:
            problems.add("all", "routevpn_psk_overrides: %s is not a link of this mesh" % name)
        elif not isinstance(overrides[name], str) or len(overrides[name]) < PSK_MIN_LENGTH:
            problems.add("all", "routevpn_psk_overrides: the secret of link %s is shorter than %d characters"
                         % (name, PSK_MIN_LENGTH))


def _check_links(links, problems):
    used = {}
    for link in links:
        lo, hi = link["_ends"]
        if not set(lo.public) & set(hi.public):
            problems.add(
                "%s, %s" % (lo.name, hi.name),
                "routevpn_public_address: no address family in common (%s is %s, %s is %s); "
                "give one of them an address of the other's family"
                % (lo.name, "/".join(sorted(lo.public)), hi.name, "/".join(sorted(hi.public))),
            )
        if lo.auth and hi.auth and lo.auth != hi.auth:
            # Each end's configuration names one method for both sides: a psk
            # end would wait for a PSK the certificate end never sends.
            problems.add(
                "%s, %s" % (lo.name, hi.name),
                "routevpn_auth: link %s joins %s (%s) and %s (%s); both ends of a link must use the same "
                "method" % (link["name"], lo.name, lo.auth, hi.name, hi.auth),
            )
        if link["if_id"] is None:
            continue
        if link["if_id"] > IF_ID_MAX:
            problems.add("all", "link %s: if_id %d exceeds %d; lower routevpn_if_id_base"
                         % (link["name"], link["if_id"], IF_ID_MAX))
        for gw, peer in ((lo, hi), (hi, lo)):
            if link["if_id"] in gw.reserved_if_ids:
                problems.add(gw.name, "routevpn_reserved_if_ids: if_id %d is reserved here but link %s "
                             "(to %s) is allocated it; change routevpn_if_id_base"
                             % (link["if_id"], link["name"], peer.name))
            if gw.interface_prefix is None:
                continue
            ifname = _interface_name(gw, peer)
            if len(ifname) > IFNAMSIZ:
                problems.add(gw.name, "routevpn_interface_prefix: interface %s (link %s) is longer than %d "
                             "characters" % (ifname, link["name"], IFNAMSIZ))
            key = (gw.name, ifname)
            if key in used:
                problems.add(gw.name, "interface %s is planned for links %s and %s"
                             % (ifname, used[key], link["name"]))
            used[key] = link["name"]
