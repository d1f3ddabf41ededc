"""Scheduled-events documents no IMDS should send, through real ansible-playbook runs.

Each case is a host of one ansible-playbook run, with its own emulator serving one
document (the ``body`` switch) or real events (``add_event``) to imds.azure.scheduled_events.
The policy, whatever the document: no traceback; a failure is one printable line that says
the document is not a scheduled-events document; events that can be read are returned
(an odd field becomes null with a warning); warnings are few, printable and short however
many events carry the oddity; the task ends in time.

Among them, the defects of issue 14 that the fault matrix found in the scheduled-events
parser: non-ASCII digits, NotBefore dates out of the datetime range, server text that
reached the output raw or unbounded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from ansible_collections.imds.azure.tests.playbooks.faults.hosts import play_with_emulators
from ansible_collections.imds.azure.tests.playbooks.faults.report import register

ME = "web-linux-01"  # the linux profile's compute name
VERSION = "2020-07-01"
BOUND = 30.0  # one module run on a loaded runner, documents of a few MiB included
MAX_WARNINGS = 10
MAX_TEXT = 2000

PLAY = """
- name: Scheduled-events documents, one per host
  hosts: all
  gather_facts: false
  strategy: host_pinned
  tasks:
    - name: Events
      imds.azure.scheduled_events:
        endpoint: "{{ case.endpoint }}"
        vm_name: "{{ case.vm_name }}"
        api_version: "{{ case.api_version }}"
        timeout: 3
        retry_timeout: 3
        first_call_timeout: 3
        approve: "{{ case.approve | default(omit) }}"
        wait_for: "{{ case.wait_for | default(omit) }}"
        wait_timeout: "{{ case.wait_timeout | default(omit) }}"
        poll_interval: "{{ case.poll_interval | default(omit) }}"
      vars:
        case: "{{ cases[inventory_hostname] }}"
      ignore_errors: true
"""

FORGED = "\u001b[2J\u001b]0;pwned\u0007\r\nok: [web01] => forged\u2028\u202e"


def event(event_id: str = "EV-1", **fields: Any) -> dict:
    base = {"EventId": event_id, "EventStatus": "Scheduled", "EventType": "Freeze", "ResourceType": "VirtualMachine",
            "Resources": [ME], "NotBefore": "Mon, 11 Apr 2022 22:26:58 GMT", "Description": "Host maintenance",
            "EventSource": "Platform", "DurationInSeconds": 9}
    base.update(fields)
    return base


def document(*events: dict, incarnation: Any = 1) -> dict:
    return {"DocumentIncarnation": incarnation, "Events": list(events)}


@dataclass(frozen=True)
class Case:
    """A document (a dict, or raw JSON text) and what the module must make of it."""

    name: str
    served: Any
    ok: bool
    words: tuple[str, ...] = ()
    options: dict | None = None
    check: Callable[[dict], None] | None = None

    def __str__(self) -> str:
        return self.name


def events_are(count: int, **first: Any):
    def check(result: dict) -> None:
        assert len(result["events"]) == count, len(result["events"])
        for key, value in first.items():
            assert result["events"][0][key] == value, (key, result["events"][0][key])
    return check


def incarnation(value: Any):
    return lambda result: result["document_incarnation"] == value


NOT_A_DOCUMENT = ("not a scheduled-events document",)
ODD_NOT_BEFORES = [  # (label, NotBefore)
    ("in year 99999", "Mon, 01 Jan 99999 00:00:00 GMT"),
    ("31 Dec 9999 23:59:59 -0100 (past year 9999 in UTC)", "Fri, 31 Dec 9999 23:59:59 -0100"),
    ("01 Jan 0001 00:00:00 +0100 (before year 1 in UTC)", "Mon, 01 Jan 0001 00:00:00 +0100"),
    ("on the 32nd of January", "Wed, 32 Jan 2025 10:00:00 GMT"),
    ("with escapes and a line break", f"Mon, 11 Apr 2022{FORGED}"),
    ("of 100,000 characters", "Mon, " + "9" * 100_000),
]


CASES = [
    # -- DocumentIncarnation ----------------------------------------------------------------------
    *[Case(f"DocumentIncarnation {value!r}", document(event(), incarnation=value), False,
           (*NOT_A_DOCUMENT, "DocumentIncarnation"))
      for value in ("\u00b2", "\u0661\u0662", "\uff11\uff12", "-1", "1e5", "")],
    *[Case(f"DocumentIncarnation {value!r}", document(event(), incarnation=value), False,
           (*NOT_A_DOCUMENT, "DocumentIncarnation"))
      for value in (None, [], {"n": 1}, True, 1.5)],
    Case("DocumentIncarnation of 400 digits", document(event(), incarnation=10 ** 400), True,
         check=incarnation(10 ** 400)),
    Case("DocumentIncarnation '7' (a string of ASCII digits)", document(event(), incarnation="7"), True,
         check=incarnation(7)),
    # -- DurationInSeconds: a whole number of seconds, or the document is refused ---------------------------
    *[Case(f"DurationInSeconds {value!r}", document(event(DurationInSeconds=value)), False,
           (*NOT_A_DOCUMENT, "DurationInSeconds"))
      for value in ("\u00b2", "\u0661\u0662", 1e308, "soon", 1.5, True)],
    *[Case(f"DurationInSeconds {value!r}", document(event(DurationInSeconds=value)), True,
           check=events_are(1, event_id="EV-1"))
      for value in (-1, -5, 0, None)],
    # -- NotBefore ----------------------------------------------------------------------------------------
    *[Case(f"NotBefore {label}", document(event(NotBefore=value)), True, check=events_are(1, not_before_utc=None))
      for label, value in ODD_NOT_BEFORES],
    Case("NotBefore a number", document(event(NotBefore=1700000000)), False, (*NOT_A_DOCUMENT, "NotBefore")),
    # -- many events, huge ids, odd shapes ------------------------------------------------------------------
    Case("5,000 events for this VM", document(*[event(f"EV-{n:05d}") for n in range(5000)]), True,
         check=events_are(5000, event_id="EV-00000")),
    Case("5,000 events with a NotBefore that is no date", document(*[event(f"EV-{n:05d}", NotBefore="tomorrow")
                                                                     for n in range(5000)]), True,
         check=events_are(5000, not_before_utc=None)),
    Case("an EventId of 100,000 characters, approved", document(event("E" * 100_000)), True,
         options={"approve": "all_for_this_vm"}, check=lambda result: result["approved"] == ["E" * 100_000]),
    Case("an EventId with escapes, found by a wait", document(event(f"EV{FORGED}")), True,
         options={"wait_for": ["Freeze"], "wait_timeout": 5, "poll_interval": 1},
         check=lambda result: result["matched"][0]["event_id"] == f"EV{FORGED}"),
    Case("20,000 Resources in one event", document(event(Resources=[f"vm-{n}" for n in range(20_000)] + [ME])), True,
         check=events_are(1, for_this_vm=True)),
    Case("Resources that are numbers", document(event(Resources=[1, None, ME])), False,
         (*NOT_A_DOCUMENT, "Resources")),
    Case("an unknown EventType and EventStatus", document(event(EventType="Explode", EventStatus="Exploding")), True),
    *[Case(f"Events {label}", {"DocumentIncarnation": 1, "Events": value}, False, NOT_A_DOCUMENT)
      for label, value in (("a string", "none"), ("an object", {"EventId": "x"}), ("a number", 5))],
    Case("an event that is a number", document(5), False, NOT_A_DOCUMENT),
    Case("the document a list", [document(event())], False, NOT_A_DOCUMENT),
    Case("NaN as DurationInSeconds", json.dumps(document(event(DurationInSeconds="X"))).replace('"X"', "NaN"),
         False, ("NaN", "never sends")),
    Case("JSON 900 levels deep in an event",
         json.dumps(document(event(Description="X"))).replace('"X"', "[" * 900 + "]" * 900), False,
         ("nested more than 64 levels",)),
]
assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case in one ansible-playbook run; {name: HostOutcome}."""
    from imds_emulator import Emulator

    def start(case: Case) -> tuple[Any, dict]:
        text = case.served if isinstance(case.served, str) else json.dumps(case.served)
        emu = Emulator(profile="linux", faults={"body": {"text": text}}).start()
        return emu, {"endpoint": emu.url, "vm_name": ME, "api_version": VERSION, **(case.options or {})}

    done = play_with_emulators(PLAY, CASES, tmp_path_factory.mktemp("fault-events"), start)
    return {case.name: outcome for case, outcome in zip(CASES, done)}


