"""The scheduled-events module's main() against a scripted IMDS: listing, approving, waiting, errors."""
from __future__ import annotations

import calendar
import email.utils
import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _detect
from ansible_collections.imds.azure.plugins.module_utils._detect import Evidence
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.modules import scheduled_events
from ansible_collections.imds.azure.tests.utils.clock import FakeClock
from ansible_collections.imds.azure.tests.utils.modules import run_module
from ansible_collections.imds.azure.tests.utils.transport import ScriptedTransport

EMULATOR = "http://127.0.0.1:1"
EPOCH = calendar.timegm((2024, 5, 6, 7, 0, 0))  # what time.time() says when a test starts


def rfc1123(seconds_from_epoch):
    return email.utils.formatdate(EPOCH + seconds_from_epoch, usegmt=True)


def ev(event_id, event_type="Reboot", resources=("vm1",), status="Scheduled", in_seconds=900, **extra):
    return {"EventId": event_id, "EventType": event_type, "ResourceType": "VirtualMachine",
            "Resources": list(resources), "EventStatus": status,
            "NotBefore": rfc1123(in_seconds) if status == "Scheduled" else "", **extra}


def doc(*events, incarnation=1):
    return {"DocumentIncarnation": incarnation, "Events": list(events)}


EVENTS = "/metadata/scheduledevents"


def imds_of_vm(documents, name="vm1", post=None, name_answer=None):
    """IMDS for one VM: the compute name, scheduled-events documents, approvals.

    ``documents`` are the successive answers to GET scheduledevents (the last one
    repeats); an entry may be an HttpResponse or TransportError to send instead.
    ``post`` answers the approvals (200 with an empty body once they are used up).
    """
    return ScriptedTransport(routes={
        "/metadata/instance/compute/name": [name_answer if name_answer is not None else HttpResponse(200, {}, name.encode())],
        f"GET {EVENTS}": list(documents),
        f"POST {EVENTS}": [*(post or []), HttpResponse(200, {}, b"")],
    })


@pytest.fixture
def clock(monkeypatch):
    return FakeClock(start=5000.0, wall=EPOCH).install(monkeypatch)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    class Unlimited:  # real time; the limiter is tested in test_ratelimit
        def acquire(self, deadline, hold=None):
            return "t"

        def done(self, ticket, deadline=None):
            pass

    monkeypatch.setattr(scheduled_events.ImdsClient, "limiter", property(lambda self: Unlimited()))


def run(monkeypatch, args, imds, *, dmi=None):
    """Run main() against ``imds``; return the result dict (with failed) and the warnings."""
    monkeypatch.setattr(_detect, "dmi_evidence",
                        lambda path=None: dmi or Evidence(None, "the DMI chassis asset tag could not be read"))
    return run_module(monkeypatch, scheduled_events, dict({"endpoint": EMULATOR}, **args), imds, sleep=False)


# -- listing ----------------------------------------------------------------------------------

def test_lists_events_for_this_vm(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A", "Freeze", duration=None), ev("B", resources=["vm2"]),
                           ev("C", "Redeploy", resources=["VM1", "vm3"], in_seconds=-30), incarnation=4)])
    result = run(monkeypatch, {}, imds)
    assert not result["failed"] and result["changed"] is False
    assert [e["event_id"] for e in result["events"]] == ["A", "C"]
    assert result["events"][0]["not_before_utc"] == "2024-05-06T07:15:00Z"
    assert result["events"][0]["seconds_until_not_before"] == 900
    assert result["events"][1]["seconds_until_not_before"] == -30
    assert result["document_incarnation"] == 4 and result["vm_name"] == "vm1" and result["api_version"] == "2020-07-01"
    assert len(result["document"]["Events"]) == 3  # the raw document keeps every VM's events
    assert result["msg"] == "2 scheduled events for vm1 (3 in the document, incarnation 4)."
    assert result["approved"] == [] and "would_approve" not in result and "timed_out" not in result


