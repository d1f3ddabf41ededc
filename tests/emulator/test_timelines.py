"""Scheduled events live as on Azure: scheduled, started (approved or NotBefore passed), gone.

The emulator's clock is moved with advance_clock (or POST /_emulator/clock): no test sleeps
for a timeline to play.
"""
from __future__ import annotations

import email.utils
import json
import time

import pytest

from imds_emulator import EmulatorError, ScheduledEvents, load_timeline

from ansible_collections.imds.azure.tests.utils.paths import EMULATOR

EXAMPLES = EMULATOR / "examples"


def document(imds, version="2020-07-01"):
    reply = imds.get("/metadata/scheduledevents", api_version=version)
    assert reply.status_code == 200
    return reply.json()


def approve(imds, *event_ids):
    body = json.dumps({"StartRequests": [{"EventId": event_id} for event_id in event_ids]})
    reply = imds.request("POST", "/metadata/scheduledevents?api-version=2020-07-01",
                         headers={"Metadata": "true"}, data=body)
    assert reply.status_code == 200 and reply.content == b""


def test_an_event_waits_for_not_before_then_starts_then_ends_after_its_duration(client):
    imds = client()
    made = imds.emu.add_event(event_type="Reboot", not_before_seconds=60, duration_seconds=30)
    first = document(imds)
    assert first["DocumentIncarnation"] == 2
    (event,) = first["Events"]
    assert (event["EventStatus"], event["NotBefore"]) == ("Scheduled", made["NotBefore"])
    imds.emu.advance_clock(59)
    assert document(imds) == first  # nothing due yet: same incarnation
    imds.emu.advance_clock(1)
    started = document(imds)
    assert started["DocumentIncarnation"] == 3
    assert (started["Events"][0]["EventStatus"], started["Events"][0]["NotBefore"]) == ("Started", "")
    imds.emu.advance_clock(29.9)
    assert document(imds) == started
    imds.emu.advance_clock(0.1)
    assert document(imds) == {"DocumentIncarnation": 4, "Events": []}


def test_an_approved_event_starts_at_once_and_ends_after_complete_after_seconds(client):
    imds = client()
    made = imds.emu.add_event(event_type="Redeploy", not_before_seconds=600, complete_after_seconds=5,
                              event_source="User")
    assert document(imds)["Events"][0]["EventSource"] == "User"
    approve(imds, made["EventId"])
    started = document(imds)
    assert started["DocumentIncarnation"] == 3 and started["Events"][0]["EventStatus"] == "Started"
    imds.emu.advance_clock(5)
    assert document(imds) == {"DocumentIncarnation": 4, "Events": []}


def test_a_freeze_of_a_few_seconds_in_real_time(client):
    imds = client()
    imds.emu.add_event(event_type="Freeze", not_before_seconds=0.2, duration_seconds=1)
    assert document(imds)["Events"][0]["EventStatus"] == "Scheduled"
    time.sleep(0.3)
    assert document(imds)["Events"][0]["EventStatus"] == "Started"
    time.sleep(1.0)
    assert document(imds)["Events"] == []


def test_a_spot_preemption(client):
    imds = client("spot")
    made = imds.emu.add_event(event_type="Preempt", not_before_seconds=30)
    assert made["Resources"] == ["batch-spot-07"] and made["DurationInSeconds"] == -1
    assert document(imds, "2017-11-01")["Events"][0]["EventType"] == "Preempt"
    imds.emu.advance_clock(30)
    assert document(imds)["Events"][0]["EventStatus"] == "Started"
    assert imds.emu.end_event(made["EventId"]) == 1  # the VM is gone: the event with it
    assert document(imds)["Events"] == []


def test_one_event_for_several_vms(client):
    imds = client()
    made = imds.emu.add_event(event_type="Reboot", resources=["web1", "web2"])
    assert document(imds)["Events"][0]["Resources"] == ["web1", "web2"] == made["Resources"]


