"""A peer the collection does not manage, set up from its generic sheet alone.

routevpn.mesh renders NAME.txt for an external peer's operator (the
"generic" platform of routevpn_external_peers): every value of every tunnel,
then the routing.  The lab plays that operator with plain strongSwan and
BIRD: this reads the sheet, as a person would, and writes what such a peer
runs, so that the lab proves the sheet carries everything a peer needs.

    python3 lab/lib/external_peer.py SHEET OUTDIR [--interface-prefix xp]

OUTDIR receives swanctl.conf (mode 0600: it holds the pre-shared keys),
bird.conf and setup.sh (the XFRM interfaces, their inside addresses, a
dummy LAN holding the first address of each prefix the peer may announce,
forwarding on).  The peer answers: the Linux gateways start and re-key
every tunnel, so its side never initiates and its SAs live a tenth longer
than the lifetimes the sheet gives.

Only Python's standard library: the lab runs it on the controller.
"""

import argparse
import base64
import ipaddress
import os
import re
import sys

_SECTION = re.compile(r"^\[(?P<kind>tunnel|routing)(?: (?P<link>[^:\]]+))?: (?P<rest>[^\]]*)\]$")
_ROW = re.compile(r"^  (?P<label>[^:]+):\s+(?P<value>.*)$")
_INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class SheetError(ValueError):
    """The sheet lacks a value a peer needs, or holds one it cannot use."""


def parse(text):
    """{"tunnels": [{label: [values]}...], "routing": {label: [values]}} with each tunnel's "link"."""
    sheet = {"tunnels": [], "routing": None}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section:
            current = {"_line": number}
            if section.group("kind") == "tunnel":
                current["link"] = section.group("link")
                sheet["tunnels"].append(current)
            else:
                sheet["routing"] = current
            continue
        row = _ROW.match(line)
        if current is None or not row:
            raise SheetError("line %d: neither a section header nor a '  label: value' row: %r" % (number, line))
        current.setdefault(row.group("label"), []).append(row.group("value").strip())
    if not sheet["tunnels"] or sheet["routing"] is None:
        raise SheetError("the sheet has no tunnel section or no routing section")
    return sheet


def _one(section, label):
    values = section.get(label)
    if not values:
        raise SheetError("%s: no %r" % (section.get("link", "routing"), label))
    return values[0]


def _before(text, separator):
    return text.split(separator, 1)[0].strip()


def _identity(text):
    # "v1-1 (FQDN)", "192.0.2.1 (IP address)": strongSwan takes the value itself and finds its type.
    return re.sub(r" \([^)]*\)$", "", text)


def _seconds(text):
    found = re.match(r"^(?:every )?([0-9]+) s\b", text)
    if not found:
        raise SheetError("%r is not a number of seconds" % text)
    return int(found.group(1))


