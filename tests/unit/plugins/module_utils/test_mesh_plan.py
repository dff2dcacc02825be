"""The mesh planner: allocation, per-host views, PSKs and validation."""

import ipaddress

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import (
    PlanError,
    derive_psk,
    link_index,
    link_psk,
    plan,
)

from .mesh_inventory import MASTER, inventory, problems_of


def test_reference_lab_has_twelve_links_and_no_intra_site_link():
    result = plan(inventory({1: 2, 2: 2, 3: 2}), ["v1-1", "v1-2", "v2-1", "v2-2", "v3-1", "v3-2"])
    assert len(result["links"]) == 12
    for link in result["links"]:
        sites = {end["site"] for end in link["ends"]}
        assert len(sites) == 2
    assert [end["peer"] for end in result["hosts"]["v1-1"]] == ["v2-1", "v2-2", "v3-1", "v3-2"]
    assert [end["interface"] for end in result["hosts"]["v1-1"]] == ["rv-21", "rv-22", "rv-31", "rv-32"]


def test_link_numbers_follow_docs_example():
    result = plan(inventory({1: 1, 2: 1}), ["v1-1", "v2-1"])
    (link,) = result["links"]
    assert link["name"] == "11-21"
    assert link["index"] == 200 == link_index(21, 11)
    assert link["if_id"] == 4096 + 200
    assert link["transfer_v6"] == "2001:db8:ff::190/127"
    assert link["transfer_v4"] == "169.254.1.144/31"
    low, high = link["ends"]
    assert (low["gateway"], low["address_v6"], low["peer_address_v6"]) == (
        "v1-1", "2001:db8:ff::190/127", "2001:db8:ff::191")
    assert (high["gateway"], high["address_v6"], high["peer_address_v6"]) == (
        "v2-1", "2001:db8:ff::191/127", "2001:db8:ff::190")
    assert (low["address_v4"], high["address_v4"]) == ("169.254.1.144/31", "169.254.1.145/31")
    assert (low["local_asn"], low["peer_asn"]) == (65001, 65002)
    assert (low["local_ike_address"], low["remote_ike_address"]) == ("2001:db8:1::1", "2001:db8:2::1")
    assert (low["local_id"], low["remote_id"]) == ("v1-1", "v2-1")
    assert low["mark"] == low["if_id"] == high["if_id"]
    assert link["ike_family"] == "ipv6"


@pytest.mark.parametrize("layout, expected", [
    ({1: 1, 2: 1}, "2 gateways in 2 sites, 1 link"),
    ({1: 2, 2: 1}, "3 gateways in 2 sites, 2 links"),
    ({1: 1}, "1 gateway in 1 site, 0 links"),
    ({1: 2, 2: 2, 3: 2}, "6 gateways in 3 sites, 12 links"),
])
def test_the_summary_counts_in_words(layout, expected):
    hostvars = inventory(layout)
    assert plan(hostvars, list(hostvars))["summary"] == expected


@pytest.mark.parametrize("lo, hi, expected", [(1, 2, 0), (1, 3, 1), (2, 3, 2), (1, 4, 3), (3, 4, 5)])
def test_link_index_is_dense_triangular(lo, hi, expected):
    assert link_index(lo, hi) == link_index(hi, lo) == expected


def test_no_v4_pool_means_no_v4_addresses():
    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        del variables["routevpn_transfer_prefix_v4"]
    (link,) = plan(hostvars, list(hostvars))["links"]
    assert link["transfer_v4"] is None
    assert all(end["address_v4"] is None and end["peer_address_v4"] is None for end in link["ends"])


def test_ipv4_endpoints_and_family_choice():
    hostvars = inventory({1: 1, 2: 1, 3: 1})
    hostvars["v1-1"]["routevpn_public_address"] = ["192.0.2.1", "2001:db8:1::1"]
    hostvars["v2-1"]["routevpn_public_address"] = ["192.0.2.2"]
    hostvars["v3-1"]["routevpn_public_address"] = ["192.0.2.3", "2001:db8:3::1"]
    links = {link["name"]: link for link in plan(hostvars, list(hostvars))["links"]}
    assert links["11-21"]["ike_family"] == "ipv4"
    assert links["11-21"]["ends"][0]["remote_ike_address"] == "192.0.2.2"
    assert links["11-31"]["ike_family"] == "ipv6"


