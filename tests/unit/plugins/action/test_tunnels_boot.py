"""tunnels_boot: the archive its action plugin builds, the module that installs it, and the boot code run from it.

The boot code is run as routevpn-tunnels@.service runs it: Debian's
/usr/bin/python3 (python3-pyroute2, no Ansible) with only the archive on
PYTHONPATH, in a scratch namespace that stands for the public one.  Natively
the namespace and MSS part, and an interface that fails; XFRM and VTI
devices in the VM tier (``kernel_feature``).
"""

import base64
import hashlib
import json
import os
import pathlib
import stat
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.routevpn.mesh.plugins.action.tunnels_boot import (
    DATE_TIME,
    ArchiveError,
    build_archive,
    import_closure,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot import main as boot_main

from ...collection_paths import COLLECTION_ROOT
from ...conftest import kernel_supports
from ...module_runner import addresses_of, if_id_of, link_of, run_adhoc, run_module

DEBIAN_PYTHON = "/usr/bin/python3"
BOOT = "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot"
MODULE_UTILS = COLLECTION_ROOT / "plugins" / "module_utils"
# What `python3 -I` cannot take from PYTHONPATH: the archive on sys.path by hand, then the module as -m runs it;
# on the way out, every module of the collection that was not read from the archive, and any of Ansible's.
ISOLATED = """
import runpy, sys
archive = sys.argv.pop(1)
sys.path.insert(0, archive)
try:
    runpy.run_module(%r, run_name="__main__", alter_sys=True)
finally:
    outside = sorted(name for name, module in list(sys.modules.items())
                     if name.split(".")[0] == "ansible"
                     or name.split(".")[0] == "ansible_collections"
                     and not (getattr(module, "__file__", None) or "").startswith(archive + "/"))
    sys.stderr.write("LOADED-OUTSIDE-THE-ARCHIVE %%s\\n" %% outside)
""" % BOOT

needs_debian_python = pytest.mark.skipif(
    subprocess.run([DEBIAN_PYTHON, "-c", "import pyroute2"], capture_output=True, check=False).returncode != 0,
    reason="%s with pyroute2 (python3-pyroute2) is the boot unit's Python" % DEBIAN_PYTHON)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("boot") / "routevpn-mesh-boot.zip"
    path.write_bytes(build_archive())
    return path


def boot(archive, *args, netns=None, isolated=False, cwd="/"):
    """The unit's command: Debian's Python, only the archive on PYTHONPATH; in ``netns`` as its public namespace."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if isolated:
        command = [DEBIAN_PYTHON, "-I", "-c", ISOLATED, str(archive)]
    else:
        env["PYTHONPATH"] = str(archive)
        command = [DEBIAN_PYTHON, "-s", "-m", BOOT]
    command += list(args)
    if netns:
        command = ["nsenter", "--net=/run/netns/" + netns] + command
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def write_state(path, netns, xfrm=(), vti=(), mss_file=None):
    path.write_text(json.dumps({"netns": netns, "xfrm": list(xfrm), "vti": list(vti), "mss_file": mss_file}))
    return path


def nft_table(netns, table="routevpn_mss"):
    proc = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "inet", table],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)["nftables"] if proc.returncode == 0 else None


def mss_rules(tmp_path):
    path = tmp_path / "mss.nft"
    path.write_text("table inet routevpn_mss\ndelete table inet routevpn_mss\ntable inet routevpn_mss {\n"
                    "  chain forward {\n    type filter hook forward priority mangle; policy accept;\n"
                    '    oifname { "rv-21" } tcp flags syn / syn,rst tcp option maxseg size set rt mtu\n  }\n}\n')
    return path


# -- the archive ---------------------------------------------------------------------------------------------------

def test_the_archive_is_the_same_bytes_whatever_the_controller_imported():
    first, second = build_archive(), build_archive()
    assert first == second
    # Another process that imported other parts of the collection first: the closure is read from the sources.
    other = subprocess.run(
        [sys.executable, "-c", "import sys\n"
         "import ansible_collections.routevpn.mesh.plugins.module_utils._files.tree\n"
         "import ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan\n"
         "from ansible_collections.routevpn.mesh.plugins.action.tunnels_boot import build_archive\n"
         "sys.stdout.buffer.write(build_archive())\n"],
        capture_output=True, check=True, env=dict(os.environ, PYTHONPATH=str(COLLECTION_ROOT.parents[2])))
    assert other.stdout == first


def test_the_archive_holds_the_import_closure_stored_dated_and_sorted():
    with zipfile.ZipFile(__import__("io").BytesIO(build_archive())) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert all(info.compress_type == zipfile.ZIP_STORED and info.date_time == DATE_TIME
                   and info.external_attr >> 16 == 0o100644 for info in infos)
        prefix = "ansible_collections/routevpn/mesh/plugins/module_utils/"
        packages = ["ansible_collections/", "ansible_collections/routevpn/", "ansible_collections/routevpn/mesh/",
                    "ansible_collections/routevpn/mesh/plugins/", prefix, prefix + "_netlink/"]
        assert [name for name in names if name.endswith("__init__.py")] == [p + "__init__.py" for p in packages]
        assert all(archive.read(p + "__init__.py") == b"" for p in packages)
        modules = [name[len(prefix):] for name in names if not name.endswith("__init__.py")]
        assert modules == ["_netlink/_links.py", "_netlink/_netns.py", "_netlink/_pyroute2_dep.py",
                           "_netlink/_tunnel_kinds.py", "_netlink/_tunnel_module.py", "_netlink/_tunnels_boot.py"]
        for module in modules:
            assert archive.read(prefix + module) == (MODULE_UTILS / module).read_bytes(), module


def fake_module_utils(tmp_path, boot_source, **others):
    root = tmp_path / "module_utils"
    (root / "_netlink").mkdir(parents=True)
    (root / "_netlink" / "_tunnels_boot.py").write_text(boot_source)
    for name, source in others.items():
        (root / "_netlink" / (name + ".py")).write_text(source)
    return str(root)


PKG = "ansible_collections.routevpn.mesh.plugins.module_utils"


@pytest.mark.parametrize("source, message", [
    ("import ansible.module_utils.basic\n", "imports ansible.module_utils.basic when it is imported"),
    ("try:\n    from ansible.module_utils.basic import AnsibleModule\nexcept ImportError:\n    pass\n",
     "imports ansible.module_utils.basic when it is imported"),
    ("from ansible_collections.community.general.plugins.module_utils import x\n",
     "which is not in the collection's module_utils"),
    ("from %s._netlink._nowhere import x\n" % PKG, "which does not exist"),
])
def test_the_closure_refuses_what_the_boot_python_cannot_import(tmp_path, source, message):
    with pytest.raises(ArchiveError, match=message):
        import_closure(fake_module_utils(tmp_path, source))


def test_the_closure_follows_relative_lazy_and_from_package_imports(tmp_path):
    root = fake_module_utils(
        tmp_path,
        "from . import _a\nfrom ._b import thing\n"
        "def later():\n    import ansible.module_utils.basic\n    from %s._netlink._c import other\n" % PKG,
        _a="", _b="thing = 1\n", _c="other = 2\n", _unused="")
    assert sorted(import_closure(root)) == [PKG + "._netlink." + name for name in ("_a", "_b", "_c", "_tunnels_boot")]


# -- the boot code, run from the archive by Debian's Python ----------------------------------------------------------

@needs_debian_python
@pytest.mark.parametrize("isolated", [False, True], ids=["unit-command", "python-I"])
def test_debian_python_runs_the_boot_code_from_the_archive_alone(archive, tmp_path, isolated):
    usage = boot(archive, isolated=isolated)
    assert usage.returncode == 2 and "usage: python3 -m %s up NETNS STATE_FILE" % BOOT in usage.stderr, usage.stderr

    missing = boot(archive, "up", "private", str(tmp_path / "private.json"), isolated=isolated)
    assert missing.returncode == 1, missing.stderr
    assert ("routevpn-tunnels: %s is missing; run the routevpn.mesh playbook" % (tmp_path / "private.json")
            in missing.stderr)

    state = write_state(tmp_path / "rvt-absent.json", "rvt-absent")
    no_netns = boot(archive, "up", "rvt-absent", str(state), isolated=isolated)
    assert no_netns.returncode == 1
    assert ("routevpn-tunnels: netns rvt-absent does not exist (/run/netns/rvt-absent); "
            "routevpn-netns@rvt-absent.service makes it" in no_netns.stderr), no_netns.stderr
    if isolated:
        # Every module of the collection the boot code imported came from the archive, and none of Ansible.
        assert "LOADED-OUTSIDE-THE-ARCHIVE []" in no_netns.stderr, no_netns.stderr


@needs_debian_python
def test_mss_rules_are_loaded_into_the_namespace(archive, tmp_path, scratch_netns_factory):
    public, private = scratch_netns_factory("rvpub"), scratch_netns_factory("rvpriv")
    state = write_state(tmp_path / (private + ".json"), private, mss_file=str(mss_rules(tmp_path)))
    for attempt in range(2):  # a second start of the unit: the file replaces the table
        started = boot(archive, "up", private, str(state), netns=public)
        assert started.returncode == 0, started.stderr
        assert "MSS rules %s loaded into netns %s" % (tmp_path / "mss.nft", private) in started.stdout
        rules = [item["rule"] for item in nft_table(private) if "rule" in item]
        assert len(rules) == 1, rules
    assert nft_table(public) is None

    # An MSS file the state names but that is gone (clamping just turned off): nothing to load, not an error.
    (tmp_path / "mss.nft").unlink()
    assert boot(archive, "up", private, str(state), netns=public).returncode == 0


@needs_debian_python
def test_an_interface_that_fails_does_not_stop_the_others(archive, tmp_path, scratch_netns_factory):
    """rv-21 is taken by a veth in the namespace (on any kernel); rv-22 is then made on its own, or, on a kernel
    without XFRM interfaces, fails on its own; an item the modules refuse is named; the MSS rules are loaded."""
    public, private = scratch_netns_factory("rvpub"), scratch_netns_factory("rvpriv")
    subprocess.run(["ip", "-n", private, "link", "add", "rv-21", "type", "veth", "peer", "name", "rv-21p"],
                   check=True)
    items = [{"name": name, "netns": private, "if_id": if_id, "link": "lo", "mtu": 1500,
              "addresses": ["2001:db8:ff::%x/127" % if_id]} for name, if_id in (("rv-21", 4296), ("rv-22", 4306))]
    items.append({"name": "rv-23", "netns": private, "if_id": 0})
    state = write_state(tmp_path / (private + ".json"), private, xfrm=items, mss_file=str(mss_rules(tmp_path)))
    started = boot(archive, "up", private, str(state), netns=public)
    assert started.returncode == 1, started
    errors = started.stderr.splitlines()
    assert ("routevpn-tunnels: rv-21: a veth device of that name exists in netns %s; this module manages only xfrm "
            "devices: rename or delete it" % private) in errors, errors
    assert "routevpn-tunnels: rv-23: if_id 0 must be 1..4294967295 (the kernel refuses 0)" in errors, errors
    if kernel_supports("xfrm_interface"):
        assert len(errors) == 2, errors
        assert if_id_of(link_of("rv-22", netns=private)) == 4306
    else:
        assert "routevpn-tunnels: rv-22: the kernel has no xfrm interface support (modprobe xfrm_interface)" in errors
        assert len(errors) == 3, errors
    assert link_of("rv-21", netns=private)["linkinfo"]["info_kind"] == "veth"
    assert nft_table(private) is not None


@pytest.mark.parametrize("text, message", [
    ("{", "is not JSON"),
    ("[]", "is not a mapping"),
    ('{"netns": "other", "xfrm": []}', "is the state of netns other, not of private"),
    ('{"netns": "private", "xfrm": {"name": "rv-21"}}', "xfrm must be a list of interfaces"),
    ('{"netns": "private", "tunnels": []}', "unknown keys tunnels"),
])
def test_a_state_file_the_unit_cannot_read_is_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "private.json"
    path.write_text(text)
    assert boot_main(["up", "private", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("routevpn-tunnels: %s" % path) and message in line, line


@needs_debian_python
def test_xfrm_and_vti_devices_are_made_moved_and_repaired(archive, tmp_path, scratch_netns_factory, kernel_feature):
    """Kernel tier: the state as the role writes it, a boot, a second start, drift repaired, and the modules agree."""
    for feature in ("xfrm_interface", "vti", "vti6"):
        kernel_feature(feature)
    public, private = scratch_netns_factory("rvpub"), scratch_netns_factory("rvpriv")
    xfrm = [{"name": "rv-21", "netns": private, "if_id": 4296, "link": "lo", "mtu": 1400,
             "addresses": ["2001:db8:ff::190/127", "169.254.65.144/31"]}]
    vti = [{"name": "rv-31", "netns": private, "mode": "vti", "local": "192.0.2.1", "remote": "192.0.2.3",
            "key": 4297, "mtu": 1400, "addresses": ["2001:db8:ff::192/127", "169.254.65.146/31"]},
           {"name": "rv-41", "netns": private, "mode": "vti6", "local": "2001:db8::1", "remote": "2001:db8::4",
            "key": 4298, "mtu": 1400, "addresses": ["2001:db8:ff::194/127"]}]
    state = write_state(tmp_path / (private + ".json"), private, xfrm, vti, mss_file=str(mss_rules(tmp_path)))

    def check():
        link = link_of("rv-21", netns=private)
        assert link["linkinfo"]["info_kind"] == "xfrm" and if_id_of(link) == 4296, link
        for item in xfrm + vti:
            link = link_of(item["name"], netns=private)
            assert link is not None and "UP" in link["flags"] and link["mtu"] == 1400, link
            assert addresses_of(item["name"], netns=private) == sorted(item["addresses"])
            assert link_of(item["name"], netns=public) is None
        for item in vti:
            data = link_of(item["name"], netns=private)["linkinfo"]["info_data"]
            assert (data["local"], data["remote"]) == (item["local"], item["remote"]), data
            # Moving a device resets its sysctls: without disable_policy the kernel drops what it decrypts.
            for family in ("ipv4", "ipv6"):
                path = "/proc/sys/net/%s/conf/%s/disable_policy" % (family, item["name"])
                value = subprocess.run(["ip", "netns", "exec", private, "cat", path], capture_output=True,
                                       text=True, check=False)
                assert value.returncode != 0 or value.stdout.strip() == "1", (item["name"], family)
        assert nft_table(private) is not None

    started = boot(archive, "up", private, str(state), netns=public)
    assert started.returncode == 0, started.stderr
    assert "routevpn-tunnels: rv-21: create xfrm in netns %s" % private in started.stdout.splitlines()
    check()

    again = boot(archive, "up", private, str(state), netns=public)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "routevpn-tunnels: MSS rules %s loaded into netns %s" % (tmp_path / "mss.nft", private),
        "routevpn-tunnels: netns %s: 3 tunnel interfaces as wanted" % private], again.stdout

    # Drift: an MTU, a device down, one gone.
    subprocess.run(["ip", "-n", private, "link", "set", "rv-21", "mtu", "1500"], check=True)
    subprocess.run(["ip", "-n", private, "link", "set", "rv-41", "down"], check=True)
    subprocess.run(["ip", "-n", private, "link", "del", "rv-31"], check=True)
    repaired = boot(archive, "up", private, str(state), netns=public)
    assert repaired.returncode == 0, repaired.stderr
    check()
    for module, items in (("xfrm_interface", xfrm), ("vti_tunnel", vti)):
        result = run_module(module, {"config": items, "netns": private, "state": "merged"}, check=True, netns=public)
        assert result["_rc"] == 0 and not result["changed"], result


# -- the module and its action plugin -------------------------------------------------------------------------------

def module_args(tmp_path, archive_bytes=None, **extra):
    args = {"netns": "private", "config_dir": str(tmp_path / "etc"), "libexec_dir": str(tmp_path / "libexec"),
            "xfrm": [{"name": "rv-21", "netns": "private", "if_id": 4296, "link": "lo", "mtu": 1500,
                      "addresses": ["2001:db8:ff::190/127", "169.254.65.144/31"]}],
            "mss_file": "/etc/routevpn/tunnels/private-mss.nft",
            "archive": base64.b64encode(archive_bytes or build_archive()).decode("ascii")}
    args.update(extra)
    return args


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_module_check_write_and_nothing_more(tmp_path):
    args = module_args(tmp_path)
    archive_bytes = base64.b64decode(args["archive"])
    zip_path, json_path = tmp_path / "libexec" / "routevpn-mesh-boot.zip", tmp_path / "etc" / "private.json"

    checked = run_module("tunnels_boot", args, check=True)
    assert checked["changed"] and checked["written"] == [str(zip_path), str(json_path)], checked
    assert not zip_path.exists() and not json_path.exists()
    (archive_diff, state_diff) = checked["diff"]
    assert (archive_diff["before"], archive_diff["after"]) == ("", "sha256 %s\n" % sha256(archive_bytes))
    assert state_diff["after_header"] == str(json_path) and '"if_id": 4296' in state_diff["after"]

    applied = run_module("tunnels_boot", args)
    assert applied["changed"] and (applied["archive"], applied["state_file"]) == (str(zip_path), str(json_path))
    assert zip_path.read_bytes() == archive_bytes
    state = {"netns": "private", "xfrm": args["xfrm"], "vti": [], "mss_file": args["mss_file"]}
    assert json_path.read_text() == json.dumps(state, indent=2, sort_keys=True) + "\n"
    for path in (zip_path, json_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path

    for check in (True, False):
        again = run_module("tunnels_boot", args, check=check)
        assert again["_rc"] == 0 and not again["changed"] and again["diff"] == [], again

    # Another collection: the archive alone is written, and shown by its digest.
    newer = bytes(archive_bytes) + b"\0"
    updated = run_module("tunnels_boot", module_args(tmp_path, newer))
    assert updated["written"] == [str(zip_path)] and updated["diff"] == [{
        "before_header": str(zip_path), "after_header": str(zip_path),
        "before": "sha256 %s\n" % sha256(archive_bytes), "after": "sha256 %s\n" % sha256(newer)}]


def test_module_removes_what_earlier_versions_installed(tmp_path):
    (tmp_path / "libexec").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "libexec" / "routevpn-tunnels").write_text("#!/bin/sh\n# routevpn-tunnels up NAMESPACE [CONFIG]\n")
    (tmp_path / "libexec" / "routevpn-netns").write_text("#!/bin/sh\n")
    old_conf = "# Ansible managed\n# Read at boot by routevpn-tunnels@%s.service (/usr/local/libexec/routevpn/...).\n"
    (tmp_path / "etc" / "private.conf").write_text(old_conf % "private")
    (tmp_path / "etc" / "other.conf").write_text(old_conf % "other")
    (tmp_path / "etc" / "private-mss.nft").write_text("table inet routevpn_mss\n")
    result = run_module("tunnels_boot", module_args(tmp_path))
    assert sorted(result["removed"]) == [str(tmp_path / "etc" / "private.conf"),
                                         str(tmp_path / "libexec" / "routevpn-tunnels")], result
    assert sorted(os.listdir(tmp_path / "libexec")) == ["routevpn-mesh-boot.zip", "routevpn-netns"]
    assert sorted(os.listdir(tmp_path / "etc")) == ["other.conf", "private-mss.nft", "private.json"]

    # A NETNS.conf of someone else (the private_netns role's, were both directories one) stays.
    (tmp_path / "etc" / "private.conf").write_text("FORWARDING=1\ninterface lan0\n")
    again = run_module("tunnels_boot", module_args(tmp_path))
    assert not again["changed"] and (tmp_path / "etc" / "private.conf").exists(), again


@pytest.mark.parametrize("extra, message", [
    ({"xfrm": [{"name": "rv-21", "if_id": 0}]}, "rv-21: if_id 0 must be 1..4294967295"),
    ({"vti": [{"name": "rv-31", "local": "192.0.2.1"}]}, "rv-31: remote required to create a VTI device"),
    ({"xfrm": [{"name": "rv-21", "if_id": 5, "netns": "other"}]}, "rv-21: in netns other, not private"),
    ({"netns": "../x"}, "'../x' is not a network namespace name"),
    ({"archive": "not base64!"}, "archive is not base64"),
])
def test_module_refuses_what_the_boot_unit_could_not_make(tmp_path, extra, message):
    result = run_module("tunnels_boot", module_args(tmp_path, **extra))
    assert result.get("failed") and message in result["msg"], result
    assert not (tmp_path / "etc").exists() and not (tmp_path / "libexec").exists()


def test_through_ansible_the_action_plugin_builds_and_sends_the_archive(tmp_path):
    args = module_args(tmp_path)
    del args["archive"]
    result = run_adhoc(tmp_path, "tunnels_boot", args)
    assert result["_rc"] == 0 and result["changed"], result
    archive_bytes = build_archive()
    assert (tmp_path / "libexec" / "routevpn-mesh-boot.zip").read_bytes() == archive_bytes
    shown = result["invocation"]["module_args"]["archive"]
    assert shown == "(%d bytes, sha256 %s)" % (len(archive_bytes), sha256(archive_bytes)), shown
    assert not run_adhoc(tmp_path, "tunnels_boot", args)["changed"]

    refused = run_adhoc(tmp_path, "tunnels_boot", module_args(tmp_path))
    assert refused.get("failed") and "archive" in refused["msg"], refused


def test_module_runs_from_a_directory_without_pyroute2(tmp_path):
    """The module writes files only: under an interpreter whose pyroute2 import fails it works all the same."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "pyroute2.py").write_text("raise ImportError('no pyroute2 here')\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.routevpn.mesh.plugins.module_utils._netlink import _tunnels_boot_files as f\n"
            "from ansible_collections.routevpn.mesh.plugins.module_utils._netlink import _pyroute2_dep as d\n"
            "assert not d.HAS_PYROUTE2\n"
            "r = f.TunnelsBoot('private', [{'name': 'rv-21', 'if_id': 5}], [], None, b'zip', %r, %r)\n"
            "r = r.run_transaction()\n"
            "print(r['changed'])\n" % (str(blocker), str(tmp_path / "etc"), str(tmp_path / "libexec")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(COLLECTION_ROOT.parents[2])))
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
    assert pathlib.Path(tmp_path / "libexec" / "routevpn-mesh-boot.zip").read_bytes() == b"zip"
