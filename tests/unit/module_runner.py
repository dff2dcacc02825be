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

from .collection_paths import COLLECTIONS_PATH, ansible_bin, ansible_env

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


def run_module(module, args, check=False, diff=True, python=None, netns=None):
    """``netns``: run the module inside this namespace, which it then sees as its own (public) one."""
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
        command = [interpreter, "-m", "ansible_collections.routevpn.mesh.plugins.modules." + module, handle.name]
        if netns:
            command = ["nsenter", "--net=/run/netns/" + netns] + command
        proc = subprocess.run(
            command,
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


def run_adhoc(tmp_path, module, args, check=False, python=None, netns=None):
    """``ansible localhost -m routevpn.mesh.MODULE``: argument_spec and AnsiballZ as in production.

    ``python="debian"`` makes Debian's /usr/bin/python3 (pyroute2 0.7) the
    module's interpreter.  Returns the task result of the json callback.
    """
    command = [ansible_bin("ansible"), "localhost", "-i", "localhost,", "-c", "local", "--diff",
               "-m", "routevpn.mesh." + module, "-a", json.dumps(args)]
    if check:
        command.append("--check")
    if netns:
        command = ["nsenter", "--net=/run/netns/" + netns] + command
    env = ansible_env(tmp_path, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    if python == "debian":
        env["ANSIBLE_PYTHON_INTERPRETER"] = DEBIAN_PYTHON
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=900)
    try:
        output = json.loads(proc.stdout)
        result = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible printed no task result (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
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
