"""libreswan 4.10 for tests, extracted from Debian's packages, not installed.

Debian's libreswan conflicts with strongSwan, which this machine runs, so
tests/fixtures/libreswan/extract-debs unpacks the .debs with dpkg-deb (once,
cached).  Each gateway gets its own tree (ipsec.conf, ipsec.d, NSS database,
run directory) and an ``ipsec`` wrapper that runs the extracted ``ipsec``
script on it: the role's commands, its template validation and pluto are
libreswan's own.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from ..collection_paths import COLLECTION_ROOT

EXTRACT = COLLECTION_ROOT / "tests" / "fixtures" / "libreswan" / "extract-debs"

# pluto runs addconn from /usr/libexec/ipsec, a path compiled in: in a mount
# namespace of its own, the extracted directory is mounted there.
WRAPPER = """#!/bin/sh
export IPSEC_EXECDIR={root}/usr/libexec/ipsec IPSEC_SBINDIR={root}/usr/sbin IPSEC_CONF={conf}
export IPSEC_CONFDDIR={confd} IPSEC_NSSDIR={nss} IPSEC_RUNDIR={run}
export LD_LIBRARY_PATH={root}/usr/lib/x86_64-linux-gnu PATH={root}/usr/bin:$PATH
if [ "$1" = pluto ]; then
  shift
  exec unshare --mount --propagation private sh -c \\
    'mount -t tmpfs tmpfs /usr/libexec && mkdir /usr/libexec/ipsec &&
     mount --bind "$0/usr/libexec/ipsec" /usr/libexec/ipsec && exec "$0/usr/libexec/ipsec/pluto" "$@"' \\
    {root} "$@" --nssdir {nss}
fi
exec sh {root}/usr/sbin/ipsec "$@"
"""

IPSEC_CONF = """config setup
\tipsecdir={confd}
\tsecretsfile={secrets}
\tdumpdir={run}
include {confd}/*.conf
"""


def pluto_pid(pid_file):
    """The pid in pluto's pid file when that process is alive, else None."""
    try:
        pid = int(pathlib.Path(pid_file).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop_pluto(pid_file):
    """SIGTERM to the pluto of pid_file, SIGKILL when it is still there 5 s later."""
    pid = pluto_pid(pid_file)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(50):
        if not os.path.exists("/proc/%d" % pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def extracted():
    """The extracted packages' root (seconds on first use; needs apt's sources)."""
    if os.geteuid() != 0:
        pytest.skip("the libreswan tests need root (namespaces, mounts)")
    proc = subprocess.run([str(EXTRACT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError("extracting libreswan failed:\n%s" % proc.stderr[-3000:])
    return pathlib.Path(proc.stdout.strip().splitlines()[-1]) / "root"


class LibreswanTree(object):
    """One gateway's libreswan: its files under ``base``, its run directory, its ``ipsec``."""

    def __init__(self, root, base):
        self.root = root
        self.base = base
        self.conf_dir = base / "ipsec.d"
        self.conf_file = base / "ipsec.conf"
        self.nss_dir = base / "nss"
        # A unix socket path has at most 107 characters: not under tmp_path.
        self.run_dir = pathlib.Path("/run") / ("rvls-" + uuid.uuid4().hex[:8])
        for path in (self.conf_dir, self.nss_dir, self.run_dir):
            path.mkdir(parents=True)
        secrets = base / "ipsec.secrets"
        values = dict(root=root, conf=self.conf_file, confd=self.conf_dir, nss=self.nss_dir, run=self.run_dir,
                      secrets=secrets)
        self.conf_file.write_text(IPSEC_CONF.format(**values))
        secrets.write_text("include %s/*.secrets\n" % self.conf_dir)
        self.ipsec = base / "ipsec"
        self.ipsec.write_text(WRAPPER.format(**values))
        self.ipsec.chmod(0o755)

    def tools_env(self):
        """Environment in which NSS's certutil and pk12util are the extracted ones (libnss3-tools)."""
        return {"PATH": "%s/usr/bin:%s" % (self.root, os.environ.get("PATH", "/usr/bin:/bin")),
                "LD_LIBRARY_PATH": "%s/usr/lib/x86_64-linux-gnu" % self.root}

    def certutil(self, *args, check=True):
        return subprocess.run(["certutil", "-d", "sql:%s" % self.nss_dir] + list(args), capture_output=True,
                              text=True, check=check, env=dict(os.environ, **self.tools_env()))

    def run(self, *args, netns=None, check=True):
        command = [str(self.ipsec)] + list(args)
        if netns:
            command = ["ip", "netns", "exec", netns] + command
        return subprocess.run(command, capture_output=True, text=True, check=check)

    def whack(self, *args, netns=None, check=True):
        return self.run("whack", "--ctlsocket", str(self.run_dir / "pluto.ctl"), *args, netns=netns, check=check)

    def pluto_pid(self):
        return pluto_pid(self.run_dir / "pluto.pid")

    def close(self):
        stop_pluto(self.run_dir / "pluto.pid")
        shutil.rmtree(str(self.run_dir), ignore_errors=True)
