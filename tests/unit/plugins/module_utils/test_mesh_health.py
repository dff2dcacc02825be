"""The per-link judgement of playbooks/verify.yml, against outputs captured on a real kernel.

captured/ holds what swanctl 5.9.8, BIRD 2.0.12 and iproute2 printed in a VM
with Debian's kernel (captured/capture.sh: two gateways, link 11-21, if_id
4296, BGP over 2001:db8:ff::190/127), and ECMP routes made natively.  The
link is the one the planner makes for gateways 11 and 21, so the plan below
and the captures agree the way a real mesh would.
"""

import json
import pathlib

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import (
    HealthInputError,
    bird_protocols,
    health_table,
    ike_sas,
    kernel_routes,
    link_health,
    parse_vici_dump,
    pluto_states,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_inventory import inventory

CAPTURED = pathlib.Path(__file__).parent / "captured"


def captured(name):
    text = (CAPTURED / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def in_child_sas(text, old, new):
    """The capture with ``old`` replaced by ``new`` in its CHILD_SAs only (the IKE_SA has the same fields)."""
    head, children = text.split("child-sas {", 1)
    assert old in children
    return head + "child-sas {" + children.replace(old, new)


def mesh(**site_prefixes):
    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        for site, prefixes in site_prefixes.items():
            variables["routevpn_sites"][site]["prefixes"] = prefixes
    return plan(hostvars, sorted(hostvars))


def policy(direction, if_id=4296):
    """The shape of routevpn.mesh.xfrm_policy_facts' routevpn_xfrm_policies items (the fields used here)."""
    return {"direction": direction, "if_id": if_id, "mark": None}


HEALTHY = dict(swanctl="swanctl-established.raw", birdc="birdc-established.txt", routes=("routes6.json",
                                                                                         "routes4.json"))


def judge(the_plan, swanctl=HEALTHY["swanctl"], policies=(policy("in"), policy("out"), policy("fwd")),
          birdc=HEALTHY["birdc"], routes=HEALTHY["routes"], **kwargs):
    return link_health(the_plan["hosts"]["v1-1"], sites=the_plan["sites"],
                       swanctl=captured(swanctl) if swanctl else swanctl, policies=list(policies),
                       birdc=captured(birdc) if birdc else "", routes=[captured(name) for name in routes], **kwargs)


def test_the_captured_link_is_the_planned_one():
    (end,) = mesh()["hosts"]["v1-1"]
    assert (end["connection"], end["if_id"], end["address_v6"]) == ("rv-21", 4296, "2001:db8:ff::190/127")


def test_a_healthy_link():
    (row,) = judge(mesh(site2=["2001:db8:a2::/64"]))
    assert row["ok"], row["problems"]
    assert (row["ike"], row["child"], row["if_id"], row["if_id_ok"], row["bgp"], row["imported"]) == (
        "ESTABLISHED", "INSTALLED", 4296, True, "Established", 1)
    assert row["prefixes"] == ["2001:db8:a2::/64"] and row["missing_prefixes"] == []


@pytest.mark.parametrize("change, problem", [
    (dict(swanctl="swanctl-none.raw"), "no IKE_SA rv-21"),
    (dict(swanctl="swanctl-connecting.raw"), "IKE_SA rv-21 is CONNECTING"),
    (dict(swanctl="swanctl-connecting.raw"), "no CHILD_SA installed (none)"),
    (dict(policies=[policy("out")]), "no XFRM policy with if_id 4296 for in"),
    (dict(policies=[policy("in", 4297), policy("out", 4297)]), "no XFRM policy with if_id 4296 for in and out"),
    (dict(birdc="birdc-down.txt"), "BGP rv-21 is Active (Socket: Connection refused)"),
    (dict(birdc=None), "no BGP session with 169.254.1.145 or 2001:db8:ff::191"),
    (dict(routes=("routes6-down.json",)), "no route learned via rv-21"),
])
def test_what_is_down_is_named(change, problem):
    (row,) = judge(mesh(), **change)
    assert not row["ok"] and problem in row["problems"], row["problems"]


def test_a_child_sa_bound_to_another_if_id_is_caught():
    text = in_child_sas(captured("swanctl-established.raw"), "if-id-in=000010c8 if-id-out=000010c8",
                        "if-id-in=000010c9 if-id-out=000010c9")
    (row,) = link_health(mesh()["hosts"]["v1-1"], swanctl=text, policies=[policy("in"), policy("out")],
                         birdc=captured("birdc-established.txt"), routes=[captured("routes6.json")])
    assert not row["if_id_ok"]
    assert "CHILD_SA rv-21 not bound to 4296 (if-id-in=000010c9, if-id-out=000010c9)" in row["problems"]


def test_a_static_prefix_of_the_peer_site_must_be_routed_through_the_link():
    (row,) = judge(mesh(site2=["2001:db8:a2::/64", "10.2.0.0/16"]))
    assert row["missing_prefixes"] == ["10.2.0.0/16"]
    assert "10.2.0.0/16 not routed via rv-21" in row["problems"]


def test_ecmp_routes_count_for_every_link_they_go_through():
    routes = kernel_routes(captured("routes6-ecmp.json"), captured("routes4-ecmp.json"))
    via = dict((route["dst"], route["devices"]) for route in routes if route["protocol"] == "bird")
    assert via == {"2001:db8:a2::/64": ["rv-21", "rv-22"], "10.2.0.0/16": ["rv-21", "rv-22"],
                   "10.3.0.0/16": ["rv-21"]}
    the_plan = plan(inventory({1: 1, 2: 2}), sorted(inventory({1: 1, 2: 2})))
    for end in the_plan["hosts"]["v1-1"]:
        rows = link_health([end], sites={"site2": {"prefixes": ["2001:db8:a2::/64", "10.2.0.0/16"]}},
                           routes=[captured("routes6-ecmp.json"), captured("routes4-ecmp.json")])
        assert rows[0]["missing_prefixes"] == [], (end["interface"], rows[0]["problems"])


def test_without_swanctl_the_ike_columns_are_not_judged():
    (row,) = judge(mesh(), swanctl=None)
    assert (row["ike"], row["child"]) == ("n/a", "n/a") and row["ok"], row["problems"]


def test_vti_ends_are_judged_by_mark():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["routevpn_tunnel_type"] = "vti"
    (end,) = plan(hostvars, sorted(hostvars))["hosts"]["v1-1"]
    sas = in_child_sas(captured("swanctl-established.raw"), "if-id-in=000010c8 if-id-out=000010c8",
                       "mark-in=000010c8/ffffffff mark-out=000010c8/ffffffff")
    marked = [{"direction": d, "if_id": None, "mark": 4296} for d in ("in", "out")]
    (row,) = link_health([end], swanctl=sas, policies=marked, birdc=captured("birdc-established.txt"),
                         routes=[captured("routes6.json")])
    assert row["ok"], row["problems"]


def test_bird_protocols_reads_states_neighbours_and_routes():
    protocols = dict((p["name"], p) for p in bird_protocols(captured("birdc-established.txt")))
    assert sorted(protocols) == ["device1", "direct1", "kernel1", "rv-21"]
    bgp = protocols["rv-21"]
    assert (bgp["proto"], bgp["bgp_state"], bgp["neighbor_address"], bgp["neighbor_as"]) == (
        "BGP", "Established", "2001:db8:ff::191", 65002)
    assert bgp["channels"] == {"ipv6": {"imported": 1, "exported": 1}}
    down = dict((p["name"], p) for p in bird_protocols(captured("birdc-down.txt")))["rv-21"]
    assert (down["state"], down["bgp_state"], down["last_error"]) == ("start", "Active", "Socket: Connection refused")


def test_vici_dump_raw_and_pretty_read_the_same():
    raw = parse_vici_dump('list-sa event {rv-21 {state=ESTABLISHED local-id=C=CH child-sas {c {state=INSTALLED '
                          'local-ts=[0.0.0.0/0 ::/0]}}}}\nlist-sas reply {}')
    pretty = parse_vici_dump("list-sa event {\n  rv-21 {\n    state = ESTABLISHED\n    local-id = C=CH\n"
                             "    child-sas {\n      c {\n        state = INSTALLED\n        local-ts = [\n"
                             "          0.0.0.0/0\n          ::/0\n        ]\n      }\n    }\n  }\n}\n"
                             "list-sas reply {\n}\n")
    assert raw == pretty == [("list-sa event", {"rv-21": {"state": "ESTABLISHED", "local-id": "C=CH", "child-sas": {
        "c": {"state": "INSTALLED", "local-ts": ["0.0.0.0/0", "::/0"]}}}}), ("list-sas reply", {})]
    # Values with spaces (distinguished names) survive the pretty form only.
    spaced = parse_vici_dump("list-sa event {\n  x {\n    remote-id = C=CH, O=Example, CN=v2-1\n  }\n}\n")
    assert spaced[0][1]["x"]["remote-id"] == "C=CH, O=Example, CN=v2-1"


@pytest.mark.parametrize("text", ["list-sa event {rv-21 {state=ESTABLISHED", "}", "state=x"])
def test_vici_dump_rejects_broken_output(text):
    with pytest.raises(HealthInputError):
        parse_vici_dump(text)


def test_ike_sas_keeps_every_sa_of_a_connection():
    assert list(ike_sas(captured("swanctl-established.raw"))) == ["rv-21"]
    assert ike_sas("") == {}


def test_health_table():
    rows = judge(mesh()) + judge(mesh(), birdc="birdc-down.txt")
    lines = health_table(rows)
    assert lines[0].split() == ["gateway", "peer", "link", "IKE", "CHILD", "if_id", "BGP", "prefixes", "status"]
    assert lines[1].split() == ["v1-1", "v2-1", "11-21", "ESTABLISHED", "INSTALLED", "4296", "ok", "Established",
                                "1", "ok"]
    assert lines[2].split()[-1] == "DOWN" and "Active" in lines[2]
    assert "v1-1 -> v2-1: BGP rv-21 is Active (Socket: Connection refused)" in lines
    assert lines[-1] == "1 of 2 link ends healthy"
    for title, cell in (("IKE", "ESTABLISHED"), ("BGP", "Established")):
        assert lines[0].index(title) == lines[1].index(cell), "columns are not aligned"
    assert lines[0].index("status") == lines[1].rindex("ok") == lines[2].index("DOWN")


# -- libreswan: pluto-5.2-showstates.txt is `ipsec whack --showstates` on v2-1
# of the mixed lab (libreswan 5.2, XFRM interface rv-11, peer v1-1 strongSwan).

def libreswan_end():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"]["routevpn_ike_daemon"] = "libreswan"
    (end,) = plan(hostvars, sorted(hostvars))["hosts"]["v2-1"]
    assert (end["connection"], end["ike_daemon"], end["if_id"]) == ("rv-11", "libreswan", 4296)
    return end


def pluto_lines(*serials):
    """The capture's lines of the states with these serials only."""
    return "\n".join(line for line in captured("pluto-5.2-showstates.txt").splitlines()
                     if int(line.split(":", 1)[0].lstrip("#")) in serials)


def test_pluto_states_are_read_per_conn():
    # The "Traffic:" lines of the CHILD_SAs carry no state and are left out.
    assert pluto_states(captured("pluto-5.2-showstates.txt")) == {
        "rv-11-v4": [(1, "ESTABLISHED_IKE_SA"), (2, "ESTABLISHED_CHILD_SA")],
        "rv-11-v6": [(3, "ESTABLISHED_CHILD_SA")]}


def test_a_healthy_libreswan_end():
    (row,) = link_health([libreswan_end()], pluto=captured("pluto-5.2-showstates.txt"),
                         policies=[policy("in"), policy("out")], require_prefixes=False)
    assert (row["ike"], row["child"], row["if_id_ok"]) == ("ESTABLISHED", "INSTALLED", True), row["problems"]
    assert not [problem for problem in row["problems"] if "SA" in problem], row["problems"]


def test_libreswan_4_prints_the_same_states_with_prefixes():
    text = "\n".join("000 " + line.replace(" ESTABLISHED_", " STATE_V2_ESTABLISHED_")
                     for line in captured("pluto-5.2-showstates.txt").splitlines())
    (row,) = link_health([libreswan_end()], pluto=text, policies=[policy("in"), policy("out")], require_prefixes=False)
    assert (row["ike"], row["child"]) == ("ESTABLISHED", "INSTALLED"), row["problems"]


@pytest.mark.parametrize("serials, ike, child, problem", [
    ((1, 2), "ESTABLISHED", "partial", "no CHILD_SA established for rv-11-v6"),
    ((2, 3), "down", "INSTALLED", "no IKE_SA established for rv-11 (pluto: ESTABLISHED_CHILD_SA)"),
    ((), "none", "none", "no IKE_SA rv-11-v4 or rv-11-v6"),
])
def test_what_is_down_on_a_libreswan_end_is_named(serials, ike, child, problem):
    (row,) = link_health([libreswan_end()], pluto=pluto_lines(*serials), policies=[policy("in"), policy("out")],
                         require_prefixes=False)
    assert (row["ike"], row["child"]) == (ike, child) and problem in row["problems"], row["problems"]


def test_without_pluto_output_a_libreswan_end_reads_not_applicable():
    (row,) = link_health([libreswan_end()], policies=[policy("in"), policy("out")], require_prefixes=False)
    assert (row["ike"], row["child"]) == ("n/a", "n/a")
