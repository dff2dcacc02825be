"""swanctl_config against a real charon (charon-systemd 5.9.8 in a scratch namespace), natively.

The files are written into a scratch swanctl tree; charon loads them over its
own VICI socket; what it holds is read back with the real swanctl.  This
kernel has no ESP, which only matters to SAs: connections, secrets and their
loading do not need it.
"""

import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid

import pytest

from ...module_runner import run_module

vici = pytest.importorskip("vici")

CHARON = "/usr/sbin/charon-systemd"

pytestmark = pytest.mark.skipif(not (os.path.exists(CHARON) and shutil.which("swanctl")),
                                reason="needs charon-systemd and swanctl")

CONNECTION = """\
connections {
  %(name)s {
    version = 2
    local_addrs = 192.0.2.1
    remote_addrs = %(remote)s
    local {
      auth = psk
      id = gw-1
    }
    remote {
      auth = psk
      id = %(name)s-peer
    }
    children {
      %(name)s {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        if_id_in = %(if_id)d
        if_id_out = %(if_id)d
        start_action = none
      }
    }
  }
}
"""
SECRET = """\
secrets {
  ike-%(name)s {
    id-1 = gw-1
    id-2 = %(name)s-peer
    secret = "%(psk)s"
  }
}
"""
PURGE = [r"^conf\.d/routevpn[-.].*\.conf$"]


def connection(name, remote="192.0.2.2", if_id=7):
    content = CONNECTION % dict(name=name, remote=remote, if_id=if_id)
    return {"name": "conf.d/routevpn-%s.conf" % name, "content": content}


def secret(name, psk="first-secret-0123456789abcdef"):
    return {"name": "conf.d/routevpn.secrets.%s.conf" % name, "content": SECRET % dict(name=name, psk=psk)}


