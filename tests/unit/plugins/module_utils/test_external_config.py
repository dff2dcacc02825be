"""The side of a peer the collection does not manage (external_config.render), checked against the plan.

Junos output is parsed with a small brace-block parser and compared with the
reference lab's vSRX configuration (the seed) and with the plan; VyOS output
line by line; the generic sheet by the values it must hold.
"""

import copy
import pathlib
import re

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh import external_config
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.external_config import (
    ExternalConfigError,
    FILE_NAME,
    file_name,
    render,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import given_psk, link_psk, plan

from .mesh_inventory import MASTER, gateway_vars, inventory

GIVEN_PSK = "provider-given-secret-0123456789"
SEED = pathlib.Path(__file__).parent / "captured" / "junos-V3-2.seed.conf"


def peer(**extra):
    spec = {"name": "edge-3-1", "platform": "junos", "gateway_id": 31, "site": "site3",
            "public_address": "2001:db8:3::1",
            "tunnels": {"v1-1": {"psk": GIVEN_PSK, "inside_v4": "169.254.200.2/30",
                                 "peer_inside_v4": "169.254.200.1"}}}
    spec.update(extra)
    return spec


def mesh(peers, layout=None, gateways=None, **extra):
    """The plan of sites 1 and 2 (two gateways each by default: a peer of site3 has four links) and ``peers``;
    ``gateways`` maps a gateway to variables of its own."""
    hostvars = inventory(layout or {1: 2, 2: 2}, routevpn_transfer_prefix_v4="169.254.0.0/17", **extra)
    for name, variables in (gateways or {}).items():
        hostvars[name].update(variables)
    for variables in hostvars.values():
        sites = variables["routevpn_sites"]
        sites["site1"]["prefixes"] = ["10.1.0.0/16", "2001:db8:a1::/48"]
        if "site2" in sites:
            sites["site2"]["prefixes"] = ["10.2.0.0/16"]
        sites["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16", "2001:db8:a3::/48"]}
        variables["routevpn_external_peers"] = copy.deepcopy(peers)
    return plan(hostvars, sorted(hostvars)), peers


def psks_of(result, peers, name, master=MASTER, overrides=None):
    return dict((end["link"], link_psk(master, end["link"], overrides or {}, given_psk(peers, name, end["peer"])))
                for end in result["external_peers"][name]["ends"])


def rendered(result, peers, name="edge-3-1", platform=None, psks=None):
    return render(result["external_peers"][name], name, psks or psks_of(result, peers, name), platform=platform,
                  sites=result["sites"], transfer_pools=[result["transfer_pool_v4"], result["transfer_pool_v6"]])


# ------------------------------------------------------------------ a small Junos parser
def parse_junos(text):
    """[(header or statement, children or None)]: blocks end their line with '{', statements with ';'."""
    root, stack = [], []
    stack.append(root)
    for raw in text.splitlines():
        line = re.sub(r"\s+##.*$", "", raw.strip())  # a trailing annotation
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            node = (line[:-1].strip(), [])
            stack[-1].append(node)
            stack.append(node[1])
        elif line == "}":
            stack.pop()
            assert stack, "unbalanced '}'"
        else:
            assert line.endswith(";"), "neither a block nor a statement: %r" % line
            stack[-1].append((line[:-1].strip(), None))
    assert len(stack) == 1, "unclosed block"
    return root


def block(tree, *path):
    for header in path:
        matches = [children for name, children in tree if name == header and children is not None]
        assert len(matches) == 1, (header, [name for name, _children in tree])
        tree = matches[0]
    return tree


def blocks(tree, prefix):
    """{the rest of the header: children} of the blocks whose header starts with ``prefix``."""
    return dict((name[len(prefix):], children) for name, children in tree
                if children is not None and name.startswith(prefix))


def statements(tree, prefix=""):
    return [name[len(prefix):] for name, children in tree if children is None and name.startswith(prefix)]


def value(tree, keyword):
    found = statements(tree, keyword + " ")
    assert len(found) == 1, (keyword, tree)
    return found[0]