def test_requests_made_for_a_listing(monkeypatch, clock):
    imds = imds_of_vm([doc()])
    run(monkeypatch, {}, imds)
    name, events = imds.calls
    assert name["path"] == "/metadata/instance/compute/name" and name["query"]["format"] == "text"
    assert name["timeout"] == 5.0
    assert events["method"] == "GET" and events["query"] == {"api-version": "2020-07-01"}
    assert events["timeout"] == 120.0  # the first call may enable scheduled events: up to two minutes
    assert events["headers"]["Metadata"] == "true"


def test_vm_name_given_skips_the_lookup(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A", resources=["other"]))])
    result = run(monkeypatch, {"vm_name": "Other"}, imds)
    assert [c["path"] for c in imds.calls] == ["/metadata/scheduledevents"]
    assert [e["event_id"] for e in result["events"]] == ["A"] and result["vm_name"] == "Other"


def test_all_vms(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"), ev("B", resources=["vm2"]))])
    result = run(monkeypatch, {"this_vm_only": False}, imds)
    assert [(e["event_id"], e["for_this_vm"]) for e in result["events"]] == [("A", True), ("B", False)]
    assert result["msg"].startswith("2 scheduled events for any VM")


def test_no_events(monkeypatch, clock):
    result = run(monkeypatch, {}, imds_of_vm([doc()]))
    assert result["events"] == [] and result["msg"] == "0 scheduled events for vm1 (0 in the document, incarnation 1)."


def test_pinned_old_version(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"))])
    result = run(monkeypatch, {"api_version": "2017-08-01", "first_call_timeout": 30}, imds)
    assert imds.calls[-1]["query"]["api-version"] == "2017-08-01" and result["api_version"] == "2017-08-01"
    assert imds.calls[-1]["timeout"] == 30.0


def test_refused_version_is_negotiated_among_events_versions(monkeypatch, clock):
    refused = HttpResponse(400, {}, json.dumps({"error": "Bad request. api-version is invalid",
                                                "newest-versions": ["2019-08-01", "2019-04-01", "2019-01-01"]}).encode())
    imds = imds_of_vm([refused, doc()])
    result = run(monkeypatch, {}, imds)
    assert [c["query"]["api-version"] for c in imds.of("GET", EVENTS)] == ["2020-07-01", "2019-08-01"]
    assert result["api_version"] == "2019-08-01" and not result["failed"]


def test_first_call_timeout_is_never_below_timeout(monkeypatch, clock):
    imds = imds_of_vm([doc()])
    run(monkeypatch, {"timeout": 20, "first_call_timeout": 10}, imds)
    assert imds.calls[-1]["timeout"] == 20.0


# -- approving --------------------------------------------------------------------------------

def test_approve_all_for_this_vm(monkeypatch, clock):
    before = doc(ev("A"), ev("B", resources=["vm2"]), ev("C", status="Started"), ev("D", "Freeze"), incarnation=2)
    after = doc(ev("A", status="Started"), ev("B", resources=["vm2"]), ev("C", status="Started"),
                ev("D", "Freeze", status="Started"), incarnation=3)
    imds = imds_of_vm([before, after])
    result = run(monkeypatch, {"approve": "all_for_this_vm"}, imds)
    (post,) = imds.of("POST", EVENTS)
    assert post["body"] == {"StartRequests": [{"EventId": "A"}, {"EventId": "D"}]}
    assert post["headers"]["Content-Type"] == "application/json" and post["query"] == {"api-version": "2020-07-01"}
    assert result["changed"] is True and result["approved"] == ["A", "D"]
    assert result["msg"] == "Approved A (Reboot), D (Freeze)."
    # read again: the events as they stand after the approval
    assert result["document_incarnation"] == 3
    assert [e["event_status"] for e in result["events"]] == ["Started", "Started", "Started"]


def test_approve_ids(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("AAA"), ev("BBB", resources=["vm2"]), ev("CCC", status="Started"))])
    result = run(monkeypatch, {"approve": ["bbb", "CCC", "gone"]}, imds)
    (post,) = imds.of("POST", EVENTS)
    assert post["body"] == {"StartRequests": [{"EventId": "BBB"}]}  # another VM's event, named explicitly
    assert result["approved"] == ["BBB"] and result["already_started"] == ["CCC"] and result["not_found"] == ["gone"]
    assert result["changed"] is True and not result["failed"]
    assert "already started: CCC" in result["msg"] and "no longer) listed" in result["msg"] and "gone" in result["msg"]


def test_approving_a_vanished_event_is_not_an_error(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"))])
    result = run(monkeypatch, {"approve": ["old-event"]}, imds)
    assert imds.of("POST", EVENTS) == []
    assert not result["failed"] and result["changed"] is False
    assert result["approved"] == [] and result["not_found"] == ["old-event"]
    assert result["msg"].startswith("Nothing to approve (not (or no longer) listed")


def test_approve_nothing_scheduled(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A", resources=["vm2"]), ev("B", status="Started"))])
    result = run(monkeypatch, {"approve": ["all_for_this_vm"]}, imds)
    assert imds.of("POST", EVENTS) == [] and result["changed"] is False and result["msg"] == "Nothing to approve."


def test_approve_empty_list(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"))])
    result = run(monkeypatch, {"approve": []}, imds)
    assert imds.of("POST", EVENTS) == [] and result["changed"] is False


def test_check_mode_approves_nothing(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"), ev("B", "Freeze"))])
    result = run(monkeypatch, {"approve": "all_for_this_vm", "_ansible_check_mode": True}, imds)
    assert imds.of("POST", EVENTS) == [] and len(imds.of("GET", EVENTS)) == 1
    assert result["approved"] == [] and result["would_approve"] == ["A", "B"]
    assert result["changed"] is True  # what the run would do, as check mode reports it
    assert result["msg"] == "Would approve A (Reboot), B (Freeze)."


def test_check_mode_with_nothing_to_approve(monkeypatch, clock):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, {"approve": ["x"], "_ansible_check_mode": True}, imds)
    assert result["changed"] is False and result["would_approve"] == [] and result["not_found"] == ["x"]


def test_event_vanishing_between_read_and_approval(monkeypatch, clock):
    """IMDS refuses a POST naming an event it no longer has; the survivors are approved."""
    first = doc(ev("A"), ev("B"))
    later = doc(ev("B"), incarnation=2)
    done = doc(ev("B", status="Started"), incarnation=3)
    refused = HttpResponse(400, {}, json.dumps({"error": "Bad request"}).encode())
    imds = imds_of_vm([first, later, done], post=[refused, HttpResponse(200, {}, b"")])
    result = run(monkeypatch, {"approve": "all_for_this_vm"}, imds)
    assert [p["body"]["StartRequests"] for p in imds.of("POST", EVENTS)] == [[{"EventId": "A"}, {"EventId": "B"}],
                                                                             [{"EventId": "B"}]]
    assert not result["failed"] and result["changed"] is True
    assert result["approved"] == ["B"] and result["not_found"] == ["A"]
    assert "started or ended meanwhile: A" in result["msg"]


def test_refused_approval_of_existing_events_fails(monkeypatch, clock):
    refused = HttpResponse(400, {}, json.dumps({"error": "Bad request. The body needs a StartRequests list"}).encode())
    imds = imds_of_vm([doc(ev("A"))], post=[refused])
    result = run(monkeypatch, {"approve": ["A"]}, imds)
    assert result["failed"] and "IMDS answered 400" in result["msg"] and "StartRequests" in result["msg"]
    assert result["status"] == 400 and result["approved"] == []


def test_approval_server_error_is_retried(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("A"))], post=[HttpResponse(500, {"retry-after": "0"}, b""), HttpResponse(200, {}, b"{}")])
    result = run(monkeypatch, {"approve": ["A"]}, imds)
    assert len(imds.of("POST", EVENTS)) == 2 and result["approved"] == ["A"]


# -- waiting ----------------------------------------------------------------------------------

def test_wait_until_an_event_appears(monkeypatch, clock):
    other = doc(ev("X", resources=["vm2"]))
    unwanted = doc(ev("X", resources=["vm2"]), ev("P", "Preempt"), incarnation=2)
    wanted = doc(ev("X", resources=["vm2"]), ev("P", "Preempt"), ev("R", "Redeploy"), incarnation=3)
    imds = imds_of_vm([other, other, unwanted, wanted])
    result = run(monkeypatch, {"wait_for": ["Reboot", "Redeploy", "Freeze"], "poll_interval": 1.5}, imds)
    assert not result["failed"] and result["changed"] is False and result["timed_out"] is False
    assert [e["event_id"] for e in result["matched"]] == ["R"]
    assert [e["event_id"] for e in result["events"]] == ["P", "R"]
    assert len(imds.of("GET", EVENTS)) == 4 and clock.sleeps == [1.5, 1.5, 1.5]
    assert result["waited_seconds"] == 4.5
    assert result["msg"] == "Found R (Redeploy) for vm1 after 4.5 s."
    assert [c["timeout"] for c in imds.of("GET", EVENTS)] == [120.0, 5.0, 5.0, 5.0]  # only the first may be slow


def test_wait_finds_an_event_at_once(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("F", "Freeze", status="Started"))])
    result = run(monkeypatch, {"wait_for": ["Freeze"]}, imds)
    assert result["timed_out"] is False and result["waited_seconds"] == 0 and clock.sleeps == []
    assert result["matched"][0]["event_status"] == "Started"


