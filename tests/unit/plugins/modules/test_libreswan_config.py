"""libreswan_config against libreswan 4.10's own parser and pluto (extracted, not installed), natively.

pluto runs in a scratch namespace with the gateway's address; the module
writes the files of a scratch libreswan tree, parses them with libreswan's
``addconn --checkconfig`` and loads them into that pluto, whose ``whack
--status`` and ``--showstates`` are read back.  No peer answers: a started
conn stays in its first IKE state, which is what tells it was started.
"""

import os
import re
import stat
import subprocess
import time

import pytest

from ...module_runner import run_module
from ...roles.libreswan_root import LibreswanTree, extracted

CONN = """\
conn {name}-v{family}
\tikev2=insist
\tauthby=secret
\tleft=192.0.2.1
\tleftid=@gw-1
\tright={peer}
\trightid=@{name}-peer
\tleftsubnet={everything}
\trightsubnet={everything}
\tmark={mark}/0xffffffff
\tesp={esp}
\tauto=add
"""
SECRET = "@gw-1 @{name}-peer : PSK \"{psk}\"\n"
PURGE = [r"^routevpn-.+[.](conf|secrets)$"]
PATTERN = r"^rv-[0-9]+-v[46]$"


def link(name, peer="192.0.2.2", mark=21, esp="aes_gcm256"):
    content = "".join(CONN.format(name=name, family=family, everything=everything, peer=peer, mark=mark, esp=esp)
                      for family, everything in (("4", "0.0.0.0/0"), ("6", "::/0")))
    return {"name": "routevpn-%s.conf" % name, "content": content}


def secret(name, psk="first-secret-0123456789abcdef"):
    return {"name": "routevpn-%s.secrets" % name, "content": SECRET.format(name=name, psk=psk)}


@pytest.fixture(scope="module")
def libreswan_root():
    return extracted()


