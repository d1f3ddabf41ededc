"""imds.azure.scheduled_events through real ansible-playbook against the emulator.

The drain example (docs/examples/drain.yml, the imds.azure.maintenance role) is run by
tests/playbooks/test_maintenance_role.py.
"""
from __future__ import annotations

import datetime
import email.utils
import json
import re
import threading
import time

from ansible_collections.imds.azure.tests.utils.paths import REPO

PROFILES = REPO / "tools" / "imds_emulator" / "profiles"


def vm_name(profile):
    return json.loads((PROFILES / f"{profile}.json").read_text())["compute"]["name"]


def play(*tasks):
    """A play on every host (one here) running the module once per (name, args[, task keywords]).

    The registered results land in out_dir/results.json, by name (written on the controller).
    """
    body = ""
    for name, args, *keywords in tasks:
        body += f"""
    - name: {name}
      imds.azure.scheduled_events: {json.dumps(dict({"endpoint": "{{ endpoint }}"}, **args))}
      register: {name}"""
        for key, value in (keywords[0] if keywords else {}).items():
            body += f"\n      {key}: {json.dumps(value)}"
    names = ", ".join(f"'{task[0]}': {task[0]}" for task in tasks)
    return f"""- hosts: all
  gather_facts: false
  tasks:{body}
    - name: Save the results
      ansible.builtin.copy:
        content: "{{{{ {{{names}}} | to_json }}}}"
        dest: "{{{{ out_dir }}}}/results.json"
        mode: "0600"
      check_mode: false
      delegate_to: localhost
"""


def inject_after_first_read(emu, delay, **event):
    """Add an event ``delay`` seconds after the module's first scheduled-events read (bounded)."""
    added = {}

    def run():
        deadline = time.monotonic() + 60
        while not events_requests(emu) and time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.05)
        if not stop.wait(delay):
            added.update(emu.add_event(**event))

    stop = threading.Event()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return added, stop


def task_status(result, name):
    """What ansible-playbook printed for a task: ok, changed or fatal."""
    match = re.search(rf"TASK \[{re.escape(name)}\] \**\n(\w+):", result.stdout)
    return match.group(1) if match else None


def events_requests(emu, method=None):
    return [r for r in emu.requests if r["path"] == "/metadata/scheduledevents" and (method is None or r["method"] == method)]


def statuses(emu):
    return {e["EventId"]: e["EventStatus"] for e in emu.events_document()["Events"]}


def assert_times(event, started, ended):
    """not_before_utc is NotBefore in ISO 8601 UTC; seconds_until_not_before counts from the task's run."""
    when = email.utils.parsedate_to_datetime(event["not_before"])
    assert event["not_before_utc"] == when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert when.timestamp() - ended - 1 <= event["seconds_until_not_before"] <= when.timestamp() - started + 1


