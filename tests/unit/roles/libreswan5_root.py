"""libreswan 5.2 for tests: Debian 13's root filesystem, one overlay of it per gateway.

Debian 12 has only libreswan 4.10, and its libreswan conflicts with this
machine's strongSwan; ``scripts/build-libreswan-root`` builds (once, cached by
a stamp) the Debian 13 root the lab boots its libreswan gateways on.  Each
gateway here is an overlay mount of it (the built root read-only below, a
directory of the test above) with /proc, /dev and a fresh /run, every mount
private so that nothing propagates back to this machine.  Ansible reaches it
with ``community.general.chroot``: the role's tasks run with the root's own
Python 3.13, ``ipsec``, ``ipsec addconn`` and pluto 5.2, with the role's
default paths.  ansible-playbook runs inside the gateway's scratch network
namespace, and so does pluto, which the role starts there.
"""

import os
import pathlib
import re
import subprocess

import pytest

from ..collection_paths import COLLECTION_ROOT
from .libreswan_root import pluto_pid, stop_pluto
from .role_runner import held

BUILD = COLLECTION_ROOT / "scripts" / "build-libreswan-root"
# debootstrap's messages when it cannot reach the mirror.
_NO_NETWORK = re.compile(r"Failed getting release file|Couldn't download|Could not resolve|Temporary failure|"
                         r"Network is unreachable|Connection refused|No route to host|Connection timed out")


def built_root():
    """The Debian 13 root's directory, built by scripts/build-libreswan-root when missing (about 50 s)."""
    if os.geteuid() != 0:
        pytest.skip("the libreswan 5.2 tests need root (mounts, chroot, namespaces)")
    # Two xdist workers must not debootstrap into the same directory.
    with held("libreswan-root"):
        proc = subprocess.run([str(BUILD)], capture_output=True, text=True, check=False)
    if proc.returncode == 2 and "debootstrap is missing" in proc.stderr:
        pytest.skip("libreswan 5.2's root cannot be built here: debootstrap is missing (apt-get install debootstrap)")
    if proc.returncode != 0:
        # The script names its debootstrap log: "debootstrap failed, see DIR.log".
        named = re.search(r"see (\S+\.log)", proc.stderr)
        log = pathlib.Path(named.group(1)) if named else None
        text = log.read_text(errors="replace") if log and log.exists() else ""
        if _NO_NETWORK.search(text):
            pytest.skip("libreswan 5.2's root cannot be built here: Debian's mirror is out of reach (%s)"
                        % _NO_NETWORK.search(text).group(0))
        raise AssertionError("scripts/build-libreswan-root failed:\n%s\n%s" % (proc.stderr[-3000:], text[-3000:]))
    root = pathlib.Path(proc.stdout.strip().splitlines()[-1])
    assert (root / "usr" / "libexec" / "ipsec" / "pluto").exists(), root
    return root


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True, capture_output=True, text=True)


class Libreswan5Root(object):
    """One gateway's root: ``path`` is where it is mounted, ``netns`` the network namespace pluto runs in."""

    def __init__(self, lower, base, netns):
        self.base = base
        self.netns = netns
        self.path = base / "root"
        for name in ("upper", "work", "root"):
            (base / name).mkdir(parents=True)
        self.mounted = []
        try:
            _mount("-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
                   % (lower, base / "upper", base / "work"), str(self.path))
            self.mounted.append(self.path)
            # Private first: mounts below it then neither propagate out nor receive this machine's.
            _mount("--make-private", str(self.path))
            _mount("-t", "proc", "proc", str(self.path / "proc"))
            self.mounted.append(self.path / "proc")
            _mount("--bind", "/dev", str(self.path / "dev"))
            self.mounted.append(self.path / "dev")
            _mount("--make-private", str(self.path / "dev"))
            # No /run/systemd/system: the role's routevpn_service_manager auto picks direct.
            _mount("-t", "tmpfs", "tmpfs", str(self.path / "run"))
            self.mounted.append(self.path / "run")
        except Exception:
            self.close()
            raise

    def host_vars(self):
        """What the inventory needs to reach this root with the chroot connection."""
        return {"ansible_connection": "community.general.chroot", "ansible_host": str(self.path),
                "ansible_python_interpreter": "/usr/bin/python3"}

    def file(self, path):
        """A path inside the root, seen from this machine."""
        return self.path / str(path).lstrip("/")

    def run(self, *command, check=True):
        """``command`` inside the root and the gateway's namespace, as the role runs it."""
        return subprocess.run(["ip", "netns", "exec", self.netns, "chroot", str(self.path)] + list(command),
                              capture_output=True, text=True, check=check)

    def ipsec(self, *args, check=True):
        return self.run("ipsec", *args, check=check)

    def checkconfig(self, path):
        """libreswan 5.2's parser on a file inside the root: (exit status, output)."""
        proc = self.ipsec("addconn", "--config", str(path), "--checkconfig", check=False)
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def pluto_pid(self):
        return pluto_pid(self.file("/run/pluto/pluto.pid"))

    def close(self):
        stop_pluto(self.file("/run/pluto/pluto.pid"))
        for path in reversed(self.mounted):
            if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        self.mounted = []
