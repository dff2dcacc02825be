"""The inventory boundary: every class of broken or hostile input stops the plan, by host and variable."""

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import (
    MESH,
    OUTPUT,
    RULES,
    Untemplatable,
    suggestion,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import PlanError, check, plan

from ...collection_paths import COLLECTION_ROOT
from .mesh_inventory import MASTER, inventory, problems_of


def everywhere(**variables):
    """Set group variables: the same value on every gateway."""
    def mutate(hostvars):
        for host in hostvars.values():
            host.update(copy.deepcopy(variables))
    return mutate


def on(host, **variables):
    def mutate(hostvars):
        hostvars[host].update(variables)
    return mutate


def site_spec(site, **spec):
    def mutate(hostvars):
        for host in hostvars.values():
            host["routevpn_sites"][site].update(spec)
    return mutate


def rename_site(old, new):
    def mutate(hostvars):
        for host in hostvars.values():
            host["routevpn_sites"][new] = host["routevpn_sites"].pop(old)
            if host["routevpn_site"] == old:
                host["routevpn_site"] = new
    return mutate


def rename_host(old, new):
    def mutate(hostvars):
        hostvars[new] = hostvars.pop(old)
    return mutate


# (class, case id, mutation, the problem expected: host, variable and the start of the reason)
CASES = [
    # types
    ("types", "unicode digits", on("v1-2", routevpn_gateway_id="\u0661\u0662"),
     "v1-2: routevpn_gateway_id: '١٢' is a string, not a number"),
    ("types", "float id", on("v1-2", routevpn_gateway_id=12.0), "v1-2: routevpn_gateway_id: 12.0 is a decimal number"),
    ("types", "bool id", on("v1-2", routevpn_gateway_id=True), "v1-2: routevpn_gateway_id: True is a boolean"),
    ("types", "list id", on("v1-2", routevpn_gateway_id=[12]), "v1-2: routevpn_gateway_id: [12] is a list"),
    ("types", "integer site name", rename_site("site2", 2),
     "all: routevpn_sites: site name 2 is a number, not a string"),
    ("types", "integer site of a gateway", on("v2-1", routevpn_site=2),
     "v2-1: routevpn_site: 2 is a number, not a site name"),
    ("types", "dict as public address", on("v2-1", routevpn_public_address={"a": 1}),
     "v2-1: routevpn_public_address: {'a': 1} is a dict, not an IP address"),
    ("types", "sites as list", everywhere(routevpn_sites=["site1"]),
     "all: routevpn_sites: is a list; it must be a dict"),
    ("types", "boolean word misspelt", on("v1-1", routevpn_bfd="ture"), "v1-1: routevpn_bfd: 'ture' is not a boolean"),
    ("types", "mtu as text", on("v1-1", routevpn_tunnel_mtu="big"),
     "v1-1: routevpn_tunnel_mtu: 'big' is a string, not a number 1280..65535"),
    ("types", "packages as a string", on("v1-1", routevpn_bird_packages="bird2"),
     "v1-1: routevpn_bird_packages: 'bird2' is a string, not a list"),
    # identifiers
    ("identifiers", "newline in site name", rename_site("site2", "site2\nprotocol"),
     "all: routevpn_sites: site name 'site2\\nprotocol' is not a name of letters"),
    ("identifiers", "brace in site name", rename_site("site2", "site2}"),
     "all: routevpn_sites: site name 'site2}' is not a name"),
    ("identifiers", "host name with a path", rename_host("v2-2", "../../evil"),
     "../../evil: inventory_hostname: '../../evil' is not usable as a gateway name"),
    ("identifiers", "host name with a newline", rename_host("v2-2", "v2-2\nid = x"),
     "inventory_hostname: 'v2-2\\nid = x' is not usable as a gateway name"),
    ("identifiers", "ike id equal but for case", on("v1-2", routevpn_ike_id="V1-1"),
     "v1-2: routevpn_ike_id: V1-1 (v1-1) is already used by v1-1"),
    ("identifiers", "a plan of its own on a gateway", on("v2-1", routevpn_mesh_plan={"hosts": {}}),
     "v2-1: routevpn_mesh_plan: set on this gateway"),
    ("identifiers", "ike id with a brace", on("v1-1", routevpn_ike_id="v1-1 } x {"),
     "v1-1: routevpn_ike_id: 'v1-1 } x {' is not an IKE identity"),
    ("identifiers", "ike id with a newline", on("v1-1", routevpn_ike_id="a\nsecret = x"),
     "v1-1: routevpn_ike_id: 'a\\nsecret = x' is not an IKE identity"),
    ("identifiers", "DN id with a psk", on("v1-1", routevpn_ike_id="C=CH, O=Mesh, CN=v1-1"),
     "v1-1: routevpn_ike_id: 'C=CH, O=Mesh, CN=v1-1' is a DN, which only a certificate"),
    ("identifiers", "interface prefix with a slash", on("v1-1", routevpn_interface_prefix="rv/"),
     "v1-1: routevpn_interface_prefix: 'rv/' is not a prefix"),
    ("identifiers", "interface prefix too long", everywhere(routevpn_interface_prefix="routevpn-tun-"),
     "routevpn_interface_prefix: 'routevpn-tun-' is not a prefix"),
    ("identifiers", "interface prefix owns a LAN",
     on("v1-1", routevpn_interface_prefix="eth", routevpn_private_interfaces=["eth1"]),
     "v1-1: routevpn_private_interfaces: eth1 starts with routevpn_interface_prefix 'eth'"),
    ("identifiers", "interface with a colon", on("v1-1", routevpn_private_interfaces=["eth0:1"]),
     "v1-1: routevpn_private_interfaces: 'eth0:1' is not an interface name"),
    ("identifiers", "interface named ..", on("v1-1", routevpn_private_interfaces=[{"name": ".."}]),
     "v1-1: routevpn_private_interfaces: '..' is not an interface name"),
    ("identifiers", "namespace with a slash", on("v1-1", routevpn_private_netns="../netns"),
     "v1-1: routevpn_private_netns: '../netns' is not a name"),
    ("identifiers", "namespace with a blank", on("v1-1", routevpn_private_netns="pri vate"),
     "v1-1: routevpn_private_netns: 'pri vate' is not a name"),
    ("identifiers", "relative path", on("v1-1", routevpn_bird_config_dir="etc/bird"),
     "v1-1: routevpn_bird_config_dir: 'etc/bird' is not an absolute path"),
    ("identifiers", "path with ..", on("v1-1", routevpn_strongswan_swanctl_dir="/etc/../tmp"),
     "v1-1: routevpn_strongswan_swanctl_dir: '/etc/../tmp' has a '.' or '..' component"),
    ("identifiers", "relative report path", everywhere(routevpn_verify_report="health.json"),
     "all: routevpn_verify_report: 'health.json' is not an absolute path"),
    ("identifiers", "report path on one gateway only", on("v1-1", routevpn_verify_report="/var/lib/health.json"),
     "routevpn_verify_report: not set differs from v1-1's; it is mesh-wide"),
    ("identifiers", "relative picture path", everywhere(routevpn_verify_svg="mesh.svg"),
     "all: routevpn_verify_svg: 'mesh.svg' is not an absolute path"),
    ("identifiers", "picture path on one gateway only", on("v2-1", routevpn_verify_svg="~/mesh.svg"),
     "v2-1: routevpn_verify_svg: '~/mesh.svg' differs from v1-1's; it is mesh-wide"),
    ("identifiers", "socket path too long", on("v1-1", routevpn_strongswan_vici_socket="/run/" + "x" * 120),
     "v1-1: routevpn_strongswan_vici_socket: '/run/xxxx"),
    ("identifiers", "proposal with a newline", on("v1-1", routevpn_strongswan_proposals="aes256\nfoo = bar"),
     "v1-1: routevpn_strongswan_proposals: 'aes256\\nfoo = bar' is not a strongSwan proposal list"),
    ("identifiers", "bird log with a semicolon", on("v1-1", routevpn_bird_log="syslog all; protocol x"),
     "v1-1: routevpn_bird_log: 'syslog all; protocol x' is not a BIRD log target"),
    # addresses
    ("addresses", "unspecified v6", on("v2-1", routevpn_public_address="::"),
     "v2-1: routevpn_public_address: :: is the unspecified address"),
    ("addresses", "unspecified v4", on("v2-1", routevpn_public_address=["0.0.0.0", "2001:db8:2::1"]),
     "v2-1: routevpn_public_address: 0.0.0.0 is the unspecified address"),
    ("addresses", "loopback", on("v2-1", routevpn_public_address="::1"),
     "v2-1: routevpn_public_address: ::1 is a loopback address"),
    ("addresses", "multicast", on("v2-1", routevpn_public_address="ff02::1"),
     "v2-1: routevpn_public_address: ff02::1 is a multicast address"),
    ("addresses", "link-local", on("v2-1", routevpn_public_address="fe80::1"),
     "v2-1: routevpn_public_address: fe80::1 is a link-local address"),
    ("addresses", "v4 link-local", on("v2-1", routevpn_public_address="169.254.1.1"),
     "v2-1: routevpn_public_address: 169.254.1.1 is a link-local address"),
    ("addresses", "v4-mapped", on("v2-1", routevpn_public_address="::ffff:192.0.2.1"),
     "v2-1: routevpn_public_address: ::ffff:c000:201 is an IPv4-mapped address"),
    ("addresses", "reserved class E", on("v2-1", routevpn_public_address="240.0.0.1"),
     "v2-1: routevpn_public_address: 240.0.0.1 is in a reserved range"),
    ("addresses", "empty string", on("v2-1", routevpn_public_address=""),
     "v2-1: routevpn_public_address: empty; give the address"),
    ("addresses", "empty list", on("v2-1", routevpn_public_address=[]), "v2-1: routevpn_public_address: an empty list"),
    ("addresses", "null", on("v2-1", routevpn_public_address=None), "v2-1: routevpn_public_address: missing"),
    ("addresses", "zone index", on("v2-1", routevpn_public_address="2001:db8:2::1%eth0"),
     "v2-1: routevpn_public_address: '2001:db8:2::1%eth0' has a zone index"),
    ("addresses", "LAN address with a zone",
     on("v1-1", routevpn_private_interfaces=[{"name": "eth1", "addresses": ["fe80::1%eth1/64"]}]),
     "v1-1: routevpn_private_interfaces: eth1: 'fe80::1%eth1/64' is not an address with a prefix length"),
    # numbers
    ("numbers", "AS_TRANS", site_spec("site2", asn=23456),
     "all: routevpn_sites.site2.asn: AS 23456 is AS_TRANS (RFC 6793)"),
    ("numbers", "last 16-bit AS", site_spec("site2", asn=65535),
     "all: routevpn_sites.site2.asn: AS 65535 is reserved (RFC 7300)"),
    ("numbers", "last 32-bit AS", site_spec("site2", asn=4294967295),
     "all: routevpn_sites.site2.asn: AS 4294967295 is reserved (RFC 7300)"),
    ("numbers", "AS 0", site_spec("site2", asn=0),
     "all: routevpn_sites.site2.asn: 0 is not an AS number 1..4294967295"),
    ("numbers", "documentation AS", site_spec("site2", asn=64500),
     "all: routevpn_sites.site2.asn: AS 64496-64511 are for documentation (RFC 5398)"),
    ("numbers", "router id zero", on("v1-1", routevpn_router_id="0.0.0.0"),
     "v1-1: routevpn_router_id: 0.0.0.0 is not a BGP identifier (RFC 6286"),
    ("numbers", "router id v6", on("v1-1", routevpn_router_id="2001:db8::1"),
     "v1-1: routevpn_router_id: 2001:db8::1 must be written as an IPv4 address"),
    ("numbers", "hold time 2", on("v1-1", routevpn_bird_hold_time=2),
     "v1-1: routevpn_bird_hold_time: 2: a BGP hold time is 0 (no keepalives) or at least 3 s (RFC 4271"),
    ("numbers", "keepalive above hold", on("v1-1", routevpn_bird_keepalive_time=9),
     "v1-1: routevpn_bird_keepalive_time: 9 is not below routevpn_bird_hold_time 6"),
    ("numbers", "BFD multiplier 0", on("v1-1", routevpn_bfd_multiplier=0),
     "v1-1: routevpn_bfd_multiplier: 0 is not a number 1..255"),
    ("numbers", "MSS above the MTU",
     on("v1-1", routevpn_tcp_mss_clamp=True, routevpn_tcp_mss=1460, routevpn_tunnel_mtu=1400),
     "v1-1: routevpn_tcp_mss: 1460 does not fit routevpn_tunnel_mtu 1400"),
    ("numbers", "error wait reversed", on("v1-1", routevpn_bird_error_wait_time=[10, 1]),
     "v1-1: routevpn_bird_error_wait_time: the minimum 10 is above the maximum 1"),
    # prefixes
    ("prefixes", "overlap between sites", site_spec("site2", prefixes=["10.1.128.0/17"]),
     "all: routevpn_sites.site2.prefixes: site site2's prefix 10.1.128.0/17 overlaps site site1's prefix 10.1.0.0/16"),
    ("prefixes", "default route", site_spec("site2", prefixes=["0.0.0.0/0"]),
     "all: routevpn_sites.site2.prefixes: 0.0.0.0/0 is a default route"),
    ("prefixes", "v6 default route", site_spec("site2", prefixes=["::/0"]),
     "all: routevpn_sites.site2.prefixes: ::/0 is a default route"),
    ("prefixes", "overlap with the transfer pool", site_spec("site2", prefixes=["2001:db8:ff::/48"]),
     "overlaps the transfer pool 2001:db8:ff::/64"),
    ("prefixes", "pool contains a public address", on("v2-1", routevpn_public_address="2001:db8:ff::99"),
     "v2-1: routevpn_public_address: 2001:db8:ff::99 is inside the transfer pool 2001:db8:ff::/64"),
    ("prefixes", "pool as default route", everywhere(routevpn_transfer_prefix_v4="0.0.0.0/0"),
     "all: routevpn_transfer_prefix_v4: 0.0.0.0/0 is a default route"),
    ("prefixes", "prefix without length", site_spec("site2", prefixes=["10.2.0.0"]),
     "all: routevpn_sites.site2.prefixes: '10.2.0.0' has no prefix length"),
    # cross-end settings
    ("cross-end", "BFD off on one end", on("v1-1", routevpn_bfd=False),
     "v1-1, v2-1: routevpn_bfd: link 11-21 joins v1-1 (False) and v2-1 (True)"),
    ("cross-end", "BFD timers", on("v2-1", routevpn_bfd_interval_ms=200),
     "v1-1, v2-1: routevpn_bfd_interval_ms: link 11-21 joins v1-1 (300) and v2-1 (200)"),
    ("cross-end", "BFD multiplier",
     lambda hv: ([h.update(routevpn_bfd="yes") for h in hv.values()], hv["v1-2"].update(routevpn_bfd_multiplier=5)),
     "v1-2, v2-1: routevpn_bfd_multiplier: link 12-21 joins v1-2 (5) and v2-1 (3)"),
    ("cross-end", "auth", on("v2-2", routevpn_auth="pubkey"),
     "v1-1, v2-2: routevpn_auth: link 11-22 joins v1-1 (psk) and v2-2 (pubkey)"),
    ("cross-end", "OSPF hello in a site", on("v1-2", routevpn_bird_ospf_hello=2),
     "v1-1, v1-2: routevpn_bird_ospf_hello: 1 on v1-1, 2 on v1-2; the gateways of site site1 must agree"),
    ("cross-end", "IP identity towards libreswan",
     lambda hv: (hv["v1-1"].update(routevpn_ike_id="192.0.2.11"),
                 hv["v2-1"].update(routevpn_ike_daemon="libreswan", routevpn_tunnel_type="vti")),
     "v1-1: routevpn_ike_id: '192.0.2.11' is an IP identity, but link 11-21 has a libreswan end"),
    # unknown variables
    ("unknown", "ike daemon misspelt", on("v1-1", routevpn_ike_deamon="libreswan"),
     "v1-1: routevpn_ike_deamon: unknown variable; no role of routevpn.mesh reads it; "
     "did you mean routevpn_ike_daemon?"),
    ("unknown", "tunnel type misspelt", on("v2-1", routevpn_tunel_type="vti"),
     "v2-1: routevpn_tunel_type: unknown variable; no role of routevpn.mesh reads it; "
     "did you mean routevpn_tunnel_type?"),
    ("unknown", "nothing near", on("v2-1", routevpn_colour="blue"),
     "v2-1: routevpn_colour: unknown variable; no role of routevpn.mesh reads it (docs/plan.md"),
    ("unknown", "unknown site key", site_spec("site2", prefix=["10.2.0.0/16"]),
     "all: routevpn_sites.site2: unknown key 'prefix'; a site has asn and prefixes"),
    ("unknown", "unknown interface key", on("v1-1", routevpn_private_interfaces=[{"name": "eth1", "adresses": []}]),
     "v1-1: routevpn_private_interfaces: unknown key 'adresses'"),
    # templating errors
    ("templating", "undefined vault variable",
     everywhere(routevpn_psk_master=Untemplatable("'vault_psk' is undefined")),
     "all: routevpn_psk_master: could not be templated: 'vault_psk' is undefined"),
    ("templating", "bad Jinja on one host", on("v2-2", routevpn_public_address=Untemplatable("unexpected '}'")),
     "v2-2: routevpn_public_address: could not be templated: unexpected '}'"),
]


def _hostvars():
    # Each host its own copy of the group variables, as Ansible's hostvars are.
    hostvars = dict((name, copy.deepcopy(host)) for name, host in inventory({1: 2, 2: 2}).items())
    for host in hostvars.values():
        host["routevpn_sites"]["site1"]["prefixes"] = ["10.1.0.0/16", "2001:db8:a1::/64"]
        host["routevpn_sites"]["site2"]["prefixes"] = ["10.2.0.0/16", "2001:db8:a2::/64"]
    return hostvars


def test_the_base_inventory_plans():
    assert len(plan(_hostvars(), list(_hostvars()))["links"]) == 4


@pytest.mark.parametrize("mutate, expected", [case[2:] for case in CASES], ids=["%s: %s" % case[:2] for case in CASES])
def test_each_broken_input_is_a_problem_naming_host_and_variable(mutate, expected):
    hostvars = _hostvars()
    mutate(hostvars)
    found = problems_of(hostvars)
    assert any(problem.startswith(expected) or expected in problem for problem in found), found


def test_bfd_timers_of_a_link_without_bfd_are_not_compared():
    hostvars = _hostvars()
    for host in hostvars.values():
        host["routevpn_bfd"] = "no"
    hostvars["v2-1"]["routevpn_bfd_interval_ms"] = 200
    assert len(plan(hostvars, list(hostvars))["links"]) == 4
    hostvars["v1-1"]["routevpn_bfd"] = True
    assert [problem.split(";")[0] for problem in problems_of(hostvars)] == [
        "v1-1, v2-1: routevpn_bfd: link 11-21 joins v1-1 (True) and v2-1 (False)",
        "v1-1, v2-2: routevpn_bfd: link 11-22 joins v1-1 (True) and v2-2 (False)"]


def test_every_class_has_at_least_two_cases():
    classes = {}
    for case in CASES:
        classes[case[0]] = classes.get(case[0], 0) + 1
    assert set(classes) == {"types", "identifiers", "addresses", "numbers", "prefixes", "cross-end", "unknown",
                            "templating"}
    assert min(classes.values()) >= 2, classes


def test_three_independent_faults_give_three_problems_sorted_by_host_then_variable():
    hostvars = _hostvars()
    hostvars["v2-1"]["routevpn_tunel_type"] = "vti"
    hostvars["v1-2"]["routevpn_public_address"] = "::1"
    for host in hostvars.values():
        host["routevpn_psk_master"] = Untemplatable("'vault_psk' is undefined")
    found = problems_of(hostvars)
    assert [problem.split(": ")[:2] for problem in found] == [
        ["all", "routevpn_psk_master"], ["v1-2", "routevpn_public_address"], ["v2-1", "routevpn_tunel_type"]], found


def test_an_untemplatable_variable_hides_no_other_problem():
    hostvars = _hostvars()
    hostvars["v1-1"]["routevpn_gateway_id"] = Untemplatable("'vault_id' is undefined")
    hostvars["v2-2"]["routevpn_site"] = "mars"
    found = problems_of(hostvars)
    assert found == ["v1-1: routevpn_gateway_id: could not be templated: 'vault_id' is undefined",
                     "v2-2: routevpn_site: unknown site 'mars' (routevpn_sites has: site1, site2)"]


def test_secrets_never_appear_in_a_problem():
    secret = "s3cr3t-value-never-printed-0123456789"
    hostvars = _hostvars()
    hostvars["v1-1"]["routevpn_psk_master"] = secret
    hostvars["v2-1"]["routevpn_psk_master"] = {"nested": secret}
    for host in hostvars.values():
        host["routevpn_psk_overrides"] = {"11-21": [secret], "99-98": secret}
    text = "\n".join(problems_of(hostvars))
    assert "routevpn_psk_master" in text and "routevpn_psk_overrides" in text
    assert secret not in text and MASTER not in text


def test_each_problem_is_listed_once():
    hostvars = _hostvars()
    for host in hostvars.values():
        host["routevpn_transfer_prefix_v6"] = "not-a-prefix"
        host["routevpn_colour"] = "blue"
    found = problems_of(hostvars)
    assert len(found) == len(set(found))
    assert sum("routevpn_transfer_prefix_v6" in problem for problem in found) == 1


def test_suggestions_come_from_the_rule_table():
    assert suggestion("routevpn_ike_deamon") == "routevpn_ike_daemon"
    assert suggestion("routevpn_bfd_intervall_ms") == "routevpn_bfd_interval_ms"
    assert suggestion("routevpn_psk_masterkey") == "routevpn_psk_master"
    assert suggestion("routevpn_zebra") is None


def test_lab_style_inventories_still_plan():
    """Values the labs and the docs use: documentation addresses, INI digit strings, yes/no words."""
    hostvars = _hostvars()
    hostvars["v1-1"].update(routevpn_gateway_id="11", routevpn_bfd="yes", routevpn_bird_error_wait_time=[1, 10],
                            routevpn_private_interfaces=[{"name": "eth1", "addresses": ["10.1.255.1/24"]}],
                            routevpn_ike_id="gw11.example.net", routevpn_strongswan_dpd_delay=10)
    hostvars["v1-2"].update(routevpn_bfd=True, routevpn_public_address=["192.0.2.12", "2001:db8:1::2"])
    hostvars["v2-1"].update(routevpn_bfd="true", routevpn_ike_daemon="libreswan", routevpn_tunnel_type="vti")
    hostvars["v2-2"].update(routevpn_bfd="on", routevpn_ike_id="ops@example.net")
    result = plan(hostvars, list(hostvars))
    assert result["gateways"]["v2-2"]["ike_id"] == "ops@example.net"


def test_check_returns_the_problems_or_nothing():
    assert check(_hostvars(), list(_hostvars())) == []
    hostvars = _hostvars()
    hostvars["v1-1"]["routevpn_colour"] = "blue"
    assert len(check(hostvars, list(hostvars))) == 1


# ------------------------------------------------------------------ properties
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["", "0", "11", "\u0661", "site1", "site2", "v1-1", "2001:db8:1::1", "192.0.2.1", "::",
                     "10.0.0.0/8", "0.0.0.0/0", "2001:db8:ff::/64", "yes", "xfrm", "libreswan", "pubkey", "rv-",
                     "a\nb", "}", "../x", "eth1", "4h", "11-21", "x" * 40]),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.text(max_size=8), st.integers(0, 3),
                                                         st.sampled_from(["asn", "prefixes", "name", "addresses",
                                                                          "site1", "11-21"])),
                                               children, max_size=4)),
    max_leaves=12,
)
INPUT_NAMES = sorted(name for name, rule in RULES.items() if rule.scope != OUTPUT)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(INPUT_NAMES), JSON_VALUES, st.sampled_from(["v1-1", "v2-2", "all"]))
def test_any_value_of_any_input_plans_or_raises_plan_error(variable, value, where):
    hostvars = _hostvars()
    targets = list(hostvars) if where == "all" or RULES[variable].scope == MESH and where != "v1-1" else [where]
    for host in targets:
        hostvars[host][variable] = copy.deepcopy(value)
    try:
        result = plan(hostvars, list(hostvars))
    except PlanError as exc:
        assert exc.problems and all(isinstance(problem, str) and "\n" not in problem for problem in exc.problems)
        assert all(problem.split(": ", 1)[0] in set(hostvars) | {"all"} or ", " in problem.split(": ", 1)[0]
                   for problem in exc.problems), exc.problems
    else:
        assert isinstance(result, dict)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), JSON_VALUES, max_size=4),
       st.one_of(st.text(max_size=12), st.sampled_from(["v1-1", "../v", "a/b", "x y"])))