def test_wait_times_out_without_failing(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("X", resources=["vm2"]))])
    result = run(monkeypatch, {"wait_for": ["Reboot"], "wait_timeout": 5, "poll_interval": 2}, imds)
    assert not result["failed"] and result["timed_out"] is True and result["matched"] == []
    assert clock.sleeps == [2, 2, 1] and len(imds.of("GET", EVENTS)) == 4
    assert result["msg"] == "No Reboot event for vm1 appeared within 5 s."


def test_wait_for_any_vm(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("X", "Terminate", resources=["vm2"]))])
    result = run(monkeypatch, {"wait_for": ["Terminate"], "this_vm_only": False}, imds)
    assert result["timed_out"] is False and [e["event_id"] for e in result["matched"]] == ["X"]


def test_wait_polls_through_a_throttled_answer(monkeypatch, clock):
    imds = imds_of_vm([doc(), HttpResponse(429, {"retry-after": "0"}, b""), doc(ev("R"))])
    result = run(monkeypatch, {"wait_for": ["Reboot"], "poll_interval": 1}, imds)
    assert result["timed_out"] is False and len(imds.of("GET", EVENTS)) == 3


# -- failures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    ({"api_version": "2021-02-01"}, "not a scheduled-events api-version"),
    ({"api_version": "latest"}, "2017-08-01, 2017-11-01, 2019-01-01, 2019-04-01, 2019-08-01, 2020-07-01"),
    ({"poll_interval": 0.2}, "poll_interval must be at least 1 and at most 3600 seconds, not 0.2."),
    ({"wait_timeout": -1}, "wait_timeout must be at least 0 and at most 604800 seconds, not -1."),
    ({"first_call_timeout": 0}, "first_call_timeout must be greater than 0 and at most 3600 seconds, not 0."),
    # numbers that would make a wait endless or raise: finite and bounded, one line each
    ({"wait_timeout": "nan"}, "wait_timeout must be a finite number of seconds, not nan."),
    ({"wait_timeout": "inf"}, "wait_timeout must be a finite number of seconds, not inf."),
    ({"wait_timeout": 1e308}, "wait_timeout must be at least 0 and at most 604800 seconds, not 1e+308."),
    ({"first_call_timeout": "inf"}, "first_call_timeout must be a finite number of seconds, not inf."),
    ({"first_call_timeout": "-inf"}, "first_call_timeout must be a finite number of seconds"),
    ({"poll_interval": "nan"}, "poll_interval must be a finite number of seconds, not nan."),
    ({"poll_interval": "inf"}, "poll_interval must be a finite number of seconds, not inf."),
    ({"poll_interval": 0}, "poll_interval must be at least 1 and at most 3600 seconds, not 0."),
    ({"poll_interval": -1}, "poll_interval must be at least 1 and at most 3600 seconds, not -1."),
    ({"poll_interval": 1e308}, "poll_interval must be at least 1 and at most 3600 seconds, not 1e+308."),
    ({"vm_name": " "}, "vm_name is empty"),
    ({"approve": ["all_for_this_vm", "A"]}, "all_for_this_vm alone"),
    ({"approve": ["A", ""]}, "empty event id"),
    ({"approve": ["A"], "wait_for": ["Reboot"]}, "mutually exclusive"),
    ({"wait_for": ["Reboots"]}, "Reboots"),
    ({"endpoint": "169.254.169.254"}, "not an http:// URL"),
])
def test_bad_options_fail_before_any_request(monkeypatch, args, needle):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, args, imds)
    assert result["failed"] and needle in result["msg"] and imds.calls == []


