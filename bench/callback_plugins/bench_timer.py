# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-task timings as JSON, for the benchmarks in bench/.

A task's time runs from the moment the strategy starts it to the moment its last host
result arrives: what ansible.posix.profile_tasks shows, machine-readable. ``start`` and
``end`` are time.monotonic() values, the clock the emulator's request log uses.
Enable with ANSIBLE_CALLBACKS_ENABLED=bench_timer, ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins
and name the output file in BENCH_TIMER_OUT.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: write per-task timings to the JSON file named by BENCH_TIMER_OUT
description:
  - Used by the imds.azure benchmarks; not part of the collection.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[dict] = []
        self._play = ""
        self._started = time.monotonic()

    def v2_playbook_on_play_start(self, play) -> None:
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._tasks.append({"play": self._play, "name": task.get_name(), "action": task.action,
                            "start": time.monotonic(), "results": {}})

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result, status: str) -> None:
        if self._tasks:
            self._tasks[-1]["results"][result._host.get_name()] = {"status": status, "end": time.monotonic()}

    def v2_runner_on_ok(self, result) -> None:
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        tasks = []
        for task in self._tasks:
            ends = [r["end"] for r in task["results"].values()]
            tasks.append({
                "play": task["play"], "name": task["name"], "action": task["action"],
                "seconds": (max(ends) - task["start"]) if ends else None,
                "start": task["start"], "end": max(ends) if ends else None,
                "hosts": len(task["results"]),
                "statuses": sorted({r["status"] for r in task["results"].values()}),
            })
        path = os.environ.get("BENCH_TIMER_OUT")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"total_seconds": time.monotonic() - self._started, "tasks": tasks}, handle, indent=1)
