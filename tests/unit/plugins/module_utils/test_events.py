"""Scheduled events: every documented document shape, NotBefore, filtering, approval plans, polling.

The documents below keep the shapes (and the values) of the examples Microsoft and Azure
publish; each is named by what is unusual about it.
"""
from __future__ import annotations

import calendar
import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._events import (
    APPROVE_ALL, EventsDocumentError, Rule, all_started, concerns, describe, matching_rule, not_before, parse_document,
    plan_approval, poll_until, read_rules, rule_matches, select, start_requests, still_listed)
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse
from ansible_collections.imds.azure.plugins.module_utils._versions import (
    EVENTS_NEWEST, EVENTS_VERSIONS, KNOWN_VERSIONS, NEWEST)
from ansible_collections.imds.azure.tests.utils.clock import FakeClock
from ansible_collections.imds.azure.tests.utils.transport import ScriptedTransport, client_on

# "Example responses" of Microsoft's Linux scheduled-events article (api-version 2020-07-01):
# two VMs live-migrated, the same Freeze first Scheduled, then Started with NotBefore "".
LIVE_MIGRATION_SCHEDULED = {
    "DocumentIncarnation": 2,
    "Events": [{
        "EventId": "C7061BAC-AFDC-4513-B24B-AA5F13A16123", "EventStatus": "Scheduled", "EventType": "Freeze",
        "ResourceType": "VirtualMachine", "Resources": ["WestNO_0", "WestNO_1"],
        "NotBefore": "Mon, 11 Apr 2022 22:26:58 GMT",
        "Description": "Virtual machine is being paused because of a memory-preserving Live Migration operation.",
        "EventSource": "Platform", "DurationInSeconds": 5,
    }],
}
LIVE_MIGRATION_STARTED = {
    "DocumentIncarnation": 3,
    "Events": [dict(LIVE_MIGRATION_SCHEDULED["Events"][0], EventStatus="Started", NotBefore="")],
}
NO_EVENTS = {"DocumentIncarnation": 1, "Events": []}
# The compact body Microsoft's Spot VM article shows after "az vm simulate-eviction"
# (api-version 2019-08-01): one line, no DurationInSeconds, Description "".
SPOT_PREEMPT_COMPACT = (
    '{"DocumentIncarnation":1,"Events":[{"EventId":"A123BC45-1234-5678-AB90-ABCDEF123456",'
    '"EventStatus":"Scheduled","EventType":"Preempt","ResourceType":"VirtualMachine","Resources":["myspotvm"],'
    '"NotBefore":"Tue, 16 Mar 2021 00:58:46 GMT","Description":"","EventSource":"Platform"}]}'
)
# The log of Azure/vm-scheduled-events (a user restarted the VM): EventSource User, duration -1.
USER_REBOOT_UNKNOWN_DURATION = {
    "DocumentIncarnation": 2,
    "Events": [{
        "EventId": "4CAEA225-A741-474D-A72E-428C86FCD853", "EventStatus": "Scheduled", "EventType": "Reboot",
        "ResourceType": "VirtualMachine", "Resources": ["flatcar-vm1"], "NotBefore": "Thu, 22 Jul 2021 04:50:17 GMT",
        "Description": "", "EventSource": "User", "DurationInSeconds": -1,
    }],
}
# The oldest documented shape (2017-08-01 .. 2019-01-01): no Description, EventSource, DurationInSeconds.
# A scale-set instance name (name_instance) and a Terminate (2019-01-01).
OLD_SHAPE_SCALE_SET = {
    "DocumentIncarnation": 7,
    "Events": [
        {"EventId": "602d9444-d2cd-49c7-8624-8643e7171297", "EventType": "Terminate", "ResourceType": "VirtualMachine",
         "Resources": ["web-vmss_3"], "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT"},
        {"EventId": "f020ba2e-3bc0-4c40-a10b-86575a9eabd5", "EventType": "Reboot", "ResourceType": "VirtualMachine",
         "Resources": ["FrontEnd_IN_0", "BackEnd_IN_0"], "EventStatus": "Scheduled",
         "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT"},
    ],
}

