"""The per-link judgement of playbooks/verify.yml, against outputs captured on a real kernel.

captured/ holds what swanctl 5.9.8, BIRD 2.0.12, iproute2 and the
xfrm_policy_facts backend printed in a VM with Debian's kernel
(captured/capture.sh: two gateways, link 11-21, if_id 4296, BGP over
2001:db8:ff::190/127; both ends of the link through a kill -9 of charon and
its restart), what libreswan's whack says without pluto
(captured/capture-pluto-down.sh), and ECMP routes made natively.  The
link is the one the planner makes for gateways 11 and 21, so the plan below
and the captures agree the way a real mesh would.
"""

import json
import pathlib

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import (
    HealthInputError,
    bird_protocols,
    command_problem,
    cross_check,
    gateway_problems,
    health_table,
    ike_sas,
    kernel_routes,
    link_health,
    parse_vici_dump,
    pluto_spis,
    pluto_states,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_inventory import inventory

CAPTURED = pathlib.Path(__file__).parent / "captured"


def captured(name):
    """A capture: JSON files parsed (a *.result.json is a command's registered rc, stdout, stderr)."""
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


# -- Both ends of link 11-21 (captured/capture.sh, the pair-* files: a is v1-1, b is v2-1, the same
# IKE addresses 2001:db8:1::1 and 2001:db8:2::1 as the plan's).  Each step holds both gateways'
# `swanctl --list-sas --raw` and the xfrm_policy_facts backend's dump (policies and SAs):
#   up          one IKE_SA, one CHILD_SA (c1ca2ab0 out of v1-1, c28154a3 out of v2-1)
#   dupike      three IKE_SAs on both ends (BGP hit v2-1's trap while it initiated), two CHILD_SAs
#   twoike      the newest of them terminated: two IKE_SAs, one with the CHILD_SA
#   killed      charon killed -9 on v1-1: v2-1 still holds its IKE_SAs, both kernels the SAs
#   restarted   charon started again on v1-1: no IKE_SA there, the dead charon's SAs still in its kernel
#   reinitiated v1-1 initiated: v2-1 took the INITIAL_CONTACT and dropped the old SAs, v1-1's kernel kept them

def pair_end(step, gateway, swanctl=None, the_plan=None, **kwargs):
    """link_health of one end at one step (IKE and kernel: BGP and prefixes are judged elsewhere)."""
    the_plan = the_plan or mesh()
    xfrm = captured("pair-%s-%s.xfrm.json" % (step, gateway))
    if swanctl is None:
        swanctl = captured("pair-%s-%s.swanctl.raw" % (step, gateway))
    (row,) = link_health(the_plan["hosts"][gateway], swanctl=swanctl, policies=xfrm["policies"],
                         states=xfrm["states"], require_prefixes=False, **kwargs)
    row["problems"] = [problem for problem in row["problems"] if not problem.startswith("no BGP session")]
    row["ok"] = not row["problems"]
    return row


def pair(step, **swanctl):
    """Both ends of the link at one step, cross-checked."""
    return dict((row["gateway"], row) for row in cross_check(
        [pair_end(step, gateway, swanctl=swanctl.get(gateway.replace("-", "_"))) for gateway in ("v1-1", "v2-1")]))


def refused():
    """What `swanctl --list-sas --pretty` registered on v1-1 with its charon killed -9 (rc 111)."""
    return captured("swanctl-refused.result.json")


def test_both_ends_of_a_healthy_link_agree():
    rows = pair("up")
    for gateway, out, into in (("v1-1", "c1ca2ab0", "c28154a3"), ("v2-1", "c28154a3", "c1ca2ab0")):
        row = rows[gateway]
        assert (row["status"], row["ok"], row["problems"]) == ("ok", True, []), row
        assert row["evidence"]["kernel"] == {"in": [into], "out": [out]}
        assert row["evidence"]["ike_spis"] == [["6b4eed0cd5d6be0c", "2077cd4f9ba11e2c"]]
        assert row["evidence"]["daemon_answered"] is True
    assert rows["v1-1"]["evidence"]["child_spis"] == [
        {"name": "rv-21", "state": "INSTALLED", "in": "c28154a3", "out": "c1ca2ab0"}]


def test_pretty_and_raw_give_the_same_evidence():
    for gateway in ("v1-1", "v2-1"):
        raw = pair_end("up", gateway)
        pretty = pair_end("up", gateway, swanctl=captured("pair-up-%s.swanctl.pretty" % gateway))
        assert raw == pretty


def test_peer_charon_killed_the_survivor_is_down_naming_why():
    """The lab's case: v2-1 alone would call its end healthy (a stale SA); its peer says otherwise."""
    # As if v2-1 held one IKE_SA (the killed capture also has the empty duplicate of twoike): drop that one.
    survivor = "\n".join(line for line in captured("pair-killed-v2-1.swanctl.raw").splitlines()
                         if "uniqueid=1 " not in line)
    alone = pair_end("killed", "v2-1", swanctl=survivor)
    assert alone["ok"] and alone["ike"] == "ESTABLISHED", alone["problems"]
    killed = pair_end("killed", "v1-1", swanctl=refused())
    assert (killed["ike"], killed["child"]) == ("none", "none")
    assert killed["problems"] == ["no IKE_SA rv-21 (charon is not running)"]
    assert killed["evidence"]["daemon_answered"] is False
    assert killed["evidence"]["kernel"] == {"in": ["ce0b2266"], "out": ["cc0680e8"]}, "kill -9 leaves the SAs"
    rows = dict((row["gateway"], row) for row in cross_check([killed, alone]))
    assert rows["v2-1"]["status"] == "DOWN"
    assert rows["v2-1"]["problems"] == [
        "link 11-21: peer v1-1 has no IKE_SA for it (charon is not running on v1-1: "
        "/run/cap/a/charon.vici refused the connection)"]
    assert rows["v1-1"]["status"] == "DOWN"


def test_charon_restarted_leaves_the_dead_ones_sas_in_the_kernel():
    rows = pair("restarted")
    assert rows["v1-1"]["problems"] == [
        "no IKE_SA rv-21",
        "kernel SA ce0b2266 (in) with if_id 4296 belongs to no CHILD_SA of charon (stale)",
        "kernel SA cc0680e8 (out) with if_id 4296 belongs to no CHILD_SA of charon (stale)",
    ], rows["v1-1"]["problems"]
    assert "link 11-21: peer v1-1 has no IKE_SA for it" in rows["v2-1"]["problems"]


def test_a_stale_sa_beside_the_new_one_is_named_on_both_ends():
    rows = pair("reinitiated")
    stale = "link 11-21: SPI cc0680e8 out of v1-1 is not an inbound SA on v2-1 (stale)"
    for gateway in ("v1-1", "v2-1"):
        assert rows[gateway]["status"] == "DOWN" and stale in rows[gateway]["problems"], rows[gateway]["problems"]
    assert ("kernel SA cc0680e8 (out) with if_id 4296 belongs to no CHILD_SA of charon (stale)"
            in rows["v1-1"]["problems"])
    # The IKE_SAs agree: v2-1 dropped the old ones on the INITIAL_CONTACT.
    assert not [problem for problem in rows["v1-1"]["problems"] + rows["v2-1"]["problems"] if "IKE_SA" in problem]


@pytest.mark.parametrize("step, problems", [
    ("dupike", ["3 IKE_SAs established for {conn} (duplicate)", "2 CHILD_SAs installed for {conn} (duplicate)"]),
    ("twoike", ["2 IKE_SAs established for {conn} (duplicate)"]),
])
def test_duplicate_sas_are_named_on_both_ends(step, problems):
    rows = pair(step)
    for gateway, conn in (("v1-1", "rv-21"), ("v2-1", "rv-11")):
        assert rows[gateway]["problems"] == [problem.format(conn=conn) for problem in problems], rows[gateway]
        assert rows[gateway]["status"] == "DOWN"


def test_ike_spis_that_differ_between_the_ends_are_stale():
    """v1-1 as after the reinitiation, v2-1 as before: each holds an IKE_SA the other does not."""
    v1 = pair_end("reinitiated", "v1-1")
    v2 = pair_end("up", "v2-1")
    (row, _other) = cross_check([v1, v2])
    assert "link 11-21: IKE_SA 4ac87aef4701ee1c_i 1301999fcc2cd65c_r of v1-1 is not on v2-1 (stale)" in row["problems"]
    assert "link 11-21: IKE_SA 6b4eed0cd5d6be0c_i 2077cd4f9ba11e2c_r of v2-1 is not on v1-1 (stale)" in row["problems"]


def test_a_child_sa_whose_kernel_sas_have_another_if_id_is_caught():
    xfrm = captured("pair-up-v1-1.xfrm.json")
    for state in xfrm["states"]:
        state["if_id"] = 4297
    (row,) = link_health(mesh()["hosts"]["v1-1"], swanctl=captured("pair-up-v1-1.swanctl.raw"),
                         policies=xfrm["policies"], states=xfrm["states"], require_prefixes=False)
    assert not row["if_id_ok"]
    assert "no inbound ESP SA in the kernel with if_id 4296" in row["problems"]
    assert "no outbound ESP SA in the kernel with if_id 4296" in row["problems"]
    # After the reinitiation (old SAs beside the new ones), the new inbound SA with another if_id:
    # the CHILD_SA's SA is named as missing, not hidden by the stale one that has the right if_id.
    xfrm = captured("pair-reinitiated-v1-1.xfrm.json")
    for state in xfrm["states"]:
        if state["spi"] == "0xc455212f":
            state["if_id"] = 4297
    (row,) = link_health(mesh()["hosts"]["v1-1"], swanctl=captured("pair-reinitiated-v1-1.swanctl.raw"),
                         policies=xfrm["policies"], states=xfrm["states"], require_prefixes=False)
    assert not row["if_id_ok"]
    assert "CHILD_SA rv-21 SPI c455212f (in) is not in the kernel with if_id 4296" in row["problems"], row["problems"]


def test_larval_and_other_sas_are_not_the_ends():
    xfrm = captured("pair-up-v1-1.xfrm.json")
    larval = dict(xfrm["states"][1], spi="0xdeadbeef", algorithms={})  # an SPI allocated for a negotiation
    other = dict(xfrm["states"][1], spi="0xfeedf00d", if_id=4297)  # another link's
    (row,) = link_health(mesh()["hosts"]["v1-1"], swanctl=captured("pair-up-v1-1.swanctl.raw"),
                         policies=xfrm["policies"], states=xfrm["states"] + [larval, other], require_prefixes=False)
    assert row["evidence"]["kernel"] == {"in": ["c28154a3"], "out": ["c1ca2ab0"]}


def test_vti_ends_own_the_unmarked_kernel_sas_between_their_ike_addresses():
    """charon (mark_in_sa=no) and pluto install a VTI link's SAs without a mark: the policies carry it."""
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["routevpn_tunnel_type"] = "vti"
    (end,) = plan(hostvars, sorted(hostvars))["hosts"]["v1-1"]
    sas = in_child_sas(captured("pair-up-v1-1.swanctl.raw"), "if-id-in=000010c8 if-id-out=000010c8",
                       "mark-in=000010c8/ffffffff mark-out=000010c8/ffffffff")
    as_installed = [dict(state, if_id=None, mark=None) for state in captured("pair-up-v1-1.xfrm.json")["states"]]
    marked = [{"direction": d, "if_id": None, "mark": 4296} for d in ("in", "out")]
    (row,) = link_health([end], swanctl=sas, policies=marked, states=as_installed, require_prefixes=False)
    assert [p for p in row["problems"] if "BGP" not in p] == []
    assert row["evidence"]["kernel"] == {"in": ["c28154a3"], "out": ["c1ca2ab0"]}
    # Another link's SA (other addresses) and an SA marked for another tunnel are not this end's.
    elsewhere = dict(as_installed[1], spi="0xfeedf00d", src="2001:db8:3::1")
    other_mark = dict(as_installed[1], spi="0xdeadbeef", mark=4297, mark_mask=0xFFFFFFFF)
    (row,) = link_health([end], swanctl=sas, policies=marked, states=as_installed + [elsewhere, other_mark],
                         require_prefixes=False)
    assert row["evidence"]["kernel"] == {"in": ["c28154a3"], "out": ["c1ca2ab0"]}
    # Gone from the kernel: named by the link's addresses.
    inbound_only = [state for state in as_installed if state["dst"] == "2001:db8:1::1"]
    (row,) = link_health([end], swanctl=sas, policies=marked, states=inbound_only, require_prefixes=False)
    assert ("no outbound ESP SA in the kernel between 2001:db8:1::1 and 2001:db8:2::1"
            in row["problems"]), row["problems"]
    assert not row["if_id_ok"]


def test_a_peer_missing_from_the_report():
    """v1-1's end is healthy alone; v2-1 is in the run but said nothing (unreachable): not healthy."""
    (row,) = cross_check([pair_end("up", "v1-1")], verified=["v1-1", "v2-1"])
    assert (row["status"], row["problems"]) == ("DOWN", ["link 11-21: peer v2-1 did not report"])


def test_a_peer_outside_the_limit_is_not_verified_neither_healthy_nor_down():
    (row,) = cross_check([pair_end("up", "v1-1")], verified=["v1-1"])
    assert (row["status"], row["ok"], row["problems"]) == ("not verified", False, [])
    assert row["unverified"] == "peer v2-1 is not verified by this run (outside --limit)"
    lines = health_table([row])
    assert lines[1].split()[-2:] == ["not", "verified"]
    assert "v1-1 -> v2-1: not verified: peer v2-1 is not verified by this run (outside --limit)" in lines
    assert lines[-1] == "0 of 1 link ends healthy, 1 not verified (peer outside this run)"
    # An end that is down alone is down, whoever its peer is.
    (down,) = cross_check([pair_end("restarted", "v1-1")], verified=["v1-1"])
    assert down["status"] == "DOWN"


def test_an_end_to_an_external_peer_is_judged_alone_and_says_so():
    """Nobody reads an external peer's side (routevpn_external_peers): the Linux end's own checks decide."""
    (row,) = cross_check([pair_end("up", "v1-1")], verified=["v1-1"], external=["v2-1"])
    assert (row["status"], row["ok"], row["external"], row["unverified"]) == ("ok", True, True, None)
    assert health_table([row])[-1] == "1 of 1 link ends healthy, 1 to external peers (judged by their Linux end alone)"
    (down,) = cross_check([pair_end("restarted", "v1-1")], verified=["v1-1"], external=["v2-1"])
    assert down["status"] == "DOWN" and down["external"] is True


def test_without_the_kernel_sas_the_spis_are_not_compared():
    """An older run (policies only) or a failed xfrm_policy_facts: the IKE daemons still must agree."""
    rows = [pair_end("up", gateway) for gateway in ("v1-1", "v2-1")]
    for row in rows:
        row["evidence"]["kernel"] = None
    assert [row["status"] for row in cross_check(rows)] == ["ok", "ok"]


# -- libreswan ends against their peers, by the kernels' SPIs ---------------------------------------
# pluto-5.2-showstates.txt lists v2-1's CHILD_SAs with their SPIs (esp.SPI@DESTINATION): rv-11-v4
# cb1df265 to v1-1 and 7ca7564a to v2-1, rv-11-v6 c0cccee9 to v1-1 and 33a451be to v2-1, over IKE
# addresses 203.0.113.11 and 203.0.113.21.  No kernel dump was captured with it: the SAs below have the
# captured records' shape (pair-up-v1-1.xfrm.json) with those SPIs and addresses.

def mixed_plan():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"]["routevpn_ike_daemon"] = "libreswan"
    hostvars["v1-1"]["routevpn_public_address"] = "203.0.113.11"
    hostvars["v2-1"]["routevpn_public_address"] = "203.0.113.21"
    return plan(hostvars, sorted(hostvars))


def kernel_sa(spi, src, dst):
    return dict(captured("pair-up-v1-1.xfrm.json")["states"][0], spi="0x" + spi, src=src, dst=dst, family="ipv4")


MIXED_SAS = [kernel_sa("cb1df265", "203.0.113.21", "203.0.113.11"),
             kernel_sa("7ca7564a", "203.0.113.11", "203.0.113.21"),
             kernel_sa("c0cccee9", "203.0.113.21", "203.0.113.11"),
             kernel_sa("33a451be", "203.0.113.11", "203.0.113.21")]


def mixed_rows(pluto=None, v1_states=None, v2_states=None):
    """Both ends, v1-1 (strongSwan, judged by its kernel only here) and v2-1 (libreswan 5.2, the capture)."""
    the_plan = mixed_plan()
    policies = [policy("in"), policy("out")]
    (v1,) = link_health(the_plan["hosts"]["v1-1"], policies=policies, states=v1_states or MIXED_SAS,
                        require_prefixes=False)
    (v2,) = link_health(the_plan["hosts"]["v2-1"],
                        pluto=captured("pluto-5.2-showstates.txt") if pluto is None else pluto,
                        policies=policies, states=v2_states or MIXED_SAS, require_prefixes=False)
    return dict((row["gateway"], row) for row in cross_check([v1, v2]))


def sa_problems(row):
    return [problem for problem in row["problems"] if "BGP" not in problem]


def test_a_libreswan_end_agrees_with_its_peer_by_the_kernels_spis():
    rows = mixed_rows()
    assert rows["v2-1"]["evidence"]["kernel"] == {"in": ["33a451be", "7ca7564a"], "out": ["c0cccee9", "cb1df265"]}
    assert rows["v2-1"]["evidence"]["child_spis"] == [
        {"name": "rv-11-v4", "state": "ESTABLISHED_CHILD_SA", "in": "7ca7564a", "out": "cb1df265"},
        {"name": "rv-11-v6", "state": "ESTABLISHED_CHILD_SA", "in": "33a451be", "out": "c0cccee9"}]
    assert rows["v1-1"]["evidence"]["kernel"] == {"in": ["c0cccee9", "cb1df265"], "out": ["33a451be", "7ca7564a"]}
    for row in rows.values():
        assert sa_problems(row) == [], row["problems"]


def test_a_libreswan_end_whose_sa_the_peer_lacks_is_down():
    rows = mixed_rows(v1_states=[sa for sa in MIXED_SAS if sa["spi"] != "0xc0cccee9"])
    stale = "link 11-21: SPI c0cccee9 out of v2-1 is not an inbound SA on v1-1 (stale)"
    assert stale in rows["v1-1"]["problems"] and stale in rows["v2-1"]["problems"]


def test_a_kernel_sa_pluto_does_not_list_is_stale():
    extra = kernel_sa("deadbeef", "203.0.113.21", "203.0.113.11")
    rows = mixed_rows(v2_states=MIXED_SAS + [extra])
    assert ("kernel SA deadbeef (out) with if_id 4296 belongs to no CHILD_SA of pluto (stale)"
            in rows["v2-1"]["problems"])
    assert "link 11-21: SPI deadbeef out of v2-1 is not an inbound SA on v1-1 (stale)" in rows["v1-1"]["problems"]


def test_duplicates_on_a_libreswan_end():
    text = captured("pluto-5.2-showstates.txt")
    # The capture again with a second IKE SA (#4) and a second CHILD_SA of rv-11-v4 (#5), as pluto prints them.
    lines = text.splitlines()
    duplicated = "\n".join(lines + [lines[0].replace("#1:", "#4:"), lines[1].replace("#2:", "#5:")])
    rows = mixed_rows(pluto=duplicated)
    assert "2 IKE_SAs established for rv-11 (duplicate: #1, #4)" in rows["v2-1"]["problems"]
    assert "2 CHILD_SAs established for rv-11-v4 (duplicate: #2, #5)" in rows["v2-1"]["problems"]


@pytest.mark.parametrize("capture", ["pluto-5.2-refused.result.json", "pluto-4.10-refused.result.json"])
def test_a_dead_pluto_is_named_on_its_peer(capture):
    rows = mixed_rows(pluto=captured(capture))
    assert rows["v2-1"]["problems"][0] == "no IKE_SA rv-11 (pluto is not running)"
    assert ("link 11-21: peer v2-1 has no IKE_SA for it (pluto is not running on v2-1: /run/pluto/pluto.ctl refused "
            "the connection)") in rows["v1-1"]["problems"]


# -- what is wrong with a gateway, in one line ------------------------------------------------
@pytest.mark.parametrize("capture, problem", [
    ("swanctl-refused.result.json", "charon is not running: /run/cap/a/charon.vici refused the connection"),
    ("swanctl-missing.result.json", "charon is not running: /run/cap/a/none.vici does not exist"),
    ("swanctl-default-missing.result.json", "charon is not running: /var/run/charon.vici does not exist"),
    ("pluto-4.10-missing.result.json", "pluto is not running: /run/pluto/pluto.ctl does not exist"),
    ("pluto-4.10-refused.result.json", "pluto is not running: /run/pluto/pluto.ctl refused the connection"),
    ("pluto-5.2-missing.result.json", "pluto is not running: /run/pluto/pluto.ctl does not exist"),
    ("pluto-5.2-refused.result.json", "pluto is not running: /run/pluto/pluto.ctl refused the connection"),
    ("birdc-refused.result.json", "BIRD is not running in netns ap: /run/cap/a/bird.ctl refused the connection"),
    ("birdc-missing.result.json", "BIRD is not running in netns ap: /run/cap/a/none.ctl does not exist"),
    ("birdc-no-netns.result.json", "netns nonexistent does not exist"),
    ("routes-no-netns.result.json", "netns nonexistent does not exist"),
])
def test_a_failed_command_is_one_line(capture, problem):
    assert command_problem(captured(capture)) == problem


def test_gateway_problems_of_verify_results():
    """charon killed and the namespace gone: one line each, in order, each said once."""
    routes = {"results": [captured("routes-no-netns.result.json"), dict(captured("routes-no-netns.result.json"))]}
    problems = gateway_problems({
        "routes": routes,
        "birdc": captured("birdc-no-netns.result.json"),
        "swanctl": refused(),
        "pluto": {"skipped": True, "changed": False},
        "xfrm": {"changed": False, "ansible_facts": {"routevpn_xfrm_policies": [], "routevpn_xfrm_states": []}},
        "netns": {"changed": False, "changes": ["create netns private"], "leaks": [], "failed_when_result": False},
    })
    assert problems == ["drift: create netns private",
                        "charon is not running: /run/cap/a/charon.vici refused the connection",
                        "netns nonexistent does not exist"]


def test_gateway_problems_of_modules_and_unknown_errors():
    leak = {"interface": "leak0", "kind": "veth", "netns": None, "peer_netns": "private"}
    assert gateway_problems({"netns": {"changes": [], "leaks": [leak]}}) == [
        "leak: leak0 (veth) joins the public namespace to netns private directly; only tunnel devices may cross"]
    failed = {"failed": False, "failed_when_result": False, "changed": False,
              "msg": "reading the XFRM policies needs CAP_NET_ADMIN: run the task as root (become: true)"}
    assert gateway_problems({"xfrm": failed}) == [
        "xfrm_policy_facts failed: reading the XFRM policies needs CAP_NET_ADMIN: run the task as root (become: true)"]
    crashed = {"failed_when_result": False, "msg": "MODULE FAILURE: No start of json char found\nSee stdout/stderr",
               "module_stderr": "Traceback...\nImportError: no pyroute2\n"}
    assert gateway_problems({"xfrm": crashed}) == ["xfrm_policy_facts crashed: ImportError: no pyroute2"]
    denied = dict(refused(), stderr=refused()["stderr"].replace("Connection refused", "Permission denied"))
    assert gateway_problems({"swanctl": denied}) == [
        "charon cannot be asked: /run/cap/a/charon.vici is not accessible (permission denied: run verify as root)"]
    # An error swanctl has no sentence for: its last meaningful line, without the noise and the usage.
    odd = dict(refused(), stderr=refused()["stderr"].replace(
        "connecting to 'unix:///run/cap/a/charon.vici' failed: Connection refused\n", "").replace(
        "Error: connecting to 'unix:///run/cap/a/charon.vici' URI failed: Connection refused", "vici: something odd"))
    assert gateway_problems({"swanctl": odd}) == ["swanctl --list-sas failed (rc 111): vici: something odd"]
    missing = {"rc": 2, "cmd": ["swanctl", "--list-sas"], "failed_when_result": False, "stdout": "", "stderr": "",
               "msg": "[Errno 2] No such file or directory: b'swanctl'"}
    assert gateway_problems({"swanctl": missing}) == ["swanctl is not installed (not found on PATH)"]
    assert gateway_problems({"swanctl": dict(refused(), rc=0, stdout="list-sas reply {}")}) == []


def test_no_problem_line_carries_noise():
    for capture in ("swanctl-refused.result.json", "swanctl-missing.result.json",
                    "swanctl-default-missing.result.json"):
        problem = command_problem(captured(capture))
        assert "plugin" not in problem and "usage" not in problem and "\n" not in problem


def test_bgp_of_a_dead_bird_says_so():
    (row,) = link_health(mesh()["hosts"]["v1-1"], birdc=captured("birdc-refused.result.json"), require_prefixes=False)
    assert "no BGP session with 169.254.1.145 or 2001:db8:ff::191 (BIRD is not running in netns ap)" in row["problems"]


def test_pluto_spis_are_read_with_their_destinations():
    assert pluto_spis(captured("pluto-5.2-showstates.txt")) == {
        "rv-11-v4": [(2, "cb1df265", "203.0.113.11"), (2, "7ca7564a", "203.0.113.21")],
        "rv-11-v6": [(3, "c0cccee9", "203.0.113.11"), (3, "33a451be", "203.0.113.21")]}


def test_a_pluto_whose_spis_are_not_read_calls_no_kernel_sa_stale():
    without_traffic = "\n".join(line for line in captured("pluto-5.2-showstates.txt").splitlines()
                                if "Traffic:" not in line)
    rows = mixed_rows(pluto=without_traffic,
                      v2_states=MIXED_SAS + [kernel_sa("deadbeef", "203.0.113.21", "203.0.113.11")])
    assert rows["v2-1"]["evidence"]["child_spis"] is None
    assert not [problem for problem in rows["v2-1"]["problems"] if "belongs to no CHILD_SA" in problem]
