"""Run a role or a playbook with ansible-playbook against this machine (connection local)."""

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

from ..collection_paths import COLLECTIONS_PATH, ansible_bin, ansible_env

_RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)", re.MULTILINE)

_RESULT = re.compile(r"^(?:ok|changed|failed|fatal): \[[^\]]+\](?:: FAILED!)? => (?P<json>\{.*\})$")


class PlaybookRun(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        counters = ("ok", "changed", "failed", "unreachable")
        self.recap = dict((m.group("host"), dict((k, int(m.group(k))) for k in counters))
                          for m in _RECAP.finditer(self.output.split("PLAY RECAP", 1)[-1]))

    def task_results(self, task):
        """Results of the tasks (and handlers) whose title contains ``task``, parsed from the output of ``-v``."""
        results, inside = [], False
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                inside = task in line
                continue
            match = _RESULT.match(line) if inside else None
            if match and match.group("json"):
                results.append(json.loads(match.group("json")))
        return results

    def changed(self, host):
        return self.recap[host]["changed"]

    def __repr__(self):
        # pytest shortens long reprs in assertion messages: the failures first.
        failures = [line for line in self.output.splitlines() if line.startswith(("fatal:", "failed:", "ERROR!"))
                    or "FAILED!" in line]
        return "rc=%d\n%s\n--- output ---\n%s" % (self.rc, "\n".join(failures), self.output[-6000:])


@contextlib.contextmanager
def held(name):
    """One holder at a time of ``name`` across the xdist workers (an flock in the temporary directory)."""
    path = os.path.join(tempfile.gettempdir(), "routevpn-tests-%s.lock" % name)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def systemd_unit_dir_held():
    """Let one test at a time install units in /etc/systemd/system.

    The roles install their template units there under fixed names and each
    test removes them when it ends; a test on another xdist worker would
    otherwise lose its unit between two of its runs and see a change.
    """
    with held("systemd-units"):
        yield


def write_inventory(tmp_path, hosts, group="routevpn_gateways", group_vars=None):
    """hosts: {name: vars}; every host is reached with connection local."""
    inventory = {group: {"hosts": dict((name, dict(variables, ansible_connection="local"))
                                       for name, variables in hosts.items()),
                         "vars": group_vars or {}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def write_playbook(tmp_path, plays, name="playbook.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def run_playbook(tmp_path, inventory, playbook, check=False, extra=(), env=None, timeout=900, netns=None):
    """``netns``: run ansible-playbook in this network namespace, which the gateway then sees as its public one."""
    command = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(playbook), "--diff"]
    if netns:
        # nsenter, not `ip netns exec`: the latter also unshares the mount namespace, and a namespace the
        # playbook creates (a bind mount under /run/netns) would not be seen outside of it.
        command = ["nsenter", "--net=/run/netns/" + netns] + command
    if check:
        command.append("--check")
    command.extend(extra)
    proc = subprocess.run(command, capture_output=True, text=True, env=ansible_env(tmp_path, **(env or {})),
                          timeout=timeout, check=False)
    return PlaybookRun(proc)


def collection_loader():
    """Let Ansible's plugin loader find this collection's filters in templates.

    ansible-test units installs Ansible's collection finder; plain pytest
    (PYTHONPATH=build/collections) imports ansible_collections as ordinary
    namespace packages, which have no collection metadata.  Those packages
    are imported again through the finder; the modules in them stay as they
    are, so a test and a filter share one module (and its exception classes).
    """
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    if AnsibleCollectionConfig.collection_finder is None:
        for name in [name for name, module in sys.modules.items()
                     if name.split(".")[0] == "ansible_collections" and getattr(module, "__file__", None) is None]:
            del sys.modules[name]
        _AnsibleCollectionFinder(paths=[str(COLLECTIONS_PATH)])._install()


def render(template, variables):
    """Render a role template with Ansible's own templating, as the template module would."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    collection_loader()

    trusted = dict((key, trust_as_template(value) if isinstance(value, str) else value)
                   for key, value in variables.items())
    return Templar(loader=DataLoader(), variables=trusted).template(trust_as_template(template.read_text()))