APR_11_2022 = calendar.timegm((2022, 4, 11, 22, 26, 58))


def events_of(doc, now=APR_11_2022 - 900, vm_name=None):
    return parse_document(doc, now, vm_name).events


# -- every documented shape -------------------------------------------------------------

def test_live_migration_scheduled():
    doc = parse_document(LIVE_MIGRATION_SCHEDULED, APR_11_2022 - 900, "WestNO_1")
    assert doc.incarnation == 2 and doc.warnings == []
    assert doc.events == [{
        "event_id": "C7061BAC-AFDC-4513-B24B-AA5F13A16123", "event_type": "Freeze", "event_status": "Scheduled",
        "resource_type": "VirtualMachine", "resources": ["WestNO_0", "WestNO_1"],
        "not_before": "Mon, 11 Apr 2022 22:26:58 GMT", "not_before_utc": "2022-04-11T22:26:58Z",
        "seconds_until_not_before": 900,
        "description": "Virtual machine is being paused because of a memory-preserving Live Migration operation.",
        "event_source": "Platform", "duration_in_seconds": 5, "for_this_vm": True,
    }]


def test_started_event_has_blank_not_before():
    (item,) = events_of(LIVE_MIGRATION_STARTED, vm_name="WestNO_0")
    assert item["event_status"] == "Started"
    assert item["not_before"] is None and item["not_before_utc"] is None and item["seconds_until_not_before"] is None


def test_no_events():
    doc = parse_document(NO_EVENTS, 0.0, "vm")
    assert doc.incarnation == 1 and doc.events == [] and doc.warnings == []


def test_compact_spot_preempt():
    now = calendar.timegm((2021, 3, 16, 0, 58, 16))
    doc = parse_document(json.loads(SPOT_PREEMPT_COMPACT), now, "myspotvm")
    (item,) = doc.events
    assert item["event_type"] == "Preempt" and item["for_this_vm"] is True
    assert item["not_before_utc"] == "2021-03-16T00:58:46Z" and item["seconds_until_not_before"] == 30
    assert item["description"] is None  # "" means no description
    assert item["event_source"] == "Platform"
    assert item["duration_in_seconds"] is None  # absent before 2020-07-01


def test_user_reboot_with_unknown_duration():
    (item,) = events_of(USER_REBOOT_UNKNOWN_DURATION, vm_name="flatcar-vm1")
    assert item["event_source"] == "User"
    assert item["duration_in_seconds"] is None  # -1: Azure does not know


def test_duration_zero_is_kept():
    doc = json.loads(json.dumps(LIVE_MIGRATION_SCHEDULED))
    doc["Events"][0]["DurationInSeconds"] = 0
    assert events_of(doc)[0]["duration_in_seconds"] == 0


def test_old_shape_without_newer_fields():
    items = events_of(OLD_SHAPE_SCALE_SET, vm_name="web-vmss_3")
    assert [i["event_type"] for i in items] == ["Terminate", "Reboot"]
    assert [i["for_this_vm"] for i in items] == [True, False]
    for item in items:
        assert item["description"] is None and item["event_source"] is None and item["duration_in_seconds"] is None
        assert item["not_before_utc"] == "2016-09-19T18:29:47Z"


def test_unknown_event_type_and_status_pass_through():
    raw = dict(LIVE_MIGRATION_SCHEDULED["Events"][0], EventType="Hibernate", EventStatus="Paused")
    doc = {"DocumentIncarnation": 1, "Events": [raw]}
    (item,) = events_of(doc)
    assert item["event_type"] == "Hibernate" and item["event_status"] == "Paused"


def test_incarnation_and_duration_as_strings_are_read():
    doc = {"DocumentIncarnation": "4", "Events": [dict(LIVE_MIGRATION_SCHEDULED["Events"][0], DurationInSeconds="9")]}
    parsed = parse_document(doc, 0.0)
    assert parsed.incarnation == 4 and parsed.events[0]["duration_in_seconds"] == 9


