# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Scheduled events: their life, the clock they follow, and timelines loaded from a file.

An event is ``Scheduled`` with a ``NotBefore``; it becomes ``Started`` when a VM approves
it (``POST`` with ``StartRequests``) or when ``NotBefore`` passes (``NotBefore`` is blank
from then on); it leaves the document ``complete_after_seconds`` after it started (by
default its ``DurationInSeconds`` when that is positive). Every change moves
``DocumentIncarnation``. The VMs of one availability set share one ``ScheduledEvents``,
as they share one events document in Azure.
"""
from __future__ import annotations

import email.utils
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from . import _checks as check
from ._checks import EmulatorError
from ._tables import EVENT_DESCRIPTIONS, EVENT_FIELD_SINCE, EVENT_TYPE_SINCE, SCHEDULED_EVENTS_VERSIONS

EVENT_KEYWORDS = ("event_type", "resources", "not_before_seconds", "status", "description", "event_source",
                  "duration_seconds", "event_id", "resource_type", "complete_after_seconds")
"""The keyword arguments of Emulator.add_event, also the keys of POST /_emulator/events."""

TIMELINE_KEYS = ("at", *EVENT_KEYWORDS)
"""The keys of one event in a timeline file: ``at`` (seconds after loading) and the event's."""

MAX_DURATION = 2**31 - 1
MAX_TIMELINE_EVENTS = 10_000


