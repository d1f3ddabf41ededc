# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A test-only notification callback: when each host's task started and ended, and its result.

The fault matrix runs many scenarios (one per host) in one ansible-playbook run; this
callback gives each host its own time, measured on the controller from the moment the
worker for that host is started to the moment its result is processed. It writes one
JSON line per host and task to the file named by FAULT_TIMER_FILE.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: fault_timer
type: notification
short_description: Record per-host task times and results for the imds.azure fault matrix
description:
  - Writes one JSON line per host and task (start, end, status, result) to E(FAULT_TIMER_FILE).
  - Test helper of the imds.azure collection; not shipped.
author:
  - imds.azure maintainers (@imds-azure)
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "fault_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[tuple[str, str], float] = {}
        self._path = os.environ.get("FAULT_TIMER_FILE")

    def v2_runner_on_start(self, host, task) -> None:
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result, status: str) -> None:
        end = time.monotonic()
        host = result._host.get_name()
        start = self._started.pop((host, result._task._uuid), end)
        line = {"host": host, "task": result._task.get_name(), "status": status,
                "start": start, "end": end, "seconds": round(end - start, 3),
                "result": result._result}
        if self._path:
            with open(self._path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, "skipped")
