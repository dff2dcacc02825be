"""The mesh_tunnels filter: link ends of the plan to the tunnel modules' lists."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.mesh_tunnels import mesh_tunnels
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from ..module_utils.mesh_inventory import inventory


def ends_of(host, layout, **per_host):
    hostvars = inventory(layout)
    for name, variables in per_host.items():
        hostvars[name].update(variables)
    return plan(hostvars, sorted(hostvars))["hosts"][host]


def test_xfrm_ends_become_xfrm_interface_items():
    ends = ends_of("v1-1", {1: 1, 2: 2})
    result = mesh_tunnels(ends, netns="private", mtu=1400)
    assert result["vti"] == []
    assert result["interfaces"] == ["rv-21", "rv-22"]
    assert result["xfrm"] == [
        {"name": end["interface"], "netns": "private", "mtu": 1400, "if_id": end["if_id"], "link": "lo",
         "addresses": [end["address_v6"], end["address_v4"]]}
        for end in ends
    ]


def test_vti_ends_carry_their_endpoints_key_and_both_families():
    ends = ends_of("v1-1", {1: 1, 2: 1}, **{"v1-1": {"routevpn_tunnel_type": "vti"}})
    (item,) = mesh_tunnels(ends, netns="private")["vti"]
    end = ends[0]
    assert item == {"name": "rv-21", "netns": "private", "mtu": 1500, "mode": "vti6",
                    "local": end["local_ike_address"], "remote": end["remote_ike_address"], "key": end["mark"],
                    "addresses": [end["address_v6"], end["address_v4"]]}


def test_ipv4_endpoints_make_a_vti_device_with_the_links_transfer_addresses():
    hostvars = inventory({1: 1, 2: 1}, routevpn_transfer_prefix_v4=None)
    for name, address in (("v1-1", "192.0.2.1"), ("v2-1", "192.0.2.2")):
        hostvars[name].update(routevpn_tunnel_type="vti", routevpn_public_address=address)
    end = plan(hostvars, sorted(hostvars))["hosts"]["v1-1"][0]
    (item,) = mesh_tunnels([end])["vti"]
    assert (item["mode"], item["local"], item["remote"]) == ("vti", "192.0.2.1", "192.0.2.2")
    assert item["addresses"] == [end["address_v6"]], "no IPv4 transfer pool: the IPv6 address only"


@pytest.mark.parametrize("tunnel_type", ["xfrm", "vti"])
def test_a_libreswan_end_is_made_like_a_strongswan_end(tunnel_type):
    """libreswan 5.2 with ipsec-interface-managed=no binds its SAs to the collection's device, as strongSwan does."""
    strongswan = mesh_tunnels(ends_of("v1-1", {1: 1, 2: 1}, **{"v1-1": {"routevpn_tunnel_type": tunnel_type}}))
    libreswan = mesh_tunnels(ends_of("v1-1", {1: 1, 2: 1}, **{"v1-1": {"routevpn_ike_daemon": "libreswan",
                                                                       "routevpn_tunnel_type": tunnel_type}}))
    assert libreswan == strongswan
    assert [item["name"] for item in libreswan[tunnel_type]] == libreswan["interfaces"] == ["rv-21"]
    assert sorted(libreswan) == ["interfaces", "vti", "xfrm"]


def test_a_gateway_without_links_gets_empty_lists():
    assert mesh_tunnels([]) == {"xfrm": [], "vti": [], "interfaces": []}


@pytest.mark.parametrize("ends, kwargs, message", [
    ("v1-1", {}, "must be a list of link ends"),
    ([{"interface": "rv-21"}], {}, "has no tunnel_type"),
    ([], {"mtu": "big"}, "mtu must be a number"),
])
def test_rejects_what_is_not_a_plan(ends, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        mesh_tunnels(ends, **kwargs)