@pytest.mark.parametrize("tunnel_type", ["xfrm", "vti"])
def test_a_libreswan_end_gets_the_collections_device_like_a_strongswan_end(tunnel_type):
    """No ipsec<if_id> device of pluto's: libreswan 5.2 (ipsec-interface-managed=no) uses the rv-* interface."""
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"].update(routevpn_ike_daemon="libreswan", routevpn_tunnel_type=tunnel_type)
    (link,) = plan(hostvars, list(hostvars))["links"]
    strongswan, libreswan = link["ends"]
    assert (strongswan["interface"], libreswan["interface"]) == ("rv-21", "rv-11")
    assert (libreswan["ike_daemon"], libreswan["tunnel_type"]) == ("libreswan", tunnel_type)
    assert libreswan["if_id"] == libreswan["mark"] == strongswan["if_id"] == link["if_id"]
    assert libreswan["connection"] == libreswan["interface"]


def test_plan_holds_no_secret():
    result = plan(inventory({1: 2, 2: 2}), ["v1-1", "v1-2", "v2-1", "v2-2"])
    text = repr(result)
    assert MASTER not in text
    for link in result["links"]:
        assert derive_psk(MASTER, link["name"]) not in text


def test_psk_is_256_bits_deterministic_and_per_link():
    first, again, other = derive_psk(MASTER, "11-21"), derive_psk(MASTER, "11-21"), derive_psk(MASTER, "11-22")
    assert first == again != other
    import base64

    assert len(base64.b64decode(first)) * 8 == 256
    assert derive_psk("another-master-secret", "11-21") != first
    assert link_psk(MASTER, "11-21", {"11-21": "explicit-secret-of-this-link"}) == "explicit-secret-of-this-link"
    assert link_psk(MASTER, "11-22", {"11-21": "explicit-secret-of-this-link"}) == other
    with pytest.raises(ValueError):
        link_psk("", "11-21")


VALIDATION_CASES = [
    ("missing id", lambda hv: hv["v1-2"].pop("routevpn_gateway_id"), "v1-2: routevpn_gateway_id: missing"),
    ("zero id", lambda hv: hv["v1-2"].update(routevpn_gateway_id=0), "v1-2: routevpn_gateway_id: 0 is not a number"),
    ("duplicate id", lambda hv: hv["v2-1"].update(routevpn_gateway_id=11),
     "v2-1: routevpn_gateway_id: 11 is already used by v1-1"),
    ("unknown site", lambda hv: hv["v2-1"].update(routevpn_site="mars"), "v2-1: routevpn_site: unknown site 'mars'"),
    ("missing site", lambda hv: hv["v2-1"].pop("routevpn_site"), "v2-1: routevpn_site: missing"),
    ("duplicate asn", lambda hv: [v["routevpn_sites"]["site2"].update(asn=65001) for v in hv.values()],
     "routevpn_sites.site2.asn: 65001 is already the AS of site site1"),
    ("shared public address", lambda hv: hv["v2-2"].update(routevpn_public_address="2001:db8:2::1"),
     "v2-2: routevpn_public_address: 2001:db8:2::1 is already the address of v2-1"),
    ("bad address", lambda hv: hv["v1-1"].update(routevpn_public_address="2001:db8::zz"),
     "v1-1: routevpn_public_address: '2001:db8::zz' is not an IP address"),
    ("bad transfer prefix", lambda hv: [v.update(routevpn_transfer_prefix_v6="2001:db8:ff::1/64") for v in hv.values()],
     "routevpn_transfer_prefix_v6: '2001:db8:ff::1/64' is not a network prefix"),
    ("wrong family pool", lambda hv: [v.update(routevpn_transfer_prefix_v4="2001:db8::/64") for v in hv.values()],
     "routevpn_transfer_prefix_v4: 2001:db8::/64 is not an IPv4 prefix"),
    ("pool too small", lambda hv: [v.update(routevpn_transfer_prefix_v4="169.254.0.0/26") for v in hv.values()],
     "routevpn_transfer_prefix_v4: 169.254.0.0/26 holds 32 /31 links"),
    ("no pool",
     lambda hv: [(v.pop("routevpn_transfer_prefix_v4"), v.pop("routevpn_transfer_prefix_v6")) for v in hv.values()],
     "routevpn_transfer_prefix_v6: missing"),
    ("long ifname", lambda hv: [v.update(routevpn_interface_prefix="routevpn-tunnel-") for v in hv.values()],
     "v1-1: routevpn_interface_prefix: 'routevpn-tunnel-' is not a prefix of letters, digits, _ and -"),
    ("reserved if_id", lambda hv: hv["v1-1"].update(routevpn_reserved_if_ids=[4096 + 200]),
     "v1-1: routevpn_reserved_if_ids: if_id 4296 is reserved here but link 11-21"),
    ("if_id overflow", lambda hv: [v.update(routevpn_if_id_base=0xFFFFFFF0) for v in hv.values()],
     "link 11-21: if_id 4294967480 exceeds"),
    ("mixed families", lambda hv: hv["v2-1"].update(routevpn_public_address="192.0.2.21"),
     "v1-1, v2-1: routevpn_public_address: no address family in common"),
    ("missing master", lambda hv: [v.pop("routevpn_psk_master") for v in hv.values()], "routevpn_psk_master: missing"),
    ("short master", lambda hv: [v.update(routevpn_psk_master="short") for v in hv.values()],
     "routevpn_psk_master: too short"),
    ("unknown override", lambda hv: [v.update(routevpn_psk_overrides={"11-99": "x" * 20}) for v in hv.values()],
     "all: routevpn_psk_overrides: '11-99' is not a link of this mesh"),
    ("differing mesh-wide", lambda hv: hv["v2-1"].update(routevpn_transfer_prefix_v6="2001:db8:fe::/64"),
     "v2-1: routevpn_transfer_prefix_v6: '2001:db8:fe::/64' differs from v1-1's"),
    ("bad tunnel type", lambda hv: hv["v1-1"].update(routevpn_tunnel_type="gre"),
     "v1-1: routevpn_tunnel_type: 'gre' is not one of"),
    ("bad private interface", lambda hv: hv["v1-1"].update(routevpn_private_interfaces=["a-very-long-interface"]),
     "v1-1: routevpn_private_interfaces: 'a-very-long-interface' is not an interface name: 1..15 characters"),
    ("bad private address",
     lambda hv: hv["v1-1"].update(routevpn_private_interfaces=[{"name": "eth1", "addresses": ["10.0.0.1"]}]),
     "v1-1: routevpn_private_interfaces: eth1: '10.0.0.1' is not an address with a prefix length"),
]


