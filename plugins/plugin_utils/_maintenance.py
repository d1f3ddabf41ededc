# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The imds.azure.maintenance role's decisions: which events touch the play's hosts, and what to do with each.

Pure: the role gathers each host's VM name, fault and update domain and the events its
scheduled-events document lists (every VM's: the VMs of an availability set share one
document), and ``plan()`` says, per event,

- ``approve``: a rule approves it at once, without taking hosts out of service;
- ``drain``: its hosts are drained, it is approved once all of them are out, the role waits
  for its end and restores them;
- ``leave``: no rule asks for anything; Azure starts it at its NotBefore time;
- ``hold``: a rule asks for it, but acting would break a limit (too many hosts out, more
  fault or update domains than allowed, VMs outside the play); it is not approved.

Events are handled one after another, so the hosts out of service at any time are those of
one event (plus hosts an earlier, failed run left drained). Rules are read and matched by
module_utils/_events.py, as the module reads them.
"""

from __future__ import annotations

import math
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._events import (
    SCHEDULED, STARTED, Rule, matching_rule, read_rules)
from ansible_collections.imds.azure.plugins.module_utils._text import printable, shown

APPROVE, DRAIN, LEAVE, HOLD = "approve", "drain", "leave", "hold"
RESTORED_AFTER = ("Freeze", "Reboot", "Redeploy")  # a Preempt or Terminate takes the VM away for good
HOST_KEYS = ("host", "vm_name", "fault_domain", "update_domain", "events")
# Optional: "facts_vm_name", the VM name (azure_name) in the facts the domains were read from.


class MaintenanceInputError(ValueError):
    """What the role gathered, or one of its variables, cannot be planned with; the message says which."""


class Host(t.NamedTuple):
    host: str
    vm_name: str
    fault_domain: int | None
    update_domain: int | None
    events: list[dict[str, t.Any]]


class Limits(t.NamedTuple):
    """How much may be out of service at once: a share of the play's hosts, fault and update domains (0: any)."""

    max_share: float
    max_fault_domains: int
    max_update_domains: int
    approve_outside: bool

    def allowed_out(self, hosts: int) -> int:
        """Hosts that may be out at once: the share of ``hosts``, rounded down, and at least one."""
        return max(1, math.floor(self.max_share * hosts + 1e-9))


