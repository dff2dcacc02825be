"""xfrm_policy_facts run as Ansible runs it, against the kernel's real SPD and SAD.

Native tier: policies made by iproute2 in scratch namespaces, on both
pyroute2 generations.  Kernel tier (the VM): ESP SAs with real algorithms
and keys, and traffic through one of them for the counters.
"""

import base64
import json
import os
import subprocess

import pytest

from ...collection_paths import ansible_bin, ansible_env
from ...module_runner import DEBIAN_PYTHON, debian_pyroute2_available, ip_in, run_module

PYTHONS = [None] + (["debian"] if debian_pyroute2_available() else [])

# Printable keys: should their raw bytes ever reach the output, they would show
# as plain text whatever the JSON encoding does to other bytes.
AEAD_KEY = b"RVKEY-aead-0123456789abcdefghijk" + b"salt"  # AES-256 key + 4-byte salt: 288 bits
AUTH_KEY = b"RVKEY-auth-0123456789abcdefghijk"  # 256 bits
ENC_KEY = b"RVKEY-enc-0123456789abcdefghijkl"  # 256 bits
AEAD_KEY_4 = b"RVKEY-gcm4-01234" + b"sal4"  # AES-128 + salt, for the IPv4 SA


def ansible(tmp_path, command, *argv, **env):
    """Run an ansible command as a user would (ansible_env gives it its own ansible)."""
    return subprocess.run([ansible_bin(command)] + list(argv), capture_output=True, text=True,
                          env=ansible_env(tmp_path, strategy="linear", **env),
                          check=False, timeout=900)