def test_a_clock_jump_plays_every_step_at_its_time(client):
    imds = client()
    imds.emu.load_timeline({"events": [
        {"at": 10, "event_type": "Freeze", "not_before_seconds": 5, "duration_seconds": 3},
        {"at": 0, "event_type": "Reboot", "not_before_seconds": 100, "complete_after_seconds": 50},
    ]})
    assert [e["EventType"] for e in document(imds)["Events"]] == ["Reboot"]
    imds.emu.advance_clock(10)
    freeze = [e for e in document(imds)["Events"] if e["EventType"] == "Freeze"][0]
    not_before = email.utils.parsedate_to_datetime(freeze["NotBefore"]).timestamp()
    assert abs(not_before - (imds.emu.events.clock.now() + 5)) < 2  # counted from when it appeared
    imds.emu.advance_clock(1000)  # every step due: the Freeze and the Reboot are over
    assert document(imds)["Events"] == []


def test_the_incarnation_moves_at_each_step_of_a_timeline(client):
    imds = client()
    imds.emu.load_timeline({"events": [{"at": 5, "event_type": "Reboot", "not_before_seconds": 5,
                                        "complete_after_seconds": 5}]})
    seen = []
    for _step in range(4):
        seen.append(document(imds)["DocumentIncarnation"])
        imds.emu.advance_clock(5)
    assert seen == [1, 2, 3, 4]
    assert document(imds)["Events"] == []


def test_the_example_timeline_replays(tmp_path):
    loaded = load_timeline(EXAMPLES / "timeline.json")
    assert [(at, fields["event_type"]) for at, fields in loaded] == [(0, "Reboot"), (10, "Freeze"), (120, "Redeploy")]
    events = ScheduledEvents()
    for at, fields in loaded:
        events.add({**fields, "resources": fields["resources"] or ["vm"]}, at)
    events.clock.advance(10)
    assert [e["EventType"] for e in events.document()["Events"]] == ["Reboot", "Freeze"]
    events.start({"6b0a2c1e-0000-4000-8000-000000000001"})  # approved at 10 s: over at 30 s
    events.clock.advance(16)  # the Freeze started at 25 s (NotBefore) and lasts 5
    assert [(e["EventType"], e["EventStatus"]) for e in events.document()["Events"]] == [
        ("Reboot", "Started"), ("Freeze", "Started")]
    events.clock.advance(4)
    assert events.document()["Events"] == []
    events.clock.advance(90)
    assert [(e["EventType"], e["EventSource"]) for e in events.document()["Events"]] == [("Redeploy", "User")]


def test_the_control_api_plays_timelines_and_moves_the_clock(client):
    imds = client()
    reply = imds.request("POST", "/_emulator/timeline", json={"events": [
        {"event_type": "Freeze", "not_before_seconds": 5, "duration_seconds": 2, "event_id": "f1"}]})
    assert reply.status_code == 201 and [e["EventId"] for e in reply.json()["events"]] == ["f1"]
    clock = imds.request("POST", "/_emulator/clock", json={"advance": 5}).json()
    assert clock["offset"] == 5 and clock["date"].endswith(" GMT")
    assert document(imds)["Events"][0]["EventStatus"] == "Started"
    assert imds.request("DELETE", "/_emulator/events/f1").json() == {"ended": 1}
    assert document(imds)["Events"] == []
    imds.emu.add_event()
    assert imds.request("DELETE", "/_emulator/events").json() == {"ended": 1}
    assert imds.request("GET", "/_emulator/clock").json()["offset"] == 5


def test_the_command_line_plays_a_timeline_file(tmp_path):
    import subprocess
    import sys

    import requests

    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps({"events": [{"event_type": "Freeze", "resources": ["vm-a"],
                                                "not_before_seconds": 30, "event_id": "x1"}]}))
    port_file = tmp_path / "port"
    process = subprocess.Popen([sys.executable, str(EMULATOR), "--timeline", str(timeline), "--port-file",
                                str(port_file), "--lifetime", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with requests.Session() as http:
            http.trust_env = False
            url = f"http://127.0.0.1:{port_file.read_text().strip()}/metadata/scheduledevents?api-version=2020-07-01"
            events = http.get(url, headers={"Metadata": "true"}, timeout=5).json()["Events"]
        assert [(e["EventId"], e["Resources"]) for e in events] == [("x1", ["vm-a"])]
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_an_event_id_stays_unique_across_pending_events(emulator):
    emu = emulator()
    emu.load_timeline({"events": [{"at": 100, "event_id": "later"}]})
    with pytest.raises(EmulatorError, match="exists already"):
        emu.add_event(event_id="later")
