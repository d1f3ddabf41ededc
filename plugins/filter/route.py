# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that turn a host's routing table into the imds.azure.route role's plan.

The documentation of each filter lives beside this file, in route_plan_linux.yml and
route_plan_windows.yml. The decision itself is in plugin_utils/_route.py.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.module_utils._text import shown
from ansible_collections.imds.azure.plugins.plugin_utils._route import (
    RouteDecisionError,
    RouteTableError,
    plan_linux,
    plan_windows,
)


class _ArgumentError(ValueError):
    """A filter argument of the wrong kind."""


def _optional(value: t.Any, name: str) -> str | None:
    """Role variables default to an empty string; treat that (and None) as 'not set'."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _ArgumentError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _bool(value: t.Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise _ArgumentError(f"{name} must be a boolean, got {shown(value)}")


def route_plan_linux(routes: t.Any, addresses: t.Any, state: str = "present", metric: t.Any = 1,
                     force: t.Any = False, interface: t.Any = None, gateway: t.Any = None) -> dict[str, t.Any]:
    """Plan the 169.254.169.254/32 route from `ip -j route` and `ip -j addr` output."""
    try:
        plan = plan_linux(routes, addresses, state=state, metric=metric, force=_bool(force, "force"),
                          interface=_optional(interface, "interface"), gateway=_optional(gateway, "gateway"))
    except (RouteTableError, RouteDecisionError, _ArgumentError) as exc:
        raise AnsibleFilterError(f"imds.azure.route_plan_linux: {exc}") from None
    return plan.as_dict()


def route_plan_windows(route_print: t.Any, state: str = "present", metric: t.Any = 1, force: t.Any = False,
                       interface: t.Any = None, gateway: t.Any = None) -> dict[str, t.Any]:
    """Plan the 169.254.169.254/32 route from Windows `route print -4` output."""
    try:
        plan = plan_windows(route_print, state=state, metric=metric, force=_bool(force, "force"),
                            interface=_optional(interface, "interface"), gateway=_optional(gateway, "gateway"))
    except (RouteTableError, RouteDecisionError, _ArgumentError) as exc:
        raise AnsibleFilterError(f"imds.azure.route_plan_windows: {exc}") from None
    return plan.as_dict()


class FilterModule:
    """The imds.azure.route_plan_linux and imds.azure.route_plan_windows filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "route_plan_linux": route_plan_linux,
            "route_plan_windows": route_plan_windows,
        }