def adhoc(tmp_path, args, python=None, *options):
    env = dict(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    if python == "debian":
        env["ANSIBLE_PYTHON_INTERPRETER"] = DEBIAN_PYTHON
    proc = ansible(tmp_path, "ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                   "routevpn.mesh.xfrm_policy_facts", "-a", json.dumps(args), *options, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], proc


def facts(python=None, check=False, **args):
    result = run_module("xfrm_policy_facts", args, check=check, python=python)
    assert not result.get("failed"), result
    assert result["changed"] is False
    return result["ansible_facts"]["routevpn_xfrm_policies"], result["ansible_facts"]["routevpn_xfrm_states"]


@pytest.fixture
def policies_netns(scratch_netns):
    ip_in(scratch_netns, "xfrm", "policy", "add", "src", "10.1.0.0/16", "dst", "10.2.0.0/16", "dir", "out",
          "priority", "100", "mark", "0x2a", "mask", "0xff", "if_id", "4296",
          "tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "reqid", "7", "mode", "tunnel")
    ip_in(scratch_netns, "xfrm", "policy", "add", "src", "::/0", "dst", "::/0", "dir", "in", "if_id", "4296",
          "tmpl", "src", "2001:db8:2::1", "dst", "2001:db8:1::1", "proto", "esp", "reqid", "8", "mode", "tunnel")
    ip_in(scratch_netns, "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "proto", "tcp",
          "dport", "443", "dir", "fwd", "action", "block", "priority", "5")
    return scratch_netns


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_policies_field_by_field(policies_netns, python, check):
    policies, states = facts(python=python, check=check, netns=policies_netns)
    assert states == []
    by_direction = dict((p["direction"], p) for p in policies)
    assert sorted(by_direction) == ["fwd", "in", "out"]
    out = dict(by_direction["out"], index=None)
    assert out == {
        "direction": "out", "index": None, "priority": 100, "action": "allow", "flags": [], "type": "main",
        "selector": {"family": "ipv4", "src": "10.1.0.0/16", "dst": "10.2.0.0/16", "proto": None, "sport": None,
                     "dport": None, "ifindex": None},
        "mark": 0x2A, "mark_mask": 0xFF, "if_id": 4296,
        "templates": [{"src": "192.0.2.1", "dst": "192.0.2.2", "family": "ipv4", "proto": "esp", "spi": None,
                       "reqid": 7, "mode": "tunnel", "level": "required"}],
    }
    inbound = by_direction["in"]
    assert inbound["selector"] == {"family": "ipv6", "src": "::/0", "dst": "::/0", "proto": None, "sport": None,
                                   "dport": None, "ifindex": None}
    assert (inbound["mark"], inbound["if_id"], inbound["templates"][0]["reqid"]) == (None, 4296, 8)
    assert (inbound["templates"][0]["src"], inbound["templates"][0]["dst"]) == ("2001:db8:2::1", "2001:db8:1::1")
    fwd = by_direction["fwd"]
    assert (fwd["action"], fwd["priority"], fwd["selector"]["proto"], fwd["selector"]["dport"]) == (
        "block", 5, "tcp", 443)
    assert fwd["if_id"] is None and fwd["templates"] == []


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("args, directions", [
    (dict(if_id=4296), ["in", "out"]),
    (dict(mark=0x2A), ["out"]),
    (dict(direction=["fwd", "in"]), ["fwd", "in"]),
    (dict(if_id=4296, direction=["in"]), ["in"]),
    (dict(if_id=1), []),
    (dict(gather=["states"]), []),
])
def test_filters(policies_netns, python, args, directions):
    policies, _states = facts(python=python, netns=policies_netns, **args)
    assert sorted(p["direction"] for p in policies) == directions


@pytest.mark.parametrize("python", PYTHONS)
def test_empty_namespace(scratch_netns, python):
    assert facts(python=python, netns=scratch_netns) == ([], [])


@pytest.mark.parametrize("python", PYTHONS)
def test_missing_namespace_is_an_error_and_is_not_created(python):
    name = "rvt-no-such-ns-%d" % os.getpid()
    result = run_module("xfrm_policy_facts", dict(netns=name), python=python)
    assert result.get("failed") and "network namespace '%s' does not exist" % name in result["msg"]
    assert not os.path.exists("/run/netns/" + name)
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_argument_spec_rejects_unknown_directions():
    result = run_module("xfrm_policy_facts", dict(direction=["sideways"]))
    assert result.get("failed") and "sideways" in result["msg"]


@pytest.mark.parametrize("python", PYTHONS)
def test_through_ansible_adhoc(policies_netns, tmp_path, python):
    """`ansible localhost -m routevpn.mesh.xfrm_policy_facts`: AnsiballZ, argument_spec, facts as in production."""
    result, _proc = adhoc(tmp_path, dict(netns=policies_netns, if_id=4296, direction=["out"]), python, "--check")
    assert not result.get("failed") and result["changed"] is False, result
    (out,) = result["ansible_facts"]["routevpn_xfrm_policies"]
    assert (out["direction"], out["if_id"], out["mark"], out["templates"][0]["reqid"]) == ("out", 4296, 0x2A, 7)


def test_facts_become_variables_in_a_play(policies_netns, tmp_path):
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
          - (routevpn_xfrm_policies | map(attribute='direction') | sort) == ['in', 'out']
          - routevpn_xfrm_policies | selectattr('mark', 'equalto', 42) | list | length == 1
          - ansible_facts.routevpn_xfrm_states == []
""" % policies_netns)
    proc = ansible(tmp_path, "ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok=2" in proc.stdout and "failed=0" in proc.stdout


def test_ansible_doc_renders(tmp_path):
    proc = ansible(tmp_path, "ansible-doc", "routevpn.mesh.xfrm_policy_facts")
    assert proc.returncode == 0, proc.stderr
    for words in ("NETLINK_XFRM", "in-socket", "routevpn_xfrm_policies", "routevpn_xfrm_states", "check_mode",
                  "EXAMPLES", "RETURN VALUES"):
        assert words in proc.stdout
    as_json = ansible(tmp_path, "ansible-doc", "--json", "routevpn.mesh.xfrm_policy_facts")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)["routevpn.mesh.xfrm_policy_facts"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert doc["doc"]["attributes"]["facts"]["support"] == "full"


# -- kernel tier: real ESP SAs ---------------------------------------------------------


def leaked(output, keys):
    """The representations of ``keys`` found in ``output`` (hex either case, raw, base64)."""
    found = []
    for key in keys:
        for form in (key.hex(), key.hex().upper(), key.decode("ascii"), base64.b64encode(key).decode("ascii"),
                     key[:8].decode("ascii"), key[:8].hex()):
            if form in output:
                found.append(form)
    return found


@pytest.fixture
def esp_netns(scratch_netns_factory, kernel_feature):
    """Namespace with three SAs: AES-GCM bound to if_id 4296 (v6), HMAC + AES-CBC marked (v4), and AES-GCM
    transport (v4) on a veth towards a second namespace, with the policy that sends pings through it."""
    kernel_feature("esp")
    netns, peer = scratch_netns_factory(), scratch_netns_factory()
    ip_in(netns, "xfrm", "state", "add", "src", "2001:db8:1::1", "dst", "2001:db8:2::1", "proto", "esp",
          "spi", "0xc1a2b3c4", "reqid", "7", "mode", "tunnel", "if_id", "4296",
          "aead", "rfc4106(gcm(aes))", "0x" + AEAD_KEY.hex(), "128")
    ip_in(netns, "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
          "spi", "0x100", "reqid", "9", "mode", "tunnel", "mark", "0x10c8", "mask", "0xffffffff",
          "auth-trunc", "hmac(sha256)", "0x" + AUTH_KEY.hex(), "128", "enc", "cbc(aes)", "0x" + ENC_KEY.hex())
    subprocess.run(["ip", "link", "add", "rvt-a", "netns", netns, "type", "veth", "peer", "name", "rvt-b",
                    "netns", peer], check=True, capture_output=True)
    for space, device, address in ((netns, "rvt-a", "10.99.0.1/24"), (peer, "rvt-b", "10.99.0.2/24")):
        ip_in(space, "addr", "add", address, "dev", device)
        ip_in(space, "link", "set", device, "up")
    ip_in(netns, "xfrm", "state", "add", "src", "10.99.0.1", "dst", "10.99.0.2", "proto", "esp", "spi", "0x200",
          "reqid", "11", "mode", "transport", "aead", "rfc4106(gcm(aes))", "0x" + AEAD_KEY_4.hex(), "128")
    ip_in(netns, "xfrm", "policy", "add", "src", "10.99.0.1/32", "dst", "10.99.0.2/32", "proto", "icmp", "dir", "out",
          "tmpl", "src", "10.99.0.1", "dst", "10.99.0.2", "proto", "esp", "reqid", "11", "mode", "transport")
    # The peer has no SA: the pings go out encrypted and are dropped there, which is all the counters need.
    subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.99.0.2"],
                   capture_output=True, check=False)
    return netns


@pytest.mark.parametrize("python", PYTHONS)
def test_esp_states_show_algorithms_and_counters_but_never_keys(esp_netns, python):
    result = run_module("xfrm_policy_facts", dict(netns=esp_netns), python=python)
    assert not result.get("failed"), result
    states = result["ansible_facts"]["routevpn_xfrm_states"]
    by_spi = dict((s["spi"], s) for s in states)
    assert sorted(by_spi) == ["0x00000100", "0x00000200", "0xc1a2b3c4"]

    gcm = by_spi["0xc1a2b3c4"]
    assert (gcm["src"], gcm["dst"], gcm["family"], gcm["proto"], gcm["mode"], gcm["reqid"]) == (
        "2001:db8:1::1", "2001:db8:2::1", "ipv6", "esp", "tunnel", 7)
    assert (gcm["if_id"], gcm["mark"], gcm["mark_mask"]) == (4296, None, None)
    assert gcm["algorithms"] == {"aead": {"name": "rfc4106(gcm(aes))", "key_bits": 288, "icv_bits": 128}}

    cbc = by_spi["0x00000100"]
    assert (cbc["src"], cbc["dst"], cbc["family"], cbc["reqid"]) == ("192.0.2.1", "192.0.2.2", "ipv4", 9)
    assert (cbc["mark"], cbc["mark_mask"], cbc["if_id"]) == (0x10C8, 0xFFFFFFFF, None)
    assert cbc["algorithms"] == {"enc": {"name": "cbc(aes)", "key_bits": 256},
                                 "auth": {"name": "hmac(sha256)", "key_bits": 256, "trunc_bits": 128}}

    used = by_spi["0x00000200"]
    assert (used["mode"], used["algorithms"]["aead"]["key_bits"]) == ("transport", 160)
    assert used["counters"]["packets"] == 3 and used["counters"]["bytes"] > 0
    assert used["counters"]["use_time"] >= used["counters"]["add_time"] > 0
    for state in (gcm, cbc):
        assert state["counters"]["bytes"] == state["counters"]["packets"] == 0
        assert state["counters"]["add_time"] > 0
        assert set(state["counters"]) == {"bytes", "packets", "add_time", "use_time", "replay_window", "replay",
                                          "integrity_failed"}

    assert leaked(json.dumps(result), [AEAD_KEY, AUTH_KEY, ENC_KEY, AEAD_KEY_4]) == []
    assert leaked(json.dumps(result, ensure_ascii=False), [AEAD_KEY, AUTH_KEY, ENC_KEY, AEAD_KEY_4]) == []
    # The same keys are plainly in `ip xfrm state`: the check above looks for the right things.
    shown = subprocess.run(["ip", "-n", esp_netns, "xfrm", "state"], capture_output=True, text=True, check=True).stdout
    assert leaked(shown, [AEAD_KEY, AUTH_KEY, ENC_KEY])


@pytest.mark.parametrize("python", PYTHONS)
def test_esp_states_filtered_by_mark_and_if_id(esp_netns, python):
    policies, marked = facts(python=python, netns=esp_netns, mark=0x10C8)
    assert [s["spi"] for s in marked] == ["0x00000100"] and policies == []
    _policies, bound = facts(python=python, netns=esp_netns, if_id=4296, direction=["out"])
    assert [s["spi"] for s in bound] == ["0xc1a2b3c4"]
    policies, states = facts(python=python, netns=esp_netns, gather=["policies"], direction=["out"])
    assert states == [] and [p["selector"]["proto"] for p in policies] == ["icmp"]


def test_esp_keys_never_reach_ansible_output(esp_netns, tmp_path):
    """The whole output of a verbose ansible run (default callback: -vvv output would break the json one)."""
    proc = ansible(tmp_path, "ansible", "localhost", "-i", "localhost,", "-c", "local", "-vvv",
                   "-m", "routevpn.mesh.xfrm_policy_facts", "-a", json.dumps(dict(netns=esp_netns)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for shown in ("rfc4106(gcm(aes))", "hmac(sha256)", "cbc(aes)", "0xc1a2b3c4", "0x00000100", "0x00000200"):
        assert shown in proc.stdout
    assert leaked(proc.stdout + proc.stderr, [AEAD_KEY, AUTH_KEY, ENC_KEY, AEAD_KEY_4]) == []
