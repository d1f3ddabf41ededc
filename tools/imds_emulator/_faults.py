# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Fault switches: one table, each switch with its validator and its behaviour.

A switch acts in one phase of a request, in this order:

``wait``      seconds to wait before anything else (``delay``);
``takeover``  the connection is held or reset instead of answered (``hang``, ``reset``);
``gate``      a throttle that may answer 429 (``rate_limit``);
``status``    an error status instead of the answer, first that applies wins;
``replace``   another answer instead of IMDS's (``redirect``, ``html``, ``body``, ``body_size``);
``answer``    read by the IMDS answer itself (``versions``, ``error_wording``, ``loadbalancer``);
``send``      how the answer is sent (``dribble``, ``truncate``, ``reset: mid_body``), and what
              a hostile server does on the wire (``framing``, ``encoding``, ``interim``,
              ``dribble_head``, ``reason``, ``status_line``, ``raw_headers``, ``reset_after``).

Two switches act outside those phases: ``mute`` takes the connection over before the
request is even read, and ``only_path`` limits every other switch (but the ``answer``
ones, which describe the region) to requests for the paths it names.
"""
from __future__ import annotations

import base64
import collections
import threading
from typing import Any, Callable, Mapping, NamedTuple

from . import _checks as check
from ._checks import EmulatorError
from ._documents import dump_json
from ._replies import Reply, padded_json
from ._tables import CAPTIVE_PORTAL, JSON_TYPE, LOADBALANCER_ERRORS, VERSION_RE

MAX_BODY_SIZE = 1 << 40
MAX_RATE = 1e9  # bytes per second for dribble
MAX_WIRE_TEXT = 1 << 20  # characters of a raw status line, reason phrase or header value
MAX_RAW_HEADERS = 10_000


class Counters:
    """What the status and gate switches count; guarded by the emulator's lock."""

    def __init__(self, now: float):
        self.set_at = now
        self.first_request_at = now
        self.count = 0
        self.window: collections.deque[float] = collections.deque()


class Switch(NamedTuple):
    phase: str
    check: Callable[[Any, str], Any]
    act: Callable[..., Any] | None
    example: str


# --- validators --------------------------------------------------------------------------------------------

def _check_status_for_seconds(value: Any, what: str) -> dict:
    value = check.table(value, what, {"status", "seconds", "from"}, {"status", "seconds"})
    return {"status": check.status(value["status"], f"{what} status"),
            "seconds": check.number(value["seconds"], f"{what} seconds"),
            "from": check.choice(value.get("from", "set"), f"{what} from", ("set", "first_request"))}


def _check_status_first_n(value: Any, what: str) -> dict:
    value = check.table(value, what, {"status", "count"}, {"status", "count"})
    return {"status": check.status(value["status"], f"{what} status"),
            "count": check.count(value["count"], f"{what} count")}


def _check_every_kth(value: Any, what: str) -> dict:
    value = check.table(value, what, {"k", "status"}, {"k", "status"})
    return {"k": check.count(value["k"], f"{what} k", minimum=1),
            "status": check.status(value["status"], f"{what} status")}


def _check_rate_limit(value: Any, what: str) -> dict:
    value = check.table(value, what, {"per_second", "retry_after"}, {"per_second"})
    retry_after = value.get("retry_after", 1)
    return {"per_second": check.count(value["per_second"], f"{what} per_second", minimum=1),
            "retry_after": None if retry_after is None else check.number(retry_after, f"{what} retry_after")}


def _check_true(value: Any, what: str) -> bool:
    return check.flag(value, what)


def _check_reset(value: Any, what: str) -> str:
    return check.choice(value, what, ("before_headers", "mid_body"))


