# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Scheduled events: the document IMDS serves, read into plain data, and the choices made on it.

Everything here is pure: no HTTP, and the time comes in as an argument. The module
``imds.azure.scheduled_events`` fetches the document, and this file says what it holds
(``parse_document``), which events concern this VM, which events an approval covers
(``plan_approval``) and, for a wait, when to stop polling (``poll_until``).

A document as Microsoft documents it::

    {"DocumentIncarnation": 2,
     "Events": [{"EventId": "C7061BAC-...", "EventStatus": "Scheduled", "EventType": "Freeze",
                 "ResourceType": "VirtualMachine", "Resources": ["WestNO_0", "WestNO_1"],
                 "NotBefore": "Mon, 11 Apr 2022 22:26:58 GMT",
                 "Description": "...", "EventSource": "Platform", "DurationInSeconds": 5}]}

``Description`` arrives with api-version 2019-04-01, ``EventSource`` with 2019-08-01 and
``DurationInSeconds`` with 2020-07-01; older versions leave them out. ``NotBefore`` is
``""`` once an event has started, and ``DurationInSeconds`` is ``-1`` when Azure does not
know how long the impact lasts.
"""

from __future__ import annotations

import datetime
import email.utils
import typing as t

EVENTS_PATH = "/metadata/scheduledevents"
EVENT_TYPES: tuple[str, ...] = ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")
APPROVE_ALL = "all_for_this_vm"
SCHEDULED = "Scheduled"

_UTC = datetime.timezone.utc


class EventsDocumentError(ValueError):
    """The answer is not a scheduled-events document; the message says what is wrong."""


class EventsDocument(t.NamedTuple):
    """A parsed document: its incarnation, every event (as ``event()`` returns them), warnings."""

    incarnation: int
    events: list[dict[str, t.Any]]
    warnings: list[str]


class ApprovalPlan(t.NamedTuple):
    """What an approval covers: ids to POST, ids already started, ids not in the document."""

    approve: list[str]
    already_started: list[str]
    not_found: list[str]


def not_before(value: str, now: float) -> tuple[str | None, int | None]:
    """Read a ``NotBefore`` value: return it as ISO 8601 UTC and as whole seconds from ``now``.

    ``now`` is a Unix time. IMDS sends RFC 1123 dates (``Mon, 11 Apr 2022 22:26:58 GMT``);
    an ISO 8601 date is read too. ``""`` (the event has started) gives ``(None, None)``.
    Raises ValueError when the value is no date.
    """
    text = value.strip()
    if not text:
        return None, None
    when = _rfc1123(text) or _iso8601(text)
    if when is None:
        raise ValueError(f"NotBefore {value!r} is not a date")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ"), int(round(when.timestamp() - now))


def _rfc1123(text: str) -> datetime.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):  # Python < 3.10 raises TypeError
        return None
    if when is None:
        return None
    return when.replace(tzinfo=_UTC) if when.tzinfo is None else when.astimezone(_UTC)


def _iso8601(text: str) -> datetime.datetime | None:
    if "T" not in text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return when.replace(tzinfo=_UTC) if when.tzinfo is None else when.astimezone(_UTC)


def concerns(event: t.Mapping[str, t.Any], vm_name: str | None) -> bool:
    """Tell whether ``vm_name`` is one of the event's ``Resources`` (Azure names ignore case)."""
    if not vm_name:
        return False
    wanted = vm_name.casefold()
    return any(resource.casefold() == wanted for resource in event.get("resources", ()))