def test_list_filter_and_versions(emulator, playbook, host):
    emu = emulator(profile="linux")
    spot = emulator(profile="spot")
    me = vm_name("linux")
    freeze = emu.add_event(event_type="Freeze", not_before_seconds=900, duration_seconds=5)
    other = emu.add_event(event_type="Reboot", resources=["web-linux-02"])
    shared = emu.add_event(event_type="Redeploy", resources=["web-linux-02", me.upper()], event_source="User")
    preempt = spot.add_event(event_type="Preempt", not_before_seconds=30, description="")
    started = time.time()
    result = playbook(play(
        ("mine", {}),
        ("everyone", {"this_vm_only": False}),
        ("named", {"vm_name": "web-linux-02"}),
        ("old", {"api_version": "2019-01-01"}),
        ("spot", {"endpoint": spot.url, "api_version": "2019-08-01"}),
    ), extra_vars={"endpoint": emu.url}, **host).check()
    ended = time.time()
    results = result.read_json("results.json")

    mine = results["mine"]
    assert mine["changed"] is False and task_status(result, "mine") == "ok"
    assert mine["vm_name"] == me and mine["api_version"] == "2020-07-01"
    assert [e["event_id"] for e in mine["events"]] == [freeze["EventId"], shared["EventId"]]
    first = mine["events"][0]
    assert first["event_type"] == "Freeze" and first["event_status"] == "Scheduled" and first["duration_in_seconds"] == 5
    assert first["not_before"] == freeze["NotBefore"]
    assert_times(first, started, ended)
    assert mine["events"][1]["event_source"] == "User" and mine["events"][1]["duration_in_seconds"] is None  # -1
    assert mine["document_incarnation"] == emu.events_document()["DocumentIncarnation"]
    assert len(mine["document"]["Events"]) == 3
    assert mine["msg"] == f"2 scheduled events for {me} (3 in the document, incarnation {mine['document_incarnation']})."

    everyone = results["everyone"]
    assert [(e["event_id"], e["for_this_vm"]) for e in everyone["events"]] == [
        (freeze["EventId"], True), (other["EventId"], False), (shared["EventId"], True)]
    named = results["named"]
    assert [e["event_id"] for e in named["events"]] == [other["EventId"], shared["EventId"]]

    old = results["old"]
    assert old["api_version"] == "2019-01-01" and len(old["events"]) == 2
    assert all(e["description"] is None and e["event_source"] is None and e["duration_in_seconds"] is None
               for e in old["events"])
    # one name lookup per task that needs it (not "named"), one events read per task, nothing else
    names = [r for r in emu.requests if r["path"] == "/metadata/instance/compute/name"]
    assert len(names) == 3 and all(r["query"]["format"] == "text" for r in names)
    assert len(events_requests(emu)) == 4 and not events_requests(emu, "POST")

    # a Spot VM's eviction, in the compact 2019-08-01 shape: no DurationInSeconds yet
    (event,) = results["spot"]["events"]
    assert event["event_id"] == preempt["EventId"] and event["event_type"] == "Preempt"
    assert event["resources"] == [vm_name("spot")] and event["for_this_vm"] is True
    assert event["description"] is None and event["event_source"] == "Platform"
    assert event["duration_in_seconds"] is None
    assert_times(event, started, ended)


def test_check_mode_then_approve(emulator, playbook, host):
    emu = emulator(profile="linux")
    reboot = emu.add_event(event_type="Reboot")
    freeze = emu.add_event(event_type="Freeze")
    other = emu.add_event(event_type="Redeploy", resources=["web-linux-02"])
    started = emu.add_event(event_type="Reboot", status="Started", not_before_seconds=None)
    incarnation = emu.events_document()["DocumentIncarnation"]
    result = playbook(play(
        ("checked", {"approve": "all_for_this_vm"}, {"check_mode": True}),
        ("by_id", {"approve": [reboot["EventId"].lower(), started["EventId"], "0000-gone"]}),
        ("again", {"approve": [reboot["EventId"]]}),
        ("rest", {"approve": "all_for_this_vm"}),
    ), extra_vars={"endpoint": emu.url}, **host).check()
    results = result.read_json("results.json")

    checked = results["checked"]  # check mode: says what it would approve, approves nothing
    assert checked["approved"] == [] and checked["would_approve"] == [reboot["EventId"], freeze["EventId"]]
    assert checked["changed"] is True and task_status(result, "checked") == "changed"
    assert checked["msg"] == f"Would approve {reboot['EventId']} (Reboot), {freeze['EventId']} (Freeze)."
    assert checked["document_incarnation"] == incarnation

    by_id = results["by_id"]
    assert by_id["changed"] is True and task_status(result, "by_id") == "changed"
    assert by_id["approved"] == [reboot["EventId"]]
    assert by_id["already_started"] == [started["EventId"]] and by_id["not_found"] == ["0000-gone"]
    assert "no longer) listed, so nothing to approve: 0000-gone" in by_id["msg"]
    assert by_id["document_incarnation"] > incarnation  # read again after the approval
    assert {e["event_id"]: e["event_status"] for e in by_id["events"]}[reboot["EventId"]] == "Started"

    again = results["again"]  # approving twice changes nothing
    assert again["changed"] is False and again["approved"] == [] and again["already_started"] == [reboot["EventId"]]
    assert task_status(result, "again") == "ok"

    rest = results["rest"]
    assert rest["changed"] is True and rest["approved"] == [freeze["EventId"]]
    assert statuses(emu) == {reboot["EventId"]: "Started", freeze["EventId"]: "Started",
                             other["EventId"]: "Scheduled", started["EventId"]: "Started"}
    # one POST per task that approved something; none in check mode nor for "again"
    assert len(events_requests(emu, "POST")) == 2