@pytest.mark.parametrize("mutate, expected", [case[1:] for case in VALIDATION_CASES],
                         ids=[case[0] for case in VALIDATION_CASES])
def test_each_inventory_problem_names_host_and_variable(mutate, expected):
    hostvars = inventory({1: 2, 2: 2})
    mutate(hostvars)
    found = problems_of(hostvars)
    assert any(expected in problem for problem in found), found


def test_all_problems_are_reported_together():
    hostvars = inventory({1: 2, 2: 2})
    hostvars["v1-2"]["routevpn_gateway_id"] = 11
    hostvars["v2-1"]["routevpn_site"] = "mars"
    hostvars["v2-2"]["routevpn_public_address"] = "not-an-address"
    for variables in hostvars.values():
        variables["routevpn_psk_master"] = ""
    found = problems_of(hostvars)
    assert len(found) == 4, found
    joined = "\n".join(found)
    for fragment in ("v1-2: routevpn_gateway_id", "v2-1: routevpn_site", "v2-2: routevpn_public_address",
                     "routevpn_psk_master: missing"):
        assert fragment in joined


def test_pubkey_auth_needs_no_master():
    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        variables.pop("routevpn_psk_master")
        variables["routevpn_auth"] = "pubkey"
    assert len(plan(hostvars, list(hostvars))["links"]) == 1


def test_both_ends_of_a_link_authenticate_the_same_way():
    hostvars = inventory({1: 2, 2: 1})
    hostvars["v2-1"]["routevpn_auth"] = "pubkey"
    found = problems_of(hostvars)
    assert found == [
        "v1-1, v2-1: routevpn_auth: link 11-21 joins v1-1 (psk) and v2-1 (pubkey); both ends of a link must use the "
        "same method",
        "v1-2, v2-1: routevpn_auth: link 12-21 joins v1-2 (psk) and v2-1 (pubkey); both ends of a link must use the "
        "same method",
    ]