def _check_body(value: Any, what: str) -> dict:
    value = check.table(value, what, {"text", "base64", "status", "content_type"})
    if ("text" in value) == ("base64" in value):
        raise EmulatorError(f"{what} needs exactly one of text or base64")
    if "text" in value:
        data = check.text(value["text"], f"{what} text").encode("utf-8")
    else:
        try:
            data = base64.b64decode(value["base64"], validate=True)
        except (ValueError, TypeError):
            raise EmulatorError(f"{what} base64 is not valid base64") from None
    return {"data": data, "status": check.status(value.get("status", 200), f"{what} status"),
            "content_type": check.header_value(value.get("content_type", "application/json"), f"{what} content_type"),
            **{k: value[k] for k in ("text", "base64") if k in value}}


def _check_redirect(value: Any, what: str) -> dict:
    value = check.table(value, what, {"status", "location"}, {"location"})
    status = check.status(value.get("status", 302), f"{what} status")
    if not 300 <= status <= 399 or not isinstance(value["location"], str):
        raise EmulatorError(f"{what} needs a 3xx status and a location string")
    return {"status": status, "location": check.header_value(value["location"], f"{what} location")}


def _check_versions(value: Any, what: str) -> list[str]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and VERSION_RE.match(v) for v in value)):
        raise EmulatorError(f"{what} must be a non-empty list of YYYY-MM-DD api-versions")
    return sorted(set(value))


def _check_interim(value: Any, what: str) -> dict:
    value = check.table(value, what, {"status", "count", "interval"}, {"count"})
    status = check.status(value.get("status", 103), f"{what} status")
    if not 100 <= status <= 199:
        raise EmulatorError(f"{what} status must be an interim status (100-199), not {status!r}")
    return {"status": status, "count": check.count(value["count"], f"{what} count", minimum=1),
            "interval": check.number(value.get("interval", 0), f"{what} interval")}


def _check_wire_text(value: Any, what: str) -> str:
    """Any text (control characters and line breaks included: they are the point), bounded."""
    text = check.text(value, what)
    if len(text) > MAX_WIRE_TEXT:
        raise EmulatorError(f"{what} must be at most {MAX_WIRE_TEXT} characters, not {len(text)}")
    return text


def _check_raw_headers(value: Any, what: str) -> list[tuple[str, str]]:
    """An object of header names and values, or a list of [name, value] pairs (names may repeat)."""
    pairs = list(value.items()) if isinstance(value, dict) else value
    if not isinstance(pairs, list) or len(pairs) > MAX_RAW_HEADERS \
            or not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in pairs):
        raise EmulatorError(f"{what} must be an object of header names and values, or a list of "
                            f"[name, value] pairs (at most {MAX_RAW_HEADERS})")
    checked = []
    for name, text in pairs:
        if not isinstance(name, str) or not name or any(c in ": \t" or ord(c) < 0x21 or ord(c) >= 0x7F for c in name):
            raise EmulatorError(f"{what} header names must be non-empty tokens (no space, colon or control "
                                f"character), not {name!r}")
        checked.append((name, _check_wire_text(text, f"{what} {name}")))
    return checked


def _check_error_body_size(value: Any, what: str) -> dict:
    value = check.table(value, what, {"status", "size"}, {"status", "size"})
    return {"status": check.status(value["status"], f"{what} status"),
            "size": check.count(value["size"], f"{what} size", minimum=2, maximum=MAX_BODY_SIZE)}


def _check_only_path(value: Any, what: str) -> list[str]:
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not paths \
            or not all(isinstance(path, str) and path.startswith("/") for path in paths):
        raise EmulatorError(f"{what} must be a path starting with / or a non-empty list of them, not {value!r}")
    return list(paths)


# --- behaviours ---------------------------------------------------------------------------------------------

def _rate_limit(rule: dict, counters: Counters, now: float) -> Reply | None:
    window = counters.window
    while window and window[0] <= now - 1.0:
        window.popleft()
    if len(window) >= rule["per_second"]:
        headers = {} if rule["retry_after"] is None else {"Retry-After": f"{rule['retry_after']:g}"}
        return Reply.error(429, headers=headers)
    window.append(now)
    return None