def ends_of(result, name="edge-3-1"):
    return result["external_peers"][name]["ends"]


def linux_id(result, end):
    return result["gateways"][end["peer"]]["gateway_id"]


# ------------------------------------------------------------------ junos
@pytest.fixture(scope="module")
def junos():
    result, peers = mesh([peer()])
    return result, peers, parse_junos(rendered(result, peers))


def test_junos_has_the_seed_s_structure(junos):
    _result, _peers, ours = junos
    seed = parse_junos(SEED.read_text())
    seed_units = blocks(block(seed, "interfaces", "st0"), "unit ")
    assert len(blocks(block(ours, "interfaces", "st0"), "unit ")) == len(seed_units) == 4
    for unit in list(blocks(block(seed, "interfaces", "st0"), "unit ").values()) + \
            list(blocks(block(ours, "interfaces", "st0"), "unit ").values()):
        assert set(blocks(unit, "family ")) == {"inet", "inet6"}
    for tree in (seed, ours):
        private = block(tree, "routing-instances", "private")
        assert value(private, "instance-type") == "virtual-router"
        assert len([s for s in statements(private, "interface ") if s.startswith("st0.")]) == 4
        groups = blocks(block(private, "protocols", "bgp"), "group ")
        assert len(groups) == 2
        for group in groups.values():
            assert value(group, "type") == "external" and value(group, "hold-time") == "6"
            assert "multipath" in statements(group)
            assert len(blocks(group, "neighbor ")) == 4
        assert len(blocks(block(tree, "security", "ipsec"), "vpn ")) >= 4
        assert value(block(tree, "routing-options", "forwarding-table"), "export")
    assert value(block(seed, "groups", "SECURITY-VPN", "security", "ike", "proposal IKE-P1"),
                 "encryption-algorithm") == value(block(ours, "security", "ike", "proposal routevpn-ike-1"),
                                                  "encryption-algorithm") == "aes-256-gcm"
    assert value(block(seed, "groups", "SECURITY-VPN", "security", "ike", "proposal IKE-P1"),
                 "dh-group") == value(block(ours, "security", "ike", "proposal routevpn-ike-1"), "dh-group")


def test_junos_st0_units_carry_the_plan_s_inside_addresses_numbered_by_the_linux_gateway(junos):
    result, _peers, ours = junos
    units = blocks(block(ours, "interfaces", "st0"), "unit ")
    expected = dict((str(linux_id(result, end)), {"inet": "address " + end["address_v4"],
                                                  "inet6": "address " + end["address_v6"]})
                    for end in ends_of(result))
    assert sorted(units) == sorted(expected)
    for number, unit in units.items():
        assert dict((family, statements(children)[0]) for family, children in blocks(unit, "family ").items()) \
            == expected[number]
    assert "address 169.254.200.1/30" in statements(block(units["11"], "family inet"))
    instance = statements(block(ours, "routing-instances", "private"), "interface ")
    assert sorted(instance) == sorted("st0.%s" % number for number in units)


def test_junos_each_vpn_binds_its_unit_and_its_gateway_is_the_linux_end(junos):
    result, _peers, ours = junos
    vpns = blocks(block(ours, "security", "ipsec"), "vpn ")
    gateways = blocks(block(ours, "security", "ike"), "gateway ")
    linux_addresses = set(address for gw in result["gateways"].values() for address in gw["public_addresses"])
    assert len(vpns) == len(ends_of(result)) == 4
    for end in ends_of(result):
        name = "routevpn-" + end["link"]
        assert value(vpns[name], "bind-interface") == "st0.%d" % linux_id(result, end)
        assert value(block(vpns[name], "ike"), "gateway") == name
        assert value(vpns[name], "establish-tunnels") == "on-traffic"
        gateway = gateways[name]
        assert value(gateway, "address") == end["remote_ike_address"]
        assert value(gateway, "address") in linux_addresses
        assert value(gateway, "local-address") == end["local_ike_address"]
        assert value(gateway, "local-identity") == "hostname edge-3-1"
        assert value(gateway, "remote-identity") == "hostname " + end["remote_id"]
        assert value(gateway, "version") == "v2-only"
        dpd_delay = result["external_peers"]["edge-3-1"]["dpd_delay"]
        assert value(block(gateway, "dead-peer-detection"), "interval") == str(dpd_delay)
        assert value(gateway, "ike-policy") == name