def test_group_api_version_hint(monkeypatch):
    result = run(monkeypatch, {"api_version": "2021-02-01"}, imds_of_vm([doc()]))
    assert "module_defaults" in result["msg"] and "imds.azure.metadata_facts" in result["msg"]


def test_not_azure_by_dmi_fails_without_a_request(monkeypatch):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, {"endpoint": "http://169.254.169.254"}, imds,
                 dmi=Evidence(False, "the DMI chassis asset tag in /x is 'Default string', not Azure's"))
    assert result["failed"] and "does not look like an Azure VM" in result["msg"] and imds.calls == []


def test_dmi_is_not_read_for_an_explicit_endpoint(monkeypatch, clock):
    result = run(monkeypatch, {}, imds_of_vm([doc()]), dmi=Evidence(False, "not Azure"))
    assert not result["failed"]


def test_unreachable_default_endpoint_names_route_role(monkeypatch, clock):
    imds = imds_of_vm([doc()], name_answer=TransportError("timeout", "timed out"))
    result = run(monkeypatch, {"endpoint": "http://169.254.169.254"}, imds, dmi=Evidence(True, "Azure's tag"))
    assert result["failed"] and "imds.azure.route" in result["msg"]
    assert len(imds.calls) == 1 and imds.calls[0]["timeout"] == 5.0  # the name lookup, never the slow call


