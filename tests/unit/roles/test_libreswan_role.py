"""The libreswan role against libreswan 4.10's own parser and pluto, natively.

libreswan cannot be installed beside this machine's strongSwan: its Debian
packages are extracted instead (libreswan_root.py), and every ``ipsec``
command, the template validation (``ipsec addconn --checkconfig``) and pluto
are libreswan's own.  pluto runs in the gateway's scratch namespace.  This
kernel has no XFRM interfaces, so pluto refuses ``ipsec-interface=`` conns
here ("may be missing CONFIG_XFRM_INTERFACE"): XFRM files are checked by the
parser, and the role is run with VTI ends, whose trap policies carry the
link's mark.
"""

import base64
import pathlib
import re
import stat

import pytest
import yaml

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk, plan

from ..collection_paths import COLLECTION_ROOT
from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from .libreswan_root import LibreswanTree, extracted
from .mesh_roles import (documented_variables, lab_hostvars, reconverge_module_runs, run, run_role, write_inventory,
                         write_role_playbook)
from .role_runner import render

ROLE = "routevpn.mesh.libreswan"
PKI = "routevpn.mesh.pki"
ROLE_DIR = COLLECTION_ROOT / "roles" / "libreswan"


def libreswan_hostvars(tunnel_types, drop=(), **common):
    """The reference lab with the gateways of ``tunnel_types`` ({host: xfrm|vti}) on libreswan."""
    hostvars = lab_hostvars(drop=drop, **common)
    for host, tunnel_type in tunnel_types.items():
        hostvars[host].update(routevpn_ike_daemon="libreswan", routevpn_tunnel_type=tunnel_type)
    return hostvars


def plan_of(hostvars):
    return plan(hostvars, sorted(hostvars))


@pytest.fixture(scope="session")
def libreswan_extracted():
    return extracted()


@pytest.fixture
def libreswan_tree_factory(libreswan_extracted, tmp_path):
    """make(name) -> a LibreswanTree under tmp_path; its pluto stopped afterwards."""
    made = []

    def make(name):
        made.append(LibreswanTree(libreswan_extracted, tmp_path / ("libreswan-" + name)))
        return made[-1]

    try:
        yield make
    finally:
        for tree in made:
            tree.close()


def role_variables(mesh, host, version="4.10"):
    """The role's defaults and vars, as Ansible would see them for ``host`` running libreswan ``version``."""
    variables = {}
    for name in ("defaults", "vars"):
        variables.update(yaml.safe_load((ROLE_DIR / name / "main.yml").read_text()))
    # tasks/version.yml sets it from `ipsec --version`.
    variables.update(routevpn_mesh_plan=mesh, inventory_hostname=host, hostvars={},
                     __routevpn_libreswan_version=version)
    return variables


def render_connection(mesh, end, template=None, version="4.10"):
    variables = dict(role_variables(mesh, end["gateway"], version=version), end=end)
    return render(template or ROLE_DIR / "templates" / "connection.conf.j2", variables)