def test_missing_resources_means_none():
    raw = {k: v for k, v in LIVE_MIGRATION_SCHEDULED["Events"][0].items() if k != "Resources"}
    (item,) = events_of({"DocumentIncarnation": 1, "Events": [raw]}, vm_name="WestNO_0")
    assert item["resources"] == [] and item["for_this_vm"] is False


# -- NotBefore ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, iso", [
    ("Mon, 11 Apr 2022 22:26:58 GMT", "2022-04-11T22:26:58Z"),
    ("Mon, 11 Apr 2022 22:26:58 +0000", "2022-04-11T22:26:58Z"),
    ("Tue, 12 Apr 2022 00:26:58 +0200", "2022-04-11T22:26:58Z"),  # converted to UTC
    ("Mon, 11 Apr 2022 22:26:58 -0000", "2022-04-11T22:26:58Z"),  # no zone said: UTC
    ("11 Apr 2022 22:26:58 GMT", "2022-04-11T22:26:58Z"),  # day name is optional in RFC 2822
    ("2022-04-11T22:26:58Z", "2022-04-11T22:26:58Z"),  # ISO 8601 is read too
    ("2022-04-12T00:26:58+02:00", "2022-04-11T22:26:58Z"),
])
def test_not_before_forms(value, iso):
    assert not_before(value, APR_11_2022 - 60) == (iso, 60)


def test_not_before_in_the_past_is_negative():
    assert not_before("Mon, 11 Apr 2022 22:26:58 GMT", APR_11_2022 + 5.4) == ("2022-04-11T22:26:58Z", -5)


@pytest.mark.parametrize("value", ["", "   "])
def test_not_before_blank(value):
    assert not_before(value, 0.0) == (None, None)


@pytest.mark.parametrize("value", ["soon", "Mon, 32 Apr 2022 22:26:58 GMT", "2022-13-01T00:00:00Z", "1649716018"])
def test_not_before_garbage_raises(value):
    with pytest.raises(ValueError, match="is not a date"):
        not_before(value, 0.0)


def test_unreadable_not_before_is_a_warning_not_a_failure():
    doc = {"DocumentIncarnation": 1, "Events": [dict(LIVE_MIGRATION_SCHEDULED["Events"][0], NotBefore="tomorrow")]}
    parsed = parse_document(doc, 0.0)
    item = parsed.events[0]
    assert item["not_before"] == "tomorrow" and item["not_before_utc"] is None
    assert item["seconds_until_not_before"] is None
    assert len(parsed.warnings) == 1 and "C7061BAC" in parsed.warnings[0] and "'tomorrow'" in parsed.warnings[0]


# -- documents that are not scheduled-events documents -----------------------------------

@pytest.mark.parametrize("doc, needle", [
    ([], "list, not an object"),
    ("text", "str, not an object"),
    ({"compute": {}}, "no Events list (its keys: compute)"),
    ({"DocumentIncarnation": 1, "Events": {}}, "Events is dict, not a list"),
    ({"Events": []}, "DocumentIncarnation None is not a whole number"),
    ({"DocumentIncarnation": True, "Events": []}, "DocumentIncarnation True"),
    ({"DocumentIncarnation": 1.5, "Events": []}, "DocumentIncarnation 1.5"),
    ({"DocumentIncarnation": 1, "Events": ["x"]}, "event 0 is str, not an object"),
    ({"DocumentIncarnation": 1, "Events": [{"EventType": "Reboot"}]}, "event 0 has no EventId"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": ""}]}, "event 0 has no EventId"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "Resources": "vm1"}]},
     "event a has Resources 'vm1', which is not a list of VM names"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "Resources": [1]}]}, "not a list of VM names"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "EventType": 3}]}, "event a has EventType 3"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "NotBefore": 0}]}, "event a has NotBefore 0"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "DurationInSeconds": 1.5}]}, "DurationInSeconds 1.5"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a", "DurationInSeconds": True}]}, "DurationInSeconds True"),
    ({"DocumentIncarnation": 1, "Events": [{"EventId": "a"}, {"EventId": "A"}]}, "event A is listed twice"),
])
def test_not_a_document(doc, needle):
    with pytest.raises(EventsDocumentError) as exc:
        parse_document(doc, 0.0)
    assert needle in str(exc.value)