@pytest.fixture
def charon(tmp_path, scratch_netns_factory):
    """A running charon in a scratch namespace, with its own swanctl tree and VICI socket."""
    netns = scratch_netns_factory("rvsc")
    run_dir = pathlib.Path("/run") / ("rvsc-" + uuid.uuid4().hex[:8])
    run_dir.mkdir()
    swanctl = tmp_path / "swanctl"
    (swanctl / "conf.d").mkdir(parents=True)
    (swanctl / "swanctl.conf").write_text("include conf.d/*.conf\n")
    socket = run_dir / "charon.vici"
    conf = tmp_path / "strongswan.conf"
    conf.write_text("charon-systemd {\n  plugins {\n    vici {\n      socket = unix://%s\n    }\n  }\n}\n"
                    "charon {\n  load_modular = yes\n  plugins {\n    include /etc/strongswan.d/charon/*.conf\n"
                    "  }\n}\nswanctl {\n  load = pem pkcs1 x509 revocation constraints pubkey openssl random\n}\n"
                    % socket)
    environment = dict(os.environ, STRONGSWAN_CONF=str(conf))
    process = subprocess.Popen(["ip", "netns", "exec", netns, CHARON], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = "unix://%s" % socket

    def swanctl_(*args):
        return subprocess.run(["swanctl"] + list(args) + ["--uri", uri], env=environment, capture_output=True,
                              text=True, check=False)

    for _attempt in range(200):
        if swanctl_("--stats").returncode == 0:
            break
        time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError("charon did not answer on %s" % socket)

    def apply(check=False, **args):
        args.setdefault("swanctl_dir", str(swanctl))
        args.setdefault("purge", PURGE)
        args.setdefault("uri", uri)
        return run_module("swanctl_config", args, check=check)

    def loaded():
        out = swanctl_("--list-conns", "--raw").stdout
        return sorted(line.split("{", 2)[1].split()[0] for line in out.splitlines()
                      if line.startswith("list-conn event {"))

    def shared_keys():
        return swanctl_("--list-creds", "--raw").stdout

    try:
        yield type("Charon", (), dict(swanctl=swanctl, uri=uri, apply=staticmethod(apply),
                                      loaded=staticmethod(loaded), swanctl_=staticmethod(swanctl_),
                                      process=process))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(str(run_dir), ignore_errors=True)


def test_check_apply_idempotent_and_loaded(charon):
    files = [connection("rv-21"), connection("rv-22", remote="192.0.2.3", if_id=8)]
    secrets = [secret("rv-21"), secret("rv-22")]
    checked = charon.apply(check=True, files=files, secrets=secrets, connections=["rv-21", "rv-22"])
    assert checked["changed"] is True and checked["_rc"] == 0, checked
    assert sorted(checked["written"]) == sorted(item["name"] for item in files + secrets)
    assert not (charon.swanctl / "conf.d" / "routevpn-rv-21.conf").exists(), "check mode wrote a file"
    assert charon.loaded() == []

    applied = charon.apply(files=files, secrets=secrets, connections=["rv-21", "rv-22"])
    assert applied["changed"] is True, applied
    assert applied["loaded"] == ["rv-21", "rv-22"] == charon.loaded()
    assert applied["loaded_before"] == []
    secret_file = charon.swanctl / "conf.d" / "routevpn.secrets.rv-21.conf"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # The diff shows the connection, never the key.
    assert "first-secret" not in str(applied), "a secret reached the result"
    assert any("(secret)" in entry["after"] for entry in applied["diff"])
    assert any("if_id_in = 7" in entry["after"] for entry in applied["diff"])

    assert applied["replaced"] == []

    again = charon.apply(files=files, secrets=secrets, connections=["rv-21", "rv-22"])
    assert (again["changed"], again["written"], again["removed"]) == (False, [], []), again

    rotated = charon.apply(files=files, secrets=[secrets[0], secret("rv-22", psk="second-secret-0123456789abcdef")],
                           connections=["rv-21", "rv-22"])
    assert (rotated["written"], rotated["replaced"]) == (["conf.d/routevpn.secrets.rv-22.conf"],) * 2, rotated
    assert "second-secret" not in str(rotated)


def test_a_link_removed_is_unloaded_and_its_files_purged(charon):
    files = [connection("rv-21"), connection("rv-22", if_id=8)]
    charon.apply(files=files, secrets=[secret("rv-21"), secret("rv-22")], connections=["rv-21", "rv-22"])
    (charon.swanctl / "conf.d" / "someone-elses.conf").write_text("# not ours\n")

    removed = charon.apply(files=files[:1], secrets=[secret("rv-21")], connections=["rv-21"])
    assert removed["changed"] is True, removed
    assert sorted(removed["removed"]) == ["conf.d/routevpn-rv-22.conf", "conf.d/routevpn.secrets.rv-22.conf"]
    assert removed["unloaded"] == ["rv-22"] and charon.loaded() == ["rv-21"]
    # No IKE_SA was up: nothing to close, and no error for it.
    assert removed["terminated"] == []
    assert (charon.swanctl / "conf.d" / "someone-elses.conf").exists(), "a file purge does not match was removed"


def test_a_charon_that_lost_its_connections_is_loaded_again(charon):
    files = [connection("rv-21")]
    charon.apply(files=files, secrets=[secret("rv-21")], connections=["rv-21"])
    # What a charon started again without a load holds: nothing (swanctl 5.9 has no --unload-conn).
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(charon.uri[len("unix://"):])
    vici.Session(sock).unload_conn({"name": "rv-21"})
    sock.close()
    assert charon.loaded() == []

    reloaded = charon.apply(files=files, secrets=[secret("rv-21")], connections=["rv-21"])
    assert (reloaded["changed"], reloaded["written"]) == (True, []), reloaded
    assert charon.loaded() == ["rv-21"]


def test_a_configuration_charon_refuses_puts_the_previous_files_back(charon):
    good = [connection("rv-21")]
    charon.apply(files=good, secrets=[secret("rv-21")], connections=["rv-21"])
    refused = connection("rv-21")
    # Parses, but charon rejects an if_id that is not a number.
    refused["content"] = refused["content"].replace("if_id_in = 7", "if_id_in = seven")

    failed = charon.apply(files=[refused], secrets=[secret("rv-21")], connections=["rv-21"])
    assert failed.get("failed") is True, failed
    assert "charon refused the new swanctl configuration" in failed["msg"], failed["msg"]
    assert "previous files were put back and loaded again" in failed["msg"]
    assert "invalid value for: if_id_in" in failed["msg"], failed["msg"]
    assert "plugin" not in failed["msg"], "strongSwan's plugin noise in the message"
    assert (charon.swanctl / "conf.d" / "routevpn-rv-21.conf").read_text() == good[0]["content"]
    assert charon.loaded() == ["rv-21"]


def test_a_tree_that_does_not_parse_is_not_loaded(charon):
    good = [connection("rv-21")]
    charon.apply(files=good, secrets=[secret("rv-21")], connections=["rv-21"])
    broken = connection("rv-21")
    broken["content"] = broken["content"].rstrip().rstrip("}")

    failed = charon.apply(files=[broken], secrets=[secret("rv-21")], connections=["rv-21"])
    assert failed.get("failed") is True, failed
    assert "does not parse" in failed["msg"], failed["msg"]
    assert (charon.swanctl / "conf.d" / "routevpn-rv-21.conf").read_text() == good[0]["content"]
    assert charon.loaded() == ["rv-21"]


def test_a_charon_that_does_not_answer_is_one_line(charon, tmp_path):
    failed = charon.apply(files=[connection("rv-21")], uri="unix://%s" % (tmp_path / "nothing.vici"))
    assert failed.get("failed") is True, failed
    assert failed["msg"] == "charon is not running: %s does not exist" % (tmp_path / "nothing.vici"), failed["msg"]
    assert not (charon.swanctl / "conf.d" / "routevpn-rv-21.conf").exists(), "written although nothing could load it"
    # In check mode it is the charon a fresh gateway's run would start: the files are compared all the same.
    checked = charon.apply(check=True, files=[connection("rv-21")], uri="unix://%s" % (tmp_path / "nothing.vici"))
    assert (checked.get("failed"), checked["changed"], checked["loaded_before"]) == (None, True, None), checked


@pytest.mark.parametrize("files, message", [
    ([{"name": "/etc/passwd", "content": ""}], "must be a relative path inside the swanctl directory"),
    ([{"name": "conf.d/../../x", "content": ""}], "must be a relative path inside the swanctl directory"),
    ([{"name": "conf.d/a.conf", "content": "", "mode": "rw"}], "is not an octal file mode"),
    ([{"name": "conf.d/a.conf", "content": ""}, {"name": "conf.d/a.conf", "content": ""}], "given more than once"),
])
def test_bad_arguments_change_nothing(charon, files, message):
    failed = charon.apply(files=files, load=False)
    assert failed.get("failed") is True and message in failed["msg"], failed
    assert os.listdir(str(charon.swanctl / "conf.d")) == []