def checkconfig(tree, path):
    """libreswan's parser on one file: (exit status, output)."""
    proc = tree.run("addconn", "--config", str(path), "--checkconfig", check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def conns_of(text):
    """{conn name: {key: value}} of a rendered file (the parser accepted it; this reads it back, quotes removed)."""
    conns, current = {}, None
    for line in text.splitlines():
        if line.startswith("conn "):
            current = conns.setdefault(line.split()[1], {})
        elif current is not None and line.startswith("\t") and "=" in line and not line.strip().startswith("#"):
            key, value = line.strip().split("=", 1)
            current[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return conns


def test_every_rendered_conn_file_passes_libreswans_parser(tmp_path, libreswan_tree_factory):
    tree = libreswan_tree_factory("parser")
    hostvars = libreswan_hostvars({"v1-1": "xfrm", "v2-1": "vti", "v3-2": "xfrm"})
    mesh = plan_of(hostvars)
    checked = 0
    for host in ("v1-1", "v2-1", "v3-2"):
        for end in mesh["hosts"][host]:
            text = render_connection(mesh, end)
            path = tmp_path / ("%s-%s.conf" % (host, end["connection"]))
            path.write_text(text)
            assert checkconfig(tree, path) == (0, ""), text
            conns = conns_of(text)
            assert sorted(conns) == [end["connection"] + "-v4", end["connection"] + "-v6"]
            for name, conn in conns.items():
                everything = "0.0.0.0/0" if name.endswith("-v4") else "::/0"
                assert conn["leftsubnet"] == conn["rightsubnet"] == everything
                assert conn["ikev2"] == "insist" and conn["leftupdown"] == "%disabled"
                assert (conn["left"], conn["right"]) == (end["local_ike_address"], end["remote_ike_address"])
                if end["tunnel_type"] == "xfrm":
                    assert conn["ipsec-interface"] == str(end["if_id"]) and end["interface"] == end["connection"]
                    assert "mark" not in conn
                else:
                    assert conn["mark"] == "%d/0xffffffff" % end["mark"]
                    assert (conn["vti-interface"], conn["vti-routing"]) == (end["interface"], "no")
                # The lower gateway id initiates, as in the strongswan role; the other end only listens.
                lower = end["link"].startswith("%d-" % mesh["gateways"][host]["gateway_id"])
                assert end["initiator"] == lower
                assert (conn["auto"], conn["dpdaction"]) == (("start", "restart") if lower else ("add", "clear"))
            checked += 1
    assert checked == 12


@pytest.mark.parametrize("signature", ["ecdsa", "rsasig"])
def test_pubkey_conns_pass_the_parser_and_take_the_certificate_from_nss(tmp_path, libreswan_tree_factory, signature):
    tree = libreswan_tree_factory("pubkey")
    mesh = plan_of(libreswan_hostvars({"v2-1": "vti"}, routevpn_auth="pubkey"))
    end = mesh["hosts"]["v2-1"][0]
    variables = dict(role_variables(mesh, "v2-1"), end=end, __routevpn_libreswan_signature=signature)
    text = render(ROLE_DIR / "templates" / "connection.conf.j2", variables)
    path = tmp_path / "pubkey.conf"
    path.write_text(text)
    assert checkconfig(tree, path) == (0, ""), text
    for conn in conns_of(text).values():
        assert (conn["leftcert"], conn["leftsendcert"], conn["rightca"]) == ("routevpn", "always", "%same")
        assert conn["leftauth"] == conn["rightauth"] == signature and "authby" not in conn
        assert (conn["leftid"], conn["rightid"]) == ("@" + end["local_id"], "@" + end["remote_id"])
    assert "PSK" not in render(ROLE_DIR / "templates" / "secrets.j2", variables)


@pytest.mark.parametrize("breakage", [
    ("\tleftsubnet={{ everything }}", "\tleftsubnet={{ everything }} 10.0.0.0/8"),   # two values: syntax error
    ("\tikev2=insist", "\tikev2=insist\n\tikev2=insist"),                            # duplicate key: exit 0, message
    ("\tmobike=no", "\tmobikes=no"),                                                 # unknown keyword
])
def test_a_broken_template_fails_the_parser_check(tmp_path, libreswan_tree_factory, breakage):
    tree = libreswan_tree_factory("broken")
    mesh = plan_of(libreswan_hostvars({"v2-1": "vti"}))
    source = (ROLE_DIR / "templates" / "connection.conf.j2").read_text()
    assert breakage[0] in source
    broken = tmp_path / "connection.conf.j2"
    broken.write_text(source.replace(breakage[0], breakage[1]))
    path = tmp_path / "rendered.conf"
    path.write_text(render_connection(mesh, mesh["hosts"]["v2-1"][0], template=broken))
    # The role's validate= command: what the template task runs before replacing a file.
    check = role_variables(mesh, "v2-1")["__routevpn_libreswan_check"]
    command = check.replace("{{ routevpn_libreswan_ipsec | quote }}", str(tree.ipsec)) + " " + str(path)
    assert run("sh", "-c", command, check=False).returncode != 0
    good = tmp_path / "good.conf"
    good.write_text(render_connection(mesh, mesh["hosts"]["v2-1"][0]))
    assert run("sh", "-c", command.replace(str(path), str(good)), check=False).returncode == 0


@pytest.fixture
def gateway(tmp_path, scratch_netns_factory, libreswan_tree_factory):
    """v3-1 on libreswan with VTI ends: its namespace (with its IKE address), its libreswan tree, its variables."""
    hostvars = libreswan_hostvars({"v3-1": "vti"})
    netns = scratch_netns_factory("rvls")
    run("ip", "-n", netns, "link", "set", "lo", "up")
    address = hostvars["v3-1"]["routevpn_public_address"]
    run("ip", "-n", netns, "addr", "add", address + ("/128" if ":" in address else "/32"), "dev", "lo", "nodad")
    tree = libreswan_tree_factory("v3-1")
    variables = {
        "routevpn_libreswan_packages": [],
        "routevpn_service_manager": "direct",
        # This machine runs strongSwan; test_refuses_a_host_with_charon checks the guard.
        "routevpn_libreswan_charon_paths": [],
        "routevpn_libreswan_ipsec": str(tree.ipsec),
        "routevpn_libreswan_conf_file": str(tree.conf_file),
        "routevpn_libreswan_conf_dir": str(tree.conf_dir),
        "routevpn_libreswan_run_dir": str(tree.run_dir),
        "routevpn_libreswan_log_file": str(tree.base / "pluto.log"),
        "routevpn_libreswan_nss_dir": str(tree.nss_dir),
        "routevpn_libexec_dir": str(tmp_path / "libexec"),
    }

    def apply(mesh_hostvars=None, check=False, extra_vars=None, host_variables=None, roles=ROLE):
        inventory = write_inventory(tmp_path, mesh_hostvars or hostvars,
                                    {"v3-1": dict(variables, **(host_variables or {}))})
        return run_role(tmp_path, inventory, write_role_playbook(tmp_path, roles), "v3-1", netns=netns, check=check,
                        extra_vars=extra_vars, env=tree.tools_env())

    return dict(hostvars=hostvars, netns=netns, tree=tree, apply=apply, variables=variables,
                ends=plan_of(hostvars)["hosts"]["v3-1"])


def role_files(tree):
    return sorted(path.name for path in tree.conf_dir.iterdir() if path.name.startswith("routevpn-"))


def contents(tree):
    return dict((name, (tree.conf_dir / name).read_bytes()) for name in role_files(tree))


def loaded_conns(gateway):
    """{conn: its first status line} from pluto's own ``whack --status``."""
    status = gateway["tree"].whack("--status", netns=gateway["netns"]).stdout
    return dict((m.group(1), m.group(0)) for m in re.finditer(r'^(?:000 )?"([^"]+)": \S+\.\.\.\S+.*$', status, re.M))


def started_links(gateway):
    """Links whose IKE SA pluto is negotiating (``whack --showstates``; no peer answers here): those started."""
    states = gateway["tree"].whack("--showstates", netns=gateway["netns"]).stdout
    return set(re.findall(r'#[0-9]+: "(rv-[0-9]+)-v[46]":[0-9]+ STATE_V2_PARENT_I', states))


def out_policies(netns):
    """{(selector, mark)} of the outbound XFRM policies with a mark, read from the kernel."""
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


def test_check_apply_idempotent_with_every_link_loaded(gateway):
    tree, ends = gateway["tree"], gateway["ends"]
    names = sorted(end["connection"] for end in ends)
    assert names == ["rv-11", "rv-12", "rv-21", "rv-22"]

    checked = gateway["apply"](check=True)
    assert checked.rc == 0 and checked.changed("v3-1") > 0, checked
    assert role_files(tree) == [] and tree.pluto_pid() is None

    applied = gateway["apply"]()
    assert applied.rc == 0 and applied.changed("v3-1") > 0, applied
    assert role_files(tree) == sorted("routevpn-%s.%s" % (n, s) for n in names for s in ("conf", "secrets"))
    for name in names:
        assert stat.S_IMODE((tree.conf_dir / ("routevpn-%s.conf" % name)).stat().st_mode) == 0o644
        assert stat.S_IMODE((tree.conf_dir / ("routevpn-%s.secrets" % name)).stat().st_mode) == 0o600

    conns = loaded_conns(gateway)
    assert sorted(conns) == sorted("%s-v%d" % (n, v) for n in names for v in (4, 6)), conns
    for end in ends:
        line = conns[end["connection"] + "-v6"]
        assert "%s[@%s]" % (end["local_ike_address"], end["local_id"]) in line
        assert "%s[@%s]" % (end["remote_ike_address"], end["remote_id"]) in line
    status = tree.whack("--status", netns=gateway["netns"]).stdout
    assert "IKE algorithms: AES_GCM_16_256-HMAC_SHA2_384-DH20" in status
    assert "ESP algorithms: AES_GCM_16_256-NONE-DH20" in status
    # pluto read every link's key: one per link, from its own file.
    log = (tree.base / "pluto.log").read_text()
    for name in names:
        assert 'loading secrets from "%s/routevpn-%s.secrets"' % (tree.conf_dir, name) in log
    # v3-1 has the higher id on every link: it only listens, with no trap
    # policy whose acquire would cross the initiator's start.
    assert not any(end["initiator"] for end in ends)
    assert started_links(gateway) == set() and out_policies(gateway["netns"]) == set()
    # As an initiator of every link (`both`), it starts each link's IKE SA
    # (pending here, with both families' CHILD SAs) and routes none: a trap's
    # acquire would cross the start and make a second CHILD SA per conn.
    both = gateway["apply"](extra_vars={"routevpn_libreswan_initiator": "both"})
    assert both.rc == 0 and both.changed("v3-1") > 0, both
    assert started_links(gateway) == set(names)
    assert out_policies(gateway["netns"]) == set()
    assert gateway["apply"]().rc == 0
    assert started_links(gateway) == set()
    pid = tree.pluto_pid()

    again = gateway["apply"]()
    assert again.rc == 0 and again.changed("v3-1") == 0, again
    checked_again = gateway["apply"](check=True)
    assert checked_again.rc == 0 and checked_again.changed("v3-1") == 0, checked_again
    assert tree.pluto_pid() == pid

    for output in (checked.output, applied.output, again.output, checked_again.output):
        for secret in secrets_of(ends):
            assert secret not in output


def test_a_changed_link_is_replaced_and_a_removed_one_deleted_without_restart(gateway):
    tree = gateway["tree"]
    # Both ends initiate here, so that every link has an IKE SA to delete.
    assert gateway["apply"](extra_vars={"routevpn_libreswan_initiator": "both"}).rc == 0
    pid = tree.pluto_pid()
    before = loaded_conns(gateway)

    changed = gateway["apply"](extra_vars={"routevpn_libreswan_dpd_delay": "15s",
                                           "routevpn_libreswan_initiator": "both"})
    assert changed.rc == 0 and changed.changed("v3-1") > 0, changed
    assert "dpddelay:15s" in tree.whack("--status", netns=gateway["netns"]).stdout
    assert sorted(loaded_conns(gateway)) == sorted(before) and tree.pluto_pid() == pid

    dropped = libreswan_hostvars({"v3-1": "vti"}, drop=["v1-2"])
    removed = gateway["apply"](mesh_hostvars=dropped, extra_vars={"routevpn_libreswan_dpd_delay": "15s",
                                                                  "routevpn_libreswan_initiator": "both"})
    assert removed.rc == 0 and removed.changed("v3-1") > 0, removed
    assert "routevpn-rv-12.conf" not in role_files(tree) and "routevpn-rv-12.secrets" not in role_files(tree)
    assert sorted(loaded_conns(gateway)) == sorted(n for n in before if not n.startswith("rv-12-"))
    assert tree.pluto_pid() == pid
    assert started_links(gateway) == set(end["connection"] for end in gateway["ends"]) - {"rv-12"}

    again = gateway["apply"](mesh_hostvars=dropped, extra_vars={"routevpn_libreswan_dpd_delay": "15s",
                                                                "routevpn_libreswan_initiator": "both"})
    assert again.rc == 0 and again.changed("v3-1") == 0, again


def test_a_conn_pluto_refuses_puts_the_previous_files_and_conns_back(gateway):
    tree = gateway["tree"]
    assert gateway["apply"]().rc == 0
    before, conns, pid = contents(tree), loaded_conns(gateway), tree.pluto_pid()

    # The parser takes any proposal string; pluto's algorithm parser refuses this one.
    refused = gateway["apply"](extra_vars={"routevpn_libreswan_ike": "aes_gcm999-sha2_384;dh20"})
    assert refused.rc != 0 and "fatal: [v3-1]" in refused.output and "pluto refused rv-11-v4" in refused.output, refused
    assert "The previous files were put back and their conns loaded again" in refused.output
    assert contents(tree) == before
    assert sorted(loaded_conns(gateway)) == sorted(conns) and tree.pluto_pid() == pid
    assert not [path.name for path in tree.conf_dir.iterdir() if path.name.startswith(".") or path.name.endswith("~")]

    assert gateway["apply"]().changed("v3-1") == 0


def test_reauth_tasks_start_the_named_links_again_through_libreswan_config(tmp_path, gateway):
    """playbooks/reauth.yml's libreswan step (tasks_from reauth.yml), for link 11-31 (conn rv-11): check mode says
    which conns it would start again; a run deletes and adds them, and no other.  No peer answers here, so the
    wait for the new IKE SA that follows gives up: that it was reached is what shows the step before it ran."""
    tree = gateway["tree"]
    assert gateway["apply"]().rc == 0
    playbook = tmp_path / "reauth.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Plan", "hosts": "localhost", "gather_facts": False, "tasks": [{"ansible.builtin.set_fact": {
            "routevpn_mesh_plan": "{{ hostvars | routevpn.mesh.mesh_plan(groups['routevpn_gateways']) }}"}}]},
        {"name": "Re-authenticate", "hosts": "routevpn_gateways", "gather_facts": False, "tasks": [
            {"ansible.builtin.include_role": {"name": ROLE, "tasks_from": "reauth.yml"},
             "vars": {"__routevpn_reauth_host": {"reauth": ["rv-11"]}, "routevpn_libreswan_reauth_timeout": 1}}]},
    ], sort_keys=False))
    inventory = tmp_path / "inventory.yml"
    checked = run_role(tmp_path, inventory, playbook, "v3-1", netns=gateway["netns"], check=True,
                       env=tree.tools_env())
    assert checked.rc == 0 and checked.changed("v3-1") == 1, checked
    (would,) = checked.task_results("Conns and pre-shared keys of every link")
    assert would["added"] == ["rv-11-v4", "rv-11-v6"] and would["deleted"] == ["rv-11-v4", "rv-11-v6"], would

    ran = run_role(tmp_path, inventory, playbook, "v3-1", netns=gateway["netns"], env=tree.tools_env())
    (done,) = ran.task_results("Conns and pre-shared keys of every link")
    assert done["added"] == ["rv-11-v4", "rv-11-v6"] and done["deleted"] == ["rv-11-v4", "rv-11-v6"], done
    assert "Wait for each link's new IKE SA" in ran.output and ran.rc != 0
    assert sorted(loaded_conns(gateway)) == sorted("%s-v%d" % (end["connection"], family)
                                                   for end in gateway["ends"] for family in (4, 6))