def test_wait_for_an_event_injected_later(emulator, playbook, host):
    emu = emulator(profile="linux")
    emu.add_event(event_type="Reboot", resources=["web-linux-02"])  # another VM's: not what we wait for
    injected, stop = inject_after_first_read(emu, 2.0, event_type="Freeze", duration_seconds=9)
    try:
        result = playbook(play(("waited", {"wait_for": ["Reboot", "Freeze"], "wait_timeout": 30, "poll_interval": 1})),
                          extra_vars={"endpoint": emu.url}, timeout=90, **host).check()
    finally:
        stop.set()
    waited = result.read_json("results.json")["waited"]
    assert waited["timed_out"] is False and waited["changed"] is False
    assert [e["event_id"] for e in waited["matched"]] == [injected["EventId"]]
    assert waited["matched"][0]["duration_in_seconds"] == 9
    assert 1.5 <= waited["waited_seconds"] < 30
    # polite: one GET a second at most while waiting
    gets = events_requests(emu, "GET")
    assert 2 <= len(gets) <= waited["waited_seconds"] + 2
    times = [r["time"] for r in gets]
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:]))


def test_wait_times_out_without_failing(emulator, playbook, host):
    emu = emulator(profile="linux")
    emu.add_event(event_type="Preempt")  # for this VM, but not a type we wait for
    result = playbook(play(("waited", {"wait_for": ["Redeploy"], "wait_timeout": 2, "poll_interval": 1})),
                      extra_vars={"endpoint": emu.url}, **host).check()
    waited = result.read_json("results.json")["waited"]
    assert waited["timed_out"] is True and waited["matched"] == [] and waited["changed"] is False
    assert 2 <= waited["waited_seconds"] < 15  # bounded: one poll may overrun the deadline a little
    assert waited["msg"] == f"No Redeploy event for {vm_name('linux')} appeared within 2 s."
    assert 2 <= len(events_requests(emu, "GET")) <= 4  # the first read, a poll a second, one at the deadline


def test_failures_are_clear_and_the_first_call_may_be_slow(emulator, playbook, host):
    broken = emulator(profile="linux", faults={"status_always": 500})
    slow = emulator(profile="linux", faults={"delay": 1.5})
    keep_going = {"ignore_errors": True}
    result = playbook(play(
        ("instance_version", {"api_version": "2021-02-01"}, keep_going),
        ("all_and_ids", {"approve": ["all_for_this_vm", "x"]}, keep_going),
        ("imds_down", {"vm_name": "x", "retry_timeout": 1}, keep_going),
        # the request that enables scheduled events may be slow: it gets first_call_timeout, not timeout
        ("patient", {"endpoint": slow.url, "vm_name": "x", "timeout": 1, "first_call_timeout": 6}),
        ("impatient", {"endpoint": slow.url, "vm_name": "x", "timeout": 1, "first_call_timeout": 1,
                       "retry_timeout": 0}, keep_going),
    ), extra_vars={"endpoint": broken.url}, **host).check()
    results = result.read_json("results.json")
    assert "Traceback" not in result.output
    assert "is not a scheduled-events api-version" in results["instance_version"]["msg"]
    assert "module_defaults" in results["instance_version"]["msg"]
    assert "all_for_this_vm alone" in results["all_and_ids"]["msg"]
    down = results["imds_down"]
    assert down["msg"].startswith(f"IMDS answered 500 for {broken.url}/metadata/scheduledevents?api-version=2020-07-01")
    assert "Gave up after" in down["msg"] and down["status"] == 500
    assert all(results[name]["failed"] for name in ("instance_version", "all_and_ids", "imds_down", "impatient"))
    # the option errors made no request; only imds_down reached IMDS (no name lookup: vm_name given)
    assert {r["path"] for r in broken.requests} == {"/metadata/scheduledevents"}

    assert results["patient"]["failed"] is False and results["patient"]["events"] == []
    assert "timed out" in results["impatient"]["msg"]