@pytest.mark.parametrize("vm_name", [None, "vm1"])
def test_no_answer_where_dmi_cannot_tell_is_not_azure_after_the_probe(monkeypatch, clock, vm_name):
    """In a container off Azure, the first request waits probe_timeout, never first_call_timeout."""
    imds = imds_of_vm([doc()], name_answer=TransportError("timeout", "timed out"))
    args = {"endpoint": "http://169.254.169.254", "probe_timeout": 2.5, **({"vm_name": vm_name} if vm_name else {})}
    result = run(monkeypatch, args, imds)
    assert result["failed"] and "does not look like an Azure VM" in result["msg"] and "imds.azure.route" in result["msg"]
    assert [c["timeout"] for c in imds.calls] == [2.5] and imds.calls[0]["path"] == "/metadata/instance/compute/name"


def test_events_endpoint_error(monkeypatch, clock):
    imds = imds_of_vm([HttpResponse(404, {}, json.dumps({"error": "Not found"}).encode())])
    result = run(monkeypatch, {"vm_name": "vm1"}, imds)
    assert result["failed"] and "IMDS answered 404" in result["msg"] and "/metadata/scheduledevents" in result["msg"]
    assert result["url"].startswith(f"{EMULATOR}/metadata/scheduledevents?api-version=2020-07-01")
    assert result["api_version"] == "2020-07-01"


