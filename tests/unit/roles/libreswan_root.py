"""libreswan for tests, in a root filesystem of its own.

Debian's libreswan conflicts with strongSwan, which this machine runs, so the
tests use a debootstrapped Debian 12 tree with libreswan
(tests/fixtures/libreswan/build-rootfs, built once and cached).  Each gateway
gets a writable overlay of it; its `ipsec` is the real one, run by chroot
through tests/fixtures/libreswan/ipsec-in-root, so the role's commands, the
template validation and pluto itself are libreswan 4.10's own.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from ..collection_paths import COLLECTION_ROOT

FIXTURES = COLLECTION_ROOT / "tests" / "fixtures" / "libreswan"


def rootfs():
    """The cached root filesystem, built on first use (about 1 to 5 minutes, network needed)."""
    if os.geteuid() != 0:
        pytest.skip("libreswan tests need root (chroot, mounts, namespaces)")
    if shutil.which("debootstrap") is None and not os.environ.get("ROUTEVPN_LIBRESWAN_ROOTFS"):
        pytest.skip("debootstrap is not installed: the libreswan root filesystem cannot be built")
    proc = subprocess.run([str(FIXTURES / "build-rootfs")], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError("building the libreswan root filesystem failed:\n%s" % proc.stderr[-3000:])
    return pathlib.Path(proc.stdout.strip().splitlines()[-1])


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True, capture_output=True)


class LibreswanRoot(object):
    """A writable overlay of the libreswan tree at ``path``, with /proc and /dev, and its `ipsec`."""

    def __init__(self, lower, base):
        self.base = base
        self.path = base / "root"
        for name in ("upper", "work", "root"):
            (base / name).mkdir(parents=True)
        _mount("-t", "overlay", "overlay", "-o",
               "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, base / "upper", base / "work"), str(self.path))
        _mount("-t", "proc", "proc", str(self.path / "proc"))
        _mount("--bind", "/dev", str(self.path / "dev"))
        self.ipsec = base / "ipsec"
        self.ipsec.write_text('#!/bin/sh\nexec %s %s "$@"\n' % (FIXTURES / "ipsec-in-root", self.path))
        self.ipsec.chmod(0o755)

    def run(self, *args, check=True, netns=None):
        command = [str(self.ipsec)] + list(args)
        if netns:
            command = ["ip", "netns", "exec", netns] + command
        return subprocess.run(command, capture_output=True, text=True, check=check)

    @property
    def conf_dir(self):
        return self.path / "etc" / "ipsec.d"

    def pluto_pid(self):
        try:
            pid = int((self.path / "run" / "pluto" / "pluto.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            if os.readlink("/proc/%d/root" % pid) != str(self.path):
                return None
        except OSError:
            return None
        return pid

    def stop_pluto(self):
        pid = self.pluto_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _attempt in range(50):
            if not os.path.exists("/proc/%d" % pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def close(self):
        self.stop_pluto()
        for mount in ("dev", "proc", ""):
            subprocess.run(["umount", "-l", str(self.path / mount)], capture_output=True, check=False)


@pytest.fixture(scope="session")
def libreswan_rootfs():
    return rootfs()


@pytest.fixture
def libreswan_root_factory(libreswan_rootfs, tmp_path):
    """make(name) -> a LibreswanRoot under tmp_path; pluto stopped and everything unmounted afterwards."""
    made = []

    def make(name):
        made.append(LibreswanRoot(libreswan_rootfs, tmp_path / ("lsroot-" + name)))
        return made[-1]

    try:
        yield make
    finally:
        for root in made:
            root.close()
