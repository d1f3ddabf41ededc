# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""imds.azure.scheduled_events: the module on POSIX hosts; on Windows hosts its client here, each request through win_uri."""

from __future__ import annotations

import types
import typing as t

from ansible_collections.imds.azure.plugins.plugin_utils._action import ImdsAction


class ActionModule(ImdsAction):

    MODULE = "scheduled_events"

    def run_module(self, module: types.ModuleType, params: dict[str, t.Any], transport: t.Any, evidence: t.Any,
                   limiter: t.Any) -> dict[str, t.Any]:
        # check mode: nothing is approved (no POST); reading events is safe and happens as on POSIX hosts
        return module.run(params, transport, check_mode=bool(self._task.check_mode), evidence=evidence,
                          limiter=limiter)