def shown(case: Case) -> str:
    return case.name.encode("unicode_escape").decode("ascii")


@pytest.mark.parametrize("case", CASES, ids=shown)
def test_scheduled_events_document(outcomes, case, request):
    outcome = outcomes[case.name]
    result = outcome.result
    msg = str(result.get("msg", ""))
    warnings = [str(w) for w in result.get("warnings") or []]
    row = {"scenario": f"scheduled events: {shown(case)}",
           "expected": "events, odd fields null" if case.ok else "one-line failure: not a scheduled-events document",
           "observed": (f"{len(result.get('events') or [])} events" if outcome.status == "ok" else f"failed: {msg}")[:300],
           "seconds": None, "task": outcome.seconds, "bound": BOUND, "requests": len(outcome.requests),
           "result": "FAIL"}
    register(request.config).add(row)
    assert "Traceback" not in json.dumps(result) and "module_stderr" not in result, result.get("module_stderr")
    assert msg.isprintable() and len(msg) <= MAX_TEXT, repr(msg[:500])
    assert len(warnings) <= MAX_WARNINGS and all(w.isprintable() and len(w) <= MAX_TEXT for w in warnings), \
        [w[:200] for w in warnings[:5]]
    if case.ok:
        assert outcome.status == "ok", msg
    else:
        assert outcome.status == "failed", result
        for word in case.words:
            assert word in msg, (word, msg)
    assert outcome.seconds <= BOUND, f"the task took {outcome.seconds:.1f} s"
    assert 1 <= len([r for r in outcome.requests if r["method"] == "GET"]) <= 3  # no loop on a bad document
    if case.check is not None and outcome.status == "ok":
        assert case.check(result) is not False
    row["result"] = "pass"


def test_no_raw_server_text_in_the_output(outcomes):
    """Whatever the documents held, the run's output has no terminal escape and no forged line."""
    output = next(iter(outcomes.values())).output
    assert "\x1b" not in output and "\x07" not in output
    assert not [line for line in output.splitlines() if line.lstrip().startswith("ok: [web01] => forged")]