def tunnels(sheet, prefix="xp"):
    """Each tunnel's values, as the peer's own configuration takes them."""
    result = []
    for index, section in enumerate(sheet["tunnels"]):
        link = section["link"]
        name = prefix + link.replace("-", "")
        if not _INTERFACE_NAME.match(name):
            raise SheetError("%s: %r is not an interface name" % (link, name))
        bgp = _one(section, "BGP")
        asns = re.match(r"^local AS ([0-9]+), neighbor AS ([0-9]+), hold time ([0-9]+) s, keepalive ([0-9]+) s$", bgp)
        if not asns:
            raise SheetError("%s: BGP row %r" % (link, bgp))
        bfd = _one(section, "BFD")
        bfd_timers = re.match(r"^yes \(([0-9]+) ms, multiplier ([0-9]+)\)$", bfd)
        if bfd != "no" and not bfd_timers:
            raise SheetError("%s: BFD row %r" % (link, bfd))
        inside = {}
        for family in ("4", "6"):
            mine = section.get("Inside IPv%s, this side" % family)
            theirs = section.get("Inside IPv%s, Linux side" % family)
            if mine and theirs:
                inside["v" + family] = (ipaddress.ip_interface(mine[0]), ipaddress.ip_interface(theirs[0]).ip)
        sessions = []
        for family in ("4", "6"):
            for value in section.get("BGP session IPv%s" % family, []):
                found = re.match(r"^from (\S+) to neighbor (\S+)$", value)
                if not found:
                    raise SheetError("%s: BGP session row %r" % (link, value))
                sessions.append(("v" + family, found.group(1), found.group(2)))
        children = []
        for label, values in section.items():
            if label.startswith("CHILD SA ") and label != "CHILD SA lifetime":
                selectors = re.match(r"^traffic selectors (.+?) both ways", values[0])
                if not selectors:
                    raise SheetError("%s: %s row %r" % (link, label, values[0]))
                children.append((label[len("CHILD SA "):], [s.strip() for s in selectors.group(1).split(",")]))
        psk = _one(section, "Pre-shared key")
        result.append({
            "link": link,
            "interface": name,
            "if_id": 100 + index,
            "gateway": _before(_one(section, "Linux gateway"), " "),
            "local_ike": _one(section, "Local IKE address"),
            "remote_ike": _one(section, "Remote IKE address"),
            "local_id": _identity(_one(section, "Local identity")),
            "remote_id": _identity(_one(section, "Remote identity")),
            "psk": psk,
            "ike_proposals": [_before(value, " = ") for value in section.get("IKE proposal", [])],
            "esp_proposals": [_before(value, " = ") for value in section.get("ESP proposal", [])],
            "ike_lifetime": _seconds(_one(section, "IKE SA lifetime")),
            "child_lifetime": _seconds(_one(section, "CHILD SA lifetime")),
            "dpd": _seconds(_one(section, "Dead peer detection")),
            "children": children,
            "inside": inside,
            "local_asn": int(asns.group(1)),
            "neighbor_asn": int(asns.group(2)),
            "hold_time": int(asns.group(3)),
            "keepalive": int(asns.group(4)),
            "sessions": sessions,
            "bfd": (int(bfd_timers.group(1)), int(bfd_timers.group(2))) if bfd_timers else None,
        })
        if not result[-1]["ike_proposals"] or not result[-1]["esp_proposals"] or not children or not sessions:
            raise SheetError("%s: no IKE proposal, ESP proposal, CHILD SA or BGP session" % link)
    return result


def routing(sheet):
    section = sheet["routing"]
    announce = _one(section, "May announce")
    own = [] if announce.startswith("site ") else [ipaddress.ip_network(p.strip()) for p in announce.split(",")]
    receive = []
    for value in section.get("Will receive", []):
        found = re.match(r"^(\S+) \(AS ([0-9]+)\): (.*)$", value)
        if not found:
            raise SheetError("routing: Will receive row %r" % value)
        prefixes = [] if found.group(3).startswith("any route") else [
            ipaddress.ip_network(p.strip()) for p in found.group(3).split(",")]
        receive.append((found.group(1), int(found.group(2)), prefixes))
    return {"router_id": _one(section, "Router id"), "own": own, "receive": receive}


def _conf_name(link):
    return "t" + link.replace("-", "_")


