# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""The control API, ``/_emulator/...``: the log, faults, events, timelines and clock for
users in another process. Never faulted, never logged; a bad request is ``400 {"error": ...}``."""
from __future__ import annotations

import email.utils
import json
from typing import TYPE_CHECKING, Callable

from . import _checks as check
from ._checks import EmulatorError
from ._events import EVENT_KEYWORDS
from ._replies import Reply

if TYPE_CHECKING:
    from ._emulator import Emulator

ROUTES = ("/_emulator/requests", "/_emulator/faults", "/_emulator/events", "/_emulator/timeline",
          "/_emulator/clock", "/_emulator/fleet")


def json_object(body: bytes) -> dict:
    """The request body as a JSON object (an empty body is ``{}``)."""
    try:
        value = json.loads(body.decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EmulatorError(f"the request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise EmulatorError("the request body must be a JSON object")
    return value


def describe(emu: "Emulator") -> dict:
    compute = emu.document.get("compute") if isinstance(emu.document.get("compute"), dict) else {}
    return {"name": emu.name, "url": emu.url, "port": emu.port, "vm_id": compute.get("vmId", ""),
            "fault_domain": compute.get("platformFaultDomain", ""),
            "update_domain": compute.get("platformUpdateDomain", ""),
            "availability_set": emu.availability_set}


def clock_state(emu: "Emulator") -> dict:
    now = emu.events.clock.now()
    return {"now": now, "offset": emu.events.clock.offset, "date": email.utils.formatdate(now, usegmt=True)}


def _events(emu: "Emulator", method: str, rest: str, body: bytes) -> Reply | None:
    if rest:
        if method == "DELETE":
            return Reply.json(200, {"ended": emu.end_event(rest)})
        return None
    if method == "GET":
        return Reply.json(200, emu.events_document())
    if method == "POST":
        event = json_object(body)
        unknown = set(event) - set(EVENT_KEYWORDS)
        if unknown:
            raise EmulatorError(f"unknown event keys {', '.join(sorted(unknown))}; "
                                f"allowed: {', '.join(EVENT_KEYWORDS)}")
        return Reply.json(201, emu.add_event(**event))
    if method == "DELETE":
        return Reply.json(200, {"ended": emu.end_event()})
    return None


def _clock(emu: "Emulator", method: str, body: bytes) -> Reply | None:
    if method == "GET":
        return Reply.json(200, clock_state(emu))
    if method == "POST":
        request = check.table(json_object(body), "the clock request", {"advance"}, {"advance"})
        emu.advance_clock(request["advance"])
        return Reply.json(200, clock_state(emu))
    return None


HANDLERS: dict[str, Callable[["Emulator", str, str, bytes], "Reply | None"]] = {
    "/_emulator/requests": lambda emu, method, rest, body: (
        Reply.json(200, emu.requests) if method == "GET" and not rest
        else Reply.json(200, {"cleared": emu.clear_log()}) if method == "DELETE" and not rest else None),
    "/_emulator/faults": lambda emu, method, rest, body: (
        Reply.json(200, emu.faults) if method == "GET" and not rest
        else Reply.json(200, {"faults": emu.set_faults(**json_object(body))}) if method == "PUT" and not rest
        else None),
    "/_emulator/events": _events,
    "/_emulator/timeline": lambda emu, method, rest, body: (
        Reply.json(201, {"events": emu.load_timeline(json_object(body))}) if method == "POST" and not rest
        else None),
    "/_emulator/clock": lambda emu, method, rest, body: _clock(emu, method, body) if not rest else None,
    "/_emulator/fleet": lambda emu, method, rest, body: (
        Reply.json(200, emu.fleet.describe() if emu.fleet is not None else [describe(emu)])
        if method == "GET" and not rest else None),
}


def control(emu: "Emulator", method: str, path: str, body: bytes) -> Reply:
    route = path.rstrip("/")
    for prefix, handler in HANDLERS.items():
        if route == prefix or route.startswith(prefix + "/"):
            rest = route[len(prefix) + 1:]
            try:
                reply = handler(emu, method, rest, body)
            except EmulatorError as exc:
                return Reply.error(400, str(exc))
            if reply is None:
                return Reply.error(405, f"{method} is not supported on {path}")
            return reply
    return Reply.error(404, f"Unknown control path {path}; use {', '.join(ROUTES)}")
