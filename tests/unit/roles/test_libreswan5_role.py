"""The libreswan role against libreswan 5.2 (Debian 13), for real.

Each gateway is an overlay of the Debian 13 root that scripts/build-libreswan-root
builds (libreswan5_root.py), reached by Ansible's chroot connection: the role's
tasks run with that root's Python, ``ipsec`` and pluto 5.2, with the role's
default paths (/etc/ipsec.conf, /etc/ipsec.d, /run/pluto, the NSS database in
/var/lib/ipsec/nss) and its default packages (dpkg finds them installed).  pluto
runs in the gateway's scratch network namespace.  This kernel has no XFRM
interfaces, which 5.2 does not need with ipsec-interface-managed=no: it puts the
if_id on its SAs and policies only, so the XFRM conns load here and their trap
policies carry the plan's if_id.  No peer answers: IKE is not negotiated here
(tests/unit/roles/test_ike_interop.py does that with 4.10; the lab with 5.2).
"""

import re

import pytest

from .libreswan5_root import Libreswan5Root, built_root
from .mesh_roles import run, run_role, wait_until, write_inventory, write_role_playbook
from .role_runner import render
from .test_libreswan_role import (PKI, ROLE, ROLE_DIR, conns_of, libreswan_hostvars, plan_of, render_connection,
                                  role_variables)

FAMILIES = ("0.0.0.0/0-0.0.0.0/0", "::/0-::/0")


@pytest.fixture(scope="session")
def debian13_root():
    return built_root()


@pytest.fixture
def root_factory(debian13_root, tmp_path, scratch_netns_factory):
    """make(name, address=None) -> a Libreswan5Root in a fresh namespace (``address`` on its lo); all closed after."""
    made = []

    def make(name, address=None):
        netns = scratch_netns_factory("rvl5")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        if address:
            run("ip", "-n", netns, "addr", "add", address + ("/128" if ":" in address else "/32"), "dev", "lo", "nodad")
        made.append(Libreswan5Root(debian13_root, tmp_path / ("root-" + name), netns))
        return made[-1]

    try:
        yield make
    finally:
        for root in made:
            root.close()


class Gateway(object):
    """One libreswan 5.2 gateway of the reference lab, applied with the role through its chroot."""

    def __init__(self, tmp_path, root, host, hostvars):
        self.tmp_path, self.root, self.host, self.hostvars = tmp_path, root, host, hostvars
        self.ends = plan_of(hostvars)["hosts"][host]

    def apply(self, mesh_hostvars=None, check=False, extra_vars=None, host_variables=None, roles=ROLE):
        variables = dict(self.root.host_vars(), routevpn_libreswan_log_file="/var/log/pluto.log")
        variables.update(host_variables or {})
        inventory = write_inventory(self.tmp_path, mesh_hostvars or self.hostvars, {self.host: variables})
        # Pipelining: each module goes to the root's Python on stdin, without a file copy and a chmod first.
        return run_role(self.tmp_path, inventory, write_role_playbook(self.tmp_path, roles), self.host,
                        netns=self.root.netns, check=check, extra_vars=extra_vars, env={"ANSIBLE_PIPELINING": "True"})

    def status(self):
        return self.root.ipsec("whack", "--status").stdout

    def loaded(self):
        """{conn: its lines of ``ipsec whack --status``}."""
        conns = {}
        for line in self.status().splitlines():
            match = re.match(r'^(?:000 )?"([^"]+)":', line)
            if match:
                conns.setdefault(match.group(1), []).append(line)
        return dict((name, "\n".join(lines)) for name, lines in conns.items())

    def role_files(self):
        directory = self.root.file("/etc/ipsec.d")
        return sorted(path.name for path in directory.iterdir() if path.name.startswith("routevpn-"))

    def pluto_log(self):
        path = self.root.file("/var/log/pluto.log")
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def gateway_factory(tmp_path, root_factory):
    """make(host, tunnel_type, **common) -> a Gateway: ``host`` of the reference lab on libreswan 5.2."""

    def make(host, tunnel_type, **common):
        hostvars = libreswan_hostvars({host: tunnel_type}, **common)
        root = root_factory(host, hostvars[host]["routevpn_public_address"])
        return Gateway(tmp_path, root, host, hostvars)

    return make


