# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health of each link of the mesh, from what a gateway reports about it.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O: playbooks/verify.yml collects
the raw outputs on each gateway (``swanctl --list-sas`` or libreswan's
``ipsec whack --showstates``, the ``xfrm_policy_facts`` module, ``birdc show protocols all``, ``ip -j route``)
and the ``mesh_health`` filter hands them here, so the per-link judgement is
tested natively against captured outputs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

IKE_UP = "ESTABLISHED"
CHILD_UP = "INSTALLED"
BGP_UP = "Established"


class HealthInputError(ValueError):
    """An output could not be read; the message names which."""


# -- swanctl --list-sas (vici messages, --raw or --pretty) -------------------------
_RAW_TOKEN = re.compile(
    r"\s*(?:(?P<close>\})"
    r"|(?P<open>[^\s{}=\[\]]+(?: [^\s{}=\[\]]+)*) ?\{"
    r"|(?P<key>[^\s{}=]+)=(?:\[(?P<list>[^\]]*)\]|(?P<value>[^\s}]*)))"
)


def _raw_tokens(text):
    position = 0
    text = text.strip()
    while position < len(text):
        match = _RAW_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise HealthInputError("swanctl output: cannot read %r" % text[position:position + 40])
        position = match.end()
        if match.group("close"):
            yield ("close",)
        elif match.group("open") is not None:
            yield ("open", match.group("open"))
        elif match.group("list") is not None:
            yield ("kv", match.group("key"), match.group("list").split())
        else:
            yield ("kv", match.group("key"), match.group("value"))


def _pretty_tokens(text):
    # One element per line, so values may hold spaces (DN identities do).
    items, key = None, None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if items is not None:
            if line == "]":
                yield ("kv", key, items)
                items = None
            else:
                items.append(line)
            continue
        if line == "}":
            yield ("close",)
        elif line.endswith("{") and " = " not in line:
            yield ("open", line[:-1].strip())
        elif " = " in line:
            key, value = line.split(" = ", 1)
            if value == "[":
                items = []
            elif value.startswith("[") and value.endswith("]"):
                yield ("kv", key, value[1:-1].split())
            else:
                yield ("kv", key, value)
        else:
            raise HealthInputError("swanctl output: cannot read line %r" % line)


def parse_vici_dump(text):
    """The messages of a swanctl command (``--raw`` or ``--pretty``) as [(name, section dict)]."""
    pretty = any(line.startswith((" ", "\t")) for line in text.splitlines())
    tokens = _pretty_tokens(text) if pretty else _raw_tokens(text)
    messages, stack = [], []
    for token in tokens:
        if token[0] == "open":
            section = {}
            if stack:
                stack[-1][token[1]] = section
            else:
                messages.append((token[1], section))
            stack.append(section)
        elif token[0] == "close":
            if not stack:
                raise HealthInputError("swanctl output: unbalanced '}'")
            stack.pop()
        else:
            if not stack:
                raise HealthInputError("swanctl output: %s outside of a message" % token[1])
            stack[-1][token[1]] = token[2]
    if stack:
        raise HealthInputError("swanctl output: truncated (a section is not closed)")
    return messages


def ike_sas(text):
    """IKE_SAs by connection name (a list each: rekeying can hold two at once)."""
    found = {}
    for name, message in parse_vici_dump(text or ""):
        if name != "list-sa event":
            continue
        for connection, sa in message.items():
            found.setdefault(connection, []).append(sa)
    return found


# -- ipsec whack --showstates (libreswan 4: "000 " before each line, states STATE_V2_...) --
_PLUTO_STATE = re.compile(r'^(?:\d{3} )?#(?P<serial>\d+): "(?P<conn>[^"]+)"\S*\s+(?:STATE_V2_)?(?P<state>[A-Z][A-Z0-9_]+)\b')
PLUTO_IKE_UP = "ESTABLISHED_IKE_SA"
PLUTO_CHILD_UP = "ESTABLISHED_CHILD_SA"


def pluto_states(text):
    """libreswan's states by connection name: a list of (serial, state) each."""
    found = {}
    for line in (text or "").splitlines():
        match = _PLUTO_STATE.match(line.strip())
        if match:
            found.setdefault(match.group("conn"), []).append((int(match.group("serial")), match.group("state")))
    return found


# -- birdc show protocols all -------------------------------------------------------
_ROUTES = re.compile(r"Routes:\s+(\d+) imported, (?:(\d+) filtered, )?(\d+) exported(?:, (\d+) preferred)?")


