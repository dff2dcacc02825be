"""Properties of the planner over random meshes (hypothesis)."""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_inventory import mesh_vars

MAX_ID = 180  # keeps every index inside the /16 IPv4 pool of mesh_vars


@st.composite
def meshes(draw):
    """A random mesh: distinct gateway ids spread over 2..6 sites."""
    ids = draw(st.lists(st.integers(1, MAX_ID), min_size=3, max_size=16, unique=True))
    site_count = draw(st.integers(2, 6))
    sites = {gid: draw(st.integers(1, site_count)) for gid in ids}
    return sites


def hostvars_of(sites):
    common = mesh_vars(sorted(set(sites.values())) or [1])
    return {
        "gw%d" % gid: dict(
            common,
            routevpn_site="site%d" % site,
            routevpn_gateway_id=gid,
            routevpn_public_address="2001:db8:%x::1" % gid,
        )
        for gid, site in sites.items()
    }


def links_by_name(result):
    return {link["name"]: link for link in result["links"]}


@settings(max_examples=150, deadline=None)
@given(meshes(), st.data())
def test_adding_or_removing_a_gateway_changes_no_other_link(sites, data):
    full = hostvars_of(sites)
    removed_id = data.draw(st.sampled_from(sorted(sites)))
    smaller = {name: v for name, v in full.items() if name != "gw%d" % removed_id}
    # The smaller inventory's site table is the same (a site may lose its last gateway).
    before = links_by_name(plan(full, list(full)))
    after = links_by_name(plan(smaller, list(smaller)))
    for name, link in after.items():
        assert before[name] == link
    gone = set(before) - set(after)
    assert all(str(removed_id) in name.split("-") for name in gone)


@settings(max_examples=150, deadline=None)
@given(meshes(), st.randoms())
def test_plan_does_not_depend_on_host_order(sites, rnd):
    hostvars = hostvars_of(sites)
    names = list(hostvars)
    shuffled = names[:]
    rnd.shuffle(shuffled)
    assert plan(hostvars, names) == plan(hostvars, shuffled)


@settings(max_examples=150, deadline=None)
@given(meshes())
def test_full_mesh_between_sites_with_unique_numbers(sites):
    hostvars = hostvars_of(sites)
    result = plan(hostvars, list(hostvars))
    expected_pairs = {
        (a, b) for a in sites for b in sites if a < b and sites[a] != sites[b]
    }
    assert {tuple(sorted((hostvars[lk["gateways"][0]]["routevpn_gateway_id"],
                          hostvars[lk["gateways"][1]]["routevpn_gateway_id"])))
            for lk in result["links"]} == expected_pairs
    # Transfer networks never overlap, between any two links.
    subnets = [ipaddress.ip_network(lk["transfer_v6"]) for lk in result["links"]]
    subnets += [ipaddress.ip_network(lk["transfer_v4"]) for lk in result["links"]]
    assert len(set(subnets)) == len(subnets)
    for host, ends in result["hosts"].items():
        for key in ("interface", "if_id", "mark", "connection", "peer"):
            values = [end[key] for end in ends]
            assert len(set(values)) == len(values), (host, key)
        for end in ends:
            assert len(end["interface"]) <= 15
            assert 1 <= end["if_id"] <= 0xFFFFFFFF
    for link in result["links"]:
        low, high = link["ends"]
        for version in ("v6", "v4"):
            assert low["peer_address_" + version] == high["address_" + version].split("/")[0]
            assert high["peer_address_" + version] == low["address_" + version].split("/")[0]
        assert low["local_asn"] == high["peer_asn"] != high["local_asn"] == low["peer_asn"]


@settings(max_examples=150, deadline=None)
@given(meshes(), st.data())
def test_both_ends_agree_on_children_sessions_and_the_one_initiator(sites, data):
    hostvars = hostvars_of(sites)
    for variables in hostvars.values():
        daemon = data.draw(st.sampled_from(["strongswan", "libreswan"]))
        variables["routevpn_ike_daemon"] = daemon
        variables["routevpn_%s_initiator" % daemon] = data.draw(st.sampled_from(["lower", "both"]))
    result = plan(hostvars, list(hostvars))
    for link in result["links"]:
        low, high = link["ends"]
        # One initiator per link (playbooks/reauth.yml), and it starts the link; the other end may too.
        assert (low["initiator"], high["initiator"]) == (True, False) and low["starts"]
        assert high["starts"] == (high["initiation"] == "both")
        # The same CHILD_SAs on both ends, a pair per family as soon as one end is libreswan.
        assert [c["traffic_selectors"] for c in low["children"]] == [c["traffic_selectors"] for c in high["children"]]
        assert len(low["children"]) == (2 if "libreswan" in (low["ike_daemon"], high["ike_daemon"]) else 1)
        # Each BGP session's neighbour is the other end's local address.
        assert [(s["family"], s["local_address"], s["neighbor_address"]) for s in low["bgp_sessions"]] == [
            (s["family"], s["neighbor_address"], s["local_address"]) for s in high["bgp_sessions"]]
    for host, ends in result["hosts"].items():
        children = [child["name"] for end in ends for child in end["children"]]
        sessions = [session["name"] for end in ends for session in end["bgp_sessions"]]
        assert len(set(children)) == len(children) and len(set(sessions)) == len(sessions), host