# -- which events concern this VM --------------------------------------------------------

def test_concerns_ignores_case_and_needs_a_name():
    item = {"resources": ["WestNO_0", "WestNO_1"]}
    assert concerns(item, "westno_1") and concerns(item, "WESTNO_0")
    assert not concerns(item, "WestNO_2") and not concerns(item, "WestNO") and not concerns(item, None)
    assert not concerns(item, "")


def test_select_this_vm_and_types():
    items = events_of(OLD_SHAPE_SCALE_SET, vm_name="BackEnd_IN_0")
    assert [i["event_type"] for i in select(items)] == ["Reboot"]
    assert [i["event_type"] for i in select(items, this_vm_only=False)] == ["Terminate", "Reboot"]
    assert [i["event_type"] for i in select(items, this_vm_only=False, types=["Terminate"])] == ["Terminate"]
    assert select(items, types=["Terminate"]) == []
    assert select(items, types=[]) == []


# -- approval plans -----------------------------------------------------------------------

def mixed():
    """Three events for vm1 (one started), one for vm2."""
    doc = {"DocumentIncarnation": 5, "Events": [
        {"EventId": "AAA-1", "EventType": "Reboot", "EventStatus": "Scheduled", "Resources": ["vm1"]},
        {"EventId": "BBB-2", "EventType": "Freeze", "EventStatus": "Started", "Resources": ["vm1", "vm2"]},
        {"EventId": "CCC-3", "EventType": "Redeploy", "EventStatus": "Scheduled", "Resources": ["vm2"]},
        {"EventId": "DDD-4", "EventType": "Freeze", "EventStatus": "Scheduled", "Resources": ["VM1"]},
    ]}
    return events_of(doc, vm_name="vm1")


def test_approve_all_for_this_vm_takes_scheduled_events_naming_it():
    assert plan_approval(mixed(), [APPROVE_ALL]) == (["AAA-1", "DDD-4"], [], [])


def test_approve_ids_sorts_them_out():
    plan = plan_approval(mixed(), ["ccc-3", "BBB-2", "gone-9", "AAA-1", "aaa-1 "])
    assert plan.approve == ["CCC-3", "AAA-1"]  # IMDS's spelling, other VMs' events too, once each
    assert plan.already_started == ["BBB-2"]
    assert plan.not_found == ["gone-9"]


def test_approve_nothing():
    assert plan_approval(mixed(), []) == ([], [], [])
    assert plan_approval([], [APPROVE_ALL]) == ([], [], [])


def test_approve_all_with_ids_is_refused():
    with pytest.raises(ValueError, match="all_for_this_vm alone"):
        plan_approval(mixed(), [APPROVE_ALL, "AAA-1"])


def test_approve_blank_id_is_refused():
    with pytest.raises(ValueError, match="empty event id"):
        plan_approval(mixed(), [" "])


def test_start_requests_body():
    assert start_requests(["a", "b"]) == {"StartRequests": [{"EventId": "a"}, {"EventId": "b"}]}
    assert start_requests([]) == {"StartRequests": []}


def test_describe():
    assert describe(["AAA-1", "zzz"], mixed()) == "AAA-1 (Reboot), zzz"


# -- polling -------------------------------------------------------------------------------

def test_poll_until_found():
    clock = FakeClock(start=100.0)
    answers = iter([0, 0, 1])
    answer, done, calls = poll_until(lambda: next(answers), bool, 10, 2, clock, clock.sleep)
    assert (answer, done, calls) == (1, True, 3) and clock.sleeps == [2, 2]