@pytest.fixture
def pluto(tmp_path, scratch_netns_factory, libreswan_root):
    """A running pluto 4.10 in a scratch namespace, with its own tree; apply(...) runs the module there."""
    netns = scratch_netns_factory("rvlc")
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", netns, "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)
    tree = LibreswanTree(libreswan_root, tmp_path / "gw")
    env = dict(os.environ, **tree.tools_env())

    def start():
        subprocess.run(["ip", "netns", "exec", netns, str(tree.ipsec), "--checknss"], env=env, check=True,
                       capture_output=True)
        subprocess.run(["ip", "netns", "exec", netns, str(tree.ipsec), "pluto", "--config", str(tree.conf_file),
                        "--rundir", str(tree.run_dir), "--logfile", str(tree.base / "pluto.log")],
                       env=env, check=True, capture_output=True)
        for _attempt in range(100):
            if tree.whack("--status", netns=netns, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("pluto did not answer")

    def apply(check=False, **args):
        args = dict({"conf_dir": str(tree.conf_dir), "conf_file": str(tree.conf_file), "ipsec": str(tree.ipsec),
                     "ctl_socket": str(tree.run_dir / "pluto.ctl"), "purge": PURGE, "conn_pattern": PATTERN}, **args)
        return run_module("libreswan_config", args, check=check, netns=netns)

    def loaded():
        status = tree.whack("--status", netns=netns).stdout
        return sorted(set(re.findall(r'^(?:000 )?"([^"]+)": \S+\.\.\.\S+', status, re.MULTILINE)))

    def started():
        """{link: serial of its IKE SA} pluto is negotiating (started; no peer answers).  Both conns of a link
        share its IKE SA: the second one waits on the first's state, which is the only one shown."""
        states = tree.whack("--showstates", netns=netns).stdout
        found = {}
        for serial, conn in re.findall(r'#([0-9]+): "([^"]+)-v[46]"', states):
            found[conn] = min(int(serial), found.get(conn, int(serial)))
        return found

    def files():
        return sorted(path.name for path in tree.conf_dir.iterdir())

    start()
    try:
        yield type("Pluto", (), dict(tree=tree, netns=netns, start=staticmethod(start), apply=staticmethod(apply),
                                     loaded=staticmethod(loaded), started=staticmethod(started),
                                     files=staticmethod(files)))
    finally:
        tree.close()


def test_conns_are_loaded_started_where_this_end_initiates_and_a_second_run_changes_nothing(pluto):
    result = pluto.apply(files=[link("rv-21"), link("rv-31", peer="192.0.2.3", mark=31)],
                         secrets=[secret("rv-21"), secret("rv-31")], initiate=["rv-21-v4", "rv-21-v6"])
    assert result["changed"] and not result.get("failed"), result
    assert sorted(result["added"]) == ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    assert set(pluto.started()) == {"rv-21"}
    mode = stat.S_IMODE(os.stat(str(pluto.tree.conf_dir / "routevpn-rv-21.secrets")).st_mode)
    assert mode == 0o600
    assert "first-secret" not in repr(result)

    again = pluto.apply(files=[link("rv-21"), link("rv-31", peer="192.0.2.3", mark=31)],
                        secrets=[secret("rv-21"), secret("rv-31")], initiate=["rv-21-v4", "rv-21-v6"])
    assert not again["changed"] and again["added"] == [] and again["deleted"] == [], again


def test_a_changed_link_is_replaced_a_removed_one_deleted_and_the_others_left_alone(pluto):
    initiate = ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    three = [link("rv-21"), link("rv-31", peer="192.0.2.3", mark=31), link("rv-41", peer="192.0.2.4", mark=41)]
    pluto.apply(files=three,
                secrets=[secret("rv-21"), secret("rv-31"), secret("rv-41")], initiate=initiate)
    before = pluto.started()
    pid = pluto.tree.pluto_pid()

    result = pluto.apply(files=[link("rv-21"), link("rv-31", peer="192.0.2.33", mark=31)],
                         secrets=[secret("rv-21"), secret("rv-31")], initiate=initiate)
    assert result["changed"] and not result.get("failed"), result
    assert result["written"] == ["routevpn-rv-31.conf"] and sorted(result["removed"]) == [
        "routevpn-rv-41.conf", "routevpn-rv-41.secrets"]
    assert sorted(result["deleted"]) == ["rv-31-v4", "rv-31-v6", "rv-41-v4", "rv-41-v6"]
    assert sorted(result["added"]) == ["rv-31-v4", "rv-31-v6"]
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    after = pluto.started()
    # rv-21's IKE SA is the one it had; rv-31's is new; pluto was not restarted.
    assert after["rv-21"] == before["rv-21"] and after["rv-31"] > before["rv-31"]
    assert pluto.tree.pluto_pid() == pid
    assert "routevpn-rv-41.conf" not in pluto.files()


def test_a_changed_key_is_reread_without_touching_a_conn(pluto):
    pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")], initiate=["rv-21-v4", "rv-21-v6"])
    before = pluto.started()
    result = pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21", psk="second-secret-0123456789abcdef")],
                         initiate=["rv-21-v4", "rv-21-v6"])
    assert result["changed"] and result["replaced"] == ["routevpn-rv-21.secrets"], result
    assert result["added"] == [] and result["deleted"] == []
    assert pluto.started() == before
    assert "second-secret" not in repr(result)
    assert (pluto.tree.conf_dir / "routevpn-rv-21.secrets").read_text().count("second-secret") == 1


def test_a_conn_pluto_refuses_brings_the_previous_files_and_conns_back(pluto):
    pluto.apply(files=[link("rv-21"), link("rv-31", peer="192.0.2.3", mark=31)],
                secrets=[secret("rv-21"), secret("rv-31")], initiate=["rv-21-v4", "rv-21-v6"])
    previous = (pluto.tree.conf_dir / "routevpn-rv-21.conf").read_text()
    # The parser takes any proposal string; pluto's algorithm parser refuses this one.
    refused = pluto.apply(files=[link("rv-21", esp="aes_gcm999"), link("rv-31", peer="192.0.2.3", mark=31)],
                          secrets=[secret("rv-21"), secret("rv-31")], initiate=["rv-21-v4", "rv-21-v6"])
    assert refused.get("failed") and "pluto refused rv-21-v4, rv-21-v6" in refused["msg"], refused
    assert "put back" in refused["msg"]
    assert (pluto.tree.conf_dir / "routevpn-rv-21.conf").read_text() == previous
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    assert "rv-21" in pluto.started()
    assert not [name for name in pluto.files() if name.startswith(".routevpn-")]


