# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Scheduled events: the document IMDS serves, read into plain data, and the choices made on it.

Everything here is pure: no HTTP, and the time comes in as an argument. The module
``imds.azure.scheduled_events`` fetches the document, and this file says what it holds
(``parse_document``), which events concern this VM, which events an approval covers
(``plan_approval``), which events a rule approves (``read_rules``, ``matching_rule``), which
events are still listed (``still_listed``, the end of an event) and, for a wait, when to stop
polling (``poll_until``).

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

The document comes from a server, so nothing in it is trusted: numbers are read from
ASCII digits only (``str.isdigit()`` takes ``"²"`` and ``"١٢"``), every date is checked
against the range ``datetime`` holds, and text from the document reaches messages only
through ``printable()``. Work is linear in the size of the document.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._text import printable, shown, whole_number

EVENTS_PATH = "/metadata/scheduledevents"
EVENT_TYPES: tuple[str, ...] = ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")
EVENT_SOURCES: tuple[str, ...] = ("Platform", "User")
APPROVE_ALL = "all_for_this_vm"
SCHEDULED = "Scheduled"
STARTED = "Started"
RULE_KEYS: tuple[str, ...] = ("event_types", "event_sources", "max_duration")

_UTC = datetime.timezone.utc
# RFC 1123 as IMDS writes it ("Mon, 11 Apr 2022 22:26:58 GMT"), the day name optional and
# a numeric zone allowed as RFC 2822 does; four-digit years only, and none before 100
# (email.utils reads "01 Jan 0001" as 2001).
_RFC1123 = re.compile(r"(?:[A-Za-z]{3},\s*)?[0-9]{1,2}\s+[A-Za-z]{3}\s+([0-9]{4})\s+[0-9]{2}:[0-9]{2}(?::[0-9]{2})?"
                      r"\s+(?:[A-Za-z]{1,5}|[+-][0-9]{4})\Z", re.ASCII)
MAX_DATE_LENGTH = 64  # longer than any date IMDS writes
MAX_DURATION = 10 ** 9  # seconds (about 31 years): more is no estimate of an interruption
MAX_WARNED_IDS = 5  # event ids named in one warning


class EventsDocumentError(ValueError):
    """The answer is not a scheduled-events document; the message says what is wrong."""


class EventsDocument(t.NamedTuple):
    """A parsed document: its incarnation, every event (as ``event()`` returns them), warnings."""

    incarnation: int
    events: list[dict[str, t.Any]]
    warnings: list[str]


class Rule(t.NamedTuple):
    """One approval rule: an event matches when it has every property the rule names.

    ``None`` means the rule does not look at that property. ``max_duration``: the event's
    ``DurationInSeconds`` is known and at most this many seconds.
    """

    event_types: frozenset[str] | None
    event_sources: frozenset[str] | None
    max_duration: float | None

    def describe(self) -> str:
        """``Freeze events from Platform lasting at most 10 s`` for messages and reports."""
        kinds = "/".join(sorted(self.event_types)) if self.event_types else "any"
        text = f"{kinds} events"
        if self.event_sources:
            text += f" from {'/'.join(sorted(self.event_sources))}"
        if self.max_duration is not None:
            text += f" lasting at most {self.max_duration:g} s"
        return text


class ApprovalPlan(t.NamedTuple):
    """What an approval covers: ids to POST, ids already started, ids not in the document."""

    approve: list[str]
    already_started: list[str]
    not_found: list[str]


def not_before(value: str, now: float) -> tuple[str | None, int | None]:
    """Read a ``NotBefore`` value: return it as ISO 8601 UTC and as whole seconds from ``now``.

    ``now`` is a Unix time. IMDS sends RFC 1123 dates (``Mon, 11 Apr 2022 22:26:58 GMT``);
    an ISO 8601 date is read too. ``""`` (the event has started) gives ``(None, None)``.
    Raises ValueError when the value is no date, or one that ``datetime`` cannot hold in UTC.
    """
    text = value.strip()
    if not text:
        return None, None
    when = None
    if len(text) <= MAX_DATE_LENGTH:
        try:
            when = _rfc1123(text) or _iso8601(text)
        except (OverflowError, ValueError, TypeError, IndexError):  # out of datetime's range
            when = None
    if when is None:
        raise ValueError(f"NotBefore {shown(value)} is not a date")
    seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        raise ValueError(f"NotBefore {shown(value)} is not a date")
    return when.replace(tzinfo=None).isoformat(timespec="seconds") + "Z", int(round(seconds))


