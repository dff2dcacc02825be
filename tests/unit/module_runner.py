"""Run a collection module for real, the way Ansible runs it, and return its JSON result.

``run_module`` executes the module file in a fresh interpreter with its
arguments file.  ``python="debian"`` runs it under Debian's /usr/bin/python3,
whose pyroute2 is 0.7.x, with only ansible-core borrowed from this
environment, so that both pyroute2 generations are exercised.
"""

import atexit
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import ansible

from .collection_paths import COLLECTIONS_PATH, ansible_bin, ansible_env

DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_path():
    """A directory holding only ansible-core, for Debian's interpreter.

    Named after the ansible-core it links to: each ansible-test run copies
    ansible-core somewhere new, and pytest-xdist workers ask at the same time,
    so the link is made under a temporary name and renamed into place.
    """
    target = pathlib.Path(ansible.__file__).parent
    tag = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    root = pathlib.Path(tempfile.gettempdir())
    shim = root / ("routevpn-debian-python-shim-" + tag)
    if not (shim / "ansible").is_dir():
        shim.mkdir(exist_ok=True)
        staging = shim / ("ansible.%d" % os.getpid())
        staging.unlink(missing_ok=True)
        staging.symlink_to(target)
        os.replace(staging, shim / "ansible")
        for stale in root.glob("routevpn-debian-python-shim*"):
            if stale != shim and not (stale / "ansible").exists():
                shutil.rmtree(stale, ignore_errors=True)
    return str(shim)


def debian_pyroute2_available():
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import pyroute2"], capture_output=True, check=False)
    return probe.returncode == 0


_servers = {}


def _server(interpreter, paths):
    """The warm interpreter (module_server.py) for this interpreter, started on first use."""
    server = _servers.get(interpreter)
    if server is None or server.poll() is not None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        server = subprocess.Popen(
            [interpreter, str(pathlib.Path(__file__).with_name("module_server.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = server.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise AssertionError("the module server under %s did not start: %r" % (interpreter, ready))
        _servers[interpreter] = server
    return server


@atexit.register
def _stop_servers():
    for server in _servers.values():
        if server.poll() is None:
            server.stdin.close()
            server.wait(timeout=30)


def run_module(module, args, check=False, diff=True, python=None, netns=None):
    """Run MODULE with ARGS as ``python -m`` would, in a process of its own.

    ``netns``: the module runs inside this namespace, which it then sees as
    its own (public) one.  The process is forked from a warm interpreter
    (module_server.py) that has imported ansible-core and pyroute2 already.
    """
    interpreter = DEBIAN_PYTHON if python == "debian" else sys.executable
    paths = [str(COLLECTIONS_PATH)]
    if python == "debian":
        paths.insert(0, _debian_path())
    payload = dict(args)
    payload.update(_ansible_check_mode=check, _ansible_diff=diff)
    with tempfile.TemporaryDirectory(prefix="routevpn-module-") as scratch:
        args_file = os.path.join(scratch, "args.json")
        with open(args_file, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        request = dict(module="ansible_collections.routevpn.mesh.plugins.modules." + module, args_file=args_file,
                       stdout=os.path.join(scratch, "stdout"), stderr=os.path.join(scratch, "stderr"),
                       netns=netns)
        server = _server(interpreter, paths)
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise AssertionError("the module server under %s died" % interpreter)
        returncode = json.loads(reply)["rc"]
        with open(request["stdout"]) as handle:
            stdout = handle.read()
        with open(request["stderr"]) as handle:
            stderr = handle.read()
    try:
        result = json.loads(stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc %d):\n%s\n%s" % (module, returncode, stdout, stderr))
    result["_rc"] = returncode
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
    env = ansible_env(tmp_path, strategy="linear", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                      ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
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


def run_steps(tmp_path, module, args, checks, python=None):
    """One ansible-playbook run of MODULE with ARGS once per entry of CHECKS (True: check mode).

    The integration order (check, apply, check, apply) in a single run: under
    TCG each start of ansible-playbook costs a minute or more.  Returns the
    task results in order, from the json callback.
    """
    playbook = tmp_path / "steps.yml"
    tasks = [{"name": "step %d" % i, "routevpn.mesh." + module: args, "check_mode": check, "diff": True,
              "ignore_errors": True}
             for i, check in enumerate(checks)]
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    command = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    env = ansible_env(tmp_path, strategy="linear", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    if python == "debian":
        env["ANSIBLE_PYTHON_INTERPRETER"] = DEBIAN_PYTHON
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=1800)
    try:
        tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
        return [task["hosts"]["localhost"] for task in tasks]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook printed no task results (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))


def ip_in(netns, *args):
    """Run `ip -n NETNS ARGS` (failing the test when it fails); its output."""
    return subprocess.run(["ip", "-n", netns] + list(args), check=True, capture_output=True, text=True).stdout


def ip_json(*args, netns=None):
    """`ip -j -d` output, the independent witness of what the module did."""
    command = ["ip", "-j", "-d"] + (["-n", netns] if netns else []) + list(args)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else []


def link_of(name, netns=None):
    found = ip_json("link", "show", "dev", name, netns=netns)
    return found[0] if found else None


def if_id_of(link):
    """An XFRM interface's if_id from `ip -j -d`, which prints it in hex ("0x10c8") since iproute2 6.x."""
    value = link["linkinfo"]["info_data"]["if_id"]
    return int(value, 0) if isinstance(value, str) else value


def addresses_of(name, netns=None):
    found = ip_json("addr", "show", "dev", name, netns=netns)
    if not found:
        return []
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in found[0].get("addr_info", [])
                  if not a["local"].startswith("fe80:"))
