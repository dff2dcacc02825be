"""The strongswan role against real charon daemons, natively.

Each gateway runs ansible-playbook inside its own scratch namespace; the role
starts charon-systemd there itself (routevpn_service_manager: direct), with
Debian's plugin configuration plus the role's drop-in, and loads the rendered
files with swanctl.  This kernel has no ESP, so CHILD_SAs cannot be installed
here, but charon loads the connections, installs their trap policies (with
the if_id) and two role-configured charons establish an IKE_SA with each
other: that proves the two ends' ids, proposals and derived keys agree.
"""

import base64
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
import yaml

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk, plan

from ..collection_paths import COLLECTION_ROOT
from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from .mesh_roles import (documented_variables, lab_hostvars, reconverge_module_runs, run, run_role, wait_until,
                         write_inventory, write_role_playbook)
from .role_runner import run_playbook

vici = pytest.importorskip("vici")

ROLE = "routevpn.mesh.strongswan"
PKI = "routevpn.mesh.pki"
CHARON = "/usr/sbin/charon-systemd"
STRONGSWAN_CONF = """\
charon {
  load_modular = yes
  plugins {
    include /etc/strongswan.d/charon/*.conf
  }
}
include %s/*.conf
"""


def plan_of(hostvars):
    return plan(hostvars, sorted(hostvars))


def stop_charon(pid_file):
    try:
        pid = int(pathlib.Path(pid_file).read_text().strip())
    except (OSError, ValueError):
        return
    try:
        if os.readlink("/proc/%d/exe" % pid) != CHARON:
            return
        os.kill(pid, signal.SIGTERM)
        for dummy in range(50):
            if not os.path.exists("/proc/%d" % pid) or "zombie" in _state(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _state(pid):
    try:
        return pathlib.Path("/proc/%d/status" % pid).read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "zombie"


@pytest.fixture
def gateways(tmp_path, scratch_netns_factory):
    """make(host) -> a gateway: its namespace, its scratch /etc tree, its role variables."""
    made = []

    def make(host):
        netns = scratch_netns_factory("rvsw")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        root = tmp_path / host
        run_dir = pathlib.Path("/run") / ("rvsw-" + uuid.uuid4().hex[:8])
        for path in (root / "strongswan.d", root / "swanctl", run_dir):
            path.mkdir(parents=True)
        (root / "strongswan.conf").write_text(STRONGSWAN_CONF % (root / "strongswan.d"))
        (root / "swanctl" / "swanctl.conf").write_text("include conf.d/*.conf\n")
        gateway = SimpleNamespace(
            host=host, netns=netns, root=root, run_dir=run_dir,
            conf_d=root / "swanctl" / "conf.d", socket=str(run_dir / "charon.vici"),
            pid_file=str(run_dir / "charon.pid"),
            variables={
                "routevpn_strongswan_packages": [],
                "routevpn_service_manager": "direct",
                "routevpn_strongswan_swanctl_dir": str(root / "swanctl"),
                "routevpn_strongswan_conf_dir": str(root / "strongswan.d"),
                "routevpn_strongswan_conf_file": str(root / "strongswan.conf"),
                "routevpn_strongswan_vici_socket": str(run_dir / "charon.vici"),
                "routevpn_strongswan_pid_file": str(run_dir / "charon.pid"),
                "routevpn_strongswan_log_file": str(root / "charon.log"),
                "routevpn_systemd_unit_dir": str(root / "systemd"),
            })
        made.append(gateway)
        return gateway

    try:
        yield make
    finally:
        for gateway in made:
            stop_charon(gateway.pid_file)
            shutil.rmtree(str(gateway.run_dir), ignore_errors=True)


def apply(tmp_path, gateway, hostvars, check=False, extra_vars=None, name="inventory.yml"):
    inventory = write_inventory(tmp_path, hostvars, {gateway.host: gateway.variables}, name=name)
    return run_role(tmp_path, inventory, write_role_playbook(tmp_path, ROLE), gateway.host, netns=gateway.netns,
                    check=check, extra_vars=extra_vars)


def session(gateway):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(gateway.socket)
    return vici.Session(sock)


def text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text(item) for item in value]
    return value


def loaded_connections(gateway):
    return dict((name, conn) for item in session(gateway).list_conns() for name, conn in item.items())


def ike_sas(gateway):
    return dict((name, dict((k, text(v)) for k, v in sa.items() if k != "child-sas"))
                for item in session(gateway).list_sas() for name, sa in item.items())