def _status_for_seconds(rule: dict, counters: Counters, now: float) -> int | None:
    origin = counters.first_request_at if rule["from"] == "first_request" else counters.set_at
    return rule["status"] if now - origin < rule["seconds"] else None


def _status_first_n(rule: dict, counters: Counters, now: float) -> int | None:
    return rule["status"] if counters.count <= rule["count"] else None


def _status_always(status: int, counters: Counters, now: float) -> int:
    return status


def _every_kth(rule: dict, counters: Counters, now: float) -> int | None:
    return rule["status"] if counters.count % rule["k"] == 0 else None


def _redirect(rule: dict, document: Mapping[str, Any]) -> Reply:
    return Reply(rule["status"], b"", None, {"Location": rule["location"]})


def _html(value: bool, document: Mapping[str, Any]) -> Reply:
    return Reply(200, CAPTIVE_PORTAL, "text/html; charset=utf-8")


def _body(rule: dict, document: Mapping[str, Any]) -> Reply:
    return Reply(rule["status"], rule["data"], rule["content_type"])


def _body_size(size: int, document: Mapping[str, Any]) -> Reply:
    chunks, length = padded_json(dump_json(document), size)
    return Reply(200, content_type=JSON_TYPE, chunks=chunks, length=length)


def _error_body_size(rule: dict, document: Mapping[str, Any]) -> Reply:
    error = Reply.error(rule["status"])
    chunks, length = padded_json(error.body, rule["size"])
    return Reply(rule["status"], content_type=JSON_TYPE, chunks=chunks, length=length)


SWITCHES: dict[str, Switch] = {
    "delay": Switch("wait", check.number, lambda seconds: seconds, "0.5"),
    "hang": Switch("takeover", _check_true, lambda value: value, "true"),
    "reset": Switch("takeover", _check_reset, lambda value: value == "before_headers",
                    '"before_headers" or "mid_body"'),
    "rate_limit": Switch("gate", _check_rate_limit, _rate_limit, '{"per_second": 5, "retry_after": 1}'),
    "status_for_seconds": Switch("status", _check_status_for_seconds, _status_for_seconds,
                                 '{"status": 410, "seconds": 5}'),
    "status_first_n": Switch("status", _check_status_first_n, _status_first_n, '{"status": 500, "count": 3}'),
    "status_always": Switch("status", check.status, _status_always, "503"),
    "every_kth": Switch("status", _check_every_kth, _every_kth, '{"k": 3, "status": 500}'),
    "redirect": Switch("replace", _check_redirect, _redirect, '{"status": 302, "location": "http://127.0.0.1:1/"}'),
    "html": Switch("replace", _check_true, _html, "true"),
    "body": Switch("replace", _check_body, _body, '{"text": "[1, 2]"}'),
    "body_size": Switch("replace", lambda value, what: check.count(value, what, minimum=2, maximum=MAX_BODY_SIZE),
                        _body_size, "52428800"),
    "error_body_size": Switch("replace", _check_error_body_size, _error_body_size,
                              '{"status": 503, "size": 1073741824}'),
    "versions": Switch("answer", _check_versions, None, '["2017-04-02", "2018-02-01"]'),
    "error_wording": Switch("answer", lambda value, what: check.choice(value, what, ("new", "old", "no_list")),
                            None, '"old"'),
    "loadbalancer": Switch("answer", lambda value, what: check.choice(value, what, LOADBALANCER_ERRORS),
                           None, '"not_available"'),
    "dribble": Switch("send", lambda value, what: check.number(value, what, positive=True, maximum=MAX_RATE),
                      None, "200"),
    "truncate": Switch("send", _check_true, None, "true"),
    "framing": Switch("send", lambda value, what: check.choice(value, what, ("length", "chunked", "close")),
                      None, '"chunked"'),
    "encoding": Switch("send", lambda value, what: check.choice(value, what, ("gzip", "deflate")), None, '"gzip"'),
    "interim": Switch("send", _check_interim, None, '{"status": 103, "count": 2, "interval": 0}'),
    "dribble_head": Switch("send", lambda value, what: check.number(value, what, positive=True, maximum=MAX_RATE),
                           None, "0.6"),
    "reason": Switch("send", _check_wire_text, None, '"Bad\\u001b[2J\\nforged"'),
    "status_line": Switch("send", _check_wire_text, None, '"HTTP/1.1 2OO OK"'),
    "raw_headers": Switch("send", _check_raw_headers, None, '{"Retry-After": "0"}'),
    "reset_after": Switch("send", lambda value, what: check.count(value, what, maximum=MAX_BODY_SIZE), None, "100"),
    "mute": Switch("accept", _check_true, None, "true"),
    "only_path": Switch("scope", _check_only_path, None, '"/metadata/versions"'),
}
"""Every fault switch, in the order they act within a phase."""

