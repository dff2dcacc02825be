"""The pki role on the controller, with community.crypto, checked by openssl.

The role runs with ansible-playbook as playbooks/mesh.yml runs it (plan on
localhost, then the role for the gateways); every file it makes lands in a
temporary directory.  openssl, not the modules that made them, says whether
the certificates chain to the CA and whom they name.
"""

import pathlib
import re
import stat
import subprocess

import pytest

from ..plugins.module_utils.mesh_inventory import inventory
from .mesh_roles import documented_variables, run_role, write_inventory, write_role_playbook

ROLE = "routevpn.mesh.pki"


def openssl(*args):
    return subprocess.run(("openssl",) + args, capture_output=True, text=True, check=False)


def san_of(certificate):
    text = openssl("x509", "-in", str(certificate), "-noout", "-text").stdout
    return re.search(r"X509v3 Subject Alternative Name:\s*\n\s*(.+)", text).group(1).strip()


def public_key_of_certificate(certificate):
    return openssl("x509", "-in", str(certificate), "-noout", "-pubkey").stdout


def public_key_of_key(key):
    return openssl("pkey", "-in", str(key), "-pubout").stdout


def key_id(certificate):
    text = openssl("x509", "-in", str(certificate), "-noout", "-ext", "subjectKeyIdentifier").stdout
    return text.splitlines()[-1].strip().lower()


def key_lines(directory):
    """The base64 lines of every private key under ``directory``: none may appear in any output."""
    lines = []
    for key in pathlib.Path(directory).rglob("*.key"):
        lines.extend(line for line in key.read_text().splitlines() if line and not line.startswith("-----"))
    assert lines
    return lines


def pubkey_mesh(layout, **host_vars):
    hostvars = inventory(layout, routevpn_auth="pubkey")
    for host, variables in host_vars.items():
        hostvars[host].update(variables)
    return hostvars


def apply(tmp_path, hostvars, hosts, check=False, host_vars=None, extra_vars=None):
    inventory_path = write_inventory(tmp_path, hostvars, host_vars)
    return run_role(tmp_path, inventory_path, write_role_playbook(tmp_path, ROLE), ",".join(hosts), check=check,
                    extra_vars=extra_vars)