def test_poll_until_first_answer_in_hand():
    clock = FakeClock(start=100.0)
    answer, done, calls = poll_until(lambda: pytest.fail("no poll needed"), bool, 10, 2, clock, clock.sleep, first=1)
    assert (answer, done, calls) == (1, True, 0) and clock.sleeps == []


def test_poll_until_times_out_with_a_last_poll_at_the_deadline():
    clock = FakeClock(start=100.0)
    polled_at = []

    def fetch():
        polled_at.append(clock.now)
        return 0

    answer, done, calls = poll_until(fetch, bool, 5, 2, clock, clock.sleep, first=0)
    assert done is False and answer == 0 and calls == 3
    assert clock.sleeps == [2, 2, 1] and polled_at == [102, 104, 105]


def test_poll_until_zero_timeout_polls_once():
    clock = FakeClock(start=100.0)
    assert poll_until(lambda: 0, bool, 0, 2, clock, clock.sleep) == (0, False, 1)
    assert clock.sleeps == []


# -- the version table and the client negotiating from it ------------------------------------

def test_events_versions_table():
    assert list(EVENTS_VERSIONS) == sorted(set(EVENTS_VERSIONS)) and EVENTS_NEWEST == "2020-07-01"
    assert {"2017-08-01", "2017-11-01", "2019-01-01", "2019-04-01", "2019-08-01"} <= set(EVENTS_VERSIONS)
    assert "2017-03-01" not in EVENTS_VERSIONS  # the preview
    # versioned on their own: most events versions are no instance versions
    assert {"2017-11-01", "2019-01-01", "2019-04-01", "2020-07-01"}.isdisjoint(KNOWN_VERSIONS)


def script(*answers):
    """Each answer once; a request after them fails the test."""
    return ScriptedTransport(*answers, strict=True)


def answer(status, doc):
    return HttpResponse(status, {}, json.dumps(doc).encode())


def refused(offered):
    return answer(400, {"error": "Bad request. api-version is invalid or was not specified in the request. "
                                 "For more information refer to aka.ms/azureimds", "newest-versions": offered})


@pytest.fixture
def make_client():
    clock = FakeClock(start=100.0)
    return lambda transport, **kwargs: client_on(transport, clock, **kwargs)


def test_client_with_events_table_asks_newest_events_version(make_client):
    t = script(answer(200, NO_EVENTS))
    c = make_client(t, known_versions=EVENTS_VERSIONS)
    assert c.get("/metadata/scheduledevents").api_version == EVENTS_NEWEST
    assert t.calls[0]["url"] == f"http://127.0.0.1:9/metadata/scheduledevents?api-version={EVENTS_NEWEST}"


def test_client_with_events_table_negotiates_among_events_versions(make_client):
    # 2021-02-01 is an instance version the collection knows; for events it must be skipped
    t = script(refused(["2021-02-01", "2019-08-01", "2019-01-01"]), answer(200, NO_EVENTS))
    c = make_client(t, known_versions=EVENTS_VERSIONS)
    r = c.get("/metadata/scheduledevents")
    assert r.api_version == "2019-08-01" and c.api_version == "2019-08-01"
    assert [call["url"].rsplit("=", 1)[1] for call in t.calls] == [EVENTS_NEWEST, "2019-08-01"]


def test_client_with_events_table_does_not_ask_instance_versions(make_client):
    # /metadata/versions lists instance versions: no use for events, so no request
    t = script(answer(400, {"error": "Bad request. api-version was not specified in the request."}))
    with pytest.raises(ImdsError, match="No api-version known"):
        make_client(t, known_versions=EVENTS_VERSIONS).get("/metadata/scheduledevents")
    assert len(t.calls) == 1