class Clock:
    """The emulator's wall clock: ``time.time()`` plus an offset that ``advance()`` moves forward."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def advance(self, seconds: Any) -> float:
        """Move the clock ``seconds`` forward (0 to a year); returns the new time."""
        seconds = check.number(seconds, "advance (seconds)")
        with self._lock:
            self._offset += seconds
            return time.time() + self._offset


def check_event(fields: Mapping[str, Any], default_resources: list[str], what: str = "event") -> dict:
    """Validate the keywords of one event (see EVENT_KEYWORDS); return them complete."""
    unknown = set(fields) - set(EVENT_KEYWORDS)
    if unknown:
        raise EmulatorError(f"unknown {what} keys {', '.join(sorted(map(str, unknown)))}; "
                            f"allowed: {', '.join(EVENT_KEYWORDS)}")
    event_type = fields.get("event_type", "Reboot")
    if event_type not in EVENT_TYPE_SINCE:
        raise EmulatorError(f"{what} event_type must be one of {', '.join(EVENT_TYPE_SINCE)}, not {event_type!r}")
    status = fields.get("status", "Scheduled")
    if status not in ("Scheduled", "Started"):
        raise EmulatorError(f"{what} status must be Scheduled or Started, not {status!r}")
    source = fields.get("event_source", "Platform")
    if source not in ("Platform", "User"):
        raise EmulatorError(f"{what} event_source must be Platform or User, not {source!r}")
    resources = fields.get("resources")
    resources = list(default_resources) if resources is None else resources
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise EmulatorError(f"{what} resources must be a list of VM names, not {resources!r}")
    not_before = fields.get("not_before_seconds", 300)
    if not_before is not None:
        try:
            not_before = check.signed_number(not_before, f"{what} not_before_seconds")
        except EmulatorError:
            raise EmulatorError(f"{what} not_before_seconds must be a number or null (seconds from now, at most "
                                f"a year either way), not {not_before!r}") from None
    duration = fields.get("duration_seconds", -1)
    if isinstance(duration, bool) or not isinstance(duration, int) or not -1 <= duration <= MAX_DURATION:
        raise EmulatorError(f"{what} duration_seconds must be an integer >= -1, not {duration!r}")
    complete_after = fields.get("complete_after_seconds")
    if complete_after is not None:
        complete_after = check.number(complete_after, f"{what} complete_after_seconds")
    for label in ("description", "event_id", "resource_type"):
        value = fields.get(label)
        if value is not None and not isinstance(value, str):
            raise EmulatorError(f"{what} {label} must be a string, not {value!r}")
    return {"event_type": event_type, "resources": resources, "not_before_seconds": not_before, "status": status,
            "description": fields.get("description"), "event_source": source, "duration_seconds": duration,
            "event_id": fields.get("event_id"), "resource_type": fields.get("resource_type") or "VirtualMachine",
            "complete_after_seconds": complete_after}


def load_timeline(source: str | Path | Mapping[str, Any], what: str | None = None) -> list[tuple[float, dict]]:
    """Read and validate a timeline: a JSON file (or its object) ``{"events": [...]}``.

    Each event has ``at`` (seconds after the timeline is loaded when the event appears,
    default 0) and the keys of ``add_event``. Returns ``(at, keywords)`` pairs, in file order.
    Resources are not defaulted here: each emulator fills in its own VM.
    """
    if isinstance(source, Mapping):
        document: Any = source
        label = what or "timeline"
    else:
        path = Path(source)
        label = what or f"timeline {path}"
        document = check.read_json_file(path, label)
    document = check.table(document, label, {"events", "description"}, {"events"})
    events = document["events"]
    if not isinstance(events, list) or len(events) > MAX_TIMELINE_EVENTS:
        raise EmulatorError(f"{label} events must be a list of at most {MAX_TIMELINE_EVENTS} objects")
    loaded = []
    ids = set()
    for index, event in enumerate(events):
        where = f"{label} event {index}"
        if not isinstance(event, dict):
            raise EmulatorError(f"{where} must be an object with {', '.join(TIMELINE_KEYS)}")
        fields = dict(event)
        at = check.number(fields.pop("at", 0), f"{where} at")
        resources = fields.get("resources")
        checked = check_event(fields, [] if resources is None else resources, where)
        if resources is None:
            checked["resources"] = None
        if checked["event_id"] is not None:
            if checked["event_id"] in ids:
                raise EmulatorError(f"{where} event_id {checked['event_id']!r} is used twice")
            ids.add(checked["event_id"])
        loaded.append((at, checked))
    return loaded


class ScheduledEvents:
    """The events document one availability set shares; thread-safe."""

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self._events: list[dict] = []
        self._pending: list[tuple[float, dict]] = []
        self._incarnation = 1

    @property
    def incarnation(self) -> int:
        with self._lock:
            self._advance(self.clock.now())
            return self._incarnation

    def add(self, fields: Mapping[str, Any], at: float = 0.0) -> dict:
        """Add one event (keywords already checked by check_event), now or ``at`` seconds from now."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            event_id = fields["event_id"] or str(uuid.uuid4())
            if self._known(event_id):
                raise EmulatorError(f"an event with EventId {event_id!r} exists already")
            fields = {**fields, "event_id": event_id}
            if at > 0:
                self._pending.append((now + at, fields))
                self._pending.sort(key=lambda item: item[0])
                return self._public(self._make(fields, now + at))
            event = self._make(fields, now)
            self._events.append(event)
            self._incarnation += 1
            return self._public(event)

    def _known(self, event_id: str) -> bool:
        return any(e["EventId"] == event_id for e in self._events) \
            or any(fields["event_id"] == event_id for _appear_at, fields in self._pending)

    @staticmethod
    def _make(fields: Mapping[str, Any], now: float) -> dict:
        not_before = fields["not_before_seconds"]
        not_before_at = None if not_before is None else now + not_before
        started = fields["status"] == "Started"
        complete_after = fields["complete_after_seconds"]
        if complete_after is None and fields["duration_seconds"] > 0:
            complete_after = float(fields["duration_seconds"])
        return {
            "EventId": fields["event_id"],
            "EventType": fields["event_type"],
            "ResourceType": fields["resource_type"],
            "Resources": list(fields["resources"]),
            "EventStatus": fields["status"],
            "NotBefore": "" if not_before_at is None or started else email.utils.formatdate(not_before_at, usegmt=True),
            "Description": EVENT_DESCRIPTIONS[fields["event_type"]] if fields["description"] is None
            else fields["description"],
            "EventSource": fields["event_source"],
            "DurationInSeconds": fields["duration_seconds"],
            "_not_before_at": not_before_at,
            "_started_at": now if started else None,
            "_complete_after": complete_after,
        }

    @staticmethod
    def _public(event: Mapping[str, Any]) -> dict:
        return {key: value for key, value in event.items() if not key.startswith("_")}

    def document(self, version: str = SCHEDULED_EVENTS_VERSIONS[-1]) -> dict:
        """The scheduled-events document as ``version`` shows it now."""
        with self._lock:
            self._advance(self.clock.now())
            events = [
                {key: value for key, value in self._public(event).items() if EVENT_FIELD_SINCE.get(key, "0") <= version}
                for event in self._events if EVENT_TYPE_SINCE[event["EventType"]] <= version
            ]
            return {"DocumentIncarnation": self._incarnation, "Events": events}

    def start(self, event_ids: set[str]) -> list[str]:
        """StartRequests: start those Scheduled events now; unknown or started ones change nothing.

        Returns the ids of the events this request started, in document order."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            started = []
            for event in self._events:
                if event["EventId"] in event_ids and event["EventStatus"] == "Scheduled":
                    self._begin(event, now)
                    started.append(event["EventId"])
            if started:
                self._incarnation += 1
            return started

    def end(self, event_id: str | None = None) -> int:
        """End one event now (or all, and drop the pending ones); returns how many left the document."""
        with self._lock:
            self._advance(self.clock.now())
            gone = [e for e in self._events if event_id is None or e["EventId"] == event_id]
            if event_id is None:
                self._pending.clear()
            for event in gone:
                self._events.remove(event)
            if gone:
                self._incarnation += 1
            return len(gone)

    @staticmethod
    def _begin(event: dict, when: float) -> None:
        event["EventStatus"] = "Started"
        event["NotBefore"] = ""  # Microsoft: blank once the event has started
        event["_started_at"] = when

    def _advance(self, now: float) -> None:
        """Play every step due by ``now``, each at the time it was due, so a clock jump is exact."""
        changed = False
        while self._pending and self._pending[0][0] <= now:
            appear_at, fields = self._pending.pop(0)
            self._events.append(self._make(fields, appear_at))
            changed = True
        for event in list(self._events):
            not_before_at = event["_not_before_at"]
            if event["EventStatus"] == "Scheduled" and not_before_at is not None and not_before_at <= now:
                self._begin(event, not_before_at)
                changed = True
            if event["EventStatus"] == "Started" and event["_complete_after"] is not None \
                    and event["_started_at"] + event["_complete_after"] <= now:
                self._events.remove(event)
                changed = True
        if changed:
            self._incarnation += 1