def swanctl_conf(links):
    lines = ["# Written by lab/lib/external_peer.py from the peer's generic sheet.", "connections {"]
    for link in links:
        name = _conf_name(link["link"])
        lines += [
            "  %s {" % name,
            "    version = 2",
            "    local_addrs = %s" % link["local_ike"],
            "    remote_addrs = %s" % link["remote_ike"],
            "    proposals = %s" % ",".join(link["ike_proposals"]),
            "    dpd_delay = %ds" % link["dpd"],
            # The Linux end re-keys: this side never does (its CHILD_SAs expire a tenth after the lifetime).
            "    rekey_time = 0",
            "    reauth_time = 0",
            "    mobike = no",
            "    if_id_in = %d" % link["if_id"],
            "    if_id_out = %d" % link["if_id"],
            '    local { auth = psk\n      id = "%s"\n    }' % link["local_id"],
            '    remote { auth = psk\n      id = "%s"\n    }' % link["remote_id"],
            "    children {",
        ]
        for child, selectors in link["children"]:
            lines += [
                "      %s {" % _conf_name(child),
                "        local_ts = %s" % ",".join(selectors),
                "        remote_ts = %s" % ",".join(selectors),
                "        esp_proposals = %s" % ",".join(link["esp_proposals"]),
                "        rekey_time = 0",
                "        life_time = %ds" % (link["child_lifetime"] + link["child_lifetime"] // 10),
                "        if_id_in = %d" % link["if_id"],
                "        if_id_out = %d" % link["if_id"],
                "        start_action = none",
                "        dpd_action = clear",
                "      }",
            ]
        lines += ["    }", "  }"]
    lines += ["}", "secrets {"]
    for link in links:
        lines += [
            "  ike-%s {" % _conf_name(link["link"]),
            '    id-local = "%s"' % link["local_id"],
            '    id-remote = "%s"' % link["remote_id"],
            # A quoted string would need escaping; strongSwan's 0s prefix takes base64.
            "    secret = 0s%s" % _base64(link["psk"]),
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _base64(text):
    return base64.b64encode(text.encode()).decode()


def bird_conf(links, route):
    lines = ["# Written by lab/lib/external_peer.py from the peer's generic sheet.",
             "router id %s;" % route["router_id"],
             "protocol device { }"]
    for family in ("4", "6"):
        lines += [
            "protocol kernel kernel%s {" % family,
            "  ipv%s { import none; export where source = RTS_BGP; };" % family,
            "  merge paths on;",
            "}",
        ]
        own = [p for p in route["own"] if p.version == int(family)]
        if own:
            lines.append("protocol static own%s {" % family)
            lines.append("  ipv%s;" % family)
            lines += ["  route %s unreachable;" % prefix for prefix in own]
            lines.append("}")
        accepted = [p for _site, _asn, prefixes in route["receive"] for p in prefixes if p.version == int(family)]
        # What each other site may announce, and no default, transfer or inside network.
        lines.append("filter from_mesh_v%s {" % family)
        if accepted:
            lines.append("  if net ~ [ %s ] then accept;" % ", ".join("%s+" % p for p in accepted))
        else:
            asns = sorted(set(asn for _site, asn, _prefixes in route["receive"]))
            lines.append("  if bgp_path.last ~ [ %s ] then accept;" % ", ".join(str(a) for a in asns))
        lines += ["  reject;", "}"]
    timed = [link for link in links if link["bfd"]]
    if timed:
        lines.append("protocol bfd {")
        for link in timed:
            lines.append('  interface "%s" { interval %d ms; multiplier %d; };' % (
                link["interface"], link["bfd"][0], link["bfd"][1]))
        lines.append("}")
    for link in links:
        for family, local, neighbor in link["sessions"]:
            lines += [
                "protocol bgp %s_%s {" % (_conf_name(link["link"]), family),
                "  local %s as %d;" % (local, link["local_asn"]),
                "  neighbor %s as %d;" % (neighbor, link["neighbor_asn"]),
                '  interface "%s";' % link["interface"],
                "  direct;",
                "  hold time %d;" % link["hold_time"],
                "  keepalive time %d;" % link["keepalive"],
                "  bfd %s;" % ("on" if link["bfd"] else "off"),
                "  ip%s { import filter from_mesh_%s; export where source = RTS_STATIC; };" % (family, family),
                "}",
            ]
    return "\n".join(lines) + "\n"


def setup_sh(links, route, lan="lan0"):
    lines = ["#!/bin/sh", "# Written by lab/lib/external_peer.py from the peer's generic sheet.", "set -e"]
    for link in links:
        lines.append("ip link add %s type xfrm dev lo if_id %d" % (link["interface"], link["if_id"]))
        for family in ("v4", "v6"):
            if family in link["inside"]:
                mine = link["inside"][family][0]
                lines.append("ip addr add %s dev %s%s" % (mine.with_prefixlen, link["interface"],
                                                          " nodad" if family == "v6" else ""))
        lines.append("ip link set %s up" % link["interface"])
    lines.append("ip link add %s type dummy" % lan)
    for prefix in route["own"]:
        first = next(prefix.hosts()) if prefix.num_addresses > 1 else prefix.network_address
        nodad = " nodad" if prefix.version == 6 else ""
        lines.append("ip addr add %s/%d dev %s%s" % (first, prefix.prefixlen, lan, nodad))
    lines.append("ip link set %s up" % lan)
    lines.append("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")
    return "\n".join(lines) + "\n"


def write(sheet_text, outdir, prefix="xp"):
    sheet = parse(sheet_text)
    links, route = tunnels(sheet, prefix), routing(sheet)
    os.makedirs(outdir, exist_ok=True)
    files = {"swanctl.conf": (swanctl_conf(links), 0o600), "bird.conf": (bird_conf(links, route), 0o644),
             "setup.sh": (setup_sh(links, route), 0o755)}
    for name, (text, mode) in files.items():
        path = os.path.join(outdir, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, mode)
    return links, route


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("sheet")
    parser.add_argument("outdir")
    parser.add_argument("--interface-prefix", default="xp")
    args = parser.parse_args(argv)
    with open(args.sheet, encoding="utf-8") as handle:
        text = handle.read()
    try:
        links, _route = write(text, args.outdir, args.interface_prefix)
    except SheetError as exc:
        print("external_peer.py: %s: %s" % (args.sheet, exc), file=sys.stderr)
        return 2
    print("%d tunnel(s): %s" % (len(links), ", ".join(link["link"] for link in links)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