def test_junos_bgp_neighbors_are_the_plan_s_sessions(junos):
    result, _peers, ours = junos
    groups = blocks(block(ours, "routing-instances", "private", "protocols", "bgp"), "group ")
    found = {}
    for group in groups.values():
        assert value(group, "local-as") == "64513"
        for address, neighbor in blocks(group, "neighbor ").items():
            found[address] = (value(neighbor, "peer-as"), value(neighbor, "import"))
    expected = dict((session["neighbor_address"], (str(end["peer_asn"]), "routevpn-from-" + end["peer_site"]))
                    for end in ends_of(result) for session in end["bgp_sessions"])
    assert found == expected
    assert value(groups["routevpn-v4"], "export") == "routevpn-to-mesh"


def test_junos_policies_accept_only_what_they_should(junos):
    _result, _peers, ours = junos
    policies = blocks(block(ours, "policy-options"), "policy-statement ")
    export = policies["routevpn-to-mesh"]
    assert statements(block(export, "term no-transit")) == ["from protocol bgp", "then reject"]
    assert statements(block(export, "term site-v4", "from")) == ["route-filter 10.30.0.0/16 orlonger"]
    assert statements(block(export, "term site-v6", "from")) == ["route-filter 2001:db8:a3::/48 orlonger"]
    assert statements(export)[-1] == "then reject"
    never = statements(block(export, "term never-v4", "from"))
    assert "route-filter 0.0.0.0/0 exact" in never and "route-filter 169.254.0.0/17 orlonger" in never
    assert "route-filter 169.254.200.0/30 orlonger" in never  # a given inside network, outside the pool
    site1 = policies["routevpn-from-site1"]
    assert statements(block(site1, "term site-v4", "from")) == [
        "as-path routevpn-origin-site1", "route-filter 10.1.0.0/16 orlonger"]
    assert "route-filter 10.30.0.0/16 orlonger" in statements(block(site1, "term never-v4", "from"))
    assert statements(site1)[-1] == "then reject"
    assert 'as-path routevpn-origin-site1 ".* 65001"' in statements(block(ours, "policy-options"))
    assert "term site-v6" not in dict(policies["routevpn-from-site2"])  # site2 has no IPv6 prefix


def test_junos_pre_shared_keys_are_the_linux_ends(junos):
    result, peers, ours = junos
    policies = blocks(block(ours, "security", "ike"), "policy ")
    for end in ends_of(result):
        expected = link_psk(MASTER, end["link"], {}, given_psk(peers, "edge-3-1", end["peer"]))
        assert value(policies["routevpn-" + end["link"]], "pre-shared-key") == 'ascii-text "%s"' % expected
    assert value(policies["routevpn-11-31"], "pre-shared-key") == 'ascii-text "%s"' % GIVEN_PSK


def test_junos_proposals_follow_the_table(junos):
    _result, _peers, ours = junos
    ike = block(ours, "security", "ike", "proposal routevpn-ike-1")
    assert statements(ike) == ["authentication-method pre-shared-keys", "dh-group group20",
                               "encryption-algorithm aes-256-gcm", "lifetime-seconds 14400"]
    ipsec = block(ours, "security", "ipsec")
    assert statements(block(ipsec, "proposal routevpn-esp-1")) == ["protocol esp", "encryption-algorithm aes-256-gcm",
                                                                   "lifetime-seconds 3600"]
    assert statements(block(ipsec, "policy routevpn-ipsec")) == ["perfect-forward-secrecy keys group20",
                                                                 "proposals [ routevpn-esp-1 ]"]


