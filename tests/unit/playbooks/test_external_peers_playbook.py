"""playbooks/mesh.yml's play for the peers the collection does not manage: their files on the controller.

ansible-playbook runs natively (connection local), limited to localhost and a
gateway, with only this play's tag (and the planning play, tagged always).
"""

import copy
import re
import stat
import subprocess

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import RULES
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk

from ..collection_paths import COLLECTION_ROOT

from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from ..roles.role_runner import run_playbook, write_inventory

GIVEN_PSK = "provider-given-secret-0123456789"
JUNOS = {"name": "vsrx-3-1", "platform": "junos", "gateway_id": 31, "site": "site3", "public_address": "2001:db8:3::1",
         "tunnels": {"v1-1": {"psk": GIVEN_PSK}}}
VYOS = {"name": "vyos-3-2", "platform": "vyos", "gateway_id": 32, "site": "site3", "public_address": "2001:db8:3::2"}
CLOUD = {"name": "cloud-3-3", "platform": "generic", "gateway_id": 33, "site": "site3",
         "public_address": "2001:db8:3::3"}


@pytest.fixture
def controller(tmp_path):
    directory = tmp_path / "home" / "external-peers"

    def run(peers, check=False):
        hostvars = inventory({1: 2, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17")
        for variables in hostvars.values():
            variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16"]}
            variables["routevpn_external_peers"] = copy.deepcopy(peers)
            variables["routevpn_external_peers_dir"] = str(directory)
        return run_playbook(tmp_path, write_inventory(tmp_path, hostvars), "routevpn.mesh.mesh", check=check,
                            extra=["--limit", "localhost,v1-1", "--tags", "external_peers", "-v"])

    return directory, run


def secrets():
    links = ["11-31", "12-31", "21-31", "11-32", "12-32", "21-32", "11-33", "12-33", "21-33"]
    return [GIVEN_PSK] + [derive_psk(MASTER, link) for link in links]


def test_the_play_writes_each_peer_s_file_0600_once_and_logs_no_secret(controller):
    directory, run = controller
    checked = run([JUNOS, VYOS, CLOUD], check=True)  # changed: the directory, the files (one loop)
    assert checked.rc == 0 and checked.changed("localhost") == 2, checked
    assert not directory.exists()

    first = run([JUNOS, VYOS, CLOUD])
    assert first.rc == 0 and first.changed("localhost") == 2, first
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(path.name for path in directory.iterdir())
    assert files == ["cloud-3-3.txt", "vsrx-3-1.junos.conf", "vyos-3-2.vyos.conf"]
    for name in files:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    junos = (directory / "vsrx-3-1.junos.conf").read_text()
    assert 'pre-shared-key ascii-text "%s";' % GIVEN_PSK in junos
    assert "bind-interface st0.12;" in junos
    assert "set vpn ipsec site-to-site peer routevpn-21-32 vti bind 'vti21'" in \
        (directory / "vyos-3-2.vyos.conf").read_text()

    second = run([JUNOS, VYOS, CLOUD])
    assert second.rc == 0 and second.changed("localhost") == 0, second
    for output in (checked.output, first.output, second.output):
        for secret in secrets():
            assert secret not in output


def test_a_removed_peer_loses_its_file_and_other_files_stay(controller):
    directory, run = controller
    assert run([JUNOS, VYOS]).rc == 0
    (directory / "notes.md").write_text("the operator's own\n")
    removed = run([JUNOS])
    assert removed.rc == 0 and removed.changed("localhost") == 1, removed
    assert sorted(path.name for path in directory.iterdir()) == ["notes.md", "vsrx-3-1.junos.conf"]
    emptied = run([])
    assert emptied.rc == 0 and emptied.changed("localhost") == 1, emptied
    assert sorted(path.name for path in directory.iterdir()) == ["notes.md"]


def test_a_peer_that_cannot_be_rendered_stops_the_run_before_any_file_and_without_its_secret(controller):
    directory, run = controller
    hostile = dict(JUNOS, tunnels={"v1-1": {"psk": 'a"quote-in-the-given-key-0123'}})
    stopped = run([hostile, VYOS])
    assert stopped.rc != 0, stopped
    assert "routevpn_external_peers[vsrx-3-1].tunnels (link 11-31): the pre-shared key of link 11-31 has a" \
        in stopped.output
    assert 'a"quote-in-the-given-key-0123' not in stopped.output and "quote-in-the-given" not in stopped.output
    assert not any(directory.glob("*.conf"))


def test_the_play_s_default_directory_is_the_rule_s():
    text = (COLLECTION_ROOT / "playbooks" / "mesh.yml").read_text()
    assert "default('%s')" % RULES["routevpn_external_peers_dir"].default in text


# ------------------------------------------------------------------ peers with a certificate from the mesh's CA
CERTIFIED = {"name": "vsrx-3-4", "platform": "junos", "auth": "pubkey", "gateway_id": 34, "site": "site3",
             "public_address": "2001:db8:3::4", "ike_id": "vsrx-3-4.example.net"}


@pytest.fixture
def certified_controller(tmp_path):
    """Like controller, with routevpn_auth pubkey everywhere and the pki settings (mesh-wide, in the inventory)."""
    directory, pki = tmp_path / "home" / "external-peers", tmp_path / "home" / "pki"

    def run(peers, check=False, **settings):
        hostvars = inventory({1: 2, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17", routevpn_auth="pubkey")
        for variables in hostvars.values():
            variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16"]}
            variables["routevpn_external_peers"] = copy.deepcopy(peers)
            variables["routevpn_external_peers_dir"] = str(directory)
            variables["routevpn_pki_dir"] = str(pki)
            variables.update(settings)
        return run_playbook(tmp_path, write_inventory(tmp_path, hostvars), "routevpn.mesh.mesh", check=check,
                            extra=["--limit", "localhost,v1-1", "--tags", "external_peers", "-v", "--diff"])

    return directory, pki, run


def key_lines(*paths):
    """The base64 lines of the PEM private keys at ``paths``."""
    lines = [line for path in paths for line in path.read_text().splitlines() if line and not line.startswith("-")]
    assert lines
    return lines


def openssl(*arguments):
    return subprocess.run(("openssl",) + arguments, capture_output=True, text=True, check=True).stdout


def test_the_own_ca_issues_a_certificate_peer_its_key_and_certificate_beside_its_file(certified_controller):
    directory, pki, run = certified_controller
    checked = run([CERTIFIED, VYOS], check=True, routevpn_pki_own_ca=True)
    assert checked.rc == 0 and checked.changed("localhost") > 0, checked
    assert not directory.exists() and not pki.exists()

    first = run([CERTIFIED, VYOS], routevpn_pki_own_ca=True)
    assert first.rc == 0 and first.changed("localhost") > 0, first
    assert sorted(path.name for path in directory.iterdir()) == [
        "vsrx-3-4.ca.pem", "vsrx-3-4.crt", "vsrx-3-4.junos.conf", "vsrx-3-4.key", "vyos-3-2.vyos.conf"]
    modes = dict((path.name, stat.S_IMODE(path.stat().st_mode)) for path in directory.iterdir())
    assert modes["vsrx-3-4.key"] == 0o600 and modes["vsrx-3-4.junos.conf"] == 0o600
    assert modes["vsrx-3-4.crt"] == 0o644 and modes["vsrx-3-4.ca.pem"] == 0o644
    # Kept in the CA's directory, copied beside the configuration.
    assert (pki / "external" / "vsrx-3-4.key").read_bytes() == (directory / "vsrx-3-4.key").read_bytes()
    assert stat.S_IMODE((pki / "external" / "vsrx-3-4.key").stat().st_mode) == 0o600
    assert (pki / "ca.crt").read_bytes() == (directory / "vsrx-3-4.ca.pem").read_bytes()
    # Issued by the mesh's CA for the peer's identity, with the gateways' key type and usage.
    verified = openssl("verify", "-CAfile", str(directory / "vsrx-3-4.ca.pem"), str(directory / "vsrx-3-4.crt"))
    assert "OK" in verified
    text = openssl("x509", "-in", str(directory / "vsrx-3-4.crt"), "-noout", "-text")
    assert "DNS:vsrx-3-4.example.net" in text and "ASN1 OID: secp384r1" in text, text
    assert re.search(r"X509v3 Key Usage: critical\s+Digital Signature\s", text), text
    assert "BEGIN EC PRIVATE KEY" in (directory / "vsrx-3-4.key").read_text() or \
        "BEGIN PRIVATE KEY" in (directory / "vsrx-3-4.key").read_text()
    junos = (directory / "vsrx-3-4.junos.conf").read_text()
    assert "authentication-method ecdsa-signatures-384;" in junos and "pre-shared-key" not in junos
    assert "request security pki local-certificate load certificate-id routevpn filename /var/tmp/vsrx-3-4.crt " \
           "key /var/tmp/vsrx-3-4.key" in junos
    assert "certificates from the mesh's CA, commonName=routevpn.mesh CA" in junos

    second = run([CERTIFIED, VYOS], routevpn_pki_own_ca=True)
    assert second.rc == 0 and second.changed("localhost") == 0, second
    checked_again = run([CERTIFIED, VYOS], check=True, routevpn_pki_own_ca=True)
    assert checked_again.rc == 0 and checked_again.changed("localhost") == 0, checked_again
    for output in (checked.output, first.output, second.output, checked_again.output):
        for line in key_lines(pki / "external" / "vsrx-3-4.key", pki / "ca.key"):
            assert line not in output

    # Without the peer, its files go; the CA's directory keeps what it issued (as it does for a gateway).
    removed = run([VYOS], routevpn_pki_own_ca=True)
    assert removed.rc == 0 and removed.changed("localhost") == 1, removed
    assert sorted(path.name for path in directory.iterdir()) == ["vyos-3-2.vyos.conf"]
    assert (pki / "external" / "vsrx-3-4.key").exists()


def test_a_renewal_issues_the_peer_s_certificate_again(certified_controller):
    directory, _pki, run = certified_controller
    assert run([CERTIFIED], routevpn_pki_own_ca=True).rc == 0
    before = (directory / "vsrx-3-4.crt").read_bytes()
    # Renew what expires within ten years: every run issues it again, the key stays.
    key = (directory / "vsrx-3-4.key").read_bytes()
    renewed = run([CERTIFIED], routevpn_pki_own_ca=True, routevpn_pki_renew_before="+3650d")
    assert renewed.rc == 0 and renewed.changed("localhost") == 2, renewed  # issued, and copied
    assert (directory / "vsrx-3-4.crt").read_bytes() != before
    assert (directory / "vsrx-3-4.key").read_bytes() == key


def test_with_a_given_ca_nothing_is_issued_and_the_files_say_which_ca_and_identity(certified_controller, tmp_path):
    directory, pki, run = certified_controller
    ca = tmp_path / "given-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes",
                    "-keyout", str(tmp_path / "given-ca.key"), "-out", str(ca), "-subj", "/CN=Corp VPN CA",
                    "-days", "30"], capture_output=True, check=True)
    given = dict(CERTIFIED, platform="generic")
    done = run([given], routevpn_pki_own_ca=False, routevpn_pki_ca_certificate=str(ca))
    assert done.rc == 0, done
    assert sorted(path.name for path in directory.iterdir()) == ["vsrx-3-4.ca.pem", "vsrx-3-4.txt"]
    assert not pki.exists()
    assert (directory / "vsrx-3-4.ca.pem").read_bytes() == ca.read_bytes()
    sheet = (directory / "vsrx-3-4.txt").read_text()
    assert "subjectAltName DNS:vsrx-3-4.example.net, by the mesh's CA, which is given" in sheet, sheet
    assert "(the mesh's CA, commonName=Corp VPN CA, %s (routevpn_pki_ca_certificate of v1-1)" % ca in sheet, sheet
    # The operator puts the issued files beside it: a later run keeps them.
    (directory / "vsrx-3-4.crt").write_text("issued by the operator\n")
    again = run([given], routevpn_pki_own_ca=False, routevpn_pki_ca_certificate=str(ca))
    assert again.rc == 0 and again.changed("localhost") == 0, again
    assert (directory / "vsrx-3-4.crt").exists()


def test_a_given_ca_the_gateway_does_not_give_stops_the_run_naming_the_peer(certified_controller):
    directory, _pki, run = certified_controller
    stopped = run([CERTIFIED], routevpn_pki_own_ca=False)
    assert stopped.rc != 0, stopped
    output = " ".join(stopped.output.split())
    assert "routevpn_external_peers[vsrx-3-4].auth: pubkey with a given CA (routevpn_pki_own_ca false), but " \
           "routevpn_pki_ca_certificate of v1-1, a gateway it links with, is not set" in output
    assert not directory.exists() or not any(directory.iterdir())
