"""A peer set up from its generic sheet alone authenticates the Linux end the strongswan role built.

The sheet (routevpn_external_peers, platform generic) is what a cloud
console's or another vendor's operator gets.  lab/lib/external_peer.py reads
it as that operator would and writes plain strongSwan and BIRD files; here
charon loads them in one namespace, the strongswan role builds v1-1 in
another, and v1-1 starts the link: the IKE_SA must come up with the
provider-style values (a given pre-shared key, a given /30, a 16-bit ASN).
This kernel has no ESP, so the CHILD_SAs are the lab's to prove.
"""

import base64
import copy
import importlib.util
import json
import pathlib
import re
import subprocess
import uuid

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.external_config import render
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import given_psk, link_psk, plan

from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from .mesh_roles import run, wait_until
# pytest finds the gateways fixture by name in this module.
from .test_strongswan_role import apply, apply_with_certificates, gateways, ike_sas  # noqa: F401 pylint: disable=unused-import

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]
GIVEN_PSK = "provider-given-secret-0123456789"
PEER = {"name": "cloud-3", "platform": "generic", "gateway_id": 31, "site": "site3",
        "public_address": "2001:db8:3::1", "bfd": True,
        "tunnels": {"v1-1": {"psk": GIVEN_PSK, "inside_v4": "169.254.200.2/30", "peer_inside_v4": "169.254.200.1"}}}
PEER_CHARON_CONF = """\
charon-systemd {
  install_routes = no
  install_virtual_ip = no
  routing_table = 0
  plugins {
    vici {
      socket = "unix://%(socket)s"
    }
  }
  filelog {
    peer {
      path = "%(log)s"
      default = 1
      ike_name = yes
      flush_line = yes
    }
  }
}
"""


