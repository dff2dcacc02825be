"""Peers the collection does not manage (routevpn_external_peers): planned, numbered and checked like gateways."""

import copy

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import link_index, plan

from .mesh_inventory import inventory, problems_of

GIVEN_PSK = "provider-given-secret-0123456789"


def mesh(peers, layout=None, **extra):
    """hostvars of a mesh (default: sites 1 and 2, one gateway each) with ``peers`` as routevpn_external_peers;
    site3 (AS 64513, 16-bit private) is for the peers."""
    hostvars = inventory(layout or {1: 1, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17", **extra)
    for variables in hostvars.values():
        variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16"]}
        variables["routevpn_external_peers"] = copy.deepcopy(peers)
    return hostvars


def cloud(**extra):
    peer = {"name": "cloud-vgw-1", "platform": "generic", "gateway_id": 31, "site": "site3",
            "public_address": "2001:db8:3::1",
            "tunnels": {"v1-1": {"psk": GIVEN_PSK, "inside_v4": "169.254.200.2/30",
                                 "peer_inside_v4": "169.254.200.1"}}}
    peer.update(extra)
    return peer


def test_an_external_peer_links_with_every_gateway_of_every_other_site_by_default():
    result = plan(mesh([cloud()]), ["v1-1", "v2-1"])
    names = sorted(link["name"] for link in result["links"])
    assert names == ["11-21", "11-31", "21-31"]
    assert "cloud-vgw-1" not in result["hosts"]
    assert [end["peer"] for end in result["hosts"]["v1-1"]] == ["v2-1", "cloud-vgw-1"]
    record = result["external_peers"]["cloud-vgw-1"]
    assert record["asn"] == 64513 and record["platform"] == "generic"
    assert [end["peer"] for end in record["ends"]] == ["v1-1", "v2-1"]
    assert result["sites"]["site3"]["external_peers"] == ["cloud-vgw-1"]


def test_its_links_are_numbered_from_its_id_like_any_link():
    result = plan(mesh([cloud()]), ["v1-1", "v2-1"])
    link = next(link for link in result["links"] if link["name"] == "21-31")
    assert link["index"] == link_index(21, 31)
    assert link["if_id"] == 4096 + link_index(21, 31)
    assert link["external"] == "cloud-vgw-1"


def test_given_inside_addresses_replace_the_pool_s_and_the_bgp_session_uses_them():
    result = plan(mesh([cloud()]), ["v1-1", "v2-1"])
    end = next(end for end in result["hosts"]["v1-1"] if end["peer"] == "cloud-vgw-1")
    assert end["address_v4"] == "169.254.200.2/30" and end["peer_address_v4"] == "169.254.200.1"
    assert {"name": "rv-31-v4", "family": "v4", "local_address": "169.254.200.2",
            "neighbor_address": "169.254.200.1"} in end["bgp_sessions"]
    # The other family still comes from the mesh's pool, by the link's index.
    assert end["address_v6"] is not None
    theirs = next(end for end in result["external_peers"]["cloud-vgw-1"]["ends"] if end["peer"] == "v1-1")
    assert theirs["address_v4"] == "169.254.200.1/30" and theirs["peer_address_v4"] == "169.254.200.2"
    # Without given addresses, the pool's /31.
    other = next(end for end in result["hosts"]["v2-1"] if end["peer"] == "cloud-vgw-1")
    assert other["address_v4"].endswith("/31")


def test_the_managed_end_starts_the_link_and_carries_the_peer_s_settings_but_no_secret():
    result = plan(mesh([cloud(dpd_delay=15, ike_proposals=["aes256-sha256-modp2048"])]), ["v1-1", "v2-1"])
    end = next(end for end in result["hosts"]["v1-1"] if end["peer"] == "cloud-vgw-1")
    assert end["initiator"] and end["starts"] and end["peer_external"] and end["peer_platform"] == "generic"
    assert end["psk_given"] is True and end["dpd_delay"] == 15
    assert end["ike_proposals"] == ["aes256-sha256-modp2048"]
    assert GIVEN_PSK not in repr(result)
    mesh_end = next(end for end in result["hosts"]["v1-1"] if end["peer"] == "v2-1")
    assert mesh_end["peer_external"] is False and mesh_end["ike_proposals"] is None


def test_gateways_limits_the_peer_s_links():
    result = plan(mesh([cloud(gateways=["v1-1"])]), ["v1-1", "v2-1"])
    assert sorted(link["name"] for link in result["links"]) == ["11-21", "11-31"]


def test_a_given_psk_on_every_link_of_the_mesh_needs_no_master():
    peers = [cloud(gateways=["v1-1"])]
    hostvars = mesh(peers, layout={1: 1})
    for variables in hostvars.values():
        del variables["routevpn_psk_master"]
    result = plan(hostvars, ["v1-1"])
    assert [link["name"] for link in result["links"]] == ["11-31"]


def test_removing_the_peer_removes_its_links_and_keeps_every_other_number():
    with_peer = plan(mesh([cloud()]), ["v1-1", "v2-1"])
    without = plan(mesh([]), ["v1-1", "v2-1"])
    assert [link["name"] for link in without["links"]] == ["11-21"]
    kept = next(link for link in with_peer["links"] if link["name"] == "11-21")
    assert kept == without["links"][0]


@pytest.mark.parametrize("change, expected", [
    (dict(platform="cisco"), "routevpn_external_peers[cloud-vgw-1].platform: 'cisco'; it must be one of"),
    (dict(gateway_id=11), "routevpn_external_peers[cloud-vgw-1].gateway_id: 11 is already used by v1-1"),
    (dict(site="nowhere"), "routevpn_external_peers[cloud-vgw-1].site: unknown site 'nowhere'"),
    (dict(public_address="2001:db8:1::1"),
     "routevpn_external_peers[cloud-vgw-1].public_address: 2001:db8:1::1 is already the address of v1-1"),
    (dict(public_address="fe80::1"), "routevpn_external_peers[cloud-vgw-1].public_address: fe80::1 is"),
    (dict(gateways=["v9-9"]), "routevpn_external_peers[cloud-vgw-1].gateways: 'v9-9' is not in the group"),
    (dict(name="v1-1"), "routevpn_external_peers[v1-1].name: v1-1 is also an inventory host"),
    (dict(colour="red"), "routevpn_external_peers[cloud-vgw-1]: unknown key 'colour'"),
    (dict(ike_proposals=["aes256;rm -rf"]), "routevpn_external_peers[cloud-vgw-1].ike_proposals:"),
    (dict(tunnels={"v1-1": {"psk": "short"}}),
     "routevpn_external_peers[cloud-vgw-1].tunnels.v1-1: psk must be a string of at least 16 characters"),
    (dict(tunnels={"v1-1": {"inside_v4": "169.254.200.2/30"}}),
     "routevpn_external_peers[cloud-vgw-1].tunnels.v1-1: inside_v4 and peer_inside_v4 go together"),
    (dict(tunnels={"v1-1": {"inside_v4": "169.254.200.2/30", "peer_inside_v4": "169.254.201.1"}}),
     "is not the other address of inside_v4's network 169.254.200.0/30"),
    (dict(tunnels={"v1-1": {"inside_v4": "169.254.200.3/30", "peer_inside_v4": "169.254.200.1"}}),
     "the first and last addresses of 169.254.200.0/30 are not host addresses"),
    (dict(tunnels={"v1-1": {"inside_v4": "169.254.1.2/30", "peer_inside_v4": "169.254.1.1"}}),
     "overlaps the transfer pool 169.254.0.0/17"),
    (dict(tunnels={"v1-1": {"inside_v4": "10.30.0.2/30", "peer_inside_v4": "10.30.0.1"}}),
     "overlaps site site3's prefix 10.30.0.0/16"),
    (dict(tunnels={"v2-2": {"psk": GIVEN_PSK}}),
     "routevpn_external_peers[cloud-vgw-1].tunnels: 'v2-2' is not a gateway this peer has a link with"),
])
def test_each_problem_names_the_peer_and_its_key(change, expected):
    problems = problems_of(mesh([cloud(**change)]))
    assert any(expected in problem for problem in problems), problems


def test_two_peers_may_not_share_a_name_or_given_networks():
    second = cloud(gateway_id=32, public_address="2001:db8:3::2")
    problems = problems_of(mesh([cloud(), second]))
    assert "all: routevpn_external_peers[cloud-vgw-1]: is listed twice" in problems
    second["name"] = "cloud-vgw-2"
    problems = problems_of(mesh([cloud(), second]))
    assert any("overlaps 169.254.200.0/30, given for link 11-31" in problem for problem in problems), problems


def test_a_psk_override_and_a_given_psk_for_one_link_are_refused():
    problems = problems_of(mesh([cloud()], routevpn_psk_overrides={"11-31": GIVEN_PSK}))
    assert any("link 11-31 has a psk given in routevpn_external_peers[cloud-vgw-1].tunnels" in problem
               for problem in problems), problems


def test_a_mesh_of_certificates_reaches_a_peer_with_pre_shared_keys():
    # Certificates between the gateways, a pre-shared key to the cloud's gateway: each link as its ends can.
    hostvars = mesh([cloud()], routevpn_auth="pubkey")
    result = plan(hostvars, sorted(hostvars))
    auth = dict((end["link"], end["auth"]) for end in result["hosts"]["v1-1"] + result["hosts"]["v2-1"])
    assert auth == {"11-21": "pubkey", "11-31": "psk", "21-31": "psk"}
    assert [end["auth"] for end in result["external_peers"]["cloud-vgw-1"]["ends"]] == ["psk", "psk"]


def test_the_master_is_needed_for_a_peer_s_tunnel_without_a_given_key_even_in_a_mesh_of_certificates():
    hostvars = mesh([cloud()], routevpn_auth="pubkey")
    for variables in hostvars.values():
        del variables["routevpn_psk_master"]
    # 21-31 has no given key: it would be derived from the master.
    assert any(problem.startswith("all: routevpn_psk_master: missing") for problem in problems_of(hostvars))
    for variables in hostvars.values():
        variables["routevpn_external_peers"][0]["tunnels"]["v2-1"] = {"psk": GIVEN_PSK[::-1]}
    assert plan(hostvars, sorted(hostvars))["links"]


def test_two_managed_gateways_still_must_agree():
    hostvars = mesh([cloud()])
    hostvars["v2-1"]["routevpn_auth"] = "pubkey"
    problems = problems_of(hostvars)
    assert problems == ["v1-1, v2-1: routevpn_auth: link 11-21 joins v1-1 (psk) and v2-1 (pubkey); both ends of a "
                        "link must use the same method"]


@pytest.mark.parametrize("value", ["not a list", [1], [{"platform": "junos"}]])
def test_a_malformed_list_is_one_clear_problem(value):
    hostvars = mesh([])
    for variables in hostvars.values():
        variables["routevpn_external_peers"] = value
    problems = problems_of(hostvars)
    assert any(problem.startswith("all: routevpn_external_peers") for problem in problems), problems
