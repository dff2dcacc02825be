"""verify's picture (module_utils/_mesh/health_svg.py): the health report drawn as SVG.

Every picture here is drawn from a report of health_report.py (the rows are
cross-check rows with the statuses and reasons each case needs, or judged
from captured outputs), parsed back with xml.etree and read as a person
would: one edge per link and its colour, the tooltip's text, the nodes'
places.  The last tests render it in headless Chromium, where there is one,
and count the edge colours' pixels in the screenshot.
"""

import copy
import itertools
import math
import os
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import cross_check, link_health
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_report import health_report
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_svg import (
    COLOURS,
    NODE_R,
    HealthSvgError,
    health_svg,
    summary_line,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_inventory import inventory
from .test_mesh_external import cloud
from .test_mesh_external import mesh as external_mesh
from .test_mesh_health import pair

SVG = "{http://www.w3.org/2000/svg}"
GENERATED_AT = "2026-12-07T21:50:24Z"
THREE_SITES = {1: 2, 2: 2, 3: 1}  # 3 sites, 5 gateways, 8 links
DOWN_REASONS = {"v1-1": ["no inbound ESP SA in the kernel with if_id 4296"],
                "v2-1": ["link 11-21: peer v1-1 has no IKE_SA for it (charon is not running on v1-1: "
                         "/run/charon.vici refused the connection)"]}


def row(end, status="ok", problems=(), unverified=None):
    """A row as health.cross_check leaves it, with the fields the report copies."""
    return {"gateway": end["gateway"], "peer": end["peer"], "link": end["link"], "status": status,
            "ok": status == "ok", "problems": list(problems), "unverified": unverified,
            "external": bool(end.get("peer_external"))}


def report_of(hostvars, verified=None, down=None, **kwargs):
    """The report of a run over ``hostvars``' mesh: every end of ``verified`` (default: all) ok but the ends of
    ``down`` ({gateway: reasons} on link 11-21); an end whose peer is outside ``verified`` is not verified."""
    the_plan = plan(hostvars, sorted(hostvars))
    verified = sorted(hostvars) if verified is None else verified
    rows = []
    for gateway in verified:
        for end in the_plan["hosts"][gateway]:
            if end["link"] == "11-21" and gateway in (down or {}):
                rows.append(row(end, "DOWN", down[gateway]))
            elif end["peer"] in verified or end.get("peer_external"):
                rows.append(row(end))
            else:
                rows.append(row(end, "not verified",
                                unverified="peer %s is not verified by this run (outside --limit)" % end["peer"]))
    return health_report(rows, the_plan, verified=verified, generated_at=GENERATED_AT, **kwargs)


def parse(svg):
    """The document as xml.etree reads it: it must be well-formed XML, an SVG root."""
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG + "svg"
    return root


def groups(root, kind):
    return [element for element in root.iter(SVG + "g") if kind in (element.get("class") or "").split()]


def edges(root):
    """{link: (status, stroke colour, tooltip)}, in the order drawn."""
    found = {}
    for group in groups(root, "link"):
        line = [path for path in group.iter(SVG + "path") if path.get("class") == "line"][0]
        found[group.get("data-link")] = (group.get("data-status"), line.get("stroke"), group.find(SVG + "title").text)
    return found


def nodes(root):
    """{name: (kind, state, cx, cy, r, tooltip)} of the gateways and external peers."""
    found = {}
    for group in groups(root, "node"):
        circle = group.find(SVG + "circle")
        kind = "external" if "external" in group.get("class").split() else "gateway"
        x, y, r = (float(circle.get(key)) for key in ("cx", "cy", "r"))
        found[group.get("data-name")] = (kind, group.get("data-state"), x, y, r, group.find(SVG + "title").text)
    return found


def sites(root):
    """{site: (x, y, w, h)} of the sites' rectangles."""
    return dict((group.get("data-site"), tuple(float(group.find(SVG + "rect").get(key))
                                               for key in ("x", "y", "width", "height")))
                for group in groups(root, "site"))


def texts(root, parent_class):
    return ["".join(element.itertext()) for group in groups(root, parent_class) for element in group.iter(SVG + "text")]


def site_of(node, rectangles):
    """The site whose rectangle holds the node's circle, whole."""
    _kind, _state, x, y, r, _title = node
    inside = [name for name, (left, top, w, h) in rectangles.items()
              if left <= x - r and x + r <= left + w and top <= y - r and y + r <= top + h]
    assert len(inside) == 1, (node, inside)
    return inside[0]


def test_a_healthy_mesh_is_green_one_edge_per_link_each_gateway_in_its_site():
    report = report_of(inventory(THREE_SITES))
    svg = health_svg(report)
    root = parse(svg)
    drawn = edges(root)
    assert sorted(drawn) == sorted(set(record["link"] for record in report["link_ends"]))
    assert len(drawn) == 8
    assert set((status, colour) for status, colour, _title in drawn.values()) == {("ok", COLOURS["ok"])}
    assert COLOURS["DOWN"] not in svg and COLOURS["not verified"] not in svg, "nothing red or amber, legend included"
    assert drawn["11-21"][2] == "link 11-21, v1-1 - v2-1: ok\nv1-1 -> v2-1: ok\nv2-1 -> v1-1: ok"
    rectangles = sites(root)
    assert sorted(rectangles) == ["site1", "site2", "site3"]
    assert dict((name, site_of(node, rectangles)) for name, node in nodes(root).items()) == {
        "v1-1": "site1", "v1-2": "site1", "v2-1": "site2", "v2-2": "site2", "v3-1": "site3"}
    assert texts(root, "site-names") == ["site1", "site2", "site3"]
    assert "16 of 16 link ends healthy; 5 of 5 gateways reported" in texts(root, "header")
    assert summary_line(report) == "16 of 16 link ends healthy; 5 of 5 gateways reported"
    assert texts(root, "legend") == ["link ok (both ends ok)", "gateway"]
    assert root.find(SVG + "title").text == "routevpn.mesh health: 16 of 16 link ends healthy; 5 of 5 gateways reported"
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ') and svg.endswith("</svg>\n")


def test_a_healthy_link_judged_from_captured_outputs_is_green():
    """Not only made-up rows: the link 11-21 as both charons and kernels showed it (captured/pair-up-*)."""
    the_plan = plan(inventory({1: 1, 2: 1}), ["v1-1", "v2-1"])
    report = health_report(list(pair("up").values()), the_plan, verified=["v1-1", "v2-1"],
                           generated_at=GENERATED_AT)
    assert edges(parse(health_svg(report))) == {
        "11-21": ("ok", COLOURS["ok"], "link 11-21, v1-1 - v2-1: ok\nv1-1 -> v2-1: ok\nv2-1 -> v1-1: ok")}


def test_a_link_down_is_red_with_both_ends_reasons_in_its_tooltip():
    report = report_of(inventory(THREE_SITES), down=DOWN_REASONS)
    root = parse(health_svg(report))
    drawn = edges(root)
    status, colour, title = drawn["11-21"]
    assert (status, colour) == ("DOWN", COLOURS["DOWN"])
    assert title.split("\n") == [
        "link 11-21, v1-1 - v2-1: DOWN",
        "v1-1 -> v2-1: DOWN",
        "  no inbound ESP SA in the kernel with if_id 4296",
        "v2-1 -> v1-1: DOWN",
        "  link 11-21: peer v1-1 has no IKE_SA for it (charon is not running on v1-1: /run/charon.vici refused "
        "the connection)"]
    assert [link for link, (status, _colour, _title) in drawn.items() if status != "ok"] == ["11-21"]
    assert list(drawn)[-1] == "11-21", "drawn last: no green edge hides it"
    assert "14 of 16 link ends healthy, 2 DOWN; 5 of 5 gateways reported" in texts(root, "header")
    assert "routevpn.mesh health: mesh NOT ok" in texts(root, "header")
    assert texts(root, "legend") == ["link ok (both ends ok)", "link DOWN (an end is down; hover for why)", "gateway"]


def test_one_end_down_is_enough_for_red():
    report = report_of(inventory(THREE_SITES), down={"v2-1": ["no BGP session with 2001:db8:ff::190"]})
    status, colour, title = edges(parse(health_svg(report)))["11-21"]
    assert (status, colour) == ("DOWN", COLOURS["DOWN"])
    assert "v1-1 -> v2-1: ok\nv2-1 -> v1-1: DOWN\n  no BGP session with 2001:db8:ff::190" in title


def test_a_gateway_with_problems_or_silent_is_red_and_says_why():
    report = report_of(inventory(THREE_SITES), problems={"v2-2": ["leak: veth0 joins netns private to the public one"]})
    drawn = nodes(parse(health_svg(report)))
    assert drawn["v2-2"][1] == "problems"
    assert drawn["v2-2"][5] == ("v2-2 (site site2, strongswan, xfrm): problems:\n"
                                "leak: veth0 joins netns private to the public one")
    assert drawn["v1-1"][1] == "ok"


def test_outside_the_limit_is_amber_and_dashed_and_the_gateway_grey():
    hostvars = inventory(THREE_SITES)
    report = report_of(hostvars, verified=[name for name in hostvars if name != "v3-1"])
    root = parse(health_svg(report))
    drawn = edges(root)
    unverified = dict((link, value) for link, value in drawn.items() if value[0] != "ok")
    assert sorted(unverified) == ["11-31", "12-31", "21-31", "22-31"]
    status, colour, title = unverified["11-31"]
    assert (status, colour) == ("not verified", COLOURS["not verified"])
    assert title.split("\n") == [
        "link 11-31, v1-1 - v3-1: not verified",
        "v1-1 -> v3-1: not verified", "  peer v3-1 is not verified by this run (outside --limit)",
        "v3-1 -> v1-1: not verified", "  gateway v3-1 is not verified by this run (outside --limit)"]
    dashed = [group for group in groups(root, "link") if group.get("data-status") == "not verified"]
    assert all([path for path in group.iter(SVG + "path") if path.get("class") == "line"][0].get("stroke-dasharray")
               for group in dashed)
    assert nodes(root)["v3-1"][1] == "not verified"
    assert "link not verified (outside --limit)" in texts(root, "legend")


def test_an_external_peer_is_a_dashed_node_in_its_site_with_one_edge_per_link():
    hostvars = external_mesh([cloud()])
    the_plan = plan(hostvars, sorted(hostvars))
    rows = []
    for gateway in ("v1-1", "v2-1"):
        # No daemon output, the planned policies: each end judged on what was given (down, for want of BGP).
        policies = [{"direction": direction, "if_id": end["if_id"], "mark": None}
                    for end in the_plan["hosts"][gateway] for direction in ("in", "out")]
        rows += link_health(the_plan["hosts"][gateway], policies=policies, require_prefixes=False)
    rows = cross_check(rows, verified=["v1-1", "v2-1"], external=["cloud-vgw-1"])
    report = health_report(rows, the_plan, verified=["v1-1", "v2-1"], generated_at=GENERATED_AT)
    root = parse(health_svg(report))
    drawn, rectangles = nodes(root), sites(root)
    kind, state, _x, _y, _r, title = drawn["cloud-vgw-1"]
    assert (kind, state, site_of(drawn["cloud-vgw-1"], rectangles)) == ("external", "external", "site3")
    assert title.startswith("cloud-vgw-1 (site site3): external peer (generic)")
    (peer,) = [group for group in groups(root, "node") if group.get("data-name") == "cloud-vgw-1"]
    circle = peer.find(SVG + "circle")
    assert circle.get("stroke-dasharray"), "drawn dashed"
    assert "external (generic)" in texts(root, "nodes")
    links = edges(root)
    assert sorted(links) == ["11-21", "11-31", "21-31"]
    status, _colour, title = links["11-31"]
    assert status == "DOWN"
    assert title.split("\n")[:2] == ["link 11-31, v1-1 - cloud-vgw-1 (external peer): DOWN",
                                     "v1-1 -> cloud-vgw-1: DOWN"]
    assert "external peer (its side is not read)" in texts(root, "legend")


HOSTILE = {
    "v1-1": '<script>alert("v1-1")</script>',
    "v2-1": "\"&'><!--",
    "site1": "]]><![CDATA[site",
    "site2": "site2\" onload=\"alert(2)",
}


def hostile(value):
    """The value with every name replaced by its hostile counterpart (a string, or every string in a structure)."""
    if isinstance(value, str):
        for name, evil in HOSTILE.items():
            value = value.replace(name, evil)
        return value
    if isinstance(value, dict):
        return dict((key, hostile(item)) for key, item in value.items())
    if isinstance(value, list):
        return [hostile(item) for item in value]
    return value


def test_hostile_names_and_reasons_are_escaped_and_the_svg_stays_well_formed():
    report = hostile(report_of(inventory(THREE_SITES), down=DOWN_REASONS))
    # A daemon's text with a control character XML cannot carry, a CR LF, and a closing tag.
    report["link_ends"][0]["reasons"].append("bird said \x01\x1b[0m</title><script>x()</script>\r\n&amp;")
    svg = health_svg(report)
    assert "<script" not in svg and "<!--" not in svg and "<![CDATA[" not in svg
    root = parse(svg)
    assert not [element for element in root.iter() if element.tag.endswith("script")]
    assert set(element.tag for element in root.iter()) <= set(
        SVG + tag for tag in ("svg", "title", "style", "rect", "g", "text", "line", "circle", "path"))
    drawn = nodes(root)
    assert sorted(drawn) == sorted(['<script>alert("v1-1")</script>', "\"&'><!--", "v1-2", "v2-2", "v3-1"])
    assert drawn["\"&'><!--"][5].startswith("\"&'><!-- (site site2\" onload=\"alert(2), ")
    assert sites(root).keys() == {"]]><![CDATA[site", "site2\" onload=\"alert(2)", "site3"}
    status, _colour, title = edges(root)["11-21"]
    assert status == "DOWN"
    # The ends by name: '"' sorts before '<'.
    assert title.split("\n")[0] == "link 11-21, \"&'><!-- - <script>alert(\"v1-1\")</script>: DOWN"
    # Read back, the reason is the daemon's text but for the control characters (U+FFFD); CR LF kept.
    assert "  bird said \ufffd\ufffd[0m</title><script>x()</script>\r\n&amp;" in title
    for element in root.iter():
        assert element.get("onload") is None


def test_the_same_report_gives_the_same_bytes():
    hostvars = inventory(THREE_SITES)
    report = report_of(hostvars, down=DOWN_REASONS, problems={"v3-1": ["drift: set net.ipv4.ip_forward to 1"]})
    first = health_svg(report)
    assert health_svg(copy.deepcopy(report)) == first
    shuffled = copy.deepcopy(report)
    shuffled["link_ends"].reverse()
    shuffled["gateways"].reverse()
    assert health_svg(shuffled) == first, "records in another order draw the same picture"
    later = dict(copy.deepcopy(report), generated_at="2026-12-08T06:00:00Z")
    changed = [(a, b) for a, b in zip(first.split("\n"), health_svg(later).split("\n")) if a != b]
    assert changed == [(line, line.replace(GENERATED_AT, "2026-12-08T06:00:00Z"))
                       for line in first.split("\n") if GENERATED_AT in line]
    assert len(changed) == 1


def overlaps(circles, gap=0.0):
    """The pairs of circles (name, x, y, r) closer than their radii and ``gap``."""
    return [(a[0], b[0]) for a, b in itertools.combinations(circles, 2)
            if math.hypot(a[1] - b[1], a[2] - b[2]) < a[3] + b[3] + gap]


@pytest.mark.parametrize("layout", [
    dict((site, 5) for site in range(1, 7)),   # 30 gateways in 6 sites
    dict((site, 3) for site in range(1, 11)),  # 30 gateways in 10 sites
    {1: 9, 2: 9, 3: 9, 4: 3},                  # 30 gateways, uneven sites
], ids=["6x5", "10x3", "9-9-9-3"])
def test_thirty_gateways_no_two_nodes_overlap_nor_two_sites(layout):
    hostvars = inventory(layout)
    assert len(hostvars) == 30
    report = report_of(hostvars, down=DOWN_REASONS)
    root = parse(health_svg(report))
    drawn = nodes(root)
    assert len(drawn) == 30
    circles = [(name, x, y, r) for name, (_kind, _state, x, y, r, _title) in drawn.items()]
    assert all(r == NODE_R for _name, _x, _y, r in circles)
    # Apart by more than their circles: each name (under its node) has its cell too.
    assert overlaps(circles, gap=2 * NODE_R) == []
    rectangles = sites(root)
    assert len(rectangles) == len(layout)
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in itertools.combinations(rectangles.items(), 2):
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)
    for name, node in drawn.items():
        assert site_of(node, rectangles) == "site" + name[1:].split("-")[0]
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(0 <= x - r and x + r <= width and 0 <= y - r and y + r <= height for _n, x, y, r in circles)
    assert all(0 <= x and x + w <= width and 0 <= y and y + h <= height for x, y, w, h in rectangles.values())
    assert len(edges(root)) == len(set(record["link"] for record in report["link_ends"]))
    assert edges(root)["11-21"][0] == "DOWN"