def test_pubkey_ends_carry_both_identities():
    hostvars = inventory({1: 1, 2: 1}, routevpn_auth="pubkey")
    hostvars["v2-1"]["routevpn_ike_id"] = "gw21.example.net"
    ends = plan(hostvars, list(hostvars))["links"][0]["ends"]
    assert [(end["auth"], end["local_id"], end["remote_id"]) for end in ends] == [
        ("pubkey", "v1-1", "gw21.example.net"), ("pubkey", "gw21.example.net", "v1-1")]


def test_empty_group_is_an_error():
    with pytest.raises(PlanError, match="no gateways"):
        plan({}, [])


def test_ini_style_string_numbers_are_accepted():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["routevpn_gateway_id"] = "11"
    assert plan(hostvars, list(hostvars))["links"][0]["name"] == "11-21"


def test_transfer_subnets_are_inside_the_pool():
    result = plan(inventory({1: 2, 2: 2, 3: 2}), ["v1-1", "v1-2", "v2-1", "v2-2", "v3-1", "v3-2"])
    pool = ipaddress.ip_network("2001:db8:ff::/64")
    for link in result["links"]:
        assert ipaddress.ip_network(link["transfer_v6"]).subnet_of(pool)


# ---- what the plan decides for the templates (issue 11): they only print it ----

EVERYTHING = ["0.0.0.0/0", "::/0"]


@pytest.mark.parametrize("low_daemon, high_daemon, per_family", [
    ("strongswan", "strongswan", False),
    ("strongswan", "libreswan", True),
    ("libreswan", "strongswan", True),
    ("libreswan", "libreswan", True),
])
def test_children_one_per_family_where_an_end_is_libreswan(low_daemon, high_daemon, per_family):
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["routevpn_ike_daemon"] = low_daemon
    hostvars["v2-1"]["routevpn_ike_daemon"] = high_daemon
    (link,) = plan(hostvars, list(hostvars))["links"]
    for end in link["ends"]:
        connection = end["connection"]
        if per_family:
            assert end["children"] == [{"name": connection + "-v4", "traffic_selectors": ["0.0.0.0/0"]},
                                       {"name": connection + "-v6", "traffic_selectors": ["::/0"]}]
        else:
            assert end["children"] == [{"name": connection, "traffic_selectors": EVERYTHING}]
    # Both ends negotiate the same CHILD_SAs.
    low, high = link["ends"]
    assert [c["traffic_selectors"] for c in low["children"]] == [c["traffic_selectors"] for c in high["children"]]


@pytest.mark.parametrize("daemon", ["strongswan", "libreswan"])
@pytest.mark.parametrize("low_mode, high_mode, low_starts, high_starts", [
    ("lower", "lower", True, False),
    ("both", "lower", True, False),
    ("lower", "both", True, True),
    ("both", "both", True, True),
])
def test_who_starts_a_link(daemon, low_mode, high_mode, low_starts, high_starts):
    hostvars = inventory({1: 1, 2: 1}, routevpn_ike_daemon=daemon)
    hostvars["v1-1"]["routevpn_%s_initiator" % daemon] = low_mode
    hostvars["v2-1"]["routevpn_%s_initiator" % daemon] = high_mode
    result = plan(hostvars, list(hostvars))
    low, high = result["links"][0]["ends"]
    # The lower gateway id is the link's one initiator (it re-authenticates the link), whatever the modes.
    assert (low["initiator"], high["initiator"]) == (True, False)
    assert (low["starts"], high["starts"]) == (low_starts, high_starts)
    assert (low["initiation"], high["initiation"]) == (low_mode, high_mode)
    assert (result["gateways"]["v1-1"]["initiation"], result["gateways"]["v2-1"]["initiation"]) == (low_mode, high_mode)


def test_the_initiator_setting_of_the_other_daemon_changes_nothing():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"].update(routevpn_ike_daemon="libreswan", routevpn_strongswan_initiator="both")
    hostvars["v1-1"]["routevpn_libreswan_initiator"] = "both"
    low, high = plan(hostvars, list(hostvars))["links"][0]["ends"]
    assert (low["initiation"], high["initiation"]) == ("lower", "lower")
    assert (low["starts"], high["starts"]) == (True, False)