def test_junos_classic_proposals_name_the_authentication_algorithm():
    result, peers = mesh([peer(ike_proposals=["aes256-sha384-ecp384", "aes128-sha256-modp3072"],
                               esp_proposals="aes256-sha256-ecp384")])
    ike = block(parse_junos(rendered(result, peers)), "security", "ike")
    assert value(block(ike, "proposal routevpn-ike-1"), "authentication-algorithm") == "sha-384"
    assert value(block(ike, "proposal routevpn-ike-2"), "dh-group") == "group15"
    assert value(block(ike, "policy routevpn-11-31"), "proposals") == "[ routevpn-ike-1 routevpn-ike-2 ]"
    esp = block(parse_junos(rendered(result, peers)), "security", "ipsec", "proposal routevpn-esp-1")
    assert value(esp, "authentication-algorithm") == "hmac-sha-256-128"


def test_st0_units_stay_when_a_link_is_removed():
    full, peers = mesh([peer()])
    fewer, fewer_peers = mesh([peer(gateways=["v1-1", "v2-2"])])
    units_full = blocks(block(parse_junos(rendered(full, peers)), "interfaces", "st0"), "unit ")
    units_fewer = blocks(block(parse_junos(rendered(fewer, fewer_peers)), "interfaces", "st0"), "unit ")
    assert sorted(units_fewer) == ["11", "22"]
    assert all(units_fewer[number] == units_full[number] for number in units_fewer)