@pytest.mark.parametrize("body, needle", [
    (b"[]", "list, not an object"),
    (b'{"DocumentIncarnation": 1}', "no Events list"),
    (b'{"DocumentIncarnation": 1, "Events": [{"EventType": "Reboot"}]}', "event 0 has no EventId"),
])
def test_not_an_events_document(monkeypatch, clock, body, needle):
    result = run(monkeypatch, {}, imds_of_vm([HttpResponse(200, {}, body)]))
    assert result["failed"] and "not a scheduled-events document" in result["msg"] and needle in result["msg"]
    assert "Traceback" not in result["msg"]


def test_empty_compute_name(monkeypatch, clock):
    result = run(monkeypatch, {}, imds_of_vm([doc()], name=" \n"))
    assert result["failed"] and "empty compute name; set vm_name" in result["msg"]


def test_unreadable_not_before_becomes_a_warning(monkeypatch, clock):
    result = run(monkeypatch, {}, imds_of_vm([doc(dict(ev("A"), NotBefore="soon"))]))
    assert not result["failed"] and result["events"][0]["not_before_utc"] is None
    assert len(result["warnings"]) == 1 and "'soon' is not a date" in result["warnings"][0]


# -- server text on the terminal --------------------------------------------------------------

FORGED = "\x1b[2J\x1b]0;title\x07\r\nok: [localhost] => forged\u2028\u202e\x00"


def test_messages_escape_what_imds_sends(monkeypatch, clock):
    """The VM name, event ids and types come from IMDS; every msg and warning shows them escaped."""
    name = f"vm1{FORGED}"
    hostile = [ev(f"A{FORGED}", f"Freeze{FORGED}", resources=[name]),
               ev(f"B{FORGED}", resources=[name], status="Started"),
               dict(ev(f"C{FORGED}", resources=[name]), NotBefore=FORGED)]
    listed = run(monkeypatch, {}, imds_of_vm([doc(*hostile)], name=name))
    approved = run(monkeypatch, {"approve": [f"a{FORGED}", f"B{FORGED}", f"gone{FORGED}"]},
                   imds_of_vm([doc(*hostile)], name=name))
    waited = run(monkeypatch, {"wait_for": ["Reboot"]}, imds_of_vm([doc(*hostile[1:])], name=name))
    timed_out = run(monkeypatch, {"wait_for": ["Redeploy"], "wait_timeout": 2}, imds_of_vm([doc()], name=name))
    for result in (listed, approved, waited, timed_out):
        assert not result["failed"], result["msg"]
        for text in [result["msg"], *result["warnings"]]:
            assert text.isprintable(), text
            assert "\\x1b[2J" in text
    assert approved["approved"] == [f"A{FORGED}"]  # the data is what IMDS sent
    assert listed["events"][0]["event_id"] == f"A{FORGED}"


def test_a_broken_document_with_escapes_fails_in_one_printable_line(monkeypatch, clock):
    body = json.dumps(doc(ev(f"A{FORGED}"), ev(f"a{FORGED}"))).encode()
    result = run(monkeypatch, {"vm_name": "vm1"}, imds_of_vm([HttpResponse(200, {}, body)]))
    assert result["failed"] and "is listed twice" in result["msg"]
    assert result["msg"].isprintable()


@pytest.mark.parametrize("value", ["²", "١٢"])
def test_foreign_digits_fail_cleanly(monkeypatch, clock, value):
    result = run(monkeypatch, {"vm_name": "vm1"}, imds_of_vm([doc(ev("A", DurationInSeconds=value))]))
    assert result["failed"] and "DurationInSeconds" in result["msg"] and "is not a whole number" in result["msg"]
    result = run(monkeypatch, {"vm_name": "vm1"}, imds_of_vm([{"DocumentIncarnation": value, "Events": []}]))
    assert result["failed"] and "DocumentIncarnation" in result["msg"]


