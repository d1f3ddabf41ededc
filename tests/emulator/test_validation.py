"""Every fault and event switch is checked when it is set, never when a request meets it.

NaN, infinities, 1e308, negatives, wrong types and unknown names give one clear line: an
EmulatorError from Python, HTTP 400 with a JSON error from the control API, and
``imds-emulator: error: ...`` with exit status 2 from the command line. The emulator
keeps serving, with its switches as they were.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from imds_emulator import Emulator, EmulatorError, FAULT_NAMES, load_timeline

from ansible_collections.imds.azure.tests.utils.paths import EMULATOR

NAN, INF = math.nan, math.inf

BAD_FAULTS = [
    # (faults, words the one-line error must hold)
    ({"delay": NAN}, "'delay' must be a non-negative number"),
    ({"delay": INF}, "'delay' must be a non-negative number"),
    ({"delay": 1e308}, "'delay' must be a non-negative number"),
    ({"delay": -0.5}, "'delay' must be a non-negative number"),
    ({"delay": "1"}, "'delay' must be a non-negative number"),
    ({"delay": True}, "'delay' must be a non-negative number"),
    ({"dribble": NAN}, "'dribble' must be a positive number"),
    ({"dribble": INF}, "'dribble' must be a positive number"),
    ({"dribble": 1e308}, "'dribble' must be a positive number"),
    ({"dribble": -1}, "'dribble' must be a positive number"),
    ({"status_for_seconds": {"status": 410, "seconds": NAN}}, "seconds must be a non-negative number"),
    ({"status_for_seconds": {"status": 410, "seconds": 1e308}}, "seconds must be a non-negative number"),
    ({"status_for_seconds": {"status": 410.0, "seconds": 1}}, "status must be an HTTP status"),
    ({"status_first_n": {"status": 500, "count": 1e308}}, "count must be an integer"),
    ({"status_first_n": {"status": 500, "count": -3}}, "count must be an integer"),
    ({"status_first_n": {"status": 500, "count": 10**30}}, "count must be an integer"),
    ({"status_always": 503.0}, "must be an HTTP status"),
    ({"status_always": None, "hang": "true"}, "'hang' must be true or false"),
    ({"every_kth": {"k": INF, "status": 500}}, "k must be an integer >= 1"),
    ({"every_kth": {"k": 2, "status": 5000}}, "must be an HTTP status"),
    ({"rate_limit": {"per_second": NAN}}, "per_second must be an integer"),
    ({"rate_limit": {"per_second": 5, "retry_after": NAN}}, "retry_after must be a non-negative number"),
    ({"rate_limit": {"per_second": 5, "retry_after": INF}}, "retry_after must be a non-negative number"),
    ({"rate_limit": {"per_second": 5, "retry_after": -1}}, "retry_after must be a non-negative number"),
    ({"rate_limit": [5]}, "'rate_limit' must be an object"),
    ({"body_size": 1e308}, "'body_size' must be an integer"),
    ({"body_size": 2**62}, "'body_size' must be an integer"),
    ({"body": {"text": 7}}, "text must be a string"),
    ({"body": {"text": "x", "content_type": "text/html\r\nX-Injected: 1"}}, "without control characters"),
    ({"redirect": {"location": "http://127.0.0.1:1/\r\nSet-Cookie: a=b"}}, "without control characters"),
    ({"reset": True}, "'reset' must be 'before_headers' or 'mid_body'"),
    ({"versions": "2021-02-01"}, "non-empty list of YYYY-MM-DD"),
    ({"loadbalancer": "gone"}, "'loadbalancer' must be 'not_found', 'not_available', 'not_enabled' or "
                               "'service_unavailable'"),
    ({"error_body_size": {"status": 503, "size": 1e308}}, "size must be an integer >= 2"),
    ({"error_body_size": {"status": 5030, "size": 100}}, "status must be an HTTP status"),
    ({"error_body_size": {"size": 100}}, "'error_body_size' needs status"),
    ({"framing": "gzip"}, "'framing' must be 'length', 'chunked' or 'close'"),
    ({"encoding": "br"}, "'encoding' must be 'gzip' or 'deflate'"),
    ({"interim": {"count": NAN}}, "count must be an integer >= 1"),
    ({"interim": {"count": 0}}, "count must be an integer >= 1"),
    ({"interim": {"count": 1, "status": 200}}, "must be an interim status (100-199)"),
    ({"interim": {"count": 1, "interval": INF}}, "interval must be a non-negative number"),
    ({"dribble_head": NAN}, "'dribble_head' must be a positive number"),
    ({"dribble_head": 0}, "'dribble_head' must be a positive number"),
    ({"reason": 500}, "'reason' must be a string"),
    ({"status_line": ["HTTP/1.1", 200]}, "'status_line' must be a string"),
    ({"raw_headers": {"Retry-After": 0}}, "Retry-After must be a string"),
    ({"raw_headers": {"Bad Name": "1"}}, "header names must be non-empty tokens"),
    ({"raw_headers": {"X\r\nY": "1"}}, "header names must be non-empty tokens"),
    ({"raw_headers": [["Retry-After"]]}, "or a list of [name, value] pairs"),
    ({"reset_after": -1}, "'reset_after' must be an integer >= 0"),
    ({"reset_after": 1.5}, "'reset_after' must be an integer >= 0"),
    ({"mute": "yes"}, "'mute' must be true or false"),
    ({"only_path": "metadata/versions"}, "'only_path' must be a path starting with /"),
    ({"only_path": []}, "'only_path' must be a path starting with /"),
    ({"explode": 1}, "unknown fault 'explode'"),
    ({"Delay": 1}, "unknown fault 'Delay'"),
]

BAD_EVENTS = [
    ({"not_before_seconds": NAN}, "not_before_seconds must be a number or null"),
    ({"not_before_seconds": INF}, "not_before_seconds must be a number or null"),
    ({"not_before_seconds": 1e308}, "not_before_seconds must be a number or null"),
    ({"not_before_seconds": -1e308}, "not_before_seconds must be a number or null"),
    ({"not_before_seconds": "soon"}, "not_before_seconds must be a number or null"),
    ({"not_before_seconds": True}, "not_before_seconds must be a number or null"),
    ({"duration_seconds": 1.5}, "duration_seconds must be an integer >= -1"),
    ({"duration_seconds": NAN}, "duration_seconds must be an integer >= -1"),
    ({"duration_seconds": 10**300}, "duration_seconds must be an integer >= -1"),
    ({"duration_seconds": -2}, "duration_seconds must be an integer >= -1"),
    ({"complete_after_seconds": NAN}, "complete_after_seconds must be a non-negative number"),
    ({"complete_after_seconds": INF}, "complete_after_seconds must be a non-negative number"),
    ({"complete_after_seconds": -1}, "complete_after_seconds must be a non-negative number"),
    ({"resources": "web1"}, "resources must be a list of VM names"),
    ({"resources": [1]}, "resources must be a list of VM names"),
    ({"event_type": "Explode"}, "event_type must be one of Freeze, Reboot"),
    ({"event_source": "Someone"}, "event_source must be Platform or User"),
    ({"status": "Completed"}, "status must be Scheduled or Started"),
    ({"event_id": 7}, "event_id must be a string"),
]


def one_line(message: str) -> bool:
    return "\n" not in message.strip() and "Traceback" not in message


# --- Python: the constructor and the setters ------------------------------------------------------------

@pytest.mark.parametrize("faults, words", BAD_FAULTS)
def test_the_constructor_refuses_bad_faults(faults, words):
    with pytest.raises(EmulatorError) as caught:
        Emulator(faults=faults)
    assert words in str(caught.value) and one_line(str(caught.value))


@pytest.mark.parametrize("latency", [NAN, INF, 1e308, -1, "0.1"])
def test_the_constructor_refuses_a_bad_latency(latency):
    with pytest.raises(EmulatorError, match="latency must be a non-negative number"):
        Emulator(latency=latency)


@pytest.mark.parametrize("event, words", BAD_EVENTS)
def test_add_event_refuses_bad_values(emulator, event, words):
    emu = emulator()
    with pytest.raises(EmulatorError) as caught:
        emu.add_event(**event)
    assert words in str(caught.value) and one_line(str(caught.value))
    assert emu.events_document()["Events"] == []


@pytest.mark.parametrize("seconds", [NAN, INF, 1e308, -1, "60", None])
def test_the_clock_refuses_bad_steps(emulator, seconds):
    emu = emulator()
    with pytest.raises(EmulatorError, match="advance"):
        emu.advance_clock(seconds)
    assert emu.events.clock.offset == 0


# --- the control API: 400 with a JSON error, and the emulator goes on as before -------------------------

@pytest.mark.parametrize("faults, words", BAD_FAULTS)
def test_the_control_api_refuses_bad_faults_with_400(client, faults, words):
    imds = client(faults={"status_first_n": {"status": 503, "count": 1}})
    reply = imds.request("PUT", "/_emulator/faults", data=json.dumps(faults))  # NaN and Infinity as JSON allows
    assert reply.status_code == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    message = reply.json()["error"]
    assert words in message and one_line(message)
    assert imds.emu.faults == {"status_first_n": {"status": 503, "count": 1}}  # unchanged
    assert [imds.get("/metadata/instance").status_code for attempt in range(2)] == [503, 200]


@pytest.mark.parametrize("event, words", BAD_EVENTS + [({"kind": "Freeze"}, "unknown event keys kind")])
def test_the_control_api_refuses_bad_events_with_400(client, event, words):
    imds = client()
    reply = imds.request("POST", "/_emulator/events", data=json.dumps(event))
    assert reply.status_code == 400
    assert words in reply.json()["error"] and one_line(reply.json()["error"])
    document = imds.get("/metadata/scheduledevents", api_version="2020-07-01").json()
    assert document == {"DocumentIncarnation": 1, "Events": []}


@pytest.mark.parametrize("body", ['{"advance": NaN}', '{"advance": Infinity}', '{"advance": 1e308}',
                                  '{"advance": -5}', '{"advance": "5"}', '{"forward": 5}', "[5]", "{bad"])
def test_the_control_api_refuses_bad_clock_steps(client, body):
    imds = client()
    reply = imds.request("POST", "/_emulator/clock", data=body)
    assert reply.status_code == 400 and one_line(reply.json()["error"])
    assert imds.request("GET", "/_emulator/clock").json()["offset"] == 0


def test_the_control_api_survives_deeply_nested_json(client):
    imds = client()
    reply = imds.request("PUT", "/_emulator/faults", data="[" * 100_000 + "]" * 100_000)
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]
    start = imds.request("POST", "/metadata/scheduledevents?api-version=2020-07-01",
                         headers={"Metadata": "true"}, data="[" * 100_000 + "]" * 100_000)
    assert start.status_code == 400 and start.json()["error"].startswith("Bad request")
    assert imds.get("/metadata/instance").status_code == 200


# --- timelines -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("timeline, words", [
    ({"events": [{"at": NAN, "event_type": "Freeze"}]}, "event 0 at must be a non-negative number"),
    ({"events": [{"at": -1}]}, "event 0 at must be a non-negative number"),
    ({"events": [{}, {"not_before_seconds": INF}]}, "event 1 not_before_seconds must be a number or null"),
    ({"events": [{"event_type": "Reboot", "when": 5}]}, "event 0 keys when"),
    ({"events": [{"event_id": "a"}, {"event_id": "a"}]}, "event_id 'a' is used twice"),
    ({"events": {"event_type": "Reboot"}}, "events must be a list"),
    ({"event": []}, "unknown keys event"),
    ([], "must be an object"),
])
def test_timelines_are_validated_whole_before_anything_is_added(emulator, tmp_path, timeline, words):
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps(timeline))
    with pytest.raises(EmulatorError) as caught:
        load_timeline(path)
    assert words in str(caught.value) and str(path) in str(caught.value) and one_line(str(caught.value))
    emu = emulator()
    with pytest.raises(EmulatorError):
        emu.load_timeline(path)
    assert emu.events_document()["Events"] == []


# --- the command line: one line, exit status 2 ---------------------------------------------------------

def launch(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.Popen([sys.executable, str(EMULATOR), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_the_command_line_refuses_bad_switches_with_one_line(tmp_path):
    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps({"events": [{"duration_seconds": NAN}]}))
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps({"vms": [{"name": "a", "port": 0, "fault_domain": -1}]}))
    cases = [(["--faults", json.dumps(faults)], words) for faults, words in BAD_FAULTS] + [
        (["--latency", "nan"], "not a finite number"),
        (["--latency", "inf"], "not a finite number"),
        (["--latency", "1e308"], "must be at most"),
        (["--lifetime", "-5"], "must not be negative"),
        (["--lifetime", "nan"], "not a finite number"),
        (["--netns-timeout", "0"], "must be positive"),
        (["--timeline", str(timeline)], "event 0 duration_seconds must be an integer >= -1"),
        (["--timeline", str(tmp_path / "missing.json")], "cannot read timeline"),
        (["--fleet", str(fleet)], "VM 0 fault_domain must be an integer"),
        (["--vm", "web1"], "expected NAME=PORT"),
        (["--vm", "web1=http"], "not a port number"),
        (["--vm", "a=0", "--vm", "a=0"], "the name 'a' is used twice"),
        (["--vm", "a=0", "--port", "8"], "--port does not apply to a fleet"),
        (["--", "true"], "a command after -- needs --netns"),
    ]
    processes = [(launch(*args), args, words) for args, words in cases]
    for process, args, words in processes:
        out, err = process.communicate(timeout=20)
        assert process.returncode == 2, (args, err)
        assert out == ""
        assert err.startswith("imds-emulator: error: ") and err.count("\n") == 1 and words in err, (args, err)
        assert "Traceback" not in err


def test_every_switch_has_a_bad_value_above():
    tested = {name for faults, words in BAD_FAULTS for name in faults}
    assert set(FAULT_NAMES) - tested == {"html", "truncate", "error_wording"}  # flags and words: tested in test_faults