def _string(raw: t.Mapping[str, t.Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventsDocumentError(f"{where} has {key} {value!r}, which is not a string")
    return value


def event(raw: t.Any, index: int, now: float, vm_name: str | None, warnings: list[str]) -> dict[str, t.Any]:
    """One event of ``Events`` as the module returns it (keys in snake_case, "" as None)."""
    where = f"event {index}"
    if not isinstance(raw, dict):
        raise EventsDocumentError(f"{where} is {type(raw).__name__}, not an object")
    event_id = raw.get("EventId")
    if not isinstance(event_id, str) or not event_id.strip():
        raise EventsDocumentError(f"{where} has no EventId")
    where = f"event {event_id}"
    resources = raw.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(name, str) for name in resources):
        raise EventsDocumentError(f"{where} has Resources {resources!r}, which is not a list of VM names")
    when = _string(raw, "NotBefore", where) or ""
    try:
        iso, seconds = not_before(when, now)
    except ValueError as exc:
        warnings.append(f"Scheduled {where}: {exc}; not_before_utc and seconds_until_not_before are null.")
        iso, seconds = None, None
    duration = raw.get("DurationInSeconds")
    if isinstance(duration, str) and duration.strip().lstrip("-").isdigit():
        duration = int(duration)
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        raise EventsDocumentError(f"{where} has DurationInSeconds {duration!r}, which is not a whole number")
    result = {
        "event_id": event_id,
        "event_type": _string(raw, "EventType", where) or None,
        "event_status": _string(raw, "EventStatus", where) or None,
        "resource_type": _string(raw, "ResourceType", where) or None,
        "resources": list(resources),
        "not_before": when or None,
        "not_before_utc": iso,
        "seconds_until_not_before": seconds,
        "description": _string(raw, "Description", where) or None,
        "event_source": _string(raw, "EventSource", where) or None,
        "duration_in_seconds": duration if duration is not None and duration >= 0 else None,
    }
    result["for_this_vm"] = concerns(result, vm_name)
    return result


def parse_document(doc: t.Any, now: float, vm_name: str | None = None) -> EventsDocument:
    """Read a scheduled-events document. Raises EventsDocumentError when it is not one.

    ``now`` is the Unix time that ``seconds_until_not_before`` counts from; ``vm_name``
    sets each event's ``for_this_vm``. Events keep the document's order.
    """
    if not isinstance(doc, dict):
        raise EventsDocumentError(f"the answer is {type(doc).__name__}, not an object with DocumentIncarnation and Events")
    if "Events" not in doc:
        raise EventsDocumentError(f"it has no Events list (its keys: {', '.join(sorted(map(str, doc))) or 'none'})")
    raw_events = doc["Events"]
    if not isinstance(raw_events, list):
        raise EventsDocumentError(f"Events is {type(raw_events).__name__}, not a list")
    incarnation = doc.get("DocumentIncarnation")
    if isinstance(incarnation, str) and incarnation.strip().isdigit():
        incarnation = int(incarnation)
    if isinstance(incarnation, bool) or not isinstance(incarnation, int):
        raise EventsDocumentError(f"DocumentIncarnation {incarnation!r} is not a whole number")
    warnings: list[str] = []
    events = [event(raw, index, now, vm_name, warnings) for index, raw in enumerate(raw_events)]
    seen: set[str] = set()
    for item in events:
        key = item["event_id"].casefold()
        if key in seen:
            raise EventsDocumentError(f"event {item['event_id']} is listed twice")
        seen.add(key)
    return EventsDocument(incarnation, events, warnings)


def select(events: list[dict[str, t.Any]], this_vm_only: bool = True,
           types: t.Iterable[str] | None = None) -> list[dict[str, t.Any]]:
    """The events that concern this VM (or all), optionally of some types only."""
    kinds = set(types) if types is not None else None
    return [item for item in events
            if (item["for_this_vm"] or not this_vm_only) and (kinds is None or item["event_type"] in kinds)]


def plan_approval(events: list[dict[str, t.Any]], requested: t.Sequence[str]) -> ApprovalPlan:
    """Decide what approving ``requested`` means for the document's ``events``.

    ``requested`` is a list of EventIds (matched ignoring case, POSTed as IMDS spells
    them), or ``[APPROVE_ALL]``: every Scheduled event that names this VM. Only
    Scheduled events are approved; the others have started already. Ids that are not
    in the document (the event is over, or never was) are reported, not refused.
    Raises ValueError when APPROVE_ALL comes with other entries or an id is blank.
    """
    if APPROVE_ALL in requested:
        if len(requested) > 1:
            raise ValueError(f"approve takes either {APPROVE_ALL} alone or a list of event ids, not both")
        return ApprovalPlan([item["event_id"] for item in events
                             if item["for_this_vm"] and item["event_status"] == SCHEDULED], [], [])
    by_id = {item["event_id"].casefold(): item for item in events}
    plan = ApprovalPlan([], [], [])
    seen: set[str] = set()
    for wanted in requested:
        key = wanted.strip().casefold()
        if not key:
            raise ValueError("approve holds an empty event id")
        if key in seen:
            continue
        seen.add(key)
        item = by_id.get(key)
        if item is None:
            plan.not_found.append(wanted.strip())
        elif item["event_status"] == SCHEDULED:
            plan.approve.append(item["event_id"])
        else:
            plan.already_started.append(item["event_id"])
    return plan


def start_requests(event_ids: t.Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The POST body that approves ``event_ids``."""
    return {"StartRequests": [{"EventId": event_id} for event_id in event_ids]}


T = t.TypeVar("T")


def poll_until(fetch: t.Callable[[], T], done: t.Callable[[T], bool], timeout: float, interval: float,
               clock: t.Callable[[], float], sleep: t.Callable[[float], None],
               first: T | None = None) -> tuple[T, bool, int]:
    """Call ``fetch`` every ``interval`` seconds until ``done`` says yes or ``timeout`` passes.

    ``first`` is an answer already in hand (it counts as the first poll). Returns the last
    answer, whether it was done, and how many times ``fetch`` was called. The last poll
    happens at the deadline, so an answer that arrives just in time still counts.
    """
    deadline = clock() + timeout
    answer = fetch() if first is None else first
    calls = 0 if first is not None else 1
    while not done(answer):
        remaining = deadline - clock()
        if remaining <= 0:
            return answer, False, calls
        sleep(min(interval, remaining))
        answer = fetch()
        calls += 1
    return answer, True, calls


def describe(ids: t.Sequence[str], events: list[dict[str, t.Any]]) -> str:
    """``id (Type), id (Type)`` for messages."""
    types = {item["event_id"]: item["event_type"] for item in events}
    return ", ".join(f"{event_id} ({types[event_id]})" if types.get(event_id) else event_id for event_id in ids)
