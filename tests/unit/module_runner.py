"""Run a collection module for real, the way Ansible runs it, and return its JSON result.

``run_module`` executes the module file in a fresh interpreter with its
arguments file.  ``python="debian"`` runs it under Debian's /usr/bin/python3,
whose pyroute2 is 0.7.x, with only ansible-core borrowed from this
environment, so that both pyroute2 generations are exercised.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import ansible

from .collection_paths import COLLECTIONS_PATH

DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_path():
    """A directory holding only ansible-core, for Debian's interpreter."""
    shim = pathlib.Path(tempfile.gettempdir()) / "routevpn-debian-python-shim"
    shim.mkdir(exist_ok=True)
    link = shim / "ansible"
    if not link.exists():
        link.symlink_to(pathlib.Path(ansible.__file__).parent)
    return str(shim)


def debian_pyroute2_available():
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import pyroute2"], capture_output=True, check=False)
    return probe.returncode == 0


def run_module(module, args, check=False, diff=True, python=None):
    interpreter = DEBIAN_PYTHON if python == "debian" else sys.executable
    paths = [str(COLLECTIONS_PATH)]
    if python == "debian":
        paths.insert(0, _debian_path())
    payload = dict(args)
    payload.update(_ansible_check_mode=check, _ansible_diff=diff)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
    try:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        proc = subprocess.run(
            [interpreter, "-m", "ansible_collections.routevpn.mesh.plugins.modules." + module, handle.name],
            capture_output=True, text=True, env=env, check=False, timeout=600,
        )
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc %d):\n%s\n%s" % (module, proc.returncode, proc.stdout, proc.stderr))
    result["_rc"] = proc.returncode
    return result


def ip_json(*args, netns=None):
    """`ip -j -d` output, the independent witness of what the module did."""
    command = ["ip", "-j", "-d"] + (["-n", netns] if netns else []) + list(args)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else []


def link_of(name, netns=None):
    found = ip_json("link", "show", "dev", name, netns=netns)
    return found[0] if found else None


def addresses_of(name, netns=None):
    found = ip_json("addr", "show", "dev", name, netns=netns)
    if not found:
        return []
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in found[0].get("addr_info", [])
                  if not a["local"].startswith("fe80:"))