def trap_policies(netns, key="if_id"):
    """{(remote IKE address, if_id or mark)} of the outbound XFRM policies in the namespace, from the kernel."""
    found = set()
    output = run("ip", "-n", netns, "xfrm", "policy").stdout
    for block in re.split(r"\n(?=\S)", output):
        if "dir out" not in block:
            continue
        remote = re.search(r"tmpl src \S+ dst (\S+)", block)
        value = re.search(r"\b%s (0x[0-9a-f]+)" % key, block)
        if remote and value:
            found.add((remote.group(1), int(value.group(1), 16)))
    return found


def secrets_of(ends):
    keys = [derive_psk(MASTER, end["link"]) for end in ends]
    return keys + [base64.b64encode(key.encode()).decode() for key in keys]


def contents(gateway):
    """The role's files in conf.d, without backups."""
    return dict((name, (gateway.conf_d / name).read_bytes()) for name in conf_files(gateway) if not name.endswith("~"))


def conf_files(gateway):
    return sorted(path.name for path in gateway.conf_d.iterdir()) if gateway.conf_d.exists() else []


def test_check_apply_idempotent_with_every_link_loaded(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    ends = plan_of(hostvars)["hosts"]["v1-1"]
    names = sorted(end["connection"] for end in ends)
    assert names == ["rv-21", "rv-22", "rv-31", "rv-32"]

    checked = apply(tmp_path, gateway, hostvars, check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert conf_files(gateway) == [] and not os.path.exists(gateway.pid_file)

    applied = apply(tmp_path, gateway, hostvars)
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    assert conf_files(gateway) == sorted(["routevpn-%s.conf" % n for n in names]
                                         + ["routevpn.secrets.%s.conf" % n for n in names])
    for name in names:
        assert stat.S_IMODE((gateway.conf_d / ("routevpn.secrets.%s.conf" % name)).stat().st_mode) == 0o600
    for name in names:
        assert stat.S_IMODE((gateway.conf_d / ("routevpn-%s.conf" % name)).stat().st_mode) == 0o644

    # The drop-in reached charon: no connmark, no bypass-lan, no rule 220.
    plugins = text(session(gateway).stats()["plugins"])
    assert "kernel-netlink" in plugins and "connmark" not in plugins and "bypass-lan" not in plugins
    assert "220" not in run("ip", "-n", gateway.netns, "rule").stdout
    assert "220" not in run("ip", "-6", "-n", gateway.netns, "rule").stdout
    # The drop-in's swanctl section: with the packages the role installs (this machine's), swanctl loads no plugin
    # that is not there, so no "failed to load" line surrounds what it says.
    quiet = run("env", "STRONGSWAN_CONF=%s" % (gateway.root / "strongswan.conf"), "swanctl", "--stats",
                "--uri", "unix://" + gateway.socket)
    assert "failed to load" not in quiet.stdout + quiet.stderr and "uptime" in quiet.stdout, quiet
    bare = tmp_path / "bare-strongswan.conf"
    bare.write_text("# swanctl's own defaults\n")
    noisy = run("env", "STRONGSWAN_CONF=%s" % bare, "swanctl", "--stats", "--uri", "unix://" + gateway.socket,
                check=False)
    assert "failed to load" in noisy.stderr, "swanctl without the drop-in should show what it prevents"
    # The strongSwan service's drop-in: the kernel's SAs and policies of a dead charon are flushed before it starts.
    dropin = (gateway.root / "systemd" / "strongswan.service.d" / "routevpn-flush.conf").read_text()
    assert "ExecStartPre=-/sbin/ip xfrm state flush" in dropin and "ExecStartPre=-/sbin/ip xfrm policy flush" in dropin

    conns = loaded_connections(gateway)
    assert sorted(conns) == names
    for end in ends:
        conn = conns[end["connection"]]
        assert text(conn["local_addrs"]) == [end["local_ike_address"]]
        assert text(conn["remote_addrs"]) == [end["remote_ike_address"]]
        assert text(conn["version"]) == "IKEv2" and text(conn["dpd_delay"]) == "5"
        # One initiator per link: a second IKE_SA can only be a leftover, and the newest replaces it.
        assert text(conn["unique"]) == "UNIQUE_REPLACE"
        assert text(conn["local-1"]["id"]) == end["local_id"] and text(conn["remote-1"]["id"]) == end["remote_id"]
        assert text(conn["local-1"]["class"]) == "pre-shared key"
        child = conn["children"][end["connection"]]
        assert text(child["local-ts"]) == ["0.0.0.0/0", "::/0"] and text(child["remote-ts"]) == ["0.0.0.0/0", "::/0"]
        # v1-1 has the lower gateway id on every link: it initiates (vici calls restart "start").
        assert text(child["dpd_action"]) == "start" and text(child["close_action"]) == "start"
    assert sorted(text(session(gateway).get_shared()["keys"])) == ["ike-" + n for n in names]
    # if_id: charon's trap policies in the kernel carry each link's if_id.
    assert trap_policies(gateway.netns) == set((end["remote_ike_address"], end["if_id"]) for end in ends)

    again = apply(tmp_path, gateway, hostvars)
    assert again.rc == 0 and again.changed("v1-1") == 0, again
    checked_again = apply(tmp_path, gateway, hostvars, check=True)
    assert checked_again.rc == 0 and checked_again.changed("v1-1") == 0, checked_again

    for output in (checked.output, applied.output, again.output, checked_again.output):
        for secret in secrets_of(ends):
            assert secret not in output


def test_the_single_secrets_file_of_earlier_versions_is_replaced_without_reauthentication(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    assert apply(tmp_path, gateway, hostvars).rc == 0
    # As an earlier version left it: every key in routevpn.secrets.conf.
    single = "".join((gateway.conf_d / name).read_text() for name in conf_files(gateway)
                     if name.startswith("routevpn.secrets."))
    for name in conf_files(gateway):
        if name.startswith("routevpn.secrets."):
            (gateway.conf_d / name).unlink()
    (gateway.conf_d / "routevpn.secrets.conf").write_text(single)
    (gateway.conf_d / "routevpn.secrets.conf").chmod(0o600)

    checked = apply(tmp_path, gateway, hostvars, check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    migrated = apply(tmp_path, gateway, hostvars)
    assert migrated.rc == 0 and migrated.changed("v1-1") > 0, migrated
    assert "routevpn.secrets.conf" not in conf_files(gateway)
    assert sorted(text(session(gateway).get_shared()["keys"])) == ["ike-rv-21", "ike-rv-22", "ike-rv-31", "ike-rv-32"]
    # The keys only moved: no link is marked for re-authentication.
    assert marks(gateway) == []
    again = apply(tmp_path, gateway, hostvars)
    assert again.rc == 0 and again.changed("v1-1") == 0, again


def test_vti_links_select_their_sas_by_mark(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    hostvars["v1-1"]["routevpn_tunnel_type"] = "vti"
    ends = plan_of(hostvars)["hosts"]["v1-1"]
    assert set(end["tunnel_type"] for end in ends) == {"vti"}

    applied = apply(tmp_path, gateway, hostvars)
    assert applied.rc == 0, applied
    assert trap_policies(gateway.netns, "mark") == set((end["remote_ike_address"], end["mark"]) for end in ends)
    assert trap_policies(gateway.netns, "if_id") == set()


def test_one_child_per_family_towards_a_libreswan_peer(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    for peer in ("v2-1", "v2-2"):
        hostvars[peer]["routevpn_ike_daemon"] = "libreswan"
    ends = dict((end["peer"], end) for end in plan_of(hostvars)["hosts"]["v1-1"])

    applied = apply(tmp_path, gateway, hostvars)
    assert applied.rc == 0, applied
    conns = loaded_connections(gateway)
    for peer in ("v2-1", "v2-2"):
        name = ends[peer]["connection"]
        children = conns[name]["children"]
        assert sorted(children) == [name + "-v4", name + "-v6"]
        assert text(children[name + "-v4"]["local-ts"]) == ["0.0.0.0/0"] == text(children[name + "-v4"]["remote-ts"])
        assert text(children[name + "-v6"]["local-ts"]) == ["::/0"] == text(children[name + "-v6"]["remote-ts"])
    for peer in ("v3-1", "v3-2"):
        name = ends[peer]["connection"]
        assert sorted(conns[name]["children"]) == [name]
        assert text(conns[name]["children"][name]["local-ts"]) == ["0.0.0.0/0", "::/0"]
    # Each family's child traps with the link's if_id.
    assert trap_policies(gateway.netns) == set((end["remote_ike_address"], end["if_id"]) for end in ends.values())
    for family in ("-4", "-6"):
        policies = run("ip", family, "-n", gateway.netns, "xfrm", "policy", "list", "dir", "out").stdout
        for peer in ("v2-1", "v2-2"):
            assert "if_id %#x" % ends[peer]["if_id"] in policies, (family, peer, policies)
    again = apply(tmp_path, gateway, hostvars)
    assert again.rc == 0 and again.changed("v1-1") == 0, again


def test_settings_change_restarts_charon_and_reloads(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    assert apply(tmp_path, gateway, hostvars).rc == 0
    pid = pathlib.Path(gateway.pid_file).read_text()

    restarted = apply(tmp_path, gateway, hostvars,
                      extra_vars={"routevpn_strongswan_disabled_plugins": ["connmark", "bypass-lan", "resolve"]})
    assert restarted.rc == 0, restarted
    assert pathlib.Path(gateway.pid_file).read_text() != pid
    assert "resolve" not in text(session(gateway).stats()["plugins"])
    assert sorted(loaded_connections(gateway)) == ["rv-21", "rv-22", "rv-31", "rv-32"]


def test_removed_link_is_unloaded_and_its_ike_sa_closed(tmp_path, gateways):
    gateway = gateways("v3-1")
    hostvars = lab_hostvars()
    ends = dict((end["peer"], end) for end in plan_of(hostvars)["hosts"]["v3-1"])
    assert apply(tmp_path, gateway, hostvars).rc == 0
    # v3-1 only responds on its links (higher id): no trap, whose acquire
    # would cross the initiator's start; no restart of its own.
    assert trap_policies(gateway.netns) == set()
    for conn in loaded_connections(gateway).values():
        child = list(conn["children"].values())[0]
        # dpd_action = clear is charon's "none": a dead peer's IKE_SA is closed, nothing is trapped or restarted.
        assert (text(child["dpd_action"]), text(child["close_action"])) == ("none", "none"), child
    # Start IKE_SAs by hand: they stay CONNECTING (no peer answers here).
    for conn in ("rv-12", "rv-21"):
        run("swanctl", "--initiate", "--child", conn, "--timeout", "1", "--uri", "unix://" + gateway.socket,
            check=False)
    assert {"rv-12", "rv-21"} <= set(ike_sas(gateway))
    kept = ike_sas(gateway)["rv-21"]["uniqueid"]

    removed = apply(tmp_path, gateway, lab_hostvars(drop=["v1-2"]))
    assert removed.rc == 0 and removed.changed("v3-1") > 0, removed
    assert "routevpn-rv-12.conf" not in conf_files(gateway)
    assert "routevpn.secrets.rv-12.conf" not in conf_files(gateway)
    assert sorted(loaded_connections(gateway)) == ["rv-11", "rv-21", "rv-22"]
    assert "ike-rv-12" not in text(session(gateway).get_shared()["keys"])
    sas = ike_sas(gateway)
    assert "rv-12" not in sas
    assert sas["rv-21"]["uniqueid"] == kept, "an unrelated IKE_SA was dropped"
    assert (ends["v1-2"]["remote_ike_address"], ends["v1-2"]["if_id"]) not in trap_policies(gateway.netns)

    again = apply(tmp_path, gateway, lab_hostvars(drop=["v1-2"]))
    assert again.rc == 0 and again.changed("v3-1") == 0, again


def test_refused_configuration_puts_the_previous_files_back(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    assert apply(tmp_path, gateway, hostvars).rc == 0
    before = contents(gateway)

    # A value charon rejects: the files parse, the load fails, the old ones return.
    refused = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_strongswan_esp_proposals": "aes256gcm16-nodh99"})
    assert refused.rc != 0 and "charon refused the new swanctl configuration" in refused.output, refused
    assert "invalid value for: esp_proposals" in refused.output
    assert contents(gateway) == before
    assert sorted(loaded_connections(gateway)) == ["rv-21", "rv-22", "rv-31", "rv-32"]

    # A value that would break the file's syntax never reaches it: the planning play, or the template's
    # conf_quote filter, refuses it naming the variable.
    broken = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_strongswan_proposals": 'aes256gcm16 " }'})
    assert broken.rc != 0 and "routevpn_strongswan_proposals" in broken.output, broken
    assert contents(gateway) == before

    # Someone else's broken file: nothing is loaded (swanctl would unload all).
    (gateway.conf_d / "other.conf").write_text("connections {\n  other {\n")
    stopped = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_strongswan_dpd_delay": "15s"})
    assert stopped.rc != 0 and "does not parse" in stopped.output, stopped
    assert sorted(loaded_connections(gateway)) == ["rv-21", "rv-22", "rv-31", "rv-32"]
    (gateway.conf_d / "other.conf").unlink()
    assert contents(gateway) == before

    fixed = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_strongswan_dpd_delay": "15s"})
    assert fixed.rc == 0 and fixed.changed("v1-1") > 0, fixed
    assert set(text(conn["dpd_delay"]) for conn in loaded_connections(gateway).values()) == {"15"}
    assert not [name for name in conf_files(gateway) if name.endswith("~")]


def connect(low, high, end):
    """A veth pair between the two gateways' namespaces with the link's IKE addresses."""
    run("ip", "link", "add", "rvsw" + uuid.uuid4().hex[:6], "type", "veth", "peer", "name", "pub0", "netns", high.netns)
    veth = [line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").stdout.splitlines()
            if line.split(":")[1].strip().startswith("rvsw")][-1]
    run("ip", "link", "set", veth, "netns", low.netns, "name", "pub0")
    for gateway, address in ((low, end["local_ike_address"]), (high, end["remote_ike_address"])):
        run("ip", "-n", gateway.netns, "addr", "add", address + "/32", "dev", "pub0", "nodad")
        run("ip", "-n", gateway.netns, "link", "set", "pub0", "up")


def configured_pair(tmp_path, gateways):
    """v1-1 (initiator) and v2-1 joined by a veth and configured by the role: (hostvars, low, high)."""
    hostvars = lab_hostvars()
    low, high = gateways("v1-1"), gateways("v2-1")
    end = [e for e in plan_of(hostvars)["hosts"]["v1-1"] if e["peer"] == "v2-1"][0]
    connect(low, high, end)
    # The responder first, so that the initiator's first attempt finds it ready.
    assert apply(tmp_path, high, hostvars, name="inventory-high.yml").rc == 0
    assert apply(tmp_path, low, hostvars, name="inventory-low.yml").rc == 0
    return hostvars, low, high


def test_two_gateways_establish_their_ike_sa(tmp_path, gateways):
    _hostvars, low, high = configured_pair(tmp_path, gateways)

    def established():
        sa = ike_sas(low).get("rv-21")
        return sa if sa and sa["state"] == "ESTABLISHED" else None

    sa = wait_until(established, 30, message="IKE_SA rv-21 ESTABLISHED")
    assert (sa["encr-alg"], sa["encr-keysize"], sa["prf-alg"], sa["dh-group"]) == (
        "AES_GCM_16", "256", "PRF_HMAC_SHA2_384", "ECP_384")
    assert (sa["local-id"], sa["remote-id"]) == ("v1-1", "v2-1")
    assert ike_sas(high)["rv-11"]["state"] == "ESTABLISHED"


def reauth(tmp_path, hostvars, gateways_, check=False, extra_vars=None):
    """playbooks/reauth.yml alone, over the given gateways (swanctl reaches each charon by its socket)."""
    inventory = write_inventory(tmp_path, hostvars, dict((g.host, g.variables) for g in gateways_),
                                name="inventory-reauth.yml")
    extra = ["--limit", "localhost," + ",".join(g.host for g in gateways_), "-v"]
    if extra_vars:
        extra += ["-e", yaml.safe_dump(extra_vars, default_flow_style=True).strip()]
    return run_playbook(tmp_path, inventory, "routevpn.mesh.reauth", check=check, extra=extra)


def marks(gateway):
    directory = gateway.root / "swanctl" / "routevpn-reauth"
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_a_changed_psk_takes_effect_by_reauthentication_of_its_link_only(tmp_path, gateways):
    hostvars, low, high = configured_pair(tmp_path, gateways)

    def established(gateway, conn, other_than=None):
        def check():
            sa = ike_sas(gateway).get(conn)
            return sa if sa and sa["state"] == "ESTABLISHED" and sa["initiator-spi"] != other_than else None
        return check

    old = wait_until(established(low, "rv-21"), 30, message="IKE_SA rv-21 ESTABLISHED")
    assert marks(low) == [] and marks(high) == []
    before = dict((g.host, contents(g)) for g in (low, high))

    override = {"routevpn_psk_overrides": {"11-21": "a-new-psk-for-link-11-21-0123"}}
    checked = apply(tmp_path, high, hostvars, check=True, extra_vars=override, name="inventory-high.yml")
    assert checked.rc == 0 and marks(high) == [], checked
    for gateway in (high, low):
        changed = apply(tmp_path, gateway, hostvars, extra_vars=override, name="inventory-%s.yml" % gateway.host)
        assert changed.rc == 0, changed
        assert "a-new-psk-for-link" not in changed.output
    # Only the link's own key file changed, on each end; both ends mark the link.
    for gateway, conn in ((low, "rv-21"), (high, "rv-11")):
        after = contents(gateway)
        assert sorted(n for n in after if after[n] != before[gateway.host].get(n)) == [
            "routevpn.secrets.%s.conf" % conn]
        assert stat.S_IMODE((gateway.conf_d / ("routevpn.secrets.%s.conf" % conn)).stat().st_mode) == 0o600
        assert marks(gateway) == ["11-21"]
    # Loading the new key changed nothing on the established IKE_SA: it still is the old one.
    time.sleep(2)
    assert ike_sas(low)["rv-21"]["initiator-spi"] == old["initiator-spi"]

    # Check mode: it would re-authenticate, and does not.
    checked = reauth(tmp_path, hostvars, [low, high], check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert "would re-authenticate rv-21" in checked.output
    assert ike_sas(low)["rv-21"]["initiator-spi"] == old["initiator-spi"] and marks(low) == ["11-21"]

    # The initiator (v1-1) asks charon to re-authenticate rv-21, and nothing else, then waits for the new IKE_SA.
    # charon re-authenticates an IKE_SA together with its CHILD_SAs, which this kernel (no ESP) cannot install:
    # it logs "unable to reauthenticate IKE_SA, no CHILD_SA to recreate" and keeps the old one.  So here the run
    # fails naming the link, and both ends keep it marked for the next run; the lab shows the new IKE_SA
    # (molecule/mixed/rotate.yml).
    done = reauth(tmp_path, hostvars, [low, high], extra_vars=dict(override, routevpn_strongswan_reauth_timeout=4))
    assert done.rc != 0, done
    assert re.search(r"failed: \[v1-1\] \(item=rv-21\)", done.output), done
    log = wait_until(lambda: "reauthenticating IKE_SA rv-21" in (low.root / "charon.log").read_text()
                     and (low.root / "charon.log").read_text(), 10, message="charon reauthenticating rv-21")
    assert re.findall(r"vici rekey IKE_SA '([^']+)'", log) == ["rv-21"]
    assert "vici rekey" not in (high.root / "charon.log").read_text(), "the responder re-authenticates nothing"
    assert ike_sas(low)["rv-21"]["initiator-spi"] == old["initiator-spi"]
    assert marks(low) == ["11-21"] and marks(high) == ["11-21"]

    # A second run of the roles with the same key changes nothing, and the link stays marked.
    for gateway in (high, low):
        same = apply(tmp_path, gateway, hostvars, extra_vars=override, name="inventory-%s.yml" % gateway.host)
        assert same.rc == 0 and same.changed(gateway.host) == 0 and marks(gateway) == ["11-21"], same


def session_sas(gateway, conn):
    """Every IKE_SA of ``conn`` (list_sas names each by its connection: duplicates come as more items)."""
    return [dict((k, text(v)) for k, v in sa.items() if k != "child-sas")
            for item in session(gateway).list_sas() for name, sa in item.items() if name == conn]


def test_charon_dropin_is_checked_by_swanctl_only_where_swanctl_is_installed(tmp_path):
    """On a fresh gateway the drop-in is written before the packages bring swanctl (charon's first start reads it)."""
    tasks = yaml.safe_load((COLLECTION_ROOT / "roles" / "strongswan" / "tasks" / "main.yml").read_text())
    validate = [t for t in tasks
                if t.get("name", "").startswith("Charon settings drop-in")][0]["ansible.builtin.template"]["validate"]
    good = tmp_path / "good.conf"
    good.write_text("charon {\n  install_routes = no\n}\n")
    bad = tmp_path / "bad.conf"
    bad.write_text("charon {\n  install_routes = no\n")

    # As Ansible runs it: the command line split, no shell.
    def check(path, env_path):
        argv = shlex.split(validate % path)
        return subprocess.run(argv, env={"PATH": env_path}, capture_output=True, text=True, check=False)

    with_swanctl = "/usr/sbin:/usr/bin:/sbin:/bin"
    assert shutil.which("swanctl", path=with_swanctl)
    assert check(good, with_swanctl).returncode == 0
    refused = check(bad, with_swanctl)
    assert refused.returncode != 0 and "invalid config file" in refused.stderr, refused
    # Without swanctl (sh and command -v still found): nothing can check it, the file is taken.
    no_swanctl = tmp_path / "bin"
    no_swanctl.mkdir()
    os.symlink(shutil.which("sh"), no_swanctl / "sh")
    assert shutil.which("swanctl", path=str(no_swanctl)) is None
    assert check(bad, str(no_swanctl)).returncode == 0


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("strongswan")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)


def test_a_libreswan_gateway_is_skipped(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    hostvars["v1-1"]["routevpn_ike_daemon"] = "libreswan"
    skipped = apply(tmp_path, gateway, hostvars)
    assert skipped.rc == 0 and skipped.changed("v1-1") == 0, skipped
    assert "v1-1: routevpn_ike_daemon is libreswan; role strongswan skipped." in skipped.output
    assert conf_files(gateway) == [] and not os.path.exists(gateway.pid_file)


def apply_with_certificates(tmp_path, gateway, hostvars, pki, check=False, name="inventory.yml"):
    """Plan, the pki role with its own CA in ``pki``, then this role: playbooks/mesh.yml's order.

    The CA settings are mesh-wide (one CA per mesh): extra vars give them to every gateway."""
    inventory = write_inventory(tmp_path, hostvars, {gateway.host: gateway.variables}, name=name)
    plays = [
        {"name": "Plan on the controller", "hosts": "localhost", "gather_facts": False,
         "tasks": [{"ansible.builtin.set_fact": {
             "routevpn_mesh_plan": "{{ hostvars | routevpn.mesh.mesh_plan(groups['routevpn_gateways']) }}"}}]},
        {"name": "Certificates, then strongSwan", "hosts": "routevpn_gateways", "gather_facts": False,
         "roles": [PKI, ROLE]},
    ]
    playbook = tmp_path / "play-pki-strongswan.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    return run_role(tmp_path, inventory, playbook, gateway.host, netns=gateway.netns, check=check,
                    extra_vars={"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(pki)})


def key_lines(pki):
    lines = [line for key in pki.rglob("*.key") for line in key.read_text().splitlines() if line and line[0] != "-"]
    assert lines
    return lines


def swanctl_dir(gateway):
    return gateway.root / "swanctl"


def test_pubkey_links_get_the_certificates_and_authenticate_with_them(tmp_path, gateways):
    gateway = gateways("v1-1")
    pki = tmp_path / "pki"
    hostvars = lab_hostvars(routevpn_auth="pubkey")
    ends = plan_of(hostvars)["hosts"]["v1-1"]

    checked = apply_with_certificates(tmp_path, gateway, hostvars, pki, check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert "v1-1: would install routevpn.crt, routevpn.key, routevpn-ca.crt" in checked.output
    assert not pki.exists() and conf_files(gateway) == [] and not os.path.exists(gateway.pid_file)

    applied = apply_with_certificates(tmp_path, gateway, hostvars, pki)
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    installed = swanctl_dir(gateway)
    assert (installed / "x509" / "routevpn.crt").read_bytes() == (pki / "gateways" / "v1-1.crt").read_bytes()
    assert (installed / "private" / "routevpn.key").read_bytes() == (pki / "gateways" / "v1-1.key").read_bytes()
    assert (installed / "x509ca" / "routevpn-ca.crt").read_bytes() == (pki / "ca.crt").read_bytes()
    assert stat.S_IMODE((installed / "private" / "routevpn.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((installed / "private").stat().st_mode) == 0o700

    conns = loaded_connections(gateway)
    assert sorted(conns) == ["rv-21", "rv-22", "rv-31", "rv-32"]
    for end in ends:
        local, remote = conns[end["connection"]]["local-1"], conns[end["connection"]]["remote-1"]
        assert text(local["class"]) == "public key" and text(remote["class"]) == "public key"
        assert text(local["id"]) == "v1-1" and text(remote["id"]) == end["peer"]
        assert text(local["certs"]) == ["CN=v1-1"] and text(remote["cacerts"]) == ["CN=routevpn.mesh CA"]
    listed = run("swanctl", "--list-certs", "--uri", "unix://" + gateway.socket).stdout
    assert re.search(r'subject: +"CN=v1-1".*?has private key', listed, re.DOTALL), listed
    assert 'subject:  "CN=routevpn.mesh CA"' in listed
    assert text(session(gateway).get_shared()["keys"]) == []

    again = apply_with_certificates(tmp_path, gateway, hostvars, pki)
    assert again.rc == 0 and again.changed("v1-1") == 0, again
    checked_again = apply_with_certificates(tmp_path, gateway, hostvars, pki, check=True)
    assert checked_again.rc == 0 and checked_again.changed("v1-1") == 0, checked_again
    for output in (checked.output, applied.output, again.output, checked_again.output):
        for line in key_lines(pki):
            assert line not in output

    # Back to pre-shared keys: the certificate files go, the connections use PSKs again.
    psk = apply(tmp_path, gateway, lab_hostvars(), name="inventory-psk.yml")
    assert psk.rc == 0 and psk.changed("v1-1") > 0, psk
    assert not [path for path in installed.glob("*/routevpn*") if path.parent.name != "conf.d"]
    assert set(text(conn["local-1"]["class"]) for conn in loaded_connections(gateway).values()) == {"pre-shared key"}


@pytest.mark.parametrize("high_ca", ["the same CA", "another CA"])
def test_two_gateways_authenticate_each_other_by_certificate_from_the_mesh_ca_only(tmp_path, gateways, high_ca):
    hostvars = lab_hostvars(routevpn_auth="pubkey")
    low, high = gateways("v1-1"), gateways("v2-1")
    connect(low, high, [e for e in plan_of(hostvars)["hosts"]["v1-1"] if e["peer"] == "v2-1"][0])
    high_pki = tmp_path / ("pki" if high_ca == "the same CA" else "pki-other")

    assert apply_with_certificates(tmp_path, high, hostvars, high_pki, name="inventory-high.yml").rc == 0
    assert apply_with_certificates(tmp_path, low, hostvars, tmp_path / "pki", name="inventory-low.yml").rc == 0

    def state():
        sa = ike_sas(low).get("rv-21")
        return sa["state"] if sa else None

    low_log, high_log = low.root / "charon.log", high.root / "charon.log"
    if high_ca == "the same CA":
        wait_until(lambda: state() == "ESTABLISHED", 30, message="IKE_SA rv-21 ESTABLISHED")
        sa = ike_sas(low)["rv-21"]
        assert (sa["local-id"], sa["remote-id"]) == ("v1-1", "v2-1")
        assert ike_sas(high)["rv-11"]["state"] == "ESTABLISHED"
        assert re.search(r"authentication of 'v2-1' with ECDSA\S* successful", low_log.read_text())
        assert re.search(r"authentication of 'v1-1' with ECDSA\S* successful", high_log.read_text())
    else:
        # v2-1 trusts another CA: it refuses v1-1's certificate, and nothing is established.
        wait_until(lambda: "AUTHENTICATION_FAILED" in low_log.read_text(), 30, message="AUTHENTICATION_FAILED")
        assert "no trusted ECDSA public key found for 'v1-1'" in high_log.read_text()
        assert state() != "ESTABLISHED" and ike_sas(high).get("rv-11", {}).get("state") != "ESTABLISHED"


def test_a_certificate_charon_refuses_puts_the_previous_credentials_back(tmp_path, gateways):
    gateway = gateways("v1-1")
    pki = tmp_path / "pki"
    hostvars = lab_hostvars(routevpn_auth="pubkey")
    assert apply_with_certificates(tmp_path, gateway, hostvars, pki).rc == 0
    installed = swanctl_dir(gateway)
    before = dict((path, path.read_bytes()) for path in installed.rglob("routevpn*") if path.is_file())

    # This role alone, with the inventory's files: a CA file charon cannot read.
    broken = tmp_path / "broken-ca.crt"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    refused = apply(tmp_path, gateway, hostvars, name="inventory-broken.yml", extra_vars={
        "routevpn_pki_certificate": str(pki / "gateways" / "v1-1.crt"),
        "routevpn_pki_private_key": str(pki / "gateways" / "v1-1.key"),
        "routevpn_pki_ca_certificate": str(broken)})
    assert refused.rc != 0 and "charon refused the new swanctl configuration" in refused.output, refused
    assert dict((path, path.read_bytes()) for path in installed.rglob("routevpn*") if path.is_file()) == before
    assert sorted(loaded_connections(gateway)) == ["rv-21", "rv-22", "rv-31", "rv-32"]
    for line in key_lines(pki):
        assert line not in refused.output


def test_a_re_converge_costs_the_same_module_runs_with_4_peers_as_with_16(tmp_path, gateways):
    """Issue 11: the role's module runs (every loop item one run) must not grow with the peers.  Counted by
    bench/callback_plugins/module_runs.py in a re-converge (changed=0) of v1-1 with the reference lab's 4 peers,
    then of the same gateway in a mesh of nine sites (16 peers)."""
    gateway = gateways("v1-1")
    small = lab_hostvars()
    big = inventory(dict((site, 2) for site in range(1, 10)))
    assert len(plan(big, sorted(big))["hosts"]["v1-1"]) == 16 and len(plan(small, sorted(small))["hosts"]["v1-1"]) == 4

    runs = dict((name, reconverge_module_runs(tmp_path, ROLE, hostvars, "v1-1", gateway.variables, gateway.netns))
                for name, hostvars in (("4 peers", small), ("16 peers", big)))
    assert len(loaded_connections(gateway)) == 16
    assert runs["16 peers"]["remote"] == runs["4 peers"]["remote"], runs
    assert runs["16 peers"]["actions"] == runs["4 peers"]["actions"], runs
