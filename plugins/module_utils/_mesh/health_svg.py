# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify's picture of the mesh: its health report drawn as one SVG document (docs/health.md).

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O, the standard library only (no
graphical toolkit on the controller): ``health_svg`` takes the report of
health_report.py, as verify writes it to routevpn_verify_report, and returns
the SVG text, so the picture and the report cannot disagree.

- Each site is a labelled rounded rectangle, the sites around a circle (one
  site: in the middle), its gateways on a grid inside; an external peer is a
  dashed circle in its own site.
- Each link is one edge, its ends' records combined: green when both ends
  are ok, red when either is DOWN, amber and dashed otherwise (not
  verified).  The edge's ``<title>`` child (a browser's tooltip) says each
  end's status and every reason; a gateway's says its own problems.
- Above: the summary (n of m link ends healthy) and a legend of what is
  drawn.

Every text (names, sites, reasons: they come from the inventory and the
daemons) is escaped for XML, characters XML cannot carry become U+FFFD, and
the layout depends on the report alone: the same report gives the same
bytes (``generated_at`` is the report's own time).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from collections.abc import Mapping
from xml.sax.saxutils import escape

from .health_report import SCHEMA, SCHEMA_VERSION

# Edge colours by a link's combined status; LINK_STYLES is what the legend says of each.
COLOURS = {"ok": "#2e7d32", "DOWN": "#c62828", "not verified": "#f9a825"}
LINK_STYLES = (
    # status, css class, stroke width, dashes, legend
    ("ok", "ok", 3, None, "link ok (both ends ok)"),
    ("DOWN", "down", 4, None, "link DOWN (an end is down; hover for why)"),
    ("not verified", "not-verified", 3, "8 5", "link not verified (outside --limit)"),
)
# Gateway (and external peer) circles by state: fill, stroke, dashes, legend.
NODE_STYLES = (
    ("ok", "#ffffff", "#37474f", None, "gateway"),
    ("problems", "#ffebee", COLOURS["DOWN"], None, "gateway with problems, or silent (hover for why)"),
    ("not verified", "#eeeeee", "#9e9e9e", None, "gateway not verified"),
    ("external", "#ffffff", "#37474f", "4 3", "external peer (its side is not read)"),
)
DRAWN_ORDER = ("not verified", "ok", "DOWN")
TEXT, MUTED, SITE_FILL, SITE_STROKE = "#212121", "#616161", "#f4f6f8", "#90a4ae"
HALO = ' stroke="%s" stroke-width="4" stroke-linejoin="round" paint-order="stroke"' % SITE_FILL

NODE_R = 16             # a node's circle
CELL_W, CELL_H = 150, 78  # a node, its name and a second line, on a site's grid
SITE_PAD, SITE_HEAD = 14, 28  # inside a site's rectangle: padding, the site's name above its grid
GAP = 56                # between site rectangles
MARGIN = 24
MIN_WIDTH = 760
MANY_LINKS = 40         # more links than this: healthy ones are drawn thinner
BOW = 160               # the most a link's control point leaves the straight line
CHAR_W = 6.2            # an estimate of the width of one character at 12px sans-serif, for wrapping
NAME_CHARS = 20         # a longer name is cut (with ...) under its node; its tooltip has it whole

# Not allowed in XML 1.0 at all (not even as a character reference): C0 controls but tab, LF, CR; surrogates.
_NOT_XML = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


class HealthSvgError(ValueError):
    """The input is not a health report this module draws; the message says what is wrong."""


def _text(value):
    """Character data: escaped (& < >), carriage returns kept, what XML cannot carry replaced."""
    return escape(_NOT_XML.sub(u"\ufffd", u"%s" % value), {"\r": "&#13;"})


def _attr(value):
    """An attribute value, for double quotes: quotes and white space as references, so it reads back the same."""
    return escape(_NOT_XML.sub(u"\ufffd", u"%s" % value), _ATTRIBUTE_ENTITIES)


def _num(value):
    """A coordinate, to a tenth of a pixel, the same text for the same value."""
    text = "%.1f" % value
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _cut(name, chars=NAME_CHARS):
    return name if len(name) <= chars else name[:chars - 3] + "..."


# -- the graph: sites, nodes, links, from the report ------------------------------------------


def _check(report):
    if not isinstance(report, Mapping):
        raise HealthSvgError("the input must be verify's health report (a dict), not %s" % type(report).__name__)
    if report.get("schema") != SCHEMA or report.get("schema_version") != SCHEMA_VERSION:
        raise HealthSvgError("the input is no %s version %s (schema %r, schema_version %r)" % (
            SCHEMA, SCHEMA_VERSION, report.get("schema"), report.get("schema_version")))
    for key, kind in (("mesh", Mapping), ("gateways", (list, tuple)), ("link_ends", (list, tuple))):
        if not isinstance(report.get(key), kind):
            raise HealthSvgError("the report's %s must be a %s" % (key, "dict" if kind is Mapping else "list"))
    for key in ("gateways", "link_ends"):
        if not all(isinstance(record, Mapping) for record in report[key]):
            raise HealthSvgError("every record of the report's %s must be a dict" % key)


def _site(value):
    return "(no site)" if value is None else u"%s" % value


def _gateway_state(record):
    if not record.get("verified"):
        return "not verified", "not verified by this run (outside --limit)"
    if not record.get("reported"):
        lines = ["did not report"] + [u"%s" % line for line in record.get("problems") or []]
        return "problems", "\n".join(lines)
    if record.get("problems"):
        return "problems", "\n".join(["problems:"] + [u"%s" % line for line in record["problems"]])
    return "ok", "ok"


def _nodes(report):
    """{(kind, name): node}: every gateway of the report, and every external peer its link ends name."""
    nodes = {}
    for record in report["gateways"]:
        name = u"%s" % record["gateway"]
        state, said = _gateway_state(record)
        details = ", ".join(u"%s" % record[key] for key in ("ike_daemon", "tunnel_type") if record.get(key))
        nodes[("gateway", name)] = {
            "kind": "gateway", "name": name, "site": _site(record.get("site")), "state": state,
            "title": u"%s (site %s%s): %s" % (name, _site(record.get("site")), ", " + details if details else "", said),
            "note": None}
    for record in report["link_ends"]:
        name = u"%s" % record["gateway"]
        if ("gateway", name) not in nodes:
            nodes[("gateway", name)] = {
                "kind": "gateway", "name": name, "site": _site(record.get("site")), "state": "not verified",
                "title": u"%s (site %s): no record of this gateway in the report" % (name, _site(record.get("site"))),
                "note": None}
        if record.get("peer_external"):
            peer = u"%s" % record["peer"]
            platform = record.get("peer_platform")
            nodes[("external", peer)] = {
                "kind": "external", "name": peer, "site": _site(record.get("peer_site")), "state": "external",
                "title": u"%s (site %s): external peer%s; nobody reads its side, its links are judged by their "
                         u"gateway's end" % (peer, _site(record.get("peer_site")),
                                             " (%s)" % platform if platform else ""),
                "note": u"external%s" % (" (%s)" % platform if platform else "")}
    return nodes


def _end_lines(record):
    lines = [u"%s -> %s: %s" % (record["gateway"], record["peer"], record["status"])]
    lines.extend(u"  %s" % reason for reason in record.get("reasons") or [])
    return lines


def _links(report):
    """One per link, sorted by name: both ends' records combined into one status and one tooltip."""
    by_link = {}
    for record in report["link_ends"]:
        by_link.setdefault(u"%s" % record["link"], []).append(record)
    links = []
    for name in sorted(by_link):
        ends = sorted(by_link[name], key=lambda record: (u"%s" % record["gateway"], u"%s" % record["peer"]))
        first = ends[0]
        external = bool(first.get("peer_external"))
        a = ("gateway", u"%s" % first["gateway"])
        b = ("external" if external else "gateway", u"%s" % first["peer"])
        statuses = [record["status"] for record in ends]
        lines = []
        for record in ends:
            lines.extend(_end_lines(record))
        if not external and len(ends) < 2:
            statuses.append("not verified")
            lines.append(u"%s -> %s: no record of this end in the report" % (first["peer"], first["gateway"]))
        if "DOWN" in statuses:
            status = "DOWN"
        elif all(status == "ok" for status in statuses):
            status = "ok"
        else:
            status = "not verified"
        head = u"link %s, %s - %s%s: %s" % (name, a[1], b[1], " (external peer)" if external else "", status)
        links.append({"name": name, "ends": (a, b), "status": status, "title": "\n".join([head] + lines)})
    return links


# -- layout -------------------------------------------------------------------------------------


def _grid(count):
    columns = max(1, int(math.ceil(math.sqrt(count))))
    return columns, max(1, int(math.ceil(count / float(columns))))


def _apart(a, b):
    """Two site rectangles (cx, cy, w, h) with at least GAP between them, along x or along y."""
    return (abs(a[0] - b[0]) >= (a[2] + b[2]) / 2.0 + GAP) or (abs(a[1] - b[1]) >= (a[3] + b[3]) / 2.0 + GAP)


def _ring(sizes):
    """The centres of the site rectangles: around a circle from the top, clockwise, on the smallest radius
    (in steps of 4 px) that keeps every two of them GAP apart.  Boxes whose circumscribed circles are D apart
    never overlap, and no two points of a regular n-gon are closer than its side: that radius is the bound."""
    count = len(sizes)
    if count == 1:
        return [(0.0, 0.0)]
    angles = [-math.pi / 2 + 2 * math.pi * index / count for index in range(count)]
    widest = max(math.hypot(w, h) for w, h in sizes) + GAP
    bound = widest / (2 * math.sin(math.pi / count))
    radius = 0.0
    while True:
        centres = [(radius * math.cos(angle), radius * math.sin(angle)) for angle in angles]
        boxes = [(x, y, w, h) for (x, y), (w, h) in zip(centres, sizes)]
        if radius >= bound or all(_apart(boxes[i], boxes[j]) for i in range(count) for j in range(i + 1, count)):
            return centres
        radius += 4.0


def _layout(nodes):
    """Sites (name, x, y, w, h, members) and node centres, in a frame whose top left is (0, 0)."""
    members = {}
    for key in sorted(nodes, key=lambda key: (key[0] != "gateway", key[1])):
        members.setdefault(nodes[key]["site"], []).append(key)
    names = sorted(members)
    sizes = []
    for name in names:
        columns, rows = _grid(len(members[name]))
        width = max(columns * CELL_W, (len(_cut(name, 40)) + 6) * CHAR_W * 1.15) + 2 * SITE_PAD
        sizes.append((width, SITE_HEAD + rows * CELL_H + SITE_PAD))
    centres = _ring(sizes)
    left = min(x - w / 2.0 for (x, _y), (w, _h) in zip(centres, sizes))
    top = min(y - h / 2.0 for (_x, y), (_w, h) in zip(centres, sizes))
    sites, positions = [], {}
    for name, (x, y), (w, h) in zip(names, centres, sizes):
        x, y = round(x - w / 2.0 - left, 1), round(y - h / 2.0 - top, 1)
        sites.append({"name": name, "x": x, "y": y, "w": w, "h": h, "members": members[name]})
        columns = _grid(len(members[name]))[0]
        inset = (w - columns * CELL_W) / 2.0
        for index, key in enumerate(members[name]):
            column, row = index % columns, index // columns
            positions[key] = (round(x + inset + column * CELL_W + CELL_W / 2.0, 1),
                              round(y + SITE_HEAD + row * CELL_H + NODE_R + 6, 1))
    width = max(site["x"] + site["w"] for site in sites) if sites else 0
    height = max(site["y"] + site["h"] for site in sites) if sites else 0
    return sites, positions, width, height


# -- drawing ------------------------------------------------------------------------------------


def summary_line(report):
    """``n of m link ends healthy``, what is not, and the gateways: the picture's line, from the report's counts."""
    ends, gateways = report["mesh"].get("link_ends") or {}, report["mesh"].get("gateways") or {}
    words = ["%s of %s link ends healthy" % (ends.get("ok"), ends.get("total"))]
    if ends.get("down"):
        words.append("%s DOWN" % ends["down"])
    if ends.get("not_verified"):
        words.append("%s not verified" % ends["not_verified"])
    if ends.get("external"):
        words.append("%s to external peers" % ends["external"])
    line = ", ".join(words) + "; %s of %s gateways reported" % (gateways.get("reported"), gateways.get("total"))
    if gateways.get("with_problems"):
        line += ", %s with problems" % gateways["with_problems"]
    return line


def _link_style(status, links):
    """(status, css class, stroke width, dashes, legend); in a big mesh healthy links are thinner, so that what
    is not healthy stands out of the many."""
    status, css, width, dashes, label = [style for style in LINK_STYLES if style[0] == status][0]
    if status == "ok" and len(links) > MANY_LINKS:
        width = 1.5
    return status, css, width, dashes, label


def _node_style(state):
    return [style for style in NODE_STYLES if style[0] == state][0]


def _circle(x, y, state, radius=NODE_R):
    _state, fill, stroke, dashes, _legend = _node_style(state)
    return '<circle cx="%s" cy="%s" r="%s" fill="%s" stroke="%s" stroke-width="2"%s/>' % (
        _num(x), _num(y), _num(radius), fill, stroke, ' stroke-dasharray="%s"' % dashes if dashes else "")


def _curve(x1, y1, x2, y2):
    """A link's path: a gentle arc, bowed to the left of its first end's way to the second (by an eighth of its
    length, at most BOW / 2), so that a link never runs straight through a node on the line between its ends."""
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    bow = min(length / 4.0, BOW)
    cx, cy = (x1 + x2) / 2.0 + bow * (y2 - y1) / length, (y1 + y2) / 2.0 - bow * (x2 - x1) / length
    return "M %s %s Q %s %s %s %s" % (_num(x1), _num(y1), _num(cx), _num(cy), _num(x2), _num(y2))


def _legend(links, nodes, width, top):
    """The legend's SVG from ``top`` down (only what the picture shows, wrapped to the width), and its height."""
    entries = []
    for status in (style[0] for style in LINK_STYLES):
        if any(link["status"] == status for link in links):
            _status, _css, stroke_width, dashes, label = _link_style(status, links)
            entries.append((("line", status, stroke_width, dashes), label))
    states = set(node["state"] for node in nodes.values())
    entries.extend((("circle", state), label) for state, _fill, _stroke, _dashes, label in NODE_STYLES
                   if state in states)
    out, x, y = [], MARGIN, top
    for drawing, label in entries:
        span = 36 + len(label) * CHAR_W + 24
        if x > MARGIN and x + span > width - MARGIN:
            x, y = MARGIN, y + 22
        if drawing[0] == "line":
            _kind, status, stroke_width, dashes = drawing
            out.append('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>' % (
                _num(x), _num(y + 4), _num(x + 28), _num(y + 4), COLOURS[status], _num(stroke_width),
                ' stroke-dasharray="%s"' % dashes if dashes else ""))
        else:
            out.append(_circle(x + 14, y + 4, drawing[1], radius=7))
        out.append('<text x="%s" y="%s" fill="%s">%s</text>' % (_num(x + 36), _num(y + 8), TEXT, _text(label)))
        x += span
    return out, y + 22 - top


def _header(report, verdict, summary):
    return [
        '<g class="header">',
        '<text x="%d" y="30" font-size="18" font-weight="bold" fill="%s">%s</text>' % (
            MARGIN, TEXT, _text("routevpn.mesh health: mesh %s" % verdict)),
        '<text class="summary" x="%d" y="52" font-size="14" fill="%s">%s</text>' % (MARGIN, TEXT, _text(summary)),
        '<text x="%d" y="70" fill="%s">%s</text>' % (MARGIN, MUTED, _text("report %s version %s, generated %s" % (
            report["schema"], report["schema_version"], report.get("generated_at")))),
        "</g>"]


def _sites(sites):
    out = ['<g class="sites">']
    for site in sites:
        kinds = [key[0] for key in site["members"]]
        said = ", ".join("%d %s" % (kinds.count(kind), noun) for kind, noun in (
            ("gateway", "gateway(s)"), ("external", "external peer(s)")) if kind in kinds)
        out.append('<g class="site" data-site="%s"><title>%s</title>' % (
            _attr(site["name"]), _text(u"site %s: %s" % (site["name"], said))))
        out.append('<rect x="%s" y="%s" width="%s" height="%s" rx="12" ry="12" fill="%s" stroke="%s" '
                   'stroke-width="1.5"/></g>' % (_num(site["x"]), _num(site["y"]), _num(site["w"]), _num(site["h"]),
                                                 SITE_FILL, SITE_STROKE))
    out.append("</g>")
    # The sites' names go above the links that cross their rectangles.
    names = ['<g class="site-names">']
    names.extend('<text x="%s" y="%s" font-size="13" font-weight="bold" fill="%s"%s>%s</text>' % (
        _num(site["x"] + SITE_PAD), _num(site["y"] + 19), TEXT, HALO, _text(_cut(site["name"], 40)))
        for site in sites)
    names.append("</g>")
    return out, names


def _edges(links, positions):
    out = ['<g class="links">']
    # Not verified first, DOWN last: a red edge is never hidden under a green one.
    for link in sorted(links, key=lambda link: (DRAWN_ORDER.index(link["status"]), link["name"])):
        status, css, stroke_width, dashes, _label = _link_style(link["status"], links)
        (x1, y1), (x2, y2) = [positions[key] for key in link["ends"]]
        path = _curve(x1, y1, x2, y2)
        out.append('<g class="link %s" data-link="%s" data-status="%s"><title>%s</title>' % (
            css, _attr(link["name"]), _attr(status), _text(link["title"])))
        # A wide transparent stroke under the line: the tooltip is there when the pointer is near it.
        out.append('<path class="hit" d="%s" stroke="#000000" stroke-opacity="0" stroke-width="14" fill="none" '
                   'pointer-events="stroke"/>' % path)
        out.append('<path class="line" d="%s" stroke="%s" stroke-width="%s" fill="none" stroke-linecap="round"%s/>'
                   '</g>' % (path, COLOURS[status], _num(stroke_width),
                             ' stroke-dasharray="%s"' % dashes if dashes else ""))
    out.append("</g>")
    return out


def _nodes_drawn(nodes, positions):
    out = ['<g class="nodes">']
    for key in sorted(positions, key=lambda key: (key[0] != "gateway", key[1])):
        node, (x, y) = nodes[key], positions[key]
        out.append('<g class="node %s" data-name="%s" data-state="%s"><title>%s</title>' % (
            node["kind"], _attr(node["name"]), _attr(node["state"]), _text(node["title"])))
        out.append(_circle(x, y, node["state"]))
        # Names on a halo of the site's colour: readable where a link passes under them.
        out.append('<text x="%s" y="%s" text-anchor="middle" fill="%s"%s>%s</text>' % (
            _num(x), _num(y + NODE_R + 16), TEXT, HALO, _text(_cut(node["name"]))))
        if node["note"]:
            out.append('<text x="%s" y="%s" text-anchor="middle" font-size="11" fill="%s"%s>%s</text>' % (
                _num(x), _num(y + NODE_R + 30), MUTED, HALO, _text(_cut(node["note"], 24))))
        out.append("</g>")
    out.append("</g>")
    return out


def health_svg(report):
    """The SVG document (text) of a health report; raises HealthSvgError when the input is not one."""
    _check(report)
    try:
        nodes, links = _nodes(report), _links(report)
    except KeyError as exc:
        raise HealthSvgError("a record of the report lacks %s; give it the report of mesh_health_report" % exc)
    sites, positions, diagram_w, diagram_h = _layout(nodes)
    width = max(MIN_WIDTH, diagram_w + 2 * MARGIN)
    top = 84  # below the title, the summary and the report's time: the legend, then the sites
    legend, legend_h = _legend(links, nodes, width, top)
    dx, dy = (width - diagram_w) / 2.0, top + legend_h + 14
    height = dy + diagram_h + MARGIN
    for site in sites:
        site["x"], site["y"] = site["x"] + dx, site["y"] + dy
    positions = dict((key, (x + dx, y + dy)) for key, (x, y) in positions.items())
    summary = summary_line(report)
    site_rectangles, site_names = _sites(sites)
    size = (_num(width), _num(height))
    return "\n".join(
        ['<?xml version="1.0" encoding="UTF-8"?>',
         '<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" '
         'font-family="sans-serif" font-size="12">' % (size + size),
         "<title>%s</title>" % _text("routevpn.mesh health: %s" % summary),
         "<style>.link:hover .line{stroke-width:7}.node:hover circle{stroke-width:3}</style>",
         '<rect class="background" x="0" y="0" width="%s" height="%s" fill="#ffffff"/>' % size]
        + _header(report, "ok" if report["mesh"].get("ok") else "NOT ok", summary)
        + ['<g class="legend">'] + legend + ["</g>"]
        + site_rectangles + _edges(links, positions) + site_names + _nodes_drawn(nodes, positions)
        + ["</svg>"]) + "\n"
