"""The libreswan role against the real libreswan 4.10, natively.

libreswan cannot be installed beside this machine's strongSwan, so every
gateway gets an overlay of a debootstrapped Debian 12 tree with libreswan
(libreswan_root.py): the role's `ipsec` commands, its template validation
(`ipsec addconn --checkconfig`) and pluto itself run there, by chroot, with
pluto in the gateway's scratch network namespace.  This kernel has no ESP and
no XFRM interfaces: natively pluto loads VTI ends (marks) and installs their
trap policies, and a role-configured pluto and a charon establish an IKE_SA;
XFRM ends need the placeholder devices of a real kernel (VM tier, below).
"""

import base64
import os
import re
import stat
import subprocess
import uuid
from types import SimpleNamespace

import pytest
import yaml

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk, plan

from ..collection_paths import COLLECTION_ROOT, ansible_bin, ansible_env
from ..plugins.module_utils.mesh_inventory import MASTER
from .libreswan_root import libreswan_root_factory, libreswan_rootfs  # noqa: F401  (fixtures)
from .mesh_roles import lab_hostvars, run, run_role, wait_until, write_inventory, write_role_playbook
from .role_runner import PlaybookRun

ROLE = "routevpn.mesh.libreswan"


def libreswan_hostvars(*hosts, tunnel_type="vti", drop=()):
    hostvars = lab_hostvars(drop=drop)
    for host in hosts:
        hostvars[host].update(routevpn_ike_daemon="libreswan", routevpn_tunnel_type=tunnel_type)
    return hostvars


def plan_of(hostvars):
    return plan(hostvars, sorted(hostvars))


@pytest.fixture
def gateways(tmp_path, scratch_netns_factory, libreswan_root_factory):  # noqa: F811
    """make(host) -> a libreswan gateway: its namespace (public, with its IKE address), its root, its role variables."""

    def make(host, hostvars=None):
        netns = scratch_netns_factory("rvls")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        if hostvars is not None:
            address = hostvars[host]["routevpn_public_address"]
            run("ip", "-n", netns, "addr", "add", address + ("/128" if ":" in address else "/32"), "dev", "lo",
                "nodad")
        root = libreswan_root_factory(host)
        state = tmp_path / ("state-" + host)
        return SimpleNamespace(
            host=host, netns=netns, root=root, conf_dir=root.conf_dir,
            variables={
                "routevpn_libreswan_packages": [],
                "routevpn_service_manager": "direct",
                "routevpn_libreswan_charon_paths": [],
                "routevpn_libreswan_ipsec": str(root.ipsec),
                "routevpn_libreswan_conf_file": str(root.path / "etc" / "ipsec.conf"),
                "routevpn_libreswan_conf_dir": str(root.conf_dir),
                "routevpn_libreswan_libexec_dir": str(state / "libexec"),
                "routevpn_libreswan_state_dir": str(state / "etc"),
                "routevpn_libreswan_log_file": str(root.path / "tmp" / "pluto.log"),
                # No XFRM ends natively: the placeholder list stays empty.
                "routevpn_private_netns": "rvls-none-" + uuid.uuid4().hex[:6],
            })

    return make


def apply(tmp_path, gateway, hostvars, check=False, extra_vars=None, name="inventory.yml"):
    inventory = write_inventory(tmp_path, hostvars, {gateway.host: gateway.variables}, name=name)
    return run_role(tmp_path, inventory, write_role_playbook(tmp_path, ROLE), gateway.host, netns=gateway.netns,
                    check=check, extra_vars=extra_vars)


def role_files(gateway):
    return sorted(path.name for path in gateway.conf_dir.iterdir() if path.name.startswith("routevpn-"))


def loaded_conns(gateway):
    """{conn name: its status line} from pluto's own `ipsec whack --status`."""
    status = gateway.root.run("whack", "--status", netns=gateway.netns).stdout
    return dict((m.group(1), m.group(0)) for m in re.finditer(r'^(?:000 )?"([^"]+)": (\S+\.\.\.\S+.*)$', status, re.M))


def out_policies(netns):
    """{(selector, mark)} of the outbound XFRM policies with a mark in the namespace, read from the kernel."""
    found = set()
    for block in re.split(r"\n(?=\S)", run("ip", "-n", netns, "xfrm", "policy").stdout):
        selector = re.match(r"src (\S+) dst (\S+)", block)
        mark = re.search(r"mark (0x[0-9a-f]+)/0xffffffff", block)
        if "dir out" in block and selector and mark:
            found.add(("%s-%s" % selector.groups(), int(mark.group(1), 16)))
    return found


def secrets_of(ends):
    keys = [derive_psk(MASTER, end["link"]) for end in ends]
    return keys + [base64.b64encode(key.encode()).decode() for key in keys]