def test_any_site_table_and_host_name_plan_or_raise_plan_error(sites, host_name):
    hostvars = _hostvars()
    hostvars[host_name] = dict(hostvars.pop("v2-2"))
    for host in hostvars.values():
        host["routevpn_sites"] = copy.deepcopy(sites)
    try:
        plan(hostvars, list(hostvars))
    except PlanError as exc:
        assert exc.problems


# ------------------------------------------------------------------ one place per fact
def _argument_specs():
    for path in sorted((COLLECTION_ROOT / "roles").glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
        yield path.parts[-3], options


def test_every_role_variable_is_in_the_rule_table_with_the_same_default():
    for role, options in _argument_specs():
        for name, spec in options.items():
            assert name in RULES, "%s: %s is not in inputs.RULES" % (role, name)
            default = spec.get("default")
            if default is None or "NAMESPACE" in str(default):
                continue
            assert RULES[name].default == default, (role, name, default, RULES[name].default)


def test_role_defaults_pass_their_rules():
    for path in sorted((COLLECTION_ROOT / "roles").glob("*/defaults/main.yml")):
        defaults = yaml.safe_load(path.read_text()) or {}
        for name, value in defaults.items():
            assert name in RULES, "%s: %s is not in inputs.RULES" % (path, name)
            if isinstance(value, str) and "{{" in value:
                continue
            RULES[name].check(value)


def test_docs_rule_table_is_generated_from_the_rules():
    from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import rule_table_markdown

    docs = (COLLECTION_ROOT / "docs" / "plan.md").read_text()
    assert rule_table_markdown() in docs, "docs/plan.md is out of date: run scripts/plan-rules"


def test_documented_rule_table_covers_every_input():
    docs = (COLLECTION_ROOT / "docs" / "plan.md").read_text()
    for name in RULES:
        assert "`%s`" % name in docs, name