def test_a_re_converge_costs_the_same_module_runs_with_4_peers_as_with_16(tmp_path, gateway):
    """Issue 11: the role's module runs (every loop item one run) must not grow with the peers.  Counted by
    bench/callback_plugins/module_runs.py in a re-converge (changed=0) of v3-1 with the reference lab's 4 peers,
    then of the same gateway in a mesh of nine sites (16 peers)."""
    big = inventory(dict((site, 2) for site in range(1, 10)))
    big["v3-1"].update(routevpn_ike_daemon="libreswan", routevpn_tunnel_type="vti",
                       routevpn_public_address=gateway["hostvars"]["v3-1"]["routevpn_public_address"])
    assert len(plan_of(big)["hosts"]["v3-1"]) == 16 and len(gateway["ends"]) == 4

    runs = dict((name, reconverge_module_runs(tmp_path, ROLE, hostvars, "v3-1", gateway["variables"],
                                              gateway["netns"], env=gateway["tree"].tools_env()))
                for name, hostvars in (("4 peers", gateway["hostvars"]), ("16 peers", big)))
    assert len(loaded_conns(gateway)) == 32
    assert runs["16 peers"]["remote"] == runs["4 peers"]["remote"], runs
    assert runs["16 peers"]["actions"] == runs["4 peers"]["actions"], runs