def out_policies(netns):
    """{(selector, "if_id"|"mark", number)} of the outbound XFRM policies, read from the kernel."""
    found = set()
    for block in re.split(r"\n(?=\S)", run("ip", "-n", netns, "xfrm", "policy").stdout):
        selector = re.match(r"src (\S+) dst (\S+)", block)
        if_id = re.search(r"if_id (0x[0-9a-f]+)", block)
        mark = re.search(r"mark (0x[0-9a-f]+)/0xffffffff", block)
        if "dir out" in block and selector and (if_id or mark):
            kind, value = ("if_id", if_id) if if_id else ("mark", mark)
            found.add(("%s-%s" % selector.groups(), kind, int(value.group(1), 16)))
    return found


def config_setup(root):
    """The config setup section of the root's /etc/ipsec.conf, without comments."""
    text = root.file("/etc/ipsec.conf").read_text()
    section = re.search(r"^config setup\n((?:[ \t]+.*\n|#.*\n|\n)*)", text, re.M).group(1)
    return [line.strip() for line in section.splitlines() if line.strip() and not line.strip().startswith("#")]


def start_pluto(root):
    """pluto started by hand in the root, as ipsec.service would (the role's direct mode does the same)."""
    root.ipsec("--checknss")
    root.ipsec("pluto", "--config", "/etc/ipsec.conf", "--rundir", "/run/pluto", "--logfile", "/var/log/pluto.log")
    wait_until(lambda: root.ipsec("whack", "--status", check=False).returncode == 0, 30, message="pluto's socket")


def planned_conns(ends):
    return sorted("%s-v%d" % (end["connection"], family) for end in ends for family in (4, 6))


def conn_warnings(text):
    """Lines of pluto's log or output where it warns about or rewrites a keyword of the role's conns."""
    return [line for line in text.splitlines()
            if re.search(r'"rv-[0-9]+-v[46]"', line) and re.search(r"warning|replaced|obsolete|ignor", line)]


def assert_loaded_as_planned(gateway, ends, just_started=True):
    """Every planned conn in pluto 5.2 with its link's if_id (XFRM) or mark (VTI); those this end initiates are
    started (negotiating: no peer answers here) and not routed, the others only listen; no trap policy in the
    kernel, whose acquire would cross the start; pluto warned about nothing of the role's.  Not just_started: a
    started conn may be between two attempts (no peer answers here; unrouted until pluto revives it)."""
    loaded = gateway.loaded()
    assert sorted(loaded) == planned_conns(ends), sorted(loaded)
    for end in ends:
        for family in (4, 6):
            status = loaded["%s-v%d" % (end["connection"], family)]
            first = status.splitlines()[0]
            assert "%s[@%s]" % (end["local_ike_address"], end["local_id"]) in first, first
            assert "%s[@%s]" % (end["remote_ike_address"], end["remote_id"]) in first, first
            if end["initiator"]:
                assert re.search(r"; unrouted-bare-negotiation;" if just_started
                                 else r"; unrouted(-bare-negotiation)?;", first), first
            else:
                assert "; unrouted;" in first, first
            assert "IKE algorithms: AES_GCM_16_256-HMAC_SHA2_384-DH20" in status
            assert "ESP algorithms: AES_GCM_16_256-NONE-DH20" in status
            if end["tunnel_type"] == "xfrm":
                assert re.search(r"[ ;]interface: ipsec\[%d\]" % end["if_id"], status), status
                assert "mark: unset;" in status
            else:
                assert "mark: {0}/0xffffffff, {0}/0xffffffff; vti-iface:{1};".format(end["mark"], end["interface"]) \
                    in status, status
    assert out_policies(gateway.root.netns) == set()
    assert conn_warnings(gateway.pluto_log()) == []