def own_ca(directory):
    return {"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(directory)}


def test_own_ca_issues_a_certificate_per_gateway_that_openssl_verifies(tmp_path):
    pki = tmp_path / "pki"
    hostvars = pubkey_mesh({1: 1, 2: 1})
    hosts = ["v1-1", "v2-1"]

    checked = apply(tmp_path, hostvars, hosts, check=True, extra_vars=own_ca(pki))
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert not pki.exists()

    applied = apply(tmp_path, hostvars, hosts, extra_vars=own_ca(pki))
    assert applied.rc == 0 and applied.changed("v1-1") > 0 and applied.changed("v2-1") > 0, applied
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700
    assert stat.S_IMODE((pki / "ca.key").stat().st_mode) == 0o600
    ca_text = openssl("x509", "-in", str(pki / "ca.crt"), "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in ca_text and "Subject: CN = routevpn.mesh CA" in ca_text
    for host in hosts:
        certificate, key = pki / "gateways" / (host + ".crt"), pki / "gateways" / (host + ".key")
        verified = openssl("verify", "-CAfile", str(pki / "ca.crt"), str(certificate))
        assert verified.returncode == 0 and verified.stdout.strip() == "%s: OK" % certificate, verified
        assert san_of(certificate) == "DNS:" + host
        assert "Subject: CN = " + host in openssl("x509", "-in", str(certificate), "-noout", "-text").stdout
        assert public_key_of_certificate(certificate) == public_key_of_key(key)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # One gateway's certificate does not pass for the CA's.
    assert openssl("verify", "-CAfile", str(pki / "gateways" / "v1-1.crt"),
                   str(pki / "gateways" / "v2-1.crt")).returncode != 0

    before = dict((path, path.read_bytes()) for path in pki.rglob("*") if path.is_file())
    again = apply(tmp_path, hostvars, hosts, extra_vars=own_ca(pki))
    assert again.rc == 0 and again.changed("v1-1") == 0 and again.changed("v2-1") == 0, again
    checked_again = apply(tmp_path, hostvars, hosts, check=True, extra_vars=own_ca(pki))
    assert checked_again.rc == 0 and checked_again.changed("v1-1") == 0, checked_again
    assert dict((path, path.read_bytes()) for path in pki.rglob("*") if path.is_file()) == before

    for output in (checked.output, applied.output, again.output, checked_again.output):
        for line in key_lines(pki):
            assert line not in output


def test_a_new_identity_or_an_expiring_certificate_is_issued_again(tmp_path):
    pki = tmp_path / "pki"
    hosts = ["v1-1", "v2-1"]
    assert apply(tmp_path, pubkey_mesh({1: 1, 2: 1}), hosts, extra_vars=own_ca(pki)).rc == 0
    ca, kept = (pki / "ca.crt").read_bytes(), (pki / "gateways" / "v1-1.crt").read_bytes()

    renamed = apply(tmp_path, pubkey_mesh({1: 1, 2: 1}, **{"v2-1": {"routevpn_ike_id": "192.0.2.21"}}), hosts,
                    extra_vars=own_ca(pki))
    assert renamed.rc == 0 and renamed.changed("v2-1") == 1 and renamed.changed("v1-1") == 0, renamed
    assert san_of(pki / "gateways" / "v2-1.crt") == "IP Address:192.0.2.21"
    assert (pki / "ca.crt").read_bytes() == ca and (pki / "gateways" / "v1-1.crt").read_bytes() == kept

    # 10 days left, renewed within 30: issued again, for the default 825 days.
    (pki / "gateways" / "v2-1.crt").unlink()
    short = apply(tmp_path, pubkey_mesh({1: 1, 2: 1}), hosts,
                  extra_vars=dict(own_ca(pki), routevpn_pki_certificate_not_after="+10d"))
    assert short.rc == 0 and short.changed("v2-1") == 1, short
    assert openssl("x509", "-in", str(pki / "gateways" / "v2-1.crt"), "-noout", "-checkend",
                   str(20 * 86400)).returncode != 0
    renewed = apply(tmp_path, pubkey_mesh({1: 1, 2: 1}), hosts, extra_vars=own_ca(pki))
    assert renewed.rc == 0 and renewed.changed("v2-1") == 1 and renewed.changed("v1-1") == 0, renewed
    assert openssl("x509", "-in", str(pki / "gateways" / "v2-1.crt"), "-noout", "-checkend",
                   str(800 * 86400)).returncode == 0
    settled = apply(tmp_path, pubkey_mesh({1: 1, 2: 1}), hosts, extra_vars=own_ca(pki))
    assert settled.rc == 0 and settled.changed("v2-1") == 0, settled


def test_given_files_are_checked_and_every_problem_names_host_and_variable(tmp_path):
    good, foreign = tmp_path / "pki", tmp_path / "foreign"
    hosts = ["v1-1", "v1-2", "v1-3", "v2-1", "v2-2", "v2-3"]
    hostvars = pubkey_mesh({1: 3, 2: 3})
    assert apply(tmp_path, hostvars, hosts, extra_vars=own_ca(good)).rc == 0
    assert apply(tmp_path, hostvars, ["v1-1"], extra_vars=own_ca(foreign)).rc == 0

    def given(certificate, key, ca):
        return {"routevpn_pki_certificate": str(good / "gateways" / (certificate + ".crt")),
                "routevpn_pki_private_key": str(good / "gateways" / (key + ".key")),
                "routevpn_pki_ca_certificate": str(ca / "ca.crt")}

    host_vars = {
        "v1-1": given("v1-1", "v1-1", good),
        "v1-2": {},
        "v1-3": dict(given("v1-3", "v1-3", good), routevpn_pki_private_key=str(tmp_path / "absent.key")),
        "v2-1": given("v2-2", "v2-2", good),
        "v2-2": given("v2-2", "v2-2", foreign),
        "v2-3": given("v2-3", "v2-1", good),
    }
    checked = apply(tmp_path, hostvars, hosts, host_vars=host_vars)
    assert checked.rc != 0, checked
    assert checked.recap["v1-1"]["failed"] == 0 and checked.changed("v1-1") == 0, checked
    expected = {
        "v1-2": "v1-2: routevpn_auth is pubkey, but routevpn_pki_certificate is not set; routevpn_pki_private_key is "
                "not set; routevpn_pki_ca_certificate is not set.",
        "v1-3": "v1-3: routevpn_auth is pubkey, but routevpn_pki_private_key (%s) is not a file on the controller."
                % (tmp_path / "absent.key"),
        "v2-1": "v2-1: routevpn_pki_certificate (%s) is not for the identity of the gateway: its subjectAltName has "
                "DNS:v2-2, not DNS:v2-1" % (good / "gateways" / "v2-2.crt"),
        # Two CAs of the same name: the key identifiers tell them apart.
        "v2-2": "v2-2: routevpn_pki_certificate (%s) was not issued by routevpn_pki_ca_certificate (%s): its issuer "
                "is routevpn.mesh CA, key %s; the CA is routevpn.mesh CA, key %s"
                % (good / "gateways" / "v2-2.crt", foreign / "ca.crt", key_id(good / "ca.crt"),
                   key_id(foreign / "ca.crt")),
        "v2-3": "v2-3: routevpn_pki_private_key (%s) is not the key of routevpn_pki_certificate"
                % (good / "gateways" / "v2-1.key"),
    }
    for host, message in expected.items():
        assert checked.recap[host]["failed"] == 1, (host, checked)
        assert message in checked.output, (host, checked)
    for line in key_lines(good):
        assert line not in checked.output

    # A relative path is refused by the planning play, before this role runs.
    relative = dict(host_vars, **{"v1-3": dict(host_vars["v1-3"], routevpn_pki_certificate="pki/v1-3.crt")})
    planned = apply(tmp_path, hostvars, hosts, host_vars=relative)
    assert planned.rc != 0, planned
    assert "v1-3: routevpn_pki_certificate: 'pki/v1-3.crt' is not an absolute path" in planned.output, planned

    # The inventory's files and the own CA at once: which one is meant is unclear.
    both = apply(tmp_path, hostvars, ["v1-1"], host_vars=host_vars, extra_vars=own_ca(foreign))
    assert both.rc != 0, both
    assert ("v1-1: routevpn_pki_certificate, routevpn_pki_private_key, routevpn_pki_ca_certificate set, but "
            "routevpn_pki_own_ca is true") in both.output, both


def test_a_gateway_with_pre_shared_keys_is_skipped(tmp_path):
    pki = tmp_path / "pki"
    skipped = apply(tmp_path, inventory({1: 1, 2: 1}), ["v1-1", "v2-1"], extra_vars=own_ca(pki))
    assert skipped.rc == 0 and skipped.changed("v1-1") == 0, skipped
    assert "v1-1: routevpn_auth is psk; role pki skipped." in skipped.output
    assert not pki.exists()


@pytest.mark.parametrize("identity", ["gw@example.net", "CN=v1-1"])
def test_the_own_ca_names_identities_as_strongswan_reads_them(tmp_path, identity):
    pki = tmp_path / "pki"
    run = apply(tmp_path, pubkey_mesh({1: 1, 2: 1}, **{"v1-1": {"routevpn_ike_id": identity}}), ["v1-1"],
                extra_vars=own_ca(pki))
    if "=" in identity:
        assert run.rc != 0 and "v1-1: routevpn_ike_id CN=v1-1 is not a DNS name, IP address or e-mail" in run.output
    else:
        assert run.rc == 0, run
        assert san_of(pki / "gateways" / "v1-1.crt") == "email:" + identity


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("pki")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)