def test_bgp_sessions_one_per_transfer_family_v6_first():
    (link,) = plan(inventory({1: 1, 2: 1}), ["v1-1", "v2-1"])["links"]
    low, high = link["ends"]
    assert low["bgp_sessions"] == [
        {"name": "rv-21-v6", "family": "v6", "local_address": "2001:db8:ff::190",
         "neighbor_address": "2001:db8:ff::191"},
        {"name": "rv-21-v4", "family": "v4", "local_address": "169.254.1.144", "neighbor_address": "169.254.1.145"},
    ]
    assert [(s["name"], s["local_address"], s["neighbor_address"]) for s in high["bgp_sessions"]] == [
        ("rv-11-v6", "2001:db8:ff::191", "2001:db8:ff::190"), ("rv-11-v4", "169.254.1.145", "169.254.1.144")]
    for end in link["ends"]:
        for session in end["bgp_sessions"]:
            family = session["family"]
            length = "127" if family == "v6" else "31"
            assert end["address_" + family] == "%s/%s" % (session["local_address"], length)
            assert end["peer_address_" + family] == session["neighbor_address"]


@pytest.mark.parametrize("dropped, families", [("routevpn_transfer_prefix_v4", ["v6"]),
                                               ("routevpn_transfer_prefix_v6", ["v4"])])
def test_bgp_sessions_only_where_a_transfer_pool_is(dropped, families):
    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        del variables[dropped]
    result = plan(hostvars, list(hostvars))
    for end in result["links"][0]["ends"]:
        assert [session["family"] for session in end["bgp_sessions"]] == families
    assert result["transfer_pool_" + families[0]] is not None
    assert result["transfer_pool_" + ("v4" if families == ["v6"] else "v6")] is None


def test_transfer_pools_are_the_normalised_networks():
    hostvars = inventory({1: 1, 2: 1}, routevpn_transfer_prefix_v6="2001:DB8:FF:0::/64")
    result = plan(hostvars, list(hostvars))
    assert (result["transfer_pool_v6"], result["transfer_pool_v4"]) == ("2001:db8:ff::/64", "169.254.0.0/16")


def test_site_prefixes_split_by_family_in_their_order():
    prefixes = ["2001:db8:a1::/64", "10.1.0.0/16", "10.11.0.0/16", "2001:db8:b1::/64"]
    hostvars = inventory({1: 1, 2: 1})
    for variables in hostvars.values():
        variables["routevpn_sites"]["site1"]["prefixes"] = prefixes
    sites = plan(hostvars, list(hostvars))["sites"]
    assert sites["site1"]["prefixes"] == prefixes
    assert sites["site1"]["prefixes_v4"] == ["10.1.0.0/16", "10.11.0.0/16"]
    assert sites["site1"]["prefixes_v6"] == ["2001:db8:a1::/64", "2001:db8:b1::/64"]
    assert sites["site2"]["prefixes_v4"] == sites["site2"]["prefixes_v6"] == []


@pytest.mark.parametrize("ike_id, san", [
    (None, "DNS:v1-1"),
    ("gw11.example.net", "DNS:gw11.example.net"),
    ("192.0.2.11", "IP:192.0.2.11"),
    ("2001:DB8::11", "IP:2001:DB8::11"),          # as written: the identity the peers expect
    ("gw@example.net", "email:gw@example.net"),
    ("10.0.0.256", "DNS:10.0.0.256"),             # no IPv4 address: strongSwan reads it as a DNS name
    ("CN=v1-1, O=example", None),                 # a DN is the certificate's subject, not a subjectAltName
])
def test_certificate_san_names_the_identity_by_its_kind(ike_id, san):
    hostvars = inventory({1: 1, 2: 1}, routevpn_auth="pubkey")
    if ike_id:
        hostvars["v1-1"]["routevpn_ike_id"] = ike_id
    assert plan(hostvars, list(hostvars))["gateways"]["v1-1"]["certificate_san"] == san


def test_other_sites_are_every_other_site_by_name_even_without_gateways():
    hostvars = inventory({1: 1, 2: 1, 3: 1})
    for variables in hostvars.values():
        variables["routevpn_sites"]["site0"] = {"asn": 65100}
    gateways = plan(hostvars, list(hostvars))["gateways"]
    assert gateways["v1-1"]["other_sites"] == ["site0", "site2", "site3"]
    assert gateways["v3-1"]["other_sites"] == ["site0", "site1", "site2"]