def test_client_with_events_table_pinned(make_client):
    t = script(refused(["2020-07-01", "2019-08-01", "2019-04-01"]))
    with pytest.raises(ImdsError) as exc:
        make_client(t, known_versions=EVENTS_VERSIONS, api_version="2017-08-01").get("/metadata/scheduledevents")
    assert "pinned api_version 2017-08-01" in str(exc.value) and "2019-08-01" in str(exc.value)
    assert len(t.calls) == 1


def test_client_default_table_is_unchanged(make_client):
    t = script(refused(["2020-07-01", "2019-08-01"]), answer(200, {}))
    c = make_client(t)
    assert c.api_version == NEWEST
    assert c.instance().api_version == "2019-08-01"  # 2020-07-01 is no instance version


# -- hostile documents: numbers, dates, sizes, text for the terminal ----------------------

HOSTILE_TEXT = ["\x1b[2J", "\x1b]0;title\x07", "line\r\nforged: ok", "a\u2028b", "\u202etxt.exe", "nul\x00byte"]


def one(**fields):
    return {"DocumentIncarnation": 1, "Events": [dict({"EventId": "E-1", "Resources": ["vm1"]}, **fields)]}


@pytest.mark.parametrize("value", ["²", "١٢", "１２", "٣", "1²", " 5", "5 ", "+", "-", "0x10", "1e3", "9" * 19,
                                   float("inf"), float("nan"), 1.5, [], {}, True])
def test_duration_and_incarnation_are_ascii_whole_numbers(value):
    """str.isdigit() says yes to "²" and "١٢", and int() then raises or reads them: neither is IMDS's number."""
    with pytest.raises(EventsDocumentError, match="DurationInSeconds .* is not a whole number"):
        parse_document(one(DurationInSeconds=value), 0.0)
    with pytest.raises(EventsDocumentError, match="DocumentIncarnation .* is not a whole number"):
        parse_document({"DocumentIncarnation": value, "Events": []}, 0.0)


@pytest.mark.parametrize("value, expected", [("-1", None), (-1, None), ("0", 0), ("+7", 7), (5.0, 5), (-5, None),
                                             ("000123", 123), (10 ** 9, 10 ** 9)])
def test_duration_numbers_that_are_read(value, expected):
    assert parse_document(one(DurationInSeconds=value), 0.0).events[0]["duration_in_seconds"] == expected


def test_an_absurd_duration_is_refused_in_one_line():
    with pytest.raises(EventsDocumentError) as exc:
        parse_document(one(DurationInSeconds=10 ** 400), 0.0)
    assert "more than 1000000000 seconds" in str(exc.value) and "digits" in str(exc.value)
    assert len(str(exc.value)) < 200


@pytest.mark.parametrize("value", [-1, "-3", "²"])
def test_incarnation_is_never_negative_nor_foreign(value):
    with pytest.raises(EventsDocumentError, match="DocumentIncarnation"):
        parse_document({"DocumentIncarnation": value, "Events": []}, 0.0)


@pytest.mark.parametrize("value", [
    "Mon, 01 Jan 0000 00:00:00 GMT",  # year 0 (email.utils would read it as 2000)
    "Mon, 01 Jan 0001 00:00:00 GMT",  # year 1 (email.utils reads it as 2001)
    "Mon, 01 Jan 0099 00:00:00 GMT",
    "Mon, 01 Jan 99999 00:00:00 GMT",  # past datetime's range
    "Fri, 31 Dec 9999 23:59:59 -0100",  # in range locally, past it in UTC
    "Mon, 99 Foo",
    "Mon, 11 Apr 2022 99999999999999999999:00:00 GMT",
    "Mon, 11 Apr 2022 22:26:58 +99999999999999999999",
    "Mon, 11 Apr 2022 22:26:58 +9999",
    "Mon, 11 Apr 22 22:26:58 GMT",  # a two-digit year: RFC 1123 has four
    "Mon, 11 Apr 2022 25:61:61 GMT",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "２０２２-04-11T22:26:58Z",
    "Mon, 11 Apr 2022 22:26:58 GMT" + " " * 100 + "x",
    "x" * 1_000_000,
])
def test_not_before_out_of_range_or_absurd_is_no_date(value):
    with pytest.raises(ValueError, match="is not a date"):
        not_before(value, 0.0)
    parsed = parse_document(one(NotBefore=value), 0.0)
    assert parsed.events[0]["not_before_utc"] is None and parsed.events[0]["seconds_until_not_before"] is None
    assert len(parsed.warnings) == 1 and len(parsed.warnings[0]) < 400