def _rfc1123(text: str) -> datetime.datetime | None:
    shape = _RFC1123.match(text)
    if not shape:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):  # Python < 3.10 raises TypeError
        return None
    if when is None or when.year != int(shape.group(1)):
        return None
    return when.replace(tzinfo=_UTC) if when.tzinfo is None else when.astimezone(_UTC)


def _iso8601(text: str) -> datetime.datetime | None:
    if "T" not in text or not text.isascii():
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
        raise EventsDocumentError(f"{where} has {key} {shown(value)}, which is not a string")
    return value


def _duration(raw: t.Mapping[str, t.Any], where: str) -> int | None:
    """``DurationInSeconds``: whole seconds, or None where Azure does not know (-1) or does not say."""
    value = raw.get("DurationInSeconds")
    if value is None:
        return None
    number = whole_number(value)
    if number is None:
        raise EventsDocumentError(f"{where} has DurationInSeconds {shown(value)}, which is not a whole number")
    if number > MAX_DURATION:
        raise EventsDocumentError(f"{where} has DurationInSeconds {shown(value)}, more than {MAX_DURATION} "
                                  "seconds, which is no duration IMDS gives")
    return number if number >= 0 else None


def event(raw: t.Any, index: int, now: float, vm_name: str | None,
          undated: list[tuple[str, str]]) -> dict[str, t.Any]:
    """One event of ``Events`` as the module returns it (keys in snake_case, "" as None).

    ``undated`` collects the id and ``NotBefore`` of an event whose ``NotBefore`` is no
    date (``parse_document`` warns about them).
    """
    where = f"event {index}"
    if not isinstance(raw, dict):
        raise EventsDocumentError(f"{where} is {type(raw).__name__}, not an object")
    event_id = raw.get("EventId")
    if not isinstance(event_id, str) or not event_id.strip():
        raise EventsDocumentError(f"{where} has no EventId")
    where = f"event {printable(event_id, 80)}"
    resources = raw.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(name, str) for name in resources):
        raise EventsDocumentError(f"{where} has Resources {shown(resources)}, which is not a list of VM names")
    when = _string(raw, "NotBefore", where) or ""
    try:
        iso, seconds = not_before(when, now)
    except ValueError:
        undated.append((event_id, when))
        iso, seconds = None, None
    duration = _duration(raw, where)
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
        "duration_in_seconds": duration,
    }
    result["for_this_vm"] = concerns(result, vm_name)
    return result


def parse_document(doc: t.Any, now: float, vm_name: str | None = None) -> EventsDocument:
    """Read a scheduled-events document. Raises EventsDocumentError when it is not one.

    ``now`` is the Unix time that ``seconds_until_not_before`` counts from; ``vm_name``
    sets each event's ``for_this_vm``. Events keep the document's order. Events whose
    ``NotBefore`` is no date are kept (their times null) and named in one warning.
    """
    if not isinstance(doc, dict):
        raise EventsDocumentError(f"the answer is {type(doc).__name__}, not an object with DocumentIncarnation and Events")
    if "Events" not in doc:
        keys = ", ".join(printable(str(key), 40) for key in sorted(map(str, doc))[:10])
        more = ", ..." if len(doc) > 10 else ""
        raise EventsDocumentError(f"it has no Events list (its keys: {keys or 'none'}{more})")
    raw_events = doc["Events"]
    if not isinstance(raw_events, list):
        raise EventsDocumentError(f"Events is {type(raw_events).__name__}, not a list")
    raw_incarnation = doc.get("DocumentIncarnation")
    incarnation = whole_number(raw_incarnation)
    if incarnation is None or incarnation < 0:
        raise EventsDocumentError(f"DocumentIncarnation {shown(raw_incarnation)} is not a whole number")
    undated: list[tuple[str, str]] = []
    events = [event(raw, index, now, vm_name, undated) for index, raw in enumerate(raw_events)]
    seen: set[str] = set()
    for item in events:
        key = item["event_id"].casefold()
        if key in seen:
            raise EventsDocumentError(f"event {printable(item['event_id'], 80)} is listed twice")
        seen.add(key)
    warnings = []
    if undated:
        several = len(undated) > 1
        ids = describe([event_id for event_id, _when in undated], [], MAX_WARNED_IDS)
        warnings.append(f"Scheduled event{'s' if several else ''} {ids}: NotBefore {shown(undated[0][1])} is not a "
                        f"date{' (nor are the others)' if several else ''}; {'their' if several else 'its'} "
                        "not_before_utc and seconds_until_not_before are null.")
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


def _names(value: t.Any, allowed: tuple[str, ...], where: str, key: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where} {key} must be a non-empty list of {', '.join(allowed)}, not {shown(value)}")
    unknown = [item for item in value if item not in allowed]
    if unknown:
        raise ValueError(f"{where} {key} has {shown(unknown[0])}; use {', '.join(allowed)} (case matters, as in IMDS)")
    return frozenset(value)


