"""Ansible callback for the benchmarks: wall time of every task, written as JSON.

Enabled by bench/xfrm_bench.py with ANSIBLE_CALLBACK_PLUGINS pointing here,
ANSIBLE_CALLBACKS_ENABLED=bench_timer and BENCH_TIMER_OUT=<file>.  A task's
time runs from its start to its last host result, so a looped task counts all
its items, and ansible-playbook's own start-up is left out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: write each task's wall time to the JSON file named by BENCH_TIMER_OUT
description:
  - For routevpn.mesh's benchmarks (bench/); not part of the collection.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._tasks = []
        self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._current = {"task": task.get_name(), "start": time.time(), "end": None, "changed": False,
                         "failed": False}
        self._tasks.append(self._current)

    def _result(self, result, failed=False):
        if self._current is None:
            return
        self._current["end"] = time.time()
        self._current["changed"] = self._current["changed"] or bool(result._result.get("changed"))
        self._current["failed"] = self._current["failed"] or failed

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._result(result)

    def v2_runner_on_unreachable(self, result):
        self._result(result, failed=True)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_TIMER_OUT")
        if not path:
            return
        for task in self._tasks:
            task["seconds"] = None if task["end"] is None else round(task["end"] - task["start"], 3)
        with open(path, "w") as handle:
            json.dump(self._tasks, handle, indent=1)