@pytest.mark.parametrize("report, message", [
    ([], "must be verify's health report"),
    ({"schema": "routevpn.mesh/health-report", "schema_version": 2}, "is no routevpn.mesh/health-report version 1"),
    ({"schema": "routevpn.mesh/health-report", "schema_version": 1, "mesh": {}, "gateways": [],
      "link_ends": {}}, "link_ends must be a list"),
    ({"schema": "routevpn.mesh/health-report", "schema_version": 1, "mesh": {}, "gateways": [],
      "link_ends": [{"gateway": "v1-1"}]}, "a record of the report lacks 'link'"),
])
def test_what_is_no_report_is_named(report, message):
    with pytest.raises(HealthSvgError, match=message):
        health_svg(report)


# -- as a person sees it: headless Chromium's screenshot ------------------------------------------

WINDOW = (1200, 900)


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG, decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _compression, _filter, interlace = header
    assert (depth, colour_type, interlace) in ((8, 2, 0), (8, 6, 0)), header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + previous[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    return width, height, [[tuple(line[x * bpp:x * bpp + 3]) for x in range(width)] for line in rows]


def rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def count(pixels, colour, tolerance=2):
    want = rgb(colour)
    return sum(1 for line in pixels for pixel in line if all(abs(a - b) <= tolerance for a, b in zip(pixel, want)))


def screenshot(svg_path, png_path):
    """headless Chromium's picture of the file, in a window of WINDOW (Debian's chromium: --headless=new)."""
    command = [shutil.which("chromium"), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--user-data-dir=%s" % (png_path.parent / "chromium-profile"),
               "--screenshot=%s" % png_path, "--window-size=%d,%d" % WINDOW, svg_path.as_uri()]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False,
                         env=dict(os.environ, HOME=str(png_path.parent)))
    assert run.returncode == 0 and png_path.exists(), (run.returncode, run.stderr[-3000:])
    return time.monotonic() - started


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium on PATH (apt-get install chromium): the picture is not looked at")
@pytest.mark.parametrize("case", ["healthy", "one link down"])
def test_chromium_shows_the_picture_green_when_healthy_and_red_where_a_link_is_down(case, tmp_path):
    report = report_of(inventory(THREE_SITES), down=DOWN_REASONS if case == "one link down" else None)
    svg_path, png_path = tmp_path / "mesh.svg", tmp_path / "mesh.png"
    svg_path.write_text(health_svg(report))
    took = screenshot(svg_path, png_path)
    print("%s: screenshot %s (chromium took %.1fs)" % (case, png_path, took))
    header = png_path.read_bytes()[:24]
    assert header[12:16] == b"IHDR" and struct.unpack(">II", header[16:24]) == WINDOW
    width, height, pixels = png_pixels(png_path)
    assert (width, height) == WINDOW
    assert count(pixels, "#ffffff", tolerance=0) < width * height, "not blank"
    # The edges: below the legend (which has a swatch of each colour it explains), from the sites' top down.
    top = int(min(y for _x, y, _w, _h in sites(parse(svg_path.read_text())).values()))
    assert 0 < top < height - 200, "the sites are in the window"
    green, red = count(pixels[top:], COLOURS["ok"]), count(pixels[top:], COLOURS["DOWN"])
    print("%s: below y=%d, %d green and %d red pixels" % (case, top, green, red))
    assert green > 2000, "the healthy links are drawn green"
    if case == "healthy":
        assert red == 0 and count(pixels, COLOURS["DOWN"]) == 0, "nothing is red in a healthy mesh"
    else:
        assert red > 300, "the link down is drawn red"