def read_rules(raw: t.Any, what: str = "approve_rules") -> list[Rule]:
    """Check approval rules (a list of dicts with RULE_KEYS) and return them as Rules.

    Raises ValueError with a one-line message naming the rule (1-based) and the key. A rule
    must name at least one property: an empty rule would match every event.
    """
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"{what} must be a list of rules (dicts with {', '.join(RULE_KEYS)}), not {shown(raw)}")
    rules = []
    for index, item in enumerate(raw, 1):
        where = f"{what} rule {index}"
        if not isinstance(item, t.Mapping):
            raise ValueError(f"{where} must be a dict with {', '.join(RULE_KEYS)}, not {shown(item)}")
        unknown = sorted(str(key) for key in item if key not in RULE_KEYS)
        if unknown:
            raise ValueError(f"{where} has unknown key {printable(unknown[0], 40)}; use {', '.join(RULE_KEYS)}")
        present = {key: value for key, value in item.items() if value is not None}
        if not present:
            raise ValueError(f"{where} names nothing, so it would match every event; give it event_types "
                             f"({', '.join(EVENT_TYPES)}), event_sources or max_duration")
        duration = present.get("max_duration")
        if duration is not None:
            if isinstance(duration, bool) or not isinstance(duration, (int, float, str)):
                raise ValueError(f"{where} max_duration must be a number of seconds, not {shown(duration)}")
            try:
                duration = float(duration)
            except ValueError:
                raise ValueError(f"{where} max_duration must be a number of seconds, not {shown(duration)}") from None
            if not (math.isfinite(duration) and 0 <= duration <= MAX_DURATION):
                raise ValueError(f"{where} max_duration must be between 0 and {MAX_DURATION} seconds, "
                                 f"not {shown(present['max_duration'])}")
        rules.append(Rule(_names(present.get("event_types"), EVENT_TYPES, where, "event_types"),
                          _names(present.get("event_sources"), EVENT_SOURCES, where, "event_sources"),
                          duration))
    return rules


def rule_matches(item: t.Mapping[str, t.Any], rule: Rule) -> bool:
    """Tell whether an event (as ``event()`` returns it) has every property ``rule`` names.

    An event whose duration is unknown (null) never matches a ``max_duration`` rule, nor
    does one without ``EventSource`` (api-versions before 2019-08-01) an ``event_sources`` rule.
    """
    if rule.event_types is not None and item.get("event_type") not in rule.event_types:
        return False
    if rule.event_sources is not None and item.get("event_source") not in rule.event_sources:
        return False
    if rule.max_duration is not None:
        duration = item.get("duration_in_seconds")
        if duration is None or duration > rule.max_duration:
            return False
    return True


def matching_rule(item: t.Mapping[str, t.Any], rules: t.Sequence[Rule]) -> int | None:
    """The index of the first rule the event matches, or None."""
    for index, rule in enumerate(rules):
        if rule_matches(item, rule):
            return index
    return None


def still_listed(events: list[dict[str, t.Any]], event_ids: t.Iterable[str]) -> list[str]:
    """The ids among ``event_ids`` that the document still lists (ignoring case), as IMDS spells them.

    An event is over once it has left the document; until then it is listed, Scheduled or Started.
    """
    by_id = {item["event_id"].casefold(): item["event_id"] for item in events}
    found: list[str] = []
    for event_id in event_ids:
        spelled = by_id.get(event_id.strip().casefold())
        if spelled is not None and spelled not in found:
            found.append(spelled)
    return found


def all_started(events: list[dict[str, t.Any]], event_ids: t.Iterable[str]) -> bool:
    """Whether none of ``event_ids`` is still Scheduled (each has started, or is over)."""
    wanted = {event_id.strip().casefold() for event_id in event_ids}
    return not any(item["event_id"].casefold() in wanted and item["event_status"] == SCHEDULED for item in events)


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
    if not (math.isfinite(timeout) and timeout >= 0 and math.isfinite(interval) and interval > 0):
        raise ValueError(f"poll_until needs a finite timeout >= 0 and interval > 0, not {timeout!r} and {interval!r}")
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


def describe(ids: t.Sequence[str], events: list[dict[str, t.Any]], limit: int = 10) -> str:
    """``id (Type), id (Type)`` for messages: printable, at most ``limit`` ids, then how many more."""
    types = {item["event_id"]: item["event_type"] for item in events}
    named = [f"{printable(event_id, 80)} ({printable(types[event_id], 40)})" if types.get(event_id)
             else printable(event_id, 80) for event_id in ids[:limit]]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(named) + more