def test_a_libreswan_end_is_rendered_with_a_note_on_its_two_children():
    hostvars = inventory({1: 1, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17")
    hostvars["v1-1"]["routevpn_ike_daemon"] = "libreswan"
    hostvars["v1-1"]["routevpn_tunnel_type"] = "vti"
    for variables in hostvars.values():
        variables["routevpn_sites"]["site3"] = {"asn": 64513}
        variables["routevpn_external_peers"] = [peer(tunnels={})]
    result = plan(hostvars, sorted(hostvars))
    text = rendered(result, [peer(tunnels={})])
    assert "# v1-1 runs libreswan: one CHILD_SA per family (11-31-v4, 11-31-v6)" in text
    parse_junos(text)


# ------------------------------------------------------------------ vyos
_SET = re.compile(r"^set( [A-Za-z0-9_.:/-]+)+( '[^'\n]*')?$")


@pytest.fixture(scope="module")
def vyos():
    result, peers = mesh([peer(platform="vyos")])
    return result, peers, rendered(result, peers)


def test_vyos_every_line_is_a_well_formed_set_command(vyos):
    _result, _peers, text = vyos
    for line in text.splitlines():
        assert not line or line.startswith("# ") or _SET.match(line), line


def test_vyos_tunnels_peers_and_keys_are_the_plan_s(vyos):
    result, peers, text = vyos
    lines = set(text.splitlines())
    for end in ends_of(result):
        vti, name = "vti%d" % linux_id(result, end), "routevpn-" + end["link"]
        s2s = "set vpn ipsec site-to-site peer %s " % name
        assert "set interfaces vti %s address '%s'" % (vti, end["address_v4"]) in lines
        assert "set interfaces vti %s address '%s'" % (vti, end["address_v6"]) in lines
        assert s2s + "vti bind '%s'" % vti in lines
        assert s2s + "remote-address '%s'" % end["remote_ike_address"] in lines
        assert s2s + "local-address '%s'" % end["local_ike_address"] in lines
        assert s2s + "authentication remote-id '%s'" % end["remote_id"] in lines
        assert s2s + "connection-type 'none'" in lines
        psk = link_psk(MASTER, end["link"], {}, given_psk(peers, "edge-3-1", end["peer"]))
        assert "set vpn ipsec authentication psk %s secret '%s'" % (name, psk) in lines
        assert "set vpn ipsec authentication psk %s id '%s'" % (name, end["remote_id"]) in lines
        for session in end["bgp_sessions"]:
            afi = "ipv4-unicast" if session["family"] == "v4" else "ipv6-unicast"
            neighbor = "set protocols bgp neighbor %s " % session["neighbor_address"]
            assert neighbor + "remote-as '%d'" % end["peer_asn"] in lines
            assert neighbor + "address-family %s route-map import 'ROUTEVPN-FROM-%s'" % (afi, end["peer_site"]) \
                in lines
    assert "set protocols bgp system-as '64513'" in lines
    assert "set vpn ipsec ike-group ROUTEVPN-IKE proposal 1 encryption 'aes256gcm128'" in lines
    assert "set vpn ipsec ike-group ROUTEVPN-IKE proposal 1 prf 'prfsha384'" in lines
    assert "set vpn ipsec esp-group ROUTEVPN-ESP pfs 'dh-group20'" in lines
    assert "set protocols bgp address-family ipv4-unicast network 10.30.0.0/16" in lines


# ------------------------------------------------------------------ generic
def test_generic_sheet_holds_every_tunnel_s_values():
    result, peers = mesh([peer(platform="generic", bfd=True)])
    text = rendered(result, peers)
    psks = psks_of(result, peers, "edge-3-1")
    for end in ends_of(result):
        section = text.split("[tunnel %s:" % end["link"], 1)[1].split("\n[", 1)[0]
        for expected in (end["local_ike_address"], end["remote_ike_address"], end["local_id"], end["remote_id"],
                         psks[end["link"]], end["address_v4"], end["address_v6"],
                         "%s/%s" % (end["peer_address_v4"], end["address_v4"].split("/")[1]),
                         "neighbor AS %d" % end["peer_asn"], "local AS 64513", "0.0.0.0/0, ::/0",
                         "aes256gcm16-prfsha384-ecp384", "group 20 (ECP 384)", "14400 s", "3600 s",
                         "every 10 s", "BFD:", "yes ("):
            assert expected in section, (end["link"], expected)
        for session in end["bgp_sessions"]:
            assert "to neighbor %s" % session["neighbor_address"] in section
    routing = text.split("[routing:", 1)[1]
    assert "May announce:              10.30.0.0/16, 2001:db8:a3::/48" in routing
    assert "site1 (AS 65001): 10.1.0.0/16, 2001:db8:a1::/48" in routing
    assert "site2 (AS 65002): 10.2.0.0/16" in routing


def test_a_platform_override_renders_another_syntax():
    result, peers = mesh([peer()])
    assert rendered(result, peers, platform="generic").count("[tunnel ") == 4


# ------------------------------------------------------------------ refusals
def refused(result, peers, platform=None, psks=None):
    with pytest.raises(ExternalConfigError) as caught:
        rendered(result, peers, platform=platform, psks=psks)
    return str(caught.value)


@pytest.mark.parametrize("platform, proposals, words", [
    ("junos", {"ike_proposals": ["aes128gcm16-prfsha256-ecp256"]}, ["encryption 'aes128gcm16'", "junos"]),
    ("junos", {"ike_proposals": ["aes256-sha256-prfsha384-ecp384"]}, ["prfsha256", "prfsha384"]),
    ("junos", {"esp_proposals": ["aes256gcm16-curve25519"]}, ["'curve25519'", "junos"]),
    ("junos", {"esp_proposals": ["aes256gcm16-esn"]}, ["'esn'", "junos"]),
    ("vyos", {"ike_proposals": ["aes256-sha1-ecp384"]}, ["integrity 'sha1'", "vyos"]),
    ("vyos", {"esp_proposals": ["aes256gcm16-ecp384", "aes128gcm16-ecp256"]}, ["different PFS groups"]),
    ("junos", {"ike_proposals": ["aes256gcm16-ecp384"]}, ["no PRF"]),
    ("generic", {"ike_proposals": ["aes256-sha256-ecp384-ecp256"]}, ["two dh algorithms"]),
])
def test_a_proposal_the_platform_cannot_take_is_refused_naming_the_peer(platform, proposals, words):
    result, peers = mesh([peer(platform=platform, **proposals)])
    message = refused(result, peers)
    assert message.startswith("routevpn_external_peers[edge-3-1].")
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("platform, secret, words", [
    ("junos", 'quote"in-the-key-0123456789', ['a \'"\'', "junos"]),
    ("junos", "back\\slash-in-the-key-012345", ["junos"]),
    ("vyos", "single'quote-in-the-key-0123", ["vyos"]),
    ("vyos", "0sQmFzZTY0LWxvb2tpbmcta2V5", ["0x or 0s"]),
    ("generic", "line\nbreak-in-the-key-0123456", ["not printable ASCII"]),
])
def test_a_pre_shared_key_that_would_break_the_file_is_refused_and_never_shown(platform, secret, words):
    result, peers = mesh([peer(platform=platform, tunnels={"v1-1": {"psk": secret}})])
    message = refused(result, peers)
    assert message.startswith("routevpn_external_peers[edge-3-1].tunnels (link 11-31): the pre-shared key of link "
                              "11-31"), message
    for word in words:
        assert word in message, message
    assert secret not in message and secret[:8] not in message


@pytest.mark.parametrize("key, hostile", [
    ("local_id", 'edge"; system { root-authentication'),
    ("remote_id", "v1-1\nset system"),
    ("link", "11-31 {"),
    ("peer_site", "site1; then accept"),
    ("remote_ike_address", "2001:db8:1::1; foo"),
])
@pytest.mark.parametrize("platform", external_config.PLATFORMS)
def test_a_hostile_value_in_the_record_is_refused_naming_the_peer(key, hostile, platform):
    result, peers = mesh([peer()])
    tampered = copy.deepcopy(result)
    tampered["external_peers"]["edge-3-1"]["ends"][0][key] = hostile
    psks = dict(psks_of(result, peers, "edge-3-1"), **{hostile: "x" * 20})
    message = refused(tampered, peers, platform=platform, psks=psks)
    assert message.startswith("routevpn_external_peers[edge-3-1].ends"), message


def test_a_linux_gateway_id_beyond_junos_s_units_is_refused():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v2-1"].update(gateway_vars(2, 1, gateway_id=20000))
    for variables in hostvars.values():
        del variables["routevpn_transfer_prefix_v4"]  # a /16 has no room for index 199970031's /31
        variables["routevpn_sites"]["site3"] = {"asn": 64513}
        variables["routevpn_external_peers"] = [peer(tunnels={})]
    result = plan(hostvars, sorted(hostvars))
    message = refused(result, [peer(tunnels={})])
    assert "st0 unit of link 31-20000 is the Linux gateway's id 20000 (v2-1)" in message
    assert "16384" in message
    assert rendered(result, [peer(tunnels={})], platform="vyos")  # VyOS's vtiN has no such limit


def test_a_dpd_delay_junos_cannot_take_is_refused():
    result, peers = mesh([peer(dpd_delay=90)])
    assert "dead-peer-detection interval is 2 to 60 s" in refused(result, peers)
    assert rendered(result, peers, platform="vyos")


def test_an_unknown_platform_is_refused():
    result, peers = mesh([peer()])
    assert "is not one of junos, vyos, generic" in refused(result, peers, platform="ios")


def test_file_names():
    assert file_name("edge-3-1", "junos") == "edge-3-1.junos.conf"
    assert file_name("edge-3-1", "generic") == "edge-3-1.txt"
    assert FILE_NAME.match("vyos-1.vyos.conf") and not FILE_NAME.match("notes.md")
    with pytest.raises(ExternalConfigError):
        file_name("../x", "junos")


# ------------------------------------------------------------------ the Linux ends' timers
SLOW = {"routevpn_strongswan_ike_rekey_time": "2h", "routevpn_strongswan_child_rekey_time": "30m",
        "routevpn_bird_hold_time": 9, "routevpn_bird_keepalive_time": 3,
        "routevpn_bfd_interval_ms": 500, "routevpn_bfd_multiplier": 5}


def section_of(text, link):
    return text.split("[tunnel %s:" % link, 1)[1].split("\n[", 1)[0]


def test_each_tunnel_gets_the_timers_of_its_linux_gateway():
    # v1-1 runs slower timers than the others; the peer is told each gateway's own.
    gateways = dict((name, SLOW) for name in ("v1-1", "v1-2", "v2-1", "v2-2"))
    gateways["v2-2"] = {"routevpn_ike_daemon": "libreswan", "routevpn_libreswan_ike_lifetime": "3h",
                        "routevpn_libreswan_ipsec_lifetime": "45m", "routevpn_bird_hold_time": 9,
                        "routevpn_bird_keepalive_time": 3, "routevpn_bfd_interval_ms": 500,
                        "routevpn_bfd_multiplier": 5}
    result, peers = mesh([peer(platform="generic", bfd=True)], gateways=gateways)
    text = rendered(result, peers)
    for end in ends_of(result):
        section = section_of(text, end["link"])
        lifetimes = ("10800 s", "2700 s") if end["peer"] == "v2-2" else ("7200 s", "1800 s")
        assert "IKE SA lifetime:           %s (the Linux end re-keys)" % lifetimes[0] in section, end["link"]
        assert "CHILD SA lifetime:         %s (the Linux end re-keys)" % lifetimes[1] in section, end["link"]
        assert "hold time 9 s, keepalive 3 s" in section
        assert "BFD:                       yes (500 ms, multiplier 5)" in section


def test_vyos_and_junos_take_the_timers_of_the_gateways():
    gateways = dict((name, SLOW) for name in ("v1-1", "v1-2", "v2-1", "v2-2"))
    result, peers = mesh([peer(platform="vyos", bfd=True)], gateways=gateways)
    lines = rendered(result, peers).splitlines()
    assert "set vpn ipsec ike-group ROUTEVPN-IKE lifetime '7200'" in lines
    assert "set vpn ipsec esp-group ROUTEVPN-ESP lifetime '1800'" in lines
    for end in ends_of(result):
        for session in end["bgp_sessions"]:
            neighbor = session["neighbor_address"]
            assert "set protocols bgp neighbor %s timers holdtime '9'" % neighbor in lines
            assert "set protocols bgp neighbor %s timers keepalive '3'" % neighbor in lines
            assert "set protocols bfd peer %s interval transmit '500'" % neighbor in lines
            assert "set protocols bfd peer %s interval multiplier '5'" % neighbor in lines
    junos = rendered(result, peers, platform="junos")
    assert junos.count("lifetime-seconds 7200;") == 1 and junos.count("lifetime-seconds 1800;") == 1
    assert junos.count("hold-time 9;") == 2 and junos.count("minimum-interval 500;") == 2
    assert junos.count("multiplier 5;") == 2


def test_a_timer_junos_holds_once_must_agree_across_the_gateways():
    result, peers = mesh([peer()], gateways={"v2-1": {"routevpn_strongswan_child_rekey_time": "30m"}})
    with pytest.raises(ExternalConfigError) as caught:
        rendered(result, peers)
    message = str(caught.value)
    assert "edge-3-1" in message and "the CHILD SA lifetime, s differs" in message
    assert "v1-1 3600, v1-2 3600, v2-1 1800, v2-2 3600" in message
    # The generic sheet is per tunnel: it gives each gateway's own.
    text = rendered(result, peers, platform="generic")
    link = [end["link"] for end in ends_of(result) if end["peer"] == "v2-1"][0]
    assert "CHILD SA lifetime:         1800 s" in section_of(text, link)


def test_bfd_runs_where_both_ends_run_it():
    # One site of two gateways, which have no link between them to agree on.
    result, peers = mesh([peer(platform="generic", bfd=True, tunnels={})], layout={1: 2},
                         gateways={"v1-2": {"routevpn_bfd": False}})
    text = rendered(result, peers)
    for end in ends_of(result):
        assert end["bfd"] is (end["peer"] != "v1-2")
        expected = "no" if end["peer"] == "v1-2" else "yes (300 ms"
        expected = "BFD:                       " + expected
        assert expected in section_of(text, end["link"])
    # Junos holds BFD per BGP group, which holds every link of a family.
    with pytest.raises(ExternalConfigError) as caught:
        rendered(result, peers, platform="junos")
    assert "differs between the Linux gateways" in str(caught.value)