def test_a_configuration_that_does_not_parse_changes_nothing(pluto):
    pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")])
    before = dict((name, (pluto.tree.conf_dir / name).read_text()) for name in pluto.files())
    broken = {"name": "routevpn-rv-31.conf", "content": "conn rv-31-v4\n\tleft=192.0.2.1\n\tright\n"}
    result = pluto.apply(files=[link("rv-21"), broken], secrets=[secret("rv-21")])
    assert result.get("failed") and "does not parse" in result["msg"] and "nothing was loaded" in result["msg"], result
    assert dict((name, (pluto.tree.conf_dir / name).read_text()) for name in pluto.files()) == before
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6"]


def test_conns_pluto_lost_are_added_again_though_no_file_changed(pluto):
    pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")], initiate=["rv-21-v4"])
    pluto.tree.whack("--name", "rv-21-v4", "--delete", netns=pluto.netns)
    assert pluto.loaded() == ["rv-21-v6"]
    result = pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")], initiate=["rv-21-v4"])
    assert result["changed"] and result["written"] == [] and result["added"] == ["rv-21-v4"], result
    assert result["initiated"] == ["rv-21-v4"]
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6"] and "rv-21" in pluto.started()


def test_a_conn_not_named_as_the_modules_stays_loaded(pluto):
    (pluto.tree.conf_dir / "site.conf").write_text(link("mine")["content"].replace("rv-", ""))
    pluto.tree.run("addconn", "--ctlsocket", str(pluto.tree.run_dir / "pluto.ctl"), "--config",
                   str(pluto.tree.conf_file), "mine-v4", netns=pluto.netns)
    result = pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")])
    assert "mine-v4" not in result["deleted"], result
    assert "mine-v4" in pluto.loaded() and "site.conf" in pluto.files()


def test_check_mode_and_diff_show_the_change_and_change_nothing(pluto):
    pluto.apply(files=[link("rv-21")], secrets=[secret("rv-21")])
    before = dict((name, (pluto.tree.conf_dir / name).read_text()) for name in pluto.files())
    checked = pluto.apply(check=True, files=[link("rv-21", peer="192.0.2.22"), link("rv-31", peer="192.0.2.3")],
                          secrets=[secret("rv-21", psk="third-secret-0123456789abcdef"), secret("rv-31")])
    assert checked["changed"] and sorted(checked["added"]) == ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    shown = dict((item["after_header"], item) for item in checked["diff"])
    assert "right=192.0.2.22" in shown["routevpn-rv-21.conf"]["after"]
    assert shown["routevpn-rv-21.secrets"]["after"] == "(secret)\n"
    assert "third-secret" not in repr(checked) and "first-secret" not in repr(checked)
    assert dict((name, (pluto.tree.conf_dir / name).read_text()) for name in pluto.files()) == before
    assert pluto.loaded() == ["rv-21-v4", "rv-21-v6"]


def test_restart_deletes_adds_and_starts_the_named_conns_again_and_no_other(pluto):
    initiate = ["rv-21-v4", "rv-21-v6", "rv-31-v4", "rv-31-v6"]
    files = [link("rv-21"), link("rv-31", peer="192.0.2.3", mark=31)]
    pluto.apply(files=files, secrets=[secret("rv-21"), secret("rv-31")], initiate=initiate)
    before = pluto.started()
    result = pluto.apply(files=files, secrets=[secret("rv-21"), secret("rv-31")], initiate=initiate,
                         restart=["rv-21-v4", "rv-21-v6"])
    assert result["changed"] and result["written"] == [], result
    assert result["deleted"] == ["rv-21-v4", "rv-21-v6"] and result["initiated"] == ["rv-21-v4", "rv-21-v6"]
    after = pluto.started()
    assert after["rv-21"] > before["rv-21"] and after["rv-31"] == before["rv-31"]

    unknown = pluto.apply(files=files, secrets=[secret("rv-21"), secret("rv-31")], restart=["rv-99-v4"])
    assert unknown.get("failed") and "restart names conns no file defines: rv-99-v4" in unknown["msg"], unknown