@pytest.mark.parametrize("value, iso", [
    ("Mon, 01 Jan 1000 00:00:00 GMT", "1000-01-01T00:00:00Z"),  # far, but dates
    ("Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59Z"),
    ("0005-06-07T08:09:10Z", "0005-06-07T08:09:10Z"),  # four digits, also before year 1000
])
def test_dates_at_the_edges_of_the_range(value, iso):
    assert not_before(value, 0.0)[0] == iso


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_server_text_in_messages_is_escaped(text):
    event_id = f"ID{text}"
    messages = []
    for document in (
        {"DocumentIncarnation": 1, "Events": [{"EventId": event_id}, {"EventId": event_id}]},  # listed twice
        one(EventId=event_id, EventType=[text]),
        one(EventId=event_id, Resources=text),
        one(EventId=event_id, DurationInSeconds=text),
        {"DocumentIncarnation": text, "Events": []},
        {text: 1},
    ):
        with pytest.raises(EventsDocumentError) as exc:
            parse_document(document, 0.0)
        messages.append(str(exc.value))
    parsed = parse_document(one(EventId=event_id, NotBefore=text, EventType=text), 0.0)
    messages += parsed.warnings
    messages.append(describe([event_id], parsed.events))
    for message in messages:
        assert message.isprintable(), message
    assert parsed.events[0]["event_id"] == event_id  # the data keeps what IMDS sent


def test_describe_is_bounded_and_printable():
    ids = [f"E{n}\x1b[31m" for n in range(5000)]
    text = describe(ids, [])
    assert text.isprintable() and text.endswith(" and 4990 more") and len(text) < 400
    assert describe(["x" * 1_000_000], []).endswith("...")


def test_huge_documents_take_linear_work_and_give_short_messages():
    import time

    many = {"DocumentIncarnation": 7, "Events": [
        {"EventId": f"E-{n}", "EventType": "Freeze", "Resources": [f"vm{n % 50}"], "EventStatus": "Scheduled",
         "NotBefore": "later" if n % 2 else "Mon, 11 Apr 2022 22:26:58 GMT"} for n in range(20_000)]}
    started = time.process_time()
    parsed = parse_document(many, 0.0, vm_name="VM3")
    assert len(parsed.events) == 20_000 and sum(e["for_this_vm"] for e in parsed.events) == 400
    assert len(parsed.warnings) == 1 and "and 9995 more" in parsed.warnings[0] and len(parsed.warnings[0]) < 500
    assert len(plan_approval(parsed.events, [APPROVE_ALL]).approve) == 400
    big_id = "B" * (1 << 20)
    resources = [f"vm-{n}" for n in range(100_000)]
    parsed = parse_document(one(EventId=big_id, Resources=resources + ["vm1"]), 0.0, vm_name="VM1")
    assert parsed.events[0]["for_this_vm"] is True and parsed.events[0]["event_id"] == big_id
    with pytest.raises(EventsDocumentError) as exc:
        parse_document({"DocumentIncarnation": 1, "Events": [{"EventId": big_id}, {"EventId": big_id}]}, 0.0)
    assert len(str(exc.value)) < 200
    with pytest.raises(EventsDocumentError) as exc:
        parse_document(one(EventId=big_id, Resources=resources + [5]), 0.0)
    assert "a list of 100001 items" in str(exc.value) and len(str(exc.value)) < 200
    assert time.process_time() - started < 30  # linear: a few seconds at most, never quadratic