# -- rules and the end of events -----------------------------------------------------------------

def test_rules_approve_and_the_end_is_awaited(emulator, playbook, host):
    """The same on a POSIX host and on a Windows host (the action plugin runs the module's code)."""
    emu = emulator(profile="linux")
    me = vm_name("linux")
    freeze = emu.add_event(event_type="Freeze", not_before_seconds=900, duration_seconds=2)
    reboot = emu.add_event(event_type="Reboot", not_before_seconds=900, complete_after_seconds=2)
    by_user = emu.add_event(event_type="Redeploy", resources=["web-linux-02"], event_source="User",
                            not_before_seconds=900, complete_after_seconds=1)
    rules = [{"event_types": ["Freeze"], "max_duration": 10}, {"event_sources": ["User"]}]
    common = {"vm_name": me, "poll_interval": 1, "end_timeout": 30, "wait_for_end": True}
    checked = playbook(play(("checked", dict(common, approve_rules=rules))), extra_vars={"endpoint": emu.url},
                       args=("--check",), **host).check()
    would = checked.read_json("results.json")["checked"]
    assert would["would_approve"] == [freeze["EventId"]] and would["approved"] == [] and would["changed"] is True
    assert would["ended"] is False and "Check mode: not waiting for the end" in would["msg"]
    assert events_requests(emu, "POST") == [] and set(statuses(emu).values()) == {"Scheduled"}

    result = playbook(play(("mine", dict(common, approve_rules=rules)),
                           ("everyone", dict(common, approve_rules=rules, this_vm_only=False))),
                      extra_vars={"endpoint": emu.url}, **host).check()
    mine, everyone = result.read_json("results.json")["mine"], result.read_json("results.json")["everyone"]
    assert mine["approved"] == [freeze["EventId"]] and mine["ended"] is True and mine["changed"] is True
    assert [(m["event_id"], m["rule"]) for m in mine["rule_matches"]] == [(freeze["EventId"], 1)]
    assert 0 < mine["phase_seconds"]["end"] <= 4 and mine["phase_seconds"]["start"] == 0
    assert everyone["approved"] == [by_user["EventId"]] and everyone["ended"] is True
    # the Reboot matched no rule: still Scheduled, never approved
    assert statuses(emu) == {reboot["EventId"]: "Scheduled"}
    assert [r["start_requests"] for r in events_requests(emu, "POST")] == [[freeze["EventId"]], [by_user["EventId"]]]


# -- hostile documents and option values ----------------------------------------------------------

FORGED = "\x1b[2J\x1b]0;pwned\x07\r\nok: [localhost] => forged\u2028\u202e"


