"""The Linux end of a link to an external peer (routevpn_external_peers), as the roles' templates print it.

charon loads the rendered connection and secrets (swanctl --load-conns / --load-creds) and vici reads back what
it took; BIRD's parser checks the BGP file.
"""

import base64
import copy
import subprocess

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk, plan

from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from .role_runner import render
from .test_template_injection import ROLES, Charon, role_variables

GIVEN_PSK = "provider-given-secret-0123456789"
PEER = {"name": "vsrx-3-1", "platform": "junos", "gateway_id": 31, "site": "site3",
        "public_address": "2001:db8:3::1", "dpd_delay": 15, "bfd": False,
        "ike_proposals": ["aes256-sha384-ecp384"], "esp_proposals": ["aes256-sha384"],
        "tunnels": {"v1-1": {"psk": GIVEN_PSK, "inside_v4": "169.254.200.2/30", "peer_inside_v4": "169.254.200.1"}}}


def context(role, mesh_vars=None, **extra):
    hostvars = inventory({1: 1, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17", **(mesh_vars or {}))
    for variables in hostvars.values():
        variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16"]}
        variables["routevpn_external_peers"] = copy.deepcopy([PEER])
    mesh = plan(hostvars, sorted(hostvars))
    variables = role_variables(role)
    variables.update(hostvars["v1-1"])
    variables.update(routevpn_mesh_plan=mesh, inventory_hostname="v1-1", hostvars={}, ansible_managed="managed",
                     routevpn_psk_overrides={})
    variables.update(extra)
    return mesh, variables


def ends(mesh):
    ends_ = mesh["hosts"]["v1-1"]
    return next(end for end in ends_ if end["peer"] == "vsrx-3-1"), next(end for end in ends_ if end["peer"] == "v2-1")


@pytest.fixture
def charon(tmp_path):
    pytest.importorskip("vici")
    daemon = Charon(tmp_path)
    assert daemon.wait(), "charon did not start"
    yield daemon
    daemon.close()


def test_charon_takes_the_peer_s_proposals_and_dpd_delay_and_the_mesh_link_keeps_the_gateway_s(tmp_path, charon):
    mesh, variables = context("strongswan")
    external, internal = ends(mesh)
    text = "".join(render(ROLES / "strongswan" / "templates" / "connection.conf.j2", dict(variables, end=end))
                   for end in (external, internal))
    conf = tmp_path / "conns.conf"
    conf.write_text(text)
    rc, output = charon.swanctl("--load-conns", "--file", str(conf))
    assert rc == 0, output
    rc, listed = charon.swanctl("--list-conns")
    assert rc == 0, listed
    block = listed.split("rv-31:", 1)[1].split("rv-21:", 1)[0]
    assert "dpd delay 15s" in block, block
    mesh_block = listed.split("rv-21:", 1)[1]
    assert "dpd delay 5s" in mesh_block, mesh_block
    # charon refuses a proposal it cannot parse when it loads the file (above); --list-conns does not show them.
    assert 'proposals = "aes256-sha384-ecp384"\n' in text and 'esp_proposals = "aes256-sha384"\n' in text
    assert 'proposals = "aes256gcm16-prfsha384-ecp384"\n' in text
    assert external["starts"] is True


def test_the_given_psk_is_the_link_s_key_and_the_others_stay_derived(tmp_path, charon):
    mesh, variables = context("strongswan", routevpn_psk_master=MASTER)
    external, internal = ends(mesh)
    template = ROLES / "strongswan" / "templates" / "secrets.conf.j2"
    given = render(template, dict(variables, end=external))
    derived = render(template, dict(variables, end=internal))
    assert "0s" + base64.b64encode(GIVEN_PSK.encode()).decode() in given
    assert "0s" + base64.b64encode(derive_psk(MASTER, internal["link"]).encode()).decode() in derived
    path = tmp_path / "secrets.conf"
    path.write_text(given + derived)
    rc, output = charon.swanctl("--load-creds", "--file", str(path))
    assert rc == 0 and "loaded ike secret 'ike-rv-31'" in output and "loaded ike secret 'ike-rv-21'" in output, output


def test_libreswan_secrets_take_the_given_psk_too():
    mesh, variables = context("libreswan")
    external, _internal = ends(mesh)
    text = render(ROLES / "libreswan" / "templates" / "secrets.j2", dict(variables, end=external))
    assert "PSK 0s" + base64.b64encode(GIVEN_PSK.encode()).decode() in text


def test_bgp_to_the_peer_runs_without_bfd_where_the_peer_has_none(tmp_path):
    mesh, variables = context("bird", routevpn_bfd=True)
    variables.update(__routevpn_links=mesh["hosts"]["v1-1"], __routevpn_plan=mesh,
                     __routevpn_gateway=mesh["gateways"]["v1-1"])
    text = render(ROLES / "bird" / "templates" / "bird.conf.j2", variables)
    # Two sessions per link (IPv6, then IPv4 over the given /30), each a protocol block of its own.
    external = [block for block in text.split("\nprotocol ") if "to vsrx-3-1" in block]
    internal = [block for block in text.split("\nprotocol ") if "to v2-1" in block]
    assert len(external) == 2 and all("bfd off;" in block for block in external), external
    assert any("neighbor 169.254.200.1 as 64513;" in block for block in external), external
    assert len(internal) == 2 and all("bfd on;" in block for block in internal), internal
    path = tmp_path / "bird.conf"
    path.write_text(text)
    parsed = subprocess.run(["bird", "-p", "-c", str(path)], capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr


@pytest.mark.parametrize("role", ["libreswan", "strongswan"])
def test_in_a_mesh_of_certificates_the_peer_s_link_keeps_its_pre_shared_key(role):
    mesh, variables = context(role, mesh_vars={"routevpn_auth": "pubkey"}, __routevpn_libreswan_version="5.2",
                              __routevpn_libreswan_signature="ecdsa-sha2")
    external, internal = ends(mesh)
    assert (external["auth"], internal["auth"]) == ("psk", "pubkey")
    outer, inner = (render(ROLES / role / "templates" / "connection.conf.j2", dict(variables, end=end))
                    for end in (external, internal))
    if role == "libreswan":
        assert "authby=secret" in outer and "leftcert=" not in outer
        assert "leftcert=routevpn" in inner and "authby=secret" not in inner
        secrets = render(ROLES / "libreswan" / "templates" / "secrets.j2", dict(variables, end=external))
        assert "PSK 0s" + base64.b64encode(GIVEN_PSK.encode()).decode() in secrets
    else:
        assert outer.count("auth = psk") == 2 and "auth = pubkey" not in outer
        assert inner.count("auth = pubkey") == 2 and "auth = psk" not in inner