# -- approval rules -----------------------------------------------------------------------------

RULES = [{"event_sources": ["User"]}, {"event_types": ["Freeze"], "max_duration": 10}, {"event_types": ["Preempt"]}]


def test_rules_approve_what_they_match_and_leave_the_rest(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("U", "Redeploy", EventSource="User"), ev("F", "Freeze", DurationInSeconds=5),
                           ev("L", "Freeze", DurationInSeconds=30), ev("N", "Freeze", DurationInSeconds=-1),
                           ev("P", "Preempt"), ev("R", "Reboot", EventSource="Platform"),
                           ev("S", "Freeze", status="Started", DurationInSeconds=2),
                           ev("O", "Freeze", resources=["vm2"], DurationInSeconds=1))])
    result = run(monkeypatch, {"approve_rules": RULES}, imds)
    assert [p["body"]["StartRequests"] for p in imds.of("POST")] == [[{"EventId": "U"}, {"EventId": "F"},
                                                                      {"EventId": "P"}]]
    assert result["approved"] == ["U", "F", "P"] and result["already_started"] == ["S"]
    assert [(m["event_id"], m["rule"]) for m in result["rule_matches"]] == [("U", 1), ("F", 2), ("P", 3), ("S", 2)]
    assert result["rule_matches"][1]["rule_text"] == "Freeze events lasting at most 10 s"
    assert result["changed"] is True


def test_rules_in_check_mode_say_what_they_would_approve(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("F", "Freeze", DurationInSeconds=5), ev("R"))])
    result = run(monkeypatch, {"approve_rules": RULES, "_ansible_check_mode": True, "wait_for_end": True}, imds)
    assert imds.of("POST") == [] and len(imds.of("GET", EVENTS)) == 1 and clock.sleeps == []
    assert result["would_approve"] == ["F"] and result["approved"] == [] and result["changed"] is True
    assert result["ended"] is False and result["still_listed"] == ["F"]
    assert result["msg"] == "Would approve F (Freeze). Check mode: not waiting for the end of F (Freeze)."


def test_rules_for_every_vm_of_the_set(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("O", "Freeze", resources=["vm2"], DurationInSeconds=1))])
    mine = run(monkeypatch, {"approve_rules": RULES}, imds)
    assert mine["approved"] == [] and mine["msg"] == "No event matched approve_rules (0 of this VM's events looked at)."
    every = run(monkeypatch, {"approve_rules": RULES, "this_vm_only": False}, imds)
    assert every["approved"] == ["O"]


def test_rules_after_a_wait_that_found_nothing_approve_nothing(monkeypatch, clock):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, {"wait_for": ["Freeze"], "wait_timeout": 2, "approve_rules": RULES,
                               "wait_for_end": True}, imds)
    assert result["timed_out"] is True and imds.of("POST") == [] and "rule_matches" not in result
    assert result["ended"] is True and result["waited_for_end"] == [] and result["phase_seconds"]["appear"] is None


@pytest.mark.parametrize("rules, needle", [
    ([{}], "approve_rules rule 1 names nothing, so it would match every event"),
    ([{"event_types": ["Freeze"]}, {"max_duration": -1}], "approve_rules rule 2 max_duration must be between 0"),
    ([{"event_types": ["freeze"]}], "freeze"),
    ([{"event_sources": ["Someone"]}], "Someone"),
    ([{"event_types": ["Freeze"], "colour": 1}], "colour"),
])
def test_bad_rules_fail_before_any_request(monkeypatch, rules, needle):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, {"approve_rules": rules}, imds)
    assert result["failed"] and needle in result["msg"] and imds.calls == [], result["msg"]