def _domain(value: t.Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MaintenanceInputError(f"{what} is {shown(value)}, not a number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MaintenanceInputError(f"{what} is {shown(value)}, not a number") from None
    if number < 0 or str(value).strip() not in (str(number), f"{number}.0"):
        raise MaintenanceInputError(f"{what} is {shown(value)}, not a whole number >= 0")
    return number


def _check_facts_are_its_own(host: str, vm_name: str, facts_vm_name: t.Any) -> None:
    """The fault and update domains must come from facts about this VM, not another host's."""
    if isinstance(facts_vm_name, str) and facts_vm_name.strip() and \
            facts_vm_name.strip().casefold() != vm_name.strip().casefold():
        raise MaintenanceInputError(
            f"the facts of host {printable(host, 80)} describe VM {printable(facts_vm_name, 80)}, not "
            f"{printable(vm_name, 80)}: ansible-core 2.21 gives hosts one shared set of facts after a run_once "
            "set_fact (ansible/ansible#87148); gather facts before it, or clear them (meta: clear_facts) before the role")


def read_hosts(raw: t.Any) -> list[Host]:
    """Check what the role gathered per host (HOST_KEYS); the VM names must be unique."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise MaintenanceInputError(f"the hosts must be a non-empty list of dicts with {', '.join(HOST_KEYS)}")
    hosts: list[Host] = []
    names: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, t.Mapping) or not isinstance(item.get("host"), str):
            raise MaintenanceInputError(f"a host entry is {shown(item)}, not a dict with {', '.join(HOST_KEYS)}")
        host = item["host"]
        vm_name = item.get("vm_name")
        if not isinstance(vm_name, str) or not vm_name.strip():
            raise MaintenanceInputError(f"host {printable(host, 80)} has no VM name")
        key = vm_name.strip().casefold()
        if key in names:
            raise MaintenanceInputError(f"hosts {printable(names[key], 80)} and {printable(host, 80)} are the same VM "
                                        f"({printable(vm_name, 80)}); list each VM once in the play")
        names[key] = host
        _check_facts_are_its_own(host, vm_name, item.get("facts_vm_name"))
        events = item.get("events")
        if not isinstance(events, list) or not all(isinstance(e, t.Mapping) and isinstance(e.get("event_id"), str)
                                                   for e in events):
            raise MaintenanceInputError(f"host {printable(host, 80)} has no list of events as "
                                        "imds.azure.scheduled_events returns them")
        hosts.append(Host(host, vm_name.strip(), _domain(item.get("fault_domain"), f"the fault domain of {host}"),
                          _domain(item.get("update_domain"), f"the update domain of {host}"), list(events)))
    return hosts


def read_limits(max_share: t.Any, max_fault_domains: t.Any, max_update_domains: t.Any,
                approve_outside: t.Any) -> Limits:
    try:
        share = float(max_share)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(max_share, bool) or not (0 < share <= 1):
        raise MaintenanceInputError(f"max_share must be a number above 0 and at most 1 (the share of the play's hosts "
                                    f"that may be out at once), not {shown(max_share)}")
    domains = []
    for name, value in (("max_fault_domains", max_fault_domains), ("max_update_domains", max_update_domains)):
        number = _whole(value)
        if number is None:
            raise MaintenanceInputError(f"{name} must be a whole number >= 0 (0: no limit), not {shown(value)}")
        domains.append(number)
    if not isinstance(approve_outside, bool):
        raise MaintenanceInputError(f"approve_outside must be true or false, not {shown(approve_outside)}")
    return Limits(share, domains[0], domains[1], approve_outside)


def _whole(value: t.Any) -> int | None:
    """A whole number >= 0, also from a string of digits (what ``-e name=2`` gives); None for anything else."""
    if isinstance(value, str) and 0 < len(value.strip()) <= 9 and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _merged_events(hosts: list[Host]) -> tuple[list[dict[str, t.Any]], dict[str, list[str]]]:
    """Every event any host listed, once (the copy furthest along wins), and which hosts saw each."""
    order = (SCHEDULED, STARTED)
    merged: dict[str, dict[str, t.Any]] = {}
    seen: dict[str, list[str]] = {}
    for host in hosts:
        for item in host.events:
            key = item["event_id"].casefold()
            seen.setdefault(key, []).append(host.host)
            known = merged.get(key)
            if known is None or (item.get("event_status") in order and known.get("event_status") in order
                                 and order.index(item["event_status"]) > order.index(known["event_status"])):
                merged[key] = dict(item)
    return list(merged.values()), seen


def _order(item: dict[str, t.Any]) -> tuple[int, str, str]:
    started = 0 if item["event_status"] == STARTED else 1
    return started, item.get("not_before_utc") or "9999", item["event_id"]


def _domains(hosts: list[Host], attribute: str) -> tuple[list[int], list[str]]:
    known = sorted({getattr(h, attribute) for h in hosts if getattr(h, attribute) is not None})
    unknown = [h.host for h in hosts if getattr(h, attribute) is None]
    return known, unknown


def _why_held(affected: list[Host], outside: list[str], still_out: list[str], group: int, limits: Limits) -> str | None:
    """Why acting on an event would break a limit, or None."""
    if outside and not limits.approve_outside:
        return (f"it names VMs that are not hosts of this play ({', '.join(printable(n, 80) for n in outside)}), which "
                "could not be drained; set imds_azure_maintenance_approve_outside to approve such events anyway")
    out = sorted({h.host for h in affected} | set(still_out))
    allowed = limits.allowed_out(group)
    if len(out) > allowed:
        return (f"it would take {len(out)} of {group} hosts out at once ({', '.join(out)}), more than the "
                f"{allowed} that imds_azure_maintenance_max_share {limits.max_share:g} allows")
    for attribute, limit, label in (("fault_domain", limits.max_fault_domains, "fault"),
                                    ("update_domain", limits.max_update_domains, "update")):
        if not limit:
            continue
        known, unknown = _domains(affected, attribute)
        if unknown:
            return (f"the {label} domain of {', '.join(unknown)} is not known (gather imds.azure.metadata_facts), so "
                    f"imds_azure_maintenance_max_{label}_domains cannot be kept")
        if len(known) > limit:
            return (f"its hosts are in {len(known)} {label} domains ({', '.join(map(str, known))}), more than "
                    f"imds_azure_maintenance_max_{label}_domains {limit}")
    return None


def plan(raw_hosts: t.Any, *, approve_rules: t.Any = None, drain_rules: t.Any = None, max_share: t.Any = 0.5,
         max_fault_domains: t.Any = 1, max_update_domains: t.Any = 1, approve_outside: t.Any = False,
         drained: t.Any = None) -> dict[str, t.Any]:
    """What to do with each event that names a host of the play (see the module docstring).

    ``drained``: what an earlier run left out of service, ``{host: {"event_id": ...}}`` (the
    role's state file). Hosts whose event is over are to be restored first; hosts whose
    event is still listed stay out, and count against the limits.
    """
    hosts = read_hosts(raw_hosts)
    limits = read_limits(max_share, max_fault_domains, max_update_domains, approve_outside)
    try:
        rules: dict[str, list[Rule]] = {
            APPROVE: read_rules(approve_rules, "imds_azure_maintenance_approve_rules"),
            DRAIN: read_rules(drain_rules, "imds_azure_maintenance_drain_rules")}
    except ValueError as exc:
        raise MaintenanceInputError(str(exc)) from None
    if drained is None or drained == "":
        drained = {}
    if not isinstance(drained, t.Mapping):
        raise MaintenanceInputError(f"the state of earlier runs must be a dict of hosts, not {shown(drained)}")
    by_name = {h.vm_name.casefold(): h for h in hosts}
    play_hosts = [h.host for h in hosts]
    events, seen = _merged_events(hosts)
    listed = {item["event_id"].casefold() for item in events}

    def left_by(host: str) -> str:
        entry = drained.get(host)
        return str(entry.get("event_id", "")) if isinstance(entry, t.Mapping) else ""

    restore_first = [h for h in play_hosts if h in drained and left_by(h).casefold() not in listed]
    still_out = [h for h in play_hosts if h in drained and h not in restore_first]
    elsewhere = sorted(str(h) for h in drained if h not in play_hosts)

    planned, unrelated = [], []
    for item in sorted(events, key=_order):
        resources = [str(name) for name in item.get("resources", [])]
        affected = [by_name[name.casefold()] for name in resources if name.casefold() in by_name]
        outside = [name for name in resources if name.casefold() not in by_name]
        if not affected:
            unrelated.append(item["event_id"])
            continue
        action, rule = LEAVE, None
        for kind in (APPROVE, DRAIN):
            index = matching_rule(item, rules[kind])
            if index is not None:
                action, rule = kind, rules[kind][index].describe()
                break
        reason = "it matches no rule, so Azure starts it at its NotBefore time" if action == LEAVE else None
        if action != LEAVE:
            others = [h for h in still_out if left_by(h).casefold() != item["event_id"].casefold()]
            held = _why_held(affected, outside, others, len(hosts), limits)
            if held:
                action, reason = HOLD, held
        saw = [h for h in play_hosts if h in seen.get(item["event_id"].casefold(), [])]
        names = {h.host for h in affected}
        bystanders = [h for h in saw if h not in names]
        planned.append({
            "event_id": item["event_id"], "event_type": item.get("event_type"),
            "event_status": item.get("event_status"), "event_source": item.get("event_source"),
            "duration_in_seconds": item.get("duration_in_seconds"), "not_before_utc": item.get("not_before_utc"),
            "resources": resources, "hosts": [h.host for h in affected], "outside": outside,
            "fault_domains": _domains(affected, "fault_domain")[0],
            "update_domains": _domains(affected, "update_domain")[0],
            "action": action, "rule": rule, "reason": reason,
            "coordinator": (bystanders or saw or [affected[0].host])[0],
            "restore": action == DRAIN and item.get("event_type") in RESTORED_AFTER,
        })
    return {"events": planned, "restore_first": restore_first, "still_out": still_out,
            "drained_elsewhere": elsewhere, "unrelated": unrelated, "hosts": len(hosts),
            "allowed_out": limits.allowed_out(len(hosts)),
            "act_on": [e for e in planned if e["action"] in (APPROVE, DRAIN)]}