def nss_entries(tree):
    """{nickname: trust flags} of the NSS database, and the nicknames of its private keys."""
    listed = tree.certutil("-L").stdout.splitlines()
    certificates = dict(re.match(r"^(\S+)\s+(\S+)\s*$", line).groups() for line in listed
                        if re.match(r"^\S+\s+\S*,\S*,\S*\s*$", line))
    keys = re.findall(r"^<\s*\d+>\s+\S+\s+[0-9a-f]+\s+(\S+)$", tree.certutil("-K", check=False).stdout, re.M)
    return certificates, keys


def nss_pem(tree, nickname):
    return "".join(tree.certutil("-L", "-n", nickname, "-a").stdout.split("-----")[2].split())


def pem_of(path):
    return "".join(path.read_text().split("-----")[2].split())


def test_pubkey_puts_the_certificates_into_nss_and_every_conn_signs_with_them(tmp_path, gateway):
    tree, ends, pki = gateway["tree"], gateway["ends"], tmp_path / "pki"
    pubkey = dict(mesh_hostvars=libreswan_hostvars({"v3-1": "vti"}, routevpn_auth="pubkey"), roles=[PKI, ROLE],
                  extra_vars={"routevpn_pki_own_ca": True, "routevpn_pki_dir": str(pki)})

    checked = gateway["apply"](check=True, **pubkey)
    assert checked.rc == 0 and checked.changed("v3-1") > 0, checked
    assert "v3-1: would put the certificate, its key and the CA certificate into %s" % tree.nss_dir in checked.output
    assert not pki.exists() and role_files(tree) == [] and tree.pluto_pid() is None

    applied = gateway["apply"](**pubkey)
    assert applied.rc == 0 and applied.changed("v3-1") > 0, applied
    kept = tree.conf_dir / "routevpn-pki"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert stat.S_IMODE((kept / "routevpn.key").stat().st_mode) == 0o600
    assert (kept / "routevpn.key").read_bytes() == (pki / "gateways" / "v3-1.key").read_bytes()
    assert nss_entries(tree) == ({"routevpn": "u,u,u", "routevpn-ca": "CT,,"}, ["routevpn"])
    assert nss_pem(tree, "routevpn") == pem_of(pki / "gateways" / "v3-1.crt")
    assert nss_pem(tree, "routevpn-ca") == pem_of(pki / "ca.crt")
    for end in ends:
        assert "PSK" not in (tree.conf_dir / ("routevpn-%s.secrets" % end["connection"])).read_text()

    # pluto found the certificate and its key in NSS for every conn it loaded.
    conns = loaded_conns(gateway)
    assert sorted(conns) == sorted("%s-v%d" % (end["connection"], v) for end in ends for v in (4, 6)), conns
    status = tree.whack("--status", netns=gateway["netns"]).stdout
    for name in conns:
        assert re.search(r'^(?:000 )?"%s":.*\bmycert=routevpn\b' % re.escape(name), status, re.M), status
        # The own CA's keys are ECDSA: pluto signs with ECDSA and wants the peer's signature in it.
        assert re.search(r'^(?:000 )?"%s":\s+our auth:ecdsa, their auth:ecdsa,' % re.escape(name), status, re.M), status
    pid = tree.pluto_pid()

    again = gateway["apply"](**pubkey)
    assert again.rc == 0 and again.changed("v3-1") == 0, again
    checked_again = gateway["apply"](check=True, **pubkey)
    assert checked_again.rc == 0 and checked_again.changed("v3-1") == 0, checked_again

    # A new certificate (the old one removed, as on expiry): NSS holds only the new one, every conn is re-added.
    (pki / "gateways" / "v3-1.crt").unlink()
    renewed = gateway["apply"](**pubkey)
    assert renewed.rc == 0 and renewed.changed("v3-1") > 0, renewed
    assert nss_entries(tree) == ({"routevpn": "u,u,u", "routevpn-ca": "CT,,"}, ["routevpn"])
    assert nss_pem(tree, "routevpn") == pem_of(pki / "gateways" / "v3-1.crt")
    assert sorted(loaded_conns(gateway)) == sorted(conns) and tree.pluto_pid() == pid
    for output in (checked.output, applied.output, again.output, checked_again.output, renewed.output):
        for line in (pki / "gateways" / "v3-1.key").read_text().splitlines():
            if line and not line.startswith("-"):
                assert line not in output