def test_approve_and_rules_do_not_go_together(monkeypatch):
    result = run(monkeypatch, {"approve": ["A"], "approve_rules": RULES}, imds_of_vm([doc()]))
    assert result["failed"] and "mutually exclusive" in result["msg"]


# -- waiting for the end ------------------------------------------------------------------------

def test_approve_then_wait_for_the_end_reports_each_phase(monkeypatch, clock):
    scheduled = doc(ev("R", resources=["vm1", "vm2"]), ev("X", resources=["vm3"]))
    started = doc(ev("R", status="Started", resources=["vm1", "vm2"]), ev("X", resources=["vm3"]), incarnation=2)
    over = doc(ev("X", resources=["vm3"]), incarnation=3)
    imds = imds_of_vm([scheduled, scheduled, started, started, started, over])
    result = run(monkeypatch, {"approve": ["R"], "wait_for_end": True, "poll_interval": 2}, imds)
    assert not result["failed"] and result["approved"] == ["R"]
    assert result["ended"] is True and result["end_timed_out"] is False and result["still_listed"] == []
    assert result["waited_for_end"] == ["R"]
    # reads: first, after the approval (still Scheduled), then polls every 2 s
    assert result["phase_seconds"] == {"appear": None, "start": 2.0, "end": 8.0}
    assert result["document_incarnation"] == 3 and [e["event_id"] for e in result["events"]] == []
    assert result["msg"] == "Approved R (Reboot). Over after 8 s: R (incarnation 3)."


def test_wait_for_the_end_of_named_events_from_another_vm(monkeypatch, clock):
    listed = doc(ev("R", status="Started", resources=["vm1", "vm2"]), incarnation=4)
    imds = imds_of_vm([listed, listed, doc(incarnation=5)], name="vm3")
    result = run(monkeypatch, {"wait_for_end": True, "end_event_ids": ["r", "gone"], "this_vm_only": False,
                               "poll_interval": 1}, imds)
    assert result["ended"] is True and result["phase_seconds"]["end"] == 2.0 and result["phase_seconds"]["start"] == 0
    assert result["not_found"] == ["gone"] and imds.of("POST") == []
    assert result["changed"] is False


def test_the_end_wait_is_bounded(monkeypatch, clock):
    imds = imds_of_vm([doc(ev("R", status="Started"))])
    result = run(monkeypatch, {"wait_for_end": True, "end_timeout": 5, "poll_interval": 2}, imds)
    assert not result["failed"] and result["ended"] is False and result["end_timed_out"] is True
    assert result["still_listed"] == ["R"] and clock.sleeps == [2, 2, 1]
    assert result["phase_seconds"] == {"appear": None, "start": 0.0, "end": None}
    assert result["msg"] == "Still listed after 5 s (end_timeout): R (Reboot)."


def test_wait_for_appear_then_the_end_of_what_appeared(monkeypatch, clock):
    imds = imds_of_vm([doc(), doc(ev("F", "Freeze", status="Started"), incarnation=2), doc(incarnation=3)])
    result = run(monkeypatch, {"wait_for": ["Freeze"], "wait_for_end": True, "poll_interval": 1}, imds)
    assert result["matched"][0]["event_id"] == "F" and result["waited_for_end"] == ["F"]
    assert result["phase_seconds"] == {"appear": 1.0, "start": 0.0, "end": 1.0}


@pytest.mark.parametrize("args, needle", [
    ({"end_event_ids": ["A"]}, "set wait_for_end: true as well"),
    ({"wait_for_end": True, "end_event_ids": [" "]}, "end_event_ids holds an empty event id"),
    ({"wait_for_end": True, "end_timeout": "inf"}, "end_timeout must be a finite number of seconds"),
])
def test_bad_end_options_fail_before_any_request(monkeypatch, args, needle):
    imds = imds_of_vm([doc()])
    result = run(monkeypatch, args, imds)
    assert result["failed"] and needle in result["msg"] and imds.calls == [], result["msg"]
