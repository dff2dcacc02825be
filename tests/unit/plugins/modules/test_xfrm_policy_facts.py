"""xfrm_policy_facts against the kernel's real SPD and SAD."""

import json
import subprocess

import pytest

from ...module_runner import debian_pyroute2_available, run_module

PYTHONS = [None] + (["debian"] if debian_pyroute2_available() else [])
AEAD_KEY = "0x" + "c0ffee11" * 9  # 288 bits: 256-bit AES key + 32-bit salt
AUTH_KEY = "0x" + "5eed" * 16
ENC_KEY = "0x" + "abcd" * 16


def ip(netns, *args):
    subprocess.run(["ip", "-n", netns] + list(args), check=True, capture_output=True)


def facts(**args):
    python = args.pop("_python", None)
    result = run_module("xfrm_policy_facts", args, check=args.pop("_check", False), python=python)
    assert not result.get("failed"), result
    return result["ansible_facts"]["routevpn_xfrm_policies"], result["ansible_facts"]["routevpn_xfrm_states"], result


@pytest.fixture
def policies_netns(scratch_netns):
    ip(scratch_netns, "xfrm", "policy", "add", "src", "10.1.0.0/16", "dst", "10.2.0.0/16", "dir", "out",
       "priority", "100", "mark", "0x2a", "mask", "0xff", "if_id", "4296",
       "tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "reqid", "7", "mode", "tunnel")
    ip(scratch_netns, "xfrm", "policy", "add", "src", "::/0", "dst", "::/0", "dir", "in", "if_id", "4296",
       "tmpl", "src", "2001:db8:2::1", "dst", "2001:db8:1::1", "proto", "esp", "reqid", "8", "mode", "tunnel")
    ip(scratch_netns, "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "proto", "tcp",
       "dport", "443", "dir", "fwd", "action", "block", "priority", "5")
    return scratch_netns


@pytest.mark.parametrize("python", PYTHONS)
def test_policies_are_decoded_field_by_field(policies_netns, python):
    policies, states, result = facts(netns=policies_netns, _python=python)
    assert result["changed"] is False and states == []
    by_direction = {p["direction"]: p for p in policies}
    assert sorted(by_direction) == ["fwd", "in", "out"]
    out = by_direction["out"]
    assert out["selector"] == {"family": "ipv4", "src": "10.1.0.0/16", "dst": "10.2.0.0/16", "proto": "any",
                               "sport": None, "dport": None, "ifindex": None}
    assert (out["priority"], out["action"], out["if_id"]) == (100, "allow", 4296)
    assert out["mark"] == {"value": 0x2A, "mask": 0xFF}
    assert out["templates"] == [{"src": "192.0.2.1", "dst": "192.0.2.2", "family": "ipv4", "proto": "esp",
                                 "spi": None, "reqid": 7, "mode": "tunnel", "optional": False}]
    inbound = by_direction["in"]
    assert inbound["selector"]["family"] == "ipv6" and inbound["selector"]["src"] == "::/0"
    assert inbound["templates"][0]["src"] == "2001:db8:2::1" and inbound["templates"][0]["reqid"] == 8
    assert inbound["mark"] is None and inbound["if_id"] == 4296
    fwd = by_direction["fwd"]
    assert (fwd["action"], fwd["priority"], fwd["selector"]["proto"], fwd["selector"]["dport"]) == ("block", 5, "tcp", 443)
    assert fwd["if_id"] is None and fwd["templates"] == []


def test_index_matches_what_iproute2_reports(policies_netns):
    text = subprocess.run(["ip", "-n", policies_netns, "xfrm", "policy", "list"], capture_output=True,
                          text=True, check=True).stdout
    policies, _states, _result = facts(netns=policies_netns)
    assert len(policies) == text.count("dir ")
    for policy in policies:
        if policy["if_id"]:
            assert "if_id %#x" % policy["if_id"] in text


@pytest.mark.parametrize("args, directions", [
    (dict(if_id=4296), ["in", "out"]),
    (dict(mark=0x2A), ["out"]),
    (dict(direction=["fwd", "in"]), ["fwd", "in"]),
    (dict(if_id=4296, direction=["in"]), ["in"]),
    (dict(if_id=1), []),
])
def test_filters(policies_netns, args, directions):
    policies, _states, _result = facts(netns=policies_netns, **args)
    assert sorted(p["direction"] for p in policies) == directions


def test_gather_policies_only_and_check_mode(policies_netns):
    policies, states, result = facts(netns=policies_netns, gather=["policies"], _check=True)
    assert len(policies) == 3 and states == [] and result["changed"] is False


def test_empty_namespace(scratch_netns):
    policies, states, _result = facts(netns=scratch_netns)
    assert policies == [] and states == []


def test_missing_namespace_is_an_error_and_is_not_created():
    result = run_module("xfrm_policy_facts", dict(netns="routevpn-no-such-ns"))
    assert result.get("failed") and "network namespace 'routevpn-no-such-ns' does not exist" in result["msg"]
    assert "routevpn-no-such-ns" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


# -- kernel tier: real ESP SAs ---------------------------------------------------------

@pytest.mark.parametrize("python", PYTHONS)
def test_esp_states_show_algorithms_and_counters_but_never_keys(scratch_netns, kernel_feature, python):
    kernel_feature("esp")
    ip(scratch_netns, "xfrm", "state", "add", "src", "2001:db8:1::1", "dst", "2001:db8:2::1", "proto", "esp",
       "spi", "0xc1a2b3c4", "reqid", "7", "mode", "tunnel", "if_id", "4296",
       "aead", "rfc4106(gcm(aes))", AEAD_KEY, "128")
    ip(scratch_netns, "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
       "spi", "0x100", "reqid", "9", "mode", "tunnel", "mark", "0x10c8", "mask", "0xffffffff",
       "auth-trunc", "hmac(sha256)", AUTH_KEY, "128", "enc", "cbc(aes)", ENC_KEY)
    policies, states, result = facts(netns=scratch_netns, _python=python)
    by_spi = {s["spi"]: s for s in states}
    gcm = by_spi["0xc1a2b3c4"]
    assert (gcm["src"], gcm["dst"], gcm["family"], gcm["proto"], gcm["mode"]) == (
        "2001:db8:1::1", "2001:db8:2::1", "ipv6", "esp", "tunnel")
    assert gcm["reqid"] == 7 and gcm["if_id"] == 4296 and gcm["mark"] is None
    assert gcm["algorithms"] == {"aead": {"name": "rfc4106(gcm(aes))", "key_bits": 288, "icv_bits": 128}}
    assert gcm["counters"]["bytes"] == 0 and gcm["counters"]["packets"] == 0 and gcm["counters"]["add_time"] > 0
    cbc = by_spi["0x00000100"]
    assert cbc["mark"] == {"value": 0x10C8, "mask": 0xFFFFFFFF} and cbc["if_id"] is None
    assert cbc["algorithms"]["enc"] == {"name": "cbc(aes)", "key_bits": 256}
    assert cbc["algorithms"]["auth"] == {"name": "hmac(sha256)", "key_bits": 256, "trunc_bits": 128}

    output = json.dumps(result).lower()
    for key in (AEAD_KEY, AUTH_KEY, ENC_KEY):
        hex_key = key[2:].lower()
        assert hex_key not in output and hex_key[:16] not in output
        assert bytes.fromhex(hex_key)[:8].decode("latin-1") not in json.dumps(result)

    only, _, _ = facts(netns=scratch_netns, mark=0x10C8)
    _none, marked_states, _ = facts(netns=scratch_netns, mark=0x10C8)
    assert [s["spi"] for s in marked_states] == ["0x00000100"] and only == []
    _none, bound, _ = facts(netns=scratch_netns, if_id=4296)
    assert [s["spi"] for s in bound] == ["0xc1a2b3c4"]


def test_through_ansible_for_real(policies_netns, tmp_path):
    from ...collection_paths import ansible_bin, ansible_env

    playbook = tmp_path / "facts.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - routevpn.mesh.xfrm_policy_facts:
        netns: %s
        if_id: 4296
    - ansible.builtin.assert:
        that:
          - routevpn_xfrm_policies | length == 2
          - (routevpn_xfrm_policies | map(attribute='direction') | sort) == ['in', 'out']
""" % policies_netns)
    proc = subprocess.run([ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          capture_output=True, text=True, env=ansible_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout
