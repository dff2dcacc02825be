"""bird_config against a real BIRD (bird2, as user bird in a scratch namespace), natively.

The module writes a configuration file that BIRD's own parser checks, and
loads it with the real birdc; what BIRD runs is read back with birdc.
"""

import grp
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import time
import uuid

import pytest

from ...module_runner import run_module

BIRD = "/usr/sbin/bird"

pytestmark = pytest.mark.skipif(not (os.path.exists(BIRD) and shutil.which("birdc")),
                                reason="needs bird2 (bird and birdc)")

CONFIG = """\
router id 192.0.2.1;
protocol device {}
%s
"""


def static(*names):
    """A configuration whose static protocols are ``names``: what BIRD runs shows which file it loaded."""
    return CONFIG % "\n".join("protocol static %s { ipv6; route 2001:db8:%x::/64 unreachable; }" % (name, index + 1)
                              for index, name in enumerate(names))


@pytest.fixture
def bird(scratch_netns_factory):
    """A directory for the file (readable by BIRD's user) and a way to start BIRD on it, in a scratch namespace."""
    netns = scratch_netns_factory("rvbc")
    # BIRD reads the file again as user bird on `configure`: not under pytest's private tmp directories.
    base = pathlib.Path("/run") / ("rvbc-" + uuid.uuid4().hex[:8])
    base.mkdir(mode=0o755)
    (base / "etc").mkdir(mode=0o750)
    shutil.chown(str(base / "etc"), group="bird")
    (base / "run").mkdir(mode=0o775)
    shutil.chown(str(base / "run"), user="bird", group="bird")
    state = {"process": None}
    path = base / "etc" / "bird.conf"
    socket = str(base / "run" / "bird.ctl")

    def start():
        state["process"] = subprocess.Popen(
            ["ip", "netns", "exec", netns, BIRD, "-f", "-u", "bird", "-g", "bird", "-c", str(path), "-s", socket],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _attempt in range(100):
            if birdc("show", "status").returncode == 0:
                return state["process"].pid
            time.sleep(0.05)
        raise AssertionError("BIRD did not answer on %s" % socket)

    def birdc(*command):
        return subprocess.run(["birdc", "-s", socket] + list(command), capture_output=True, text=True, check=False)

    def protocols():
        out = birdc("show", "protocols").stdout
        return sorted(line.split()[0] for line in out.splitlines()[2:] if line.split())

    def apply(content, check=False, diff=False, **args):
        args = dict({"path": str(path), "content": content, "owner": "root", "group": "bird", "mode": "0640",
                     "control_socket": socket}, **args)
        return run_module("bird_config", args, check=check, diff=diff)

    try:
        yield type("Bird", (), dict(path=path, base=base, start=staticmethod(start), birdc=staticmethod(birdc),
                                    protocols=staticmethod(protocols), apply=staticmethod(apply)))
    finally:
        if state["process"] is not None:
            state["process"].send_signal(signal.SIGTERM)
            state["process"].wait(timeout=10)
        shutil.rmtree(str(base), ignore_errors=True)


def test_a_new_file_is_written_with_its_attributes_and_loaded_into_the_running_bird(bird):
    bird.path.write_text(static("rv_one"))
    pid = bird.start()
    assert bird.protocols() == ["device1", "rv_one"]

    result = bird.apply(static("rv_one", "rv_two"))
    assert result["changed"] and result["written"] and result["reloaded"] and result["running"], result
    assert bird.protocols() == ["device1", "rv_one", "rv_two"]
    info = bird.path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == grp.getgrnam("bird").gr_gid
    # A reload, not a restart: the same process; no temporary file is left beside the configuration.
    assert bird.birdc("show", "status").returncode == 0 and os.path.exists("/proc/%d" % pid)
    assert sorted(os.listdir(str(bird.path.parent))) == ["bird.conf"]

    again = bird.apply(static("rv_one", "rv_two"))
    assert not again["changed"] and not again["written"] and not again["reloaded"], again


def test_a_text_bird_parser_refuses_leaves_the_working_file_and_bird_untouched(bird):
    bird.path.write_text(static("rv_one"))
    bird.start()
    before = bird.path.read_bytes()

    refused = bird.apply(static("rv_one") + "protocol nonsense {\n")
    assert refused.get("failed"), refused
    assert "BIRD's parser refused" in refused["msg"] and str(bird.path) in refused["msg"], refused["msg"]
    assert bird.path.read_bytes() == before
    assert bird.protocols() == ["device1", "rv_one"]
    assert sorted(os.listdir(str(bird.path.parent))) == ["bird.conf"]

    checked = bird.apply(static("rv_one") + "protocol nonsense {\n", check=True)
    assert checked.get("failed") and "BIRD's parser refused" in checked["msg"], checked


def test_a_file_the_running_bird_refuses_is_rolled_back_and_the_old_one_loaded_again(bird):
    bird.path.write_text(static("rv_one"))
    bird.start()
    before = bird.path.read_bytes()
    # bird -p runs as root and reads it; BIRD, as user bird, may not.
    private = bird.base / "private.conf"
    private.write_text("protocol static rv_hidden { ipv6; route 2001:db8:ff::/64 unreachable; }\n")
    private.chmod(0o600)

    refused = bird.apply(static("rv_one", "rv_two") + 'include "%s";\n' % private)
    assert refused.get("failed"), refused
    assert "BIRD refused the new configuration" in refused["msg"], refused["msg"]
    assert "put back and loaded again" in refused["msg"], refused["msg"]
    assert bird.path.read_bytes() == before
    assert bird.protocols() == ["device1", "rv_one"]
    # What BIRD runs is the old file's: a configure now changes nothing.
    assert "Reconfigured" in bird.birdc("configure").stdout
    assert bird.protocols() == ["device1", "rv_one"]


def test_without_a_running_bird_the_file_is_written_for_the_next_start(bird):
    result = bird.apply(static("rv_one"))
    assert result["changed"] and result["written"] and not result["reloaded"] and result["running"] is False, result
    bird.start()
    assert bird.protocols() == ["device1", "rv_one"]


def test_check_mode_and_diff_show_the_change_and_change_nothing(bird):
    bird.path.write_text(static("rv_one"))
    bird.path.chmod(0o640)
    shutil.chown(str(bird.path), group="bird")
    bird.start()
    before = bird.path.read_bytes()

    checked = bird.apply(static("rv_one", "rv_two"), check=True, diff=True)
    assert checked["changed"] and not checked["reloaded"] and checked["running"] is None, checked
    assert "protocol static rv_two" in checked["diff"]["after"]
    assert "protocol static rv_two" not in checked["diff"]["before"]
    assert bird.path.read_bytes() == before and bird.protocols() == ["device1", "rv_one"]
    assert sorted(os.listdir(str(bird.path.parent))) == ["bird.conf"]


def test_a_mode_change_alone_rewrites_the_attributes_without_a_reload(bird):
    bird.path.write_text(static("rv_one"))
    bird.path.chmod(0o644)
    shutil.chown(str(bird.path), group="bird")
    bird.start()
    result = bird.apply(static("rv_one"))
    assert result["changed"] and not result["written"] and not result["reloaded"], result
    assert stat.S_IMODE(bird.path.stat().st_mode) == 0o640


def test_an_unknown_group_is_an_error_naming_the_option(bird):
    result = bird.apply(static("rv_one"), group="no-such-group-here")
    assert result.get("failed") and "group: there is no group 'no-such-group-here'" in result["msg"], result
    assert not bird.path.exists()