def test_a_certificate_libreswan_cannot_sign_with_stops_the_role_before_any_change(tmp_path, gateway):
    given = tmp_path / "ed25519"
    given.mkdir()

    run("openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", str(given / "ca.key"),
        "-out", str(given / "ca.crt"), "-subj", "/CN=ed25519 CA", "-days", "2")
    run("openssl", "req", "-newkey", "ed25519", "-nodes", "-keyout", str(given / "v3-1.key"),
        "-out", str(given / "v3-1.csr"), "-subj", "/CN=v3-1", "-addext", "subjectAltName=DNS:v3-1")
    run("openssl", "x509", "-req", "-in", str(given / "v3-1.csr"), "-CA", str(given / "ca.crt"),
        "-CAkey", str(given / "ca.key"), "-CAcreateserial", "-out", str(given / "v3-1.crt"), "-days", "2",
        "-copy_extensions", "copy")
    files = {"routevpn_pki_certificate": str(given / "v3-1.crt"), "routevpn_pki_private_key": str(given / "v3-1.key"),
             "routevpn_pki_ca_certificate": str(given / "ca.crt")}
    refused = gateway["apply"](mesh_hostvars=libreswan_hostvars({"v3-1": "vti"}, routevpn_auth="pubkey"),
                               host_variables=files)
    assert refused.rc != 0
    assert ("v3-1: routevpn_pki_certificate (%s) is for a key of type Ed25519; libreswan (4.10 and 5.2 alike) signs "
            "with RSA (rsasig) or ECDSA (ecdsa) keys only"
            % files["routevpn_pki_certificate"]) in refused.output, refused
    tree = gateway["tree"]
    assert role_files(tree) == [] and tree.pluto_pid() is None and not (tree.conf_dir / "routevpn-pki").exists()