def test_every_conn_file_passes_libreswan_5_2s_parser_and_loads_without_a_warning(tmp_path, root_factory):
    """The templates for 5.2 (XFRM and VTI, initiating and responding, PSK and certificates) against its own parser,
    and the PSK ones against a running 5.2 pluto with ipsec-interface-managed=no: added, with no warning."""
    root = root_factory("parser", "2001:db8:2::1")
    conf = root.file("/etc/ipsec.conf")
    conf.write_text(conf.read_text().replace("config setup\n", "config setup\n\tipsec-interface-managed=no\n", 1))
    start_pluto(root)
    checked = 0
    for tunnel_type in ("xfrm", "vti"):
        for auth in ("psk", "pubkey"):
            mesh = plan_of(libreswan_hostvars({"v2-1": tunnel_type}, routevpn_auth=auth))
            for end in mesh["hosts"]["v2-1"]:
                for signature in (("ecdsa", "rsasig") if auth == "pubkey" else (None,)):
                    variables = dict(role_variables(mesh, "v2-1", version="5.2"), end=end,
                                     __routevpn_libreswan_signature=signature)
                    text = render(ROLE_DIR / "templates" / "connection.conf.j2", variables)
                    path = "/tmp/%s-%s-%s-%s.conf" % (tunnel_type, auth, signature, end["connection"])
                    root.file(path).write_text(text)
                    assert root.checkconfig(path) == (0, ""), text
                    conns = conns_of(text)
                    assert sorted(conns) == [end["connection"] + "-v4", end["connection"] + "-v6"]
                    for conn in conns.values():
                        assert conn["keyexchange"] == "ikev2"
                        assert not set(conn) & {"ikev2", "dpdaction", "keyingtries"}, conn
                        if tunnel_type == "xfrm":
                            assert (conn["ipsec-interface"], conn["overlapip"]) == (str(end["if_id"]), "yes")
                        else:
                            assert conn["mark"] == "%d/0xffffffff" % end["mark"] and "ipsec-interface" not in conn
                    if auth == "psk":
                        for name in sorted(conns):
                            added = root.ipsec("addconn", "--config", path, name, check=False)
                            assert (added.returncode, (added.stdout + added.stderr).strip()) == (
                                0, '"%s": added IKEv2 connection' % name), text
                            root.ipsec("whack", "--name", name, "--delete")
                    checked += 1
    assert checked == 2 * (4 + 4 * 2)
    assert conn_warnings(root.file("/var/log/pluto.log").read_text()) == []

    # What 4.10 is given does not pass 5.2's parser: why the template follows the version.
    mesh = plan_of(libreswan_hostvars({"v2-1": "vti"}))
    root.file("/tmp/for-4.10.conf").write_text(render_connection(mesh, mesh["hosts"]["v2-1"][0], version="4.10"))
    status, output = root.checkconfig("/tmp/for-4.10.conf")
    assert status == 0 and "warning: obsolete keyword ignored: dpdaction=" in output, output


def test_xfrm_ends_check_apply_idempotent(gateway_factory):
    gateway = gateway_factory("v2-1", "xfrm")
    root, ends = gateway.root, gateway.ends
    assert sorted(end["connection"] for end in ends) == ["rv-11", "rv-12", "rv-31", "rv-32"]
    conf = root.file("/etc/ipsec.conf").read_bytes()

    checked = gateway.apply(check=True)
    assert checked.rc == 0 and checked.changed("v2-1") > 0, checked
    assert gateway.role_files() == [] and root.pluto_pid() is None
    assert root.file("/etc/ipsec.conf").read_bytes() == conf

    applied = gateway.apply()
    assert applied.rc == 0 and applied.changed("v2-1") > 0, applied
    assert "ipsec-interface-managed=no" in config_setup(root)
    # The whole file (every include with it) and every conn file pass 5.2's parser.
    assert root.checkconfig("/etc/ipsec.conf") == (0, "")
    for name in gateway.role_files():
        if name.endswith(".conf"):
            assert root.checkconfig("/etc/ipsec.d/" + name) == (0, ""), name
    assert "IPsec Interface [unmanaged]" in gateway.pluto_log()
    assert_loaded_as_planned(gateway, ends)
    # v2-1 has the lower id on its links to site 3: it started them (no peer answers here).
    (config,) = applied.task_results("Conns and pre-shared keys of every link")
    assert sorted(config["initiated"]) == ["rv-31-v4", "rv-31-v6", "rv-32-v4", "rv-32-v6"], config
    pid = root.pluto_pid()

    again = gateway.apply()
    assert again.rc == 0 and again.changed("v2-1") == 0, again
    checked_again = gateway.apply(check=True)
    assert checked_again.rc == 0 and checked_again.changed("v2-1") == 0, checked_again
    assert root.pluto_pid() == pid


