"""strongSwan and libreswan, each configured by its role, authenticate each other natively.

v1-1 runs charon (strongswan role, XFRM interface end) and v3-1 runs pluto
(libreswan role, VTI end), each in its own scratch namespace, joined by a
veth.  This kernel has no ESP, so their CHILD_SAs cannot be installed here;
the IKE_SA (proposals, identities, certificates or keys from the same plan)
is what is proven natively.  The lab's `mixed` scenario carries traffic.
"""

import json
import re
import uuid

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_roles import run, wait_until
# pytest finds fixtures by name in the module: gateway (libreswan's, with its
# two helpers) and gateways (strongSwan's) are imported for that.
from .test_libreswan_role import (PKI, ROLE as LIBRESWAN, gateway,  # noqa: F401 pylint: disable=unused-import
                                  libreswan_extracted, libreswan_hostvars, libreswan_tree_factory)
from .test_strongswan_role import (apply, apply_with_certificates, gateways,  # noqa: F401 pylint: disable=unused-import
                                   ike_sas)


def join(strongswan, libreswan_netns, end):
    """A veth between the two namespaces; each end routes the other's IKE address over it.

    pluto's IKE address is on its loopback (the libreswan fixture), where the
    kernel does not answer neighbour solicitations from the veth: each side
    gets a permanent neighbour entry for the other's address instead.
    """
    veth = "rvix" + uuid.uuid4().hex[:6]
    run("ip", "link", "add", veth, "netns", strongswan.netns, "type", "veth", "peer", "name", "pub0",
        "netns", libreswan_netns)
    run("ip", "-n", strongswan.netns, "link", "set", veth, "name", "pub0")
    run("ip", "-n", strongswan.netns, "addr", "add", end["local_ike_address"] + "/128", "dev", "pub0", "nodad")
    sides = ((strongswan.netns, libreswan_netns, end["remote_ike_address"]),
             (libreswan_netns, strongswan.netns, end["local_ike_address"]))
    for netns, other, peer in sides:
        mac = json.loads(run("ip", "-n", other, "-j", "link", "show", "pub0").stdout)[0]["address"]
        run("ip", "-n", netns, "link", "set", "pub0", "up")
        run("ip", "-n", netns, "route", "add", peer + "/128", "dev", "pub0")
        run("ip", "-n", netns, "neigh", "add", peer, "lladdr", mac, "dev", "pub0", "nud", "permanent")


def pluto_ike_sa(libreswan_gateway, connection):
    """The line of ``whack --showstates`` for the established IKE SA of one of the link's conns, or None."""
    states = libreswan_gateway["tree"].whack("--showstates", netns=libreswan_gateway["netns"]).stdout
    found = re.search(r'^(?:000 )?#\d+: "%s-v[46]".*ESTABLISHED_IKE_SA.*$' % re.escape(connection), states, re.M)
    return found.group(0) if found else None


@pytest.mark.parametrize("auth", ["psk", "pubkey"])
def test_strongswan_initiates_and_libreswan_answers(tmp_path, gateways, gateway, auth):  # noqa: F811 pylint: disable=redefined-outer-name
    hostvars = libreswan_hostvars({"v3-1": "vti"}, routevpn_auth=auth)
    strongswan = gateways("v1-1")
    low = [end for end in plan(hostvars, sorted(hostvars))["hosts"]["v1-1"] if end["peer"] == "v3-1"][0]
    high = [end for end in gateway["ends"] if end["peer"] == "v1-1"][0]
    join(strongswan, gateway["netns"], low)

    # The responder first: libreswan only routes this link (v3-1 has the higher id).
    pki = {"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(tmp_path / "pki")}
    if auth == "pubkey":
        answered = gateway["apply"](mesh_hostvars=hostvars, roles=[PKI, LIBRESWAN], extra_vars=pki)
        started = apply_with_certificates(tmp_path, strongswan, hostvars, tmp_path / "pki", name="inventory-v1-1.yml")
    else:
        answered = gateway["apply"](mesh_hostvars=hostvars)
        started = apply(tmp_path, strongswan, hostvars, name="inventory-v1-1.yml")
    assert answered.rc == 0, answered
    assert started.rc == 0, started

    def established():
        sa = ike_sas(strongswan).get(low["connection"])
        return sa if sa and sa["state"] == "ESTABLISHED" else None

    sa = wait_until(established, 30, message="IKE_SA %s ESTABLISHED on charon" % low["connection"])
    assert (sa["local-id"], sa["remote-id"]) == ("v1-1", "v3-1")
    assert (sa["encr-alg"], sa["encr-keysize"], sa["prf-alg"], sa["dh-group"]) == (
        "AES_GCM_16", "256", "PRF_HMAC_SHA2_384", "ECP_384")
    assert wait_until(lambda: pluto_ike_sa(gateway, high["connection"]), 10,
                      message="pluto's IKE SA for %s" % high["connection"])

    charon_log = (strongswan.root / "charon.log").read_text()
    pluto_log = (gateway["tree"].base / "pluto.log").read_text()
    if auth == "pubkey":
        # Each end checked the other's ECDSA signature against the mesh CA's certificate.
        assert re.search(r"authentication of 'v3-1' with ECDSA\S* successful", charon_log), charon_log[-3000:]
        assert re.search(r"responder established IKE SA; authenticated peer '[^']*ECDSA[^']*' digital signature using "
                         r"peer certificate '@v1-1' issued by CA 'CN=routevpn.mesh CA'", pluto_log), pluto_log[-3000:]
    else:
        assert "authentication of 'v3-1' with pre-shared key successful" in charon_log, charon_log[-3000:]
        assert "responder established IKE SA; authenticated peer using authby=secret and ID_FQDN '@v1-1'" in pluto_log