def external_peer_module():
    spec = importlib.util.spec_from_file_location("external_peer", REPOSITORY / "lab" / "lib" / "external_peer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mesh(**extra):
    """v1-1 (site1, strongSwan) and the cloud-style peer of site3 (AS 64513, a 16-bit private ASN)."""
    hostvars = inventory({1: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17", **extra)
    for variables in hostvars.values():
        variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16", "2001:db8:a3::/48"]}
        variables["routevpn_external_peers"] = copy.deepcopy([PEER])
    return hostvars, plan(hostvars, sorted(hostvars))


def sheet_of(result):
    record = result["external_peers"]["cloud-3"]
    psks = dict((end["link"], link_psk(MASTER, end["link"], {}, given_psk([PEER], "cloud-3", end["peer"])))
                for end in record["ends"])
    return render(record, "cloud-3", psks, sites=result["sites"],
                  transfer_pools=[result["transfer_pool_v4"], result["transfer_pool_v6"]])


def test_the_sheet_gives_the_peer_every_value_of_the_plan(tmp_path):
    _hostvars, result = mesh()
    module = external_peer_module()
    links, route = module.write(sheet_of(result), str(tmp_path / "peer"))
    (end,) = result["external_peers"]["cloud-3"]["ends"]
    (link,) = links
    assert (link["link"], link["gateway"], link["psk"]) == (end["link"], "v1-1", GIVEN_PSK)
    assert (link["local_ike"], link["remote_ike"]) == (end["local_ike_address"], end["remote_ike_address"])
    assert (link["local_id"], link["remote_id"]) == ("cloud-3", "v1-1")
    assert (link["local_asn"], link["neighbor_asn"]) == (64513, 65001)
    assert str(link["inside"]["v4"][0]) == "169.254.200.1/30" and str(link["inside"]["v4"][1]) == "169.254.200.2"
    assert ("v4", "169.254.200.1", "169.254.200.2") in link["sessions"]
    assert link["ike_proposals"] == ["aes256gcm16-prfsha384-ecp384"]
    assert (link["ike_lifetime"], link["child_lifetime"], link["dpd"]) == (14400, 3600, 10)
    assert link["bfd"] == (300, 3)
    assert [str(p) for p in route["own"]] == ["10.30.0.0/16", "2001:db8:a3::/48"]
    assert route["receive"] == [("site1", 65001, [])]
    assert oct((tmp_path / "peer" / "swanctl.conf").stat().st_mode & 0o777) == "0o600"
    assert base64.b64encode(GIVEN_PSK.encode()).decode() in (tmp_path / "peer" / "swanctl.conf").read_text()


def test_a_sheet_without_a_value_a_peer_needs_is_refused():
    _hostvars, result = mesh()
    module = external_peer_module()
    text = re.sub(r"(?m)^  Pre-shared key:.*\n", "", sheet_of(result))
    with pytest.raises(module.SheetError) as caught:
        module.tunnels(module.parse(text))
    assert "no 'Pre-shared key'" in str(caught.value)


def test_bird_parses_the_peer_s_configuration(tmp_path):
    _hostvars, result = mesh()
    external_peer_module().write(sheet_of(result), str(tmp_path / "peer"))
    checked = subprocess.run(["bird", "-p", "-c", str(tmp_path / "peer" / "bird.conf")], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    subprocess.run(["sh", "-n", str(tmp_path / "peer" / "setup.sh")], check=True)


def join(netns, address, other_netns, other_address):
    """A veth between the namespaces, each side's IKE address on its end."""
    name = "rvxp" + uuid.uuid4().hex[:6]
    run("ip", "link", "add", name, "netns", netns, "type", "veth", "peer", "name", "pub0", "netns", other_netns)
    run("ip", "-n", netns, "link", "set", name, "name", "pub0")
    for here, mine, theirs in ((netns, address, other_address), (other_netns, other_address, address)):
        run("ip", "-n", here, "addr", "add", mine + "/128", "dev", "pub0", "nodad")
        run("ip", "-n", here, "link", "set", "pub0", "up")
        run("ip", "-n", here, "route", "add", theirs + "/128", "dev", "pub0")


# pubkey: v1-1's mesh links use certificates (the pki role's own CA); its link to the peer still uses the key.
@pytest.mark.parametrize("mesh_auth", ["psk", "pubkey"])
def test_the_linux_end_and_the_peer_from_its_sheet_establish_the_ike_sa(tmp_path, gateways, mesh_auth):  # noqa: F811 pylint: disable=redefined-outer-name
    hostvars, result = mesh(routevpn_auth=mesh_auth)
    (end,) = [end for end in result["hosts"]["v1-1"] if end["peer"] == "cloud-3"]
    linux, peer = gateways("v1-1"), gateways("cloud-3")
    join(linux.netns, end["local_ike_address"], peer.netns, end["remote_ike_address"])

    # The peer, as its operator would run it: plain charon with the files made from the sheet.
    links, _route = external_peer_module().write(sheet_of(result), str(tmp_path / "peer"))
    (peer.root / "strongswan.d" / "peer.conf").write_text(
        PEER_CHARON_CONF % {"socket": peer.socket, "log": peer.root / "charon.log"})
    peer.conf_d.mkdir(parents=True, exist_ok=True)
    (peer.conf_d / "peer.conf").write_text((tmp_path / "peer" / "swanctl.conf").read_text())
    run("ip", "netns", "exec", peer.netns, "env", "STRONGSWAN_CONF=%s" % (peer.root / "strongswan.conf"),
        "start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", peer.pid_file,
        "--exec", "/usr/sbin/charon-systemd")
    wait_until(lambda: pathlib.Path(peer.socket).exists(), 30, message="the peer's charon socket")
    loaded = subprocess.run(["ip", "netns", "exec", peer.netns, "swanctl", "--load-all", "--noprompt",
                             "--file", str(peer.root / "swanctl" / "swanctl.conf"), "--uri", "unix://" + peer.socket],
                            capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr

    # The Linux end: the strongswan role, which starts the link.
    if mesh_auth == "pubkey":
        started = apply_with_certificates(tmp_path, linux, hostvars, tmp_path / "pki", name="inventory-v1-1.yml")
    else:
        started = apply(tmp_path, linux, hostvars, name="inventory-v1-1.yml")
    assert started.rc == 0, started

    def established(gateway, name):
        sa = ike_sas(gateway).get(name)
        return sa if sa and sa["state"] == "ESTABLISHED" else None

    sa = wait_until(lambda: established(linux, end["connection"]), 30,
                    message="IKE_SA %s ESTABLISHED on v1-1" % end["connection"])
    assert (sa["local-id"], sa["remote-id"]) == ("v1-1", "cloud-3")
    assert (sa["encr-alg"], sa["encr-keysize"], sa["prf-alg"], sa["dh-group"]) == (
        "AES_GCM_16", "256", "PRF_HMAC_SHA2_384", "ECP_384")
    theirs = wait_until(lambda: established(peer, "t" + links[0]["link"].replace("-", "_")), 10,
                        message="the peer's IKE_SA")
    assert (theirs["local-id"], theirs["remote-id"]) == ("cloud-3", "v1-1")
    log = (peer.root / "charon.log").read_text()
    assert "authentication of 'v1-1' with pre-shared key successful" in log, log[-3000:]
    assert GIVEN_PSK not in log and GIVEN_PSK not in json.dumps(sa)