@pytest.mark.parametrize("variable, value, expected", [
    ("routevpn_libreswan_esp", "aes_gcm256 dh20",
     "v3-1: routevpn_libreswan_esp: 'aes_gcm256 dh20' is not a libreswan proposal list"),
    ("routevpn_libreswan_dpd_delay", "10 s", "v3-1: routevpn_libreswan_dpd_delay: '10 s' is not a duration"),
    ("routevpn_libreswan_initiator", "higher",
     "v3-1: routevpn_libreswan_initiator: 'higher' is not one of lower, both"),
])
def test_bad_input_names_the_host_and_the_variable(gateway, variable, value, expected):
    """The planning play refuses it before the role runs (the role's own format check is the second line)."""
    failed = gateway["apply"](extra_vars={variable: value})
    assert failed.rc != 0 and expected in failed.output, failed
    assert re.search(r"^fatal: \[localhost\]", failed.output, re.M), failed
    assert role_files(gateway["tree"]) == [] and gateway["tree"].pluto_pid() is None


def test_refuses_a_host_with_charon(gateway):
    assert pathlib.Path("/usr/sbin/charon-systemd").exists()  # this machine runs strongSwan
    refused = gateway["apply"](host_variables={"routevpn_libreswan_charon_paths": ["/usr/sbin/charon-systemd"]})
    assert refused.rc != 0
    assert ("v3-1: routevpn_ike_daemon is libreswan, but strongSwan's charon is installed here "
            "(/usr/sbin/charon-systemd)") in refused.output
    assert role_files(gateway["tree"]) == [] and gateway["tree"].pluto_pid() is None