def bird_protocols(text):
    """Protocols of ``birdc show protocols all``: name, proto, state, info, and for BGP the neighbour and routes."""
    protocols = []
    current, channel = None, None
    for line in (text or "").splitlines():
        if not line.strip() or line.startswith(("BIRD ", "Name ")):
            continue
        if not line[0].isspace():
            fields = line.split(None, 5)
            if len(fields) < 4:
                raise HealthInputError("birdc output: cannot read protocol line %r" % line)
            current = {"name": fields[0], "proto": fields[1], "table": fields[2], "state": fields[3],
                       "info": fields[5].strip() if len(fields) > 5 else "", "bgp_state": None,
                       "neighbor_address": None, "neighbor_as": None, "last_error": None, "channels": {}}
            channel = None
            protocols.append(current)
            continue
        if current is None:
            continue
        key, _sep, value = line.strip().partition(":")
        value = value.strip()
        if key.startswith("Channel "):
            channel = current["channels"].setdefault(key.split()[1], {"imported": 0, "exported": 0})
        elif key == "BGP state":
            current["bgp_state"] = value
        elif key == "Neighbor address":
            current["neighbor_address"] = value.split("%")[0].strip()
        elif key == "Neighbor AS":
            current["neighbor_as"] = int(value)
        elif key == "Last error":
            current["last_error"] = value
        elif key == "Routes" and channel is not None:
            match = _ROUTES.match(line.strip())
            if match:
                channel["imported"], channel["exported"] = int(match.group(1)), int(match.group(3))
    return protocols


# -- ip -j route ----------------------------------------------------------------------
def kernel_routes(*tables):
    """Routes of ``ip -j route`` lists as {dst, protocol, devices} (every next hop's device)."""
    routes = []
    for table in tables:
        for route in table or []:
            devices = [hop.get("dev") for hop in route.get("nexthops", [])] or [route.get("dev")]
            routes.append({"dst": route.get("dst"), "protocol": route.get("protocol"),
                           "devices": [device for device in devices if device]})
    return routes


def _network(text):
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text  # "default", "multicast ..." and the like stay as they are


# -- the judgement ------------------------------------------------------------------
def _hex_id(value):
    try:
        return int(str(value).split("/", 1)[0], 16)
    except ValueError:
        return None


def _ike(end, sas, ike_checked):
    if not ike_checked:
        return "n/a", "n/a", None, []
    candidates = sas.get(end["connection"], [])
    if not candidates:
        return "none", "none", False, ["no IKE_SA %s" % end["connection"]]
    best = sorted(candidates, key=lambda sa: sa.get("state") != IKE_UP)[0]
    problems = [] if best.get("state") == IKE_UP else ["IKE_SA %s is %s" % (end["connection"], best.get("state"))]
    children = [child for sa in candidates for child in (sa.get("child-sas") or {}).values()]
    installed = [child for child in children if child.get("state") == CHILD_UP]
    if not installed:
        states = sorted(set(child.get("state", "?") for child in children))
        problems.append("no CHILD_SA installed (%s)" % (", ".join(states) or "none"))
        return best.get("state"), "/".join(states) or "none", None, problems
    keys = ("if-id-in", "if-id-out") if end["tunnel_type"] == "xfrm" else ("mark-in", "mark-out")
    want = end["if_id"] if end["tunnel_type"] == "xfrm" else end["mark"]
    bound = [child for child in installed if all(_hex_id(child.get(key, "0")) == want for key in keys)]
    if not bound:
        seen = ", ".join("%s=%s" % (key, installed[0].get(key)) for key in keys)
        problems.append("CHILD_SA %s not bound to %d (%s)" % (installed[0].get("name", "?"), want, seen))
    return best.get("state"), CHILD_UP, bool(bound), problems


def _ike_pluto(end, states):
    """An end held by libreswan: one conn per inner family, both on the link's one IKE SA."""
    conns = ["%s-%s" % (end["connection"], family) for family in ("v4", "v6")]
    seen = dict((conn, [state for _serial, state in states.get(conn, [])]) for conn in conns)
    if not any(seen.values()):
        return "none", "none", None, ["no IKE_SA %s" % " or ".join(conns)]
    problems = []
    ike_up = any(PLUTO_IKE_UP in found for found in seen.values())
    if not ike_up:
        problems.append("no IKE_SA established for %s (pluto: %s)" % (
            end["connection"], ", ".join(sorted(set(state for found in seen.values() for state in found)))))
    down = [conn for conn in conns if PLUTO_CHILD_UP not in seen[conn]]
    if down:
        problems.append("no CHILD_SA established for %s" % ", ".join(down))
    child = "none" if len(down) == len(conns) else "partial" if down else CHILD_UP
    # pluto does not report if_id or mark: the kernel's policies (_policies) say whether they are bound.
    return IKE_UP if ike_up else "down", child, None, problems


def _policies(end, policies):
    attribute, want = ("if_id", end["if_id"]) if end["tunnel_type"] == "xfrm" else ("mark", end["mark"])
    directions = set(policy.get("direction") for policy in policies or [] if policy.get(attribute) == want)
    missing = [direction for direction in ("in", "out") if direction not in directions]
    if missing:
        return False, ["no XFRM policy with %s %d for %s" % (attribute, want, " and ".join(missing))]
    return True, []


