"""Ansible callback for the benchmarks: how many module runs each host cost, loop items counted one by one.

The recap's task count hides loops: a template task looping over 16 links is
one task and 16 module runs.  Enabled with ANSIBLE_CALLBACK_PLUGINS pointing
here, ANSIBLE_CALLBACKS_ENABLED=module_runs and MODULE_RUNS_OUT=<file>; each
playbook run appends one JSON line: per host, the runs of modules that
execute on the host (``remote``), of actions that stay on the controller
(``controller``: set_fact, debug, assert, ...), the skipped ones, and the
runs per action.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from collections import Counter, defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: module_runs
type: aggregate
short_description: append each host's module runs (loop items counted) to the JSON file named by MODULE_RUNS_OUT
description:
  - For routevpn.mesh's benchmarks (bench/); not part of the collection.
"""

# Actions that never run a module on the host.
CONTROLLER_ONLY = {
    "ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug", "ansible.builtin.assert", "assert",
    "ansible.builtin.fail", "fail", "ansible.builtin.meta", "meta", "ansible.builtin.include_tasks",
    "include_tasks", "ansible.builtin.include_role", "include_role", "ansible.builtin.include_vars",
    "include_vars", "ansible.builtin.add_host", "add_host", "ansible.builtin.group_by", "group_by",
    "ansible.builtin.validate_argument_spec", "validate_argument_spec", "ansible.builtin.pause", "pause",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._runs = defaultdict(Counter)
        self._actions = defaultdict(Counter)
        self._started = time.time()

    def _count(self, result, skipped=False):
        host = result._host.get_name()
        action = result._task.action
        if skipped:
            self._runs[host]["skipped"] += 1
            return
        kind = "controller" if action in CONTROLLER_ONLY else "remote"
        self._runs[host][kind] += 1
        self._actions[host][action] += 1

    def _looped(self, result):
        return isinstance(result._result.get("results"), list)

    def v2_runner_on_ok(self, result):
        if not self._looped(result):
            self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self._looped(result):
            self._count(result)

    def v2_runner_on_skipped(self, result):
        if not self._looped(result):
            self._count(result, skipped=True)

    def v2_runner_item_on_ok(self, result):
        self._count(result)

    def v2_runner_item_on_failed(self, result):
        self._count(result)

    def v2_runner_item_on_skipped(self, result):
        self._count(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("MODULE_RUNS_OUT")
        if not path:
            return
        record = {"started": self._started, "seconds": round(time.time() - self._started, 1), "hosts": {
            host: dict(self._runs[host], actions=dict(self._actions[host])) for host in sorted(self._runs)}}
        with open(path, "a") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")