def test_refuses_xfrm_ends_on_libreswan_4_before_any_change(gateway):
    """4.10's ipsec-interface= makes pluto create ipsecN in its own namespace: XFRM ends need 5.2."""
    conf = gateway["tree"].conf_file.read_bytes()
    for check in (True, False):
        refused = gateway["apply"](mesh_hostvars=libreswan_hostvars({"v3-1": "xfrm"}), check=check)
        assert refused.rc != 0
        assert re.search(r"^(fatal|failed): \[v3-1\]", refused.output, re.M), refused
        assert ("v3-1: routevpn_tunnel_type is xfrm (11-31, 12-31, 21-31, 22-31), but this host's libreswan is 4.10 "
                "(installed), whose ipsec-interface= makes pluto create the XFRM interface itself in the public "
                "namespace, out of BIRD's reach. XFRM ends need libreswan 5.2 or later (ipsec-interface-managed=no; "
                "Debian 13 ships 5.2). Set routevpn_tunnel_type: vti for v3-1, or give it libreswan 5.2 or later "
                "(Debian 13).") in " ".join(refused.output.split()), refused
        assert role_files(gateway["tree"]) == [] and gateway["tree"].pluto_pid() is None
        assert gateway["tree"].conf_file.read_bytes() == conf


def test_before_libreswan_is_installed_the_version_is_the_one_apt_would_install(tmp_path, gateway):
    """A fresh Debian 12 host: XFRM ends are refused on apt's candidate (4.10) before anything is installed.

    Check mode only: on this machine a real run past the refusal would install libreswan over strongSwan.
    """
    fresh = {"routevpn_libreswan_ipsec": str(tmp_path / "not-installed" / "ipsec"),
             "routevpn_libreswan_packages": ["libreswan", "libnss3-tools", "openssl"]}
    refused = gateway["apply"](mesh_hostvars=libreswan_hostvars({"v3-1": "xfrm"}), host_variables=fresh, check=True)
    assert refused.rc != 0
    assert re.search(r"but this host's libreswan is 4\.[0-9]+ \(the version apt would install\)",
                     " ".join(refused.output.split())), refused
    assert "TASK [routevpn.mesh.libreswan : Package libreswan]" not in refused.output


def test_an_unknown_version_stops_the_role(tmp_path, gateway):
    missing = str(tmp_path / "not-installed" / "ipsec")
    failed = gateway["apply"](host_variables={"routevpn_libreswan_ipsec": missing})
    assert failed.rc != 0
    assert ("v3-1: cannot tell libreswan's version: `%s --version` printed no \"Libreswan X.Y\"" % missing) \
        in " ".join(failed.output.split()), failed
    assert "(routevpn_libreswan_packages does not install it)" in " ".join(failed.output.split())
    assert role_files(gateway["tree"]) == [] and gateway["tree"].pluto_pid() is None


def test_a_strongswan_gateway_is_skipped(gateway):
    skipped = gateway["apply"](mesh_hostvars=lab_hostvars())
    assert skipped.rc == 0 and skipped.changed("v3-1") == 0, skipped
    assert "v3-1: routevpn_ike_daemon is strongswan; role libreswan skipped." in skipped.output
    assert role_files(gateway["tree"]) == [] and gateway["tree"].pluto_pid() is None


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("libreswan")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)