def test_server_text_never_reaches_the_terminal_raw(emulator, playbook):
    """Issue 14, defect 5: an EventId or NotBefore with escapes and line breaks forged output lines."""
    emu = emulator(profile="linux")
    me = vm_name("linux")
    event = emu.add_event(event_type="Freeze", event_id=f"EV{FORGED}", description=FORGED)
    undated = emulator(profile="linux", faults={"body": {"text": json.dumps({"DocumentIncarnation": 3, "Events": [
        {"EventId": f"X{FORGED}", "EventType": "Reboot", "NotBefore": f"soon{FORGED}", "Resources": [me]}]})}})
    result = playbook(play(
        ("listed", {}),
        ("waited", {"wait_for": ["Freeze"], "poll_interval": 1}),
        ("approved", {"approve": "all_for_this_vm"}),
        ("undated", {"endpoint": undated.url, "vm_name": me, "api_version": "2020-07-01"}),
    ), extra_vars={"endpoint": emu.url}, args=("-v",)).check()
    results = result.read_json("results.json")
    for name in ("listed", "waited", "approved", "undated"):
        assert results[name]["msg"].isprintable(), results[name]["msg"]
    assert results["approved"]["approved"] == [event["EventId"]]  # the data is IMDS's, escapes and all
    assert "\\x1b[2J" in results["approved"]["msg"]
    for raw in ("\x1b", "\x07", "\r"):  # (JSON escapes these in the data the callback prints)
        assert raw not in result.output, repr(raw)
    warnings = [line for line in result.output.splitlines() if "[WARNING]" in line]
    assert warnings and all(line.isprintable() for line in warnings), warnings
    assert not any(line.startswith("ok: [localhost] => forged") for line in result.output.splitlines())
    assert "[WARNING]: Scheduled event X\\x1b[2J" in result.output  # the NotBefore warning, escaped


def test_foreign_digits_absurd_dates_and_endless_waits_fail_cleanly(emulator, playbook):
    """Issue 14, defect 9: '²', '١٢', a NotBefore past year 9999, nan and inf were tracebacks or endless loops."""
    me = vm_name("linux")

    def serving(document):
        return emulator(profile="linux", faults={"body": {"text": json.dumps(document)}}).url

    emu = emulator(profile="linux")
    keep_going = {"ignore_errors": True}
    pinned = {"vm_name": me, "api_version": "2020-07-01"}
    started = time.monotonic()
    result = playbook(play(
        ("superscript", dict(pinned, endpoint=serving({"DocumentIncarnation": "²", "Events": []})), keep_going),
        ("arabic", dict(pinned, endpoint=serving({"DocumentIncarnation": 1, "Events": [
            {"EventId": "A", "Resources": [me], "DurationInSeconds": "١٢"}]})), keep_going),
        ("far_future", dict(pinned, endpoint=serving({"DocumentIncarnation": 1, "Events": [
            {"EventId": "B", "Resources": [me], "NotBefore": "Mon, 01 Jan 99999 00:00:00 GMT"},
            {"EventId": "C", "Resources": [me], "NotBefore": "Fri, 31 Dec 9999 23:59:59 -0100"}]}))),
        ("nan_wait", {"wait_for": ["Reboot"], "wait_timeout": "nan"}, keep_going),
        ("inf_first", {"first_call_timeout": "inf"}, keep_going),
        ("nan_poll", {"wait_for": ["Reboot"], "poll_interval": "nan"}, keep_going),
        ("huge_poll", {"wait_for": ["Reboot"], "poll_interval": 1e308}, keep_going),
    ), extra_vars={"endpoint": emu.url}, timeout=120).check()
    assert time.monotonic() - started < 100  # no endless wait
    assert "Traceback" not in result.output
    results = result.read_json("results.json")
    assert results["superscript"]["failed"] and "DocumentIncarnation '²' is not a whole number" in \
        results["superscript"]["msg"]
    assert results["arabic"]["failed"] and "DurationInSeconds '١٢', which is not a whole number" in \
        results["arabic"]["msg"]
    far = results["far_future"]
    assert not far.get("failed") and [e["not_before_utc"] for e in far["events"]] == [None, None]
    assert "Scheduled events B, C: NotBefore 'Mon, 01 Jan 99999 00:00:00 GMT' is not a date" in result.output
    assert results["nan_wait"]["msg"] == "wait_timeout must be a finite number of seconds, not nan."
    assert results["inf_first"]["msg"] == "first_call_timeout must be a finite number of seconds, not inf."
    assert results["nan_poll"]["msg"] == "poll_interval must be a finite number of seconds, not nan."
    assert results["huge_poll"]["msg"].startswith("poll_interval must be at least 1 and at most 3600 seconds")
    # the option errors made no request
    assert events_requests(emu) == []