def test_a_changed_link_is_replaced_and_a_removed_one_deleted_with_its_policies_and_pluto_kept(gateway_factory):
    gateway = gateway_factory("v2-1", "xfrm")
    root = gateway.root
    assert gateway.apply().rc == 0
    pid = root.pluto_pid()

    # Every conn replaced (deleted, added, started again).
    changed = gateway.apply(extra_vars={"routevpn_libreswan_dpd_delay": "15s"})
    assert changed.rc == 0 and changed.changed("v2-1") > 0, changed
    assert all("dpddelay:15s" in status for status in gateway.loaded().values())
    assert_loaded_as_planned(gateway, gateway.ends)
    assert root.pluto_pid() == pid

    # What pluto 5.2 leaves in the kernel when it deletes an established XFRM conn while another link's conn is
    # routed (seen in the lab): the deleted link's outbound policies, with its if_id.  Planted here, where no
    # conn is established.
    link = [end for end in gateway.ends if end["peer"] == "v3-1"][0]
    for selector in FAMILIES:
        source, destination = selector.split("-")
        run("ip", "-n", root.netns, "xfrm", "policy", "add", "src", source, "dst", destination, "dir", "out",
            "if_id", str(link["if_id"]))
    dropped = libreswan_hostvars({"v2-1": "xfrm"}, drop=["v3-1"])
    removed = gateway.apply(mesh_hostvars=dropped, extra_vars={"routevpn_libreswan_dpd_delay": "15s"})
    assert removed.rc == 0 and removed.changed("v2-1") > 0, removed
    assert not [name for name in gateway.role_files() if name.startswith("routevpn-rv-31.")]
    assert root.pluto_pid() == pid
    # pluto kept the other links; the role removed link 21-31's outbound policies.
    (config,) = removed.task_results("Conns and pre-shared keys of every link")
    assert sorted(config["policies_removed"]) == sorted(
        "src %s dst %s dir out if_id %d" % (tuple(selector.split("-")) + (link["if_id"],))
        for selector in FAMILIES)
    assert_loaded_as_planned(gateway, plan_of(dropped)["hosts"]["v2-1"], just_started=False)

    again = gateway.apply(mesh_hostvars=dropped, extra_vars={"routevpn_libreswan_dpd_delay": "15s"})
    assert again.rc == 0 and again.changed("v2-1") == 0, again
    assert root.pluto_pid() == pid


def test_a_running_pluto_without_the_setting_is_restarted_once(gateway_factory):
    gateway = gateway_factory("v2-1", "xfrm")
    root = gateway.root
    # Started as the package's unit would, with Debian's ipsec.conf: XFRM conns are refused then.
    start_pluto(root)
    started = root.pluto_pid()
    end = gateway.ends[0]
    mesh = plan_of(gateway.hostvars)
    root.file("/tmp/one.conf").write_text(render_connection(mesh, end, version="5.2"))
    refused = root.ipsec("addconn", "--config", "/tmp/one.conf", end["connection"] + "-v4", check=False)
    assert "ipsec-interface=%d is not supported" % end["if_id"] in refused.stdout + refused.stderr, refused

    checked = gateway.apply(check=True)
    assert checked.rc == 0 and checked.changed("v2-1") > 0, checked
    assert root.pluto_pid() == started and "ipsec-interface-managed=no" not in config_setup(root)

    applied = gateway.apply()
    assert applied.rc == 0 and applied.changed("v2-1") > 0, applied
    (stopped,) = applied.task_results("Stop pluto, config setup changed under it")
    assert stopped["changed"], stopped
    restarted = root.pluto_pid()
    assert restarted not in (None, started)
    assert "ipsec-interface-managed=no" in config_setup(root)
    assert_loaded_as_planned(gateway, gateway.ends)

    again = gateway.apply()
    assert again.rc == 0 and again.changed("v2-1") == 0, again
    assert root.pluto_pid() == restarted


