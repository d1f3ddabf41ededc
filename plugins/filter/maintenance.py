# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The filter that decides, for the imds.azure.maintenance role, what to do with each scheduled event.

Its documentation lives beside this file, in maintenance_plan.yml; the decision itself is in
plugin_utils/_maintenance.py.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.plugin_utils._maintenance import MaintenanceInputError, plan


def maintenance_plan(hosts: t.Any, approve_rules: t.Any = None, drain_rules: t.Any = None, max_share: t.Any = 0.5,
                     max_fault_domains: t.Any = 1, max_update_domains: t.Any = 1, approve_outside: t.Any = False,
                     drained: t.Any = None) -> dict[str, t.Any]:
    """Plan a maintenance round from what each host of the play gathered."""
    try:
        return plan(hosts, approve_rules=approve_rules, drain_rules=drain_rules, max_share=max_share,
                    max_fault_domains=max_fault_domains, max_update_domains=max_update_domains,
                    approve_outside=approve_outside, drained=drained)
    except MaintenanceInputError as exc:
        raise AnsibleFilterError(f"imds.azure.maintenance_plan: {exc}") from None


class FilterModule:
    """The imds.azure.maintenance_plan filter."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"maintenance_plan": maintenance_plan}