def _bgp(end, protocols):
    neighbours = set(str(ipaddress.ip_address(end[key])) for key in ("peer_address_v6", "peer_address_v4")
                     if end.get(key))
    sessions = [p for p in protocols if p["proto"] == "BGP" and p["neighbor_address"]
                and str(ipaddress.ip_address(p["neighbor_address"])) in neighbours]
    if not sessions:
        return "none", 0, ["no BGP session with %s" % " or ".join(sorted(neighbours))]
    problems = ["BGP %s is %s%s" % (s["name"], s["bgp_state"] or s["state"],
                                    " (%s)" % s["last_error"] if s["last_error"] else "")
                for s in sessions if s["bgp_state"] != BGP_UP]
    states = sorted(set(s["bgp_state"] or s["state"] for s in sessions))
    imported = sum(channel["imported"] for s in sessions for channel in s["channels"].values())
    return "/".join(states), imported, problems


def _prefixes(end, routes, site_prefixes, require_prefixes):
    via = sorted(set(_network(route["dst"]) for route in routes
                     if route["protocol"] == "bird" and end["interface"] in route["devices"]))
    missing = [prefix for prefix in site_prefixes if _network(prefix) not in via]
    problems = []
    if missing:
        problems.append("%s not routed via %s" % (", ".join(missing), end["interface"]))
    elif require_prefixes and not via:
        problems.append("no route learned via %s" % end["interface"])
    return via, missing, problems


def link_health(ends, sites=None, swanctl=None, policies=None, birdc=None, routes=None, require_prefixes=True,
                pluto=None):
    """One row per link end of one gateway.

    ends: the gateway's ends (plan ``hosts[gateway]``); sites: the plan's
    ``sites`` (static prefixes expected from each peer site); swanctl: the
    text of ``swanctl --list-sas``, pluto: the text of libreswan's ``ipsec
    whack --showstates`` (None where that daemon does not run: the IKE
    columns read n/a); policies: ``routevpn_xfrm_policies``; birdc: the text
    of ``birdc show protocols all``; routes: ``ip -j route`` lists of the
    private namespace (both families).
    """
    sas = ike_sas(swanctl) if swanctl is not None else {}
    states = pluto_states(pluto) if pluto is not None else {}
    protocols = bird_protocols(birdc)
    table = kernel_routes(*(routes or []))
    rows = []
    for end in ends:
        if end.get("ike_daemon", "strongswan") == "libreswan" and pluto is not None:
            ike, child, child_bound, problems = _ike_pluto(end, states)
        else:
            ike_checked = swanctl is not None and end.get("ike_daemon", "strongswan") == "strongswan"
            ike, child, child_bound, problems = _ike(end, sas, ike_checked)
        policy_ok, policy_problems = _policies(end, policies)
        bgp, imported, bgp_problems = _bgp(end, protocols)
        expected = ((sites or {}).get(end["peer_site"]) or {}).get("prefixes") or []
        via, missing, prefix_problems = _prefixes(end, table, expected, require_prefixes)
        problems += policy_problems + bgp_problems + prefix_problems
        rows.append({
            "gateway": end["gateway"], "peer": end["peer"], "link": end["link"], "interface": end["interface"],
            "ike": ike, "child": child, "if_id": end["if_id"] if end["tunnel_type"] == "xfrm" else end["mark"],
            "if_id_ok": policy_ok and child_bound is not False, "bgp": bgp, "imported": imported,
            "prefixes": via, "missing_prefixes": missing, "ok": not problems, "problems": problems,
        })
    return rows


COLUMNS = (("gateway", "gateway"), ("peer", "peer"), ("link", "link"), ("IKE", "ike"), ("CHILD", "child"),
           ("if_id", "if_id"), ("BGP", "bgp"), ("prefixes", "prefixes"), ("status", "ok"))


def _cell(row, key):
    value = row[key]
    if key == "if_id":
        return "%d %s" % (value, "ok" if row["if_id_ok"] else "BAD")
    if key == "prefixes":
        return "%d%s" % (len(value), " (missing %d)" % len(row["missing_prefixes"]) if row["missing_prefixes"] else "")
    if key == "ok":
        return "ok" if value else "DOWN"
    return str(value)


def health_table(rows):
    """The rows as aligned text lines: a header, one line per link end, then each problem."""
    cells = [[title for title, _key in COLUMNS]] + [[_cell(row, key) for _title, key in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    for row in rows:
        for problem in row["problems"]:
            lines.append("%s -> %s: %s" % (row["gateway"], row["peer"], problem))
    healthy = sum(1 for row in rows if row["ok"])
    lines.append("%d of %d link ends healthy" % (healthy, len(rows)))
    return lines