FAULT_NAMES = tuple(SWITCHES)
WIRE_SWITCHES = frozenset(("framing", "encoding", "interim", "dribble_head", "reason", "status_line", "raw_headers",
                           "reset_after"))
"""The send switches that need the hostile writer (the others keep the plain one)."""


def check_faults(faults: Mapping[str, Any] | None) -> dict:
    """Validate fault switches and return a normalized copy.

    ``None`` values, and ``false`` for the on/off switches, are dropped (the switch is off).
    """
    if faults is None:
        return {}
    if not isinstance(faults, Mapping):
        raise EmulatorError(f"faults must be an object, not {type(faults).__name__}")
    checked: dict[str, Any] = {}
    for name, value in faults.items():
        switch = SWITCHES.get(name)
        if switch is None:
            raise EmulatorError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        if value is None:
            continue
        value = switch.check(value, f"fault {name!r}")
        if value is not False:
            checked[name] = value
    return checked


def public_faults(faults: Mapping[str, Any]) -> dict:
    """The switches as a user set them (the decoded ``body`` bytes left out)."""
    shown = dict(faults)
    if "body" in shown:
        shown["body"] = {k: v for k, v in shown["body"].items() if k != "data"}
    if "raw_headers" in shown:
        shown["raw_headers"] = [list(pair) for pair in shown["raw_headers"]]
    return shown


def in_scope(faults: Mapping[str, Any], path: str) -> bool:
    """Whether the switches act on a request for ``path`` (see ``only_path``)."""
    scope = faults.get("only_path")
    return scope is None or path in scope


def answer_faults(faults: Mapping[str, Any]) -> dict:
    """The switches that still act outside ``only_path``: those that describe the region."""
    return {name: value for name, value in faults.items() if SWITCHES[name].phase == "answer"}


class Plan(NamedTuple):
    wait: float
    takeover: bool
    reply: Reply | None


def plan(faults: Mapping[str, Any], counters: Counters, now: float, document: Mapping[str, Any],
         lock: threading.RLock) -> Plan:
    """Count one IMDS request against the faults and say what they make of it."""
    by_phase: dict[str, list[tuple[str, Switch]]] = collections.defaultdict(list)
    for name, switch in SWITCHES.items():
        if name in faults:
            by_phase[switch.phase].append((name, switch))
    wait = sum(switch.act(faults[name]) for name, switch in by_phase["wait"])
    with lock:
        counters.count += 1
        if counters.count == 1:
            counters.first_request_at = now
        if any(switch.act(faults[name]) for name, switch in by_phase["takeover"]):
            return Plan(wait, True, None)
        for name, switch in by_phase["gate"]:
            reply = switch.act(faults[name], counters, now)
            if reply is not None:
                return Plan(wait, False, reply)
        for name, switch in by_phase["status"]:
            status = switch.act(faults[name], counters, now)
            if status is not None:
                return Plan(wait, False, Reply.error(status))
    for name, switch in by_phase["replace"]:
        return Plan(wait, False, switch.act(faults[name], document))
    return Plan(wait, False, None)