def test_vti_ends_on_5_2_and_config_setup_gets_the_one_setting_and_nothing_else(gateway_factory):
    """VTI ends on 5.2, one root: Debian's ipsec.conf gains the one line; a setting of its own is replaced; a file
    without config setup gets one at the top; each time the rest of the file stays as it was."""
    gateway = gateway_factory("v3-1", "vti")
    conf = gateway.root.file("/etc/ipsec.conf")
    debian = conf.read_text()
    applied = gateway.apply()
    assert applied.rc == 0 and applied.changed("v3-1") > 0, applied
    assert conf.read_text() == debian.replace("config setup\n", "config setup\n\tipsec-interface-managed=no\n", 1)
    assert_loaded_as_planned(gateway, gateway.ends)

    for edited, expected in [
            (debian.replace("config setup\n", "config setup\n\tipsec-interface-managed=yes\n", 1),
             debian.replace("config setup\n", "config setup\n\tipsec-interface-managed=no\n", 1)),
            ("include /etc/ipsec.d/*.conf\n",
             "config setup\n\tipsec-interface-managed=no\n\ninclude /etc/ipsec.d/*.conf\n")]:
        conf.write_text(edited)
        edit = gateway.apply()
        assert edit.rc == 0 and edit.changed("v3-1") > 0, edit
        assert conf.read_text() == expected
    again = gateway.apply()
    assert again.rc == 0 and again.changed("v3-1") == 0, again


def test_a_conn_pluto_5_2_refuses_puts_the_previous_files_and_conns_back(gateway_factory):
    gateway = gateway_factory("v3-1", "xfrm")
    assert gateway.apply().rc == 0
    directory = gateway.root.file("/etc/ipsec.d")
    before = dict((name, (directory / name).read_bytes()) for name in gateway.role_files())
    conns, pid = sorted(gateway.loaded()), gateway.root.pluto_pid()

    refused = gateway.apply(extra_vars={"routevpn_libreswan_ike": "aes_gcm999-sha2_384;dh20"})
    assert refused.rc != 0 and "fatal: [v3-1]" in refused.output and "pluto refused rv-11-v4" in refused.output, refused
    assert "The previous files were put back and their conns loaded again" in refused.output
    assert dict((name, (directory / name).read_bytes()) for name in gateway.role_files()) == before
    assert not [path.name for path in directory.iterdir() if path.name.startswith(".") or path.name.endswith("~")]
    assert gateway.root.pluto_pid() == pid
    assert_loaded_as_planned(gateway, gateway.ends)
    assert sorted(gateway.loaded()) == conns
    assert gateway.apply().changed("v3-1") == 0


def nss(root, *args, check=True):
    return root.run("certutil", "-d", "sql:/var/lib/ipsec/nss", *args, check=check)


def test_pubkey_on_5_2(tmp_path, gateway_factory):
    gateway = gateway_factory("v3-1", "xfrm", routevpn_auth="pubkey")
    root, pki = gateway.root, tmp_path / "pki"
    pubkey = dict(roles=[PKI, ROLE], extra_vars={"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(pki)})

    checked = gateway.apply(check=True, **pubkey)
    assert checked.rc == 0 and checked.changed("v3-1") > 0, checked
    assert gateway.role_files() == [] and root.pluto_pid() is None

    applied = gateway.apply(**pubkey)
    assert applied.rc == 0 and applied.changed("v3-1") > 0, applied
    # NSS of Debian 13 (libnss3-tools 3.110): the certificate with its key, and the CA.
    listed = nss(root, "-L").stdout
    assert sorted(re.findall(r"^(\S+)\s+(\S*,\S*,\S*)\s*$", listed, re.M)) == [
        ("routevpn", "u,u,u"), ("routevpn-ca", "CT,,")], listed
    keys = nss(root, "-K").stdout
    assert re.findall(r"^<\s*\d+>\s+ec\s+[0-9a-f]+\s+(\S+)$", keys, re.M) == ["routevpn"], keys
    assert nss(root, "-L", "-n", "routevpn", "-a").stdout.split("-----")[2].split() == \
        (pki / "gateways" / "v3-1.crt").read_text().split("-----")[2].split()
    assert_loaded_as_planned(gateway, gateway.ends)
    for name, status in gateway.loaded().items():
        assert re.search(r"\bmycert=routevpn\b", status), status
        assert "our auth:ecdsa, their auth:ecdsa," in status, status
    pid = root.pluto_pid()

    again = gateway.apply(**pubkey)
    assert again.rc == 0 and again.changed("v3-1") == 0, again
    checked_again = gateway.apply(check=True, **pubkey)
    assert checked_again.rc == 0 and checked_again.changed("v3-1") == 0, checked_again
    assert root.pluto_pid() == pid