def test_check_apply_idempotent_with_every_link_loaded(tmp_path, gateways):
    hostvars = libreswan_hostvars("v3-1")
    gateway = gateways("v3-1", hostvars)
    ends = plan_of(hostvars)["hosts"]["v3-1"]
    names = sorted(end["connection"] for end in ends)
    assert names == ["rv-11", "rv-12", "rv-21", "rv-22"]

    checked = apply(tmp_path, gateway, hostvars, check=True)
    assert checked.rc == 0 and checked.changed("v3-1") > 0, checked
    assert role_files(gateway) == [] and gateway.root.pluto_pid() is None

    applied = apply(tmp_path, gateway, hostvars)
    assert applied.rc == 0 and applied.changed("v3-1") > 0, applied
    assert role_files(gateway) == sorted(["routevpn-%s.%s" % (n, s) for n in names for s in ("conf", "secrets")])
    for name in names:
        assert stat.S_IMODE((gateway.conf_dir / ("routevpn-%s.conf" % name)).stat().st_mode) == 0o644
        assert stat.S_IMODE((gateway.conf_dir / ("routevpn-%s.secrets" % name)).stat().st_mode) == 0o600

    conns = loaded_conns(gateway)
    assert sorted(conns) == sorted("%s-v%d" % (n, v) for n in names for v in (4, 6)), conns
    for end in ends:
        line = conns[end["connection"] + "-v6"]
        assert "%s[@%s]" % (end["local_ike_address"], end["local_id"]) in line
        assert "%s[@%s]" % (end["remote_ike_address"], end["remote_id"]) in line
    # v3-1 has the higher gateway id on every link: its conns are routed on
    # demand, with trap policies carrying each link's mark, in its namespace.
    assert out_policies(gateway.netns) == set((selector, end["mark"]) for end in ends
                                              for selector in ("0.0.0.0/0-0.0.0.0/0", "::/0-::/0"))

    again = apply(tmp_path, gateway, hostvars)
    assert again.rc == 0 and again.changed("v3-1") == 0, again
    checked_again = apply(tmp_path, gateway, hostvars, check=True)
    assert checked_again.rc == 0 and checked_again.changed("v3-1") == 0, checked_again

    for output in (checked.output, applied.output, again.output, checked_again.output):
        for secret in secrets_of(ends):
            assert secret not in output


def contents(gateway):
    return dict((name, (gateway.conf_dir / name).read_bytes()) for name in role_files(gateway))


def test_conn_refused_by_the_parser_keeps_the_working_file(tmp_path, gateways):
    hostvars = libreswan_hostvars("v3-1")
    gateway = gateways("v3-1", hostvars)
    assert apply(tmp_path, gateway, hostvars).rc == 0
    before, conns = contents(gateway), loaded_conns(gateway)

    # A space in a value is a syntax error for libreswan's parser (exit 3).
    broken = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_libreswan_esp": "aes_gcm256 dh20"})
    assert broken.rc != 0, broken
    assert "syntax error" in broken.output and "rv-11 (link 11-31 to v1-1)" in broken.output
    assert contents(gateway) == before
    assert loaded_conns(gateway) == conns
    assert not [name for name in os.listdir(str(gateway.conf_dir)) if name.endswith("~")]


def test_conn_refused_by_pluto_restores_the_previous_one(tmp_path, gateways):
    hostvars = libreswan_hostvars("v3-1")
    gateway = gateways("v3-1", hostvars)
    assert apply(tmp_path, gateway, hostvars).rc == 0
    before, conns, pid = contents(gateway), loaded_conns(gateway), gateway.root.pluto_pid()

    # The parser takes any proposal string; pluto's algorithm parser refuses this one.
    refused = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_libreswan_ike": "aes_gcm999-sha2_384;dh20"})
    assert refused.rc != 0, refused
    assert "pluto refused rv-11-v4" in refused.output and "previous conns are loaded again" in refused.output
    assert contents(gateway) == before
    assert loaded_conns(gateway) == conns and gateway.root.pluto_pid() == pid
    assert not [name for name in os.listdir(str(gateway.conf_dir)) if name.endswith("~")]

    assert apply(tmp_path, gateway, hostvars).changed("v3-1") == 0


def test_removed_link_is_deleted_from_pluto_and_the_rest_stays(tmp_path, gateways):
    hostvars = libreswan_hostvars("v3-1")
    gateway = gateways("v3-1", hostvars)
    assert apply(tmp_path, gateway, hostvars).rc == 0
    pid = gateway.root.pluto_pid()
    kept = dict((name, line) for name, line in loaded_conns(gateway).items() if not name.startswith("rv-12-"))

    removed = apply(tmp_path, gateway, libreswan_hostvars("v3-1", drop=["v1-2"]))
    assert removed.rc == 0 and removed.changed("v3-1") > 0, removed
    assert "routevpn-rv-12.conf" not in role_files(gateway) and "routevpn-rv-12.secrets" not in role_files(gateway)
    assert loaded_conns(gateway) == kept
    assert gateway.root.pluto_pid() == pid
    assert 4542 not in set(mark for _selector, mark in out_policies(gateway.netns))


def test_refuses_a_host_with_charon(tmp_path, gateways):
    hostvars = libreswan_hostvars("v3-1")
    gateway = gateways("v3-1", hostvars)
    gateway.variables.pop("routevpn_libreswan_charon_paths")
    assert os.path.exists("/usr/sbin/charon-systemd")  # this machine runs strongSwan

    refused = apply(tmp_path, gateway, hostvars)
    assert refused.rc != 0
    assert ("v3-1: routevpn_ike_daemon is libreswan, but strongSwan's charon is installed here "
            "(/usr/sbin/charon-systemd)") in refused.output
    assert role_files(gateway) == [] and gateway.root.pluto_pid() is None