@pytest.mark.parametrize("timeout, interval", [(float("nan"), 1), (float("inf"), 1), (-1, 1), (5, 0), (5, -1),
                                               (5, float("nan")), (5, float("inf"))])
def test_poll_until_refuses_waits_that_never_end(timeout, interval):
    with pytest.raises(ValueError, match="finite timeout"):
        poll_until(lambda: None, lambda answer: False, timeout, interval, lambda: 0.0, lambda seconds: None)


# -- rules and the end of events ------------------------------------------------------------------

def parsed(*events):
    raw = [{"EventId": event_id, "EventType": kind, "EventStatus": status, "Resources": ["vm1"],
            "NotBefore": "", **extra} for event_id, kind, status, extra in events]
    return parse_document({"DocumentIncarnation": 1, "Events": raw}, 0, "vm1").events


def test_read_rules_gives_rules_that_say_what_they_match():
    rules = read_rules([{"event_types": ["Freeze"], "max_duration": "10"}, {"event_sources": "User"},
                        {"event_types": ["Preempt"], "event_sources": None, "max_duration": None}])
    assert rules == [Rule(frozenset({"Freeze"}), None, 10.0), Rule(None, frozenset({"User"}), None),
                     Rule(frozenset({"Preempt"}), None, None)]
    assert [rule.describe() for rule in rules] == [
        "Freeze events lasting at most 10 s", "any events from User", "Preempt events"]
    assert read_rules(None) == [] and read_rules([]) == []


@pytest.mark.parametrize("raw, message", [
    ("Freeze", "approve_rules must be a list of rules"),
    (["Freeze"], "approve_rules rule 1 must be a dict"),
    ([{"event_types": []}], "event_types must be a non-empty list"),
    ([{"event_types": None, "max_duration": None}], "names nothing"),
    ([{"max_duration": True}], "max_duration must be a number of seconds"),
    ([{"max_duration": "soon"}], "max_duration must be a number of seconds, not 'soon'"),
    ([{"max_duration": float("nan")}], "max_duration must be between 0 and"),
    ([{"max_duration": 1e300}], "max_duration must be between 0 and"),
    ([{"event_types": ["Freeze"]}, {"event_types": ["Reboot", "Patch"]}], "approve_rules rule 2 event_types has 'Patch'"),
])
def test_read_rules_refuses_in_one_line(raw, message):
    with pytest.raises(ValueError, match=None) as caught:
        read_rules(raw)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_rule_matching_needs_every_property_the_rule_names():
    events = parsed(("F5", "Freeze", "Scheduled", {"DurationInSeconds": 5, "EventSource": "Platform"}),
                    ("F30", "Freeze", "Scheduled", {"DurationInSeconds": 30}),
                    ("Fu", "Freeze", "Scheduled", {"DurationInSeconds": -1}),
                    ("Fold", "Freeze", "Scheduled", {}),
                    ("RU", "Reboot", "Scheduled", {"EventSource": "User"}))
    short_freeze, by_user = read_rules([{"event_types": ["Freeze"], "max_duration": 10}, {"event_sources": ["User"]}])
    assert [e["event_id"] for e in events if rule_matches(e, short_freeze)] == ["F5"]  # unknown duration: no
    assert [e["event_id"] for e in events if rule_matches(e, by_user)] == ["RU"]  # no EventSource: no
    assert [matching_rule(e, [short_freeze, by_user]) for e in events] == [0, None, None, None, 1]
    exactly = read_rules([{"max_duration": 30}])[0]
    assert rule_matches(events[1], exactly)  # at most: 30 matches 30


def test_an_event_is_over_once_it_left_the_document():
    events = parsed(("A", "Reboot", "Started", {}), ("b", "Freeze", "Scheduled", {}))
    assert still_listed(events, ["a", "B", "gone", "A"]) == ["A", "b"]
    assert still_listed([], ["A"]) == []
    assert not all_started(events, ["A", "B"]) and all_started(events, ["A", "gone"])
