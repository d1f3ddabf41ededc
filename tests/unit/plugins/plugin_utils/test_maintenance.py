"""The maintenance role's decision: which events touch the play, what to do with each, within which limits."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.module_utils._events import parse_document
from ansible_collections.imds.azure.plugins.plugin_utils._maintenance import MaintenanceInputError, plan

DRAIN = [{"event_types": ["Reboot", "Redeploy", "Preempt", "Terminate"]}]
SHORT_FREEZE = [{"event_types": ["Freeze"], "max_duration": 10}]


def events(*raw, status="Scheduled"):
    """Events as imds.azure.scheduled_events returns them (this_vm_only: false)."""
    document = {"DocumentIncarnation": 1, "Events": [
        {"EventId": event_id, "EventType": kind, "EventStatus": extra.pop("status", status), "Resources": resources,
         "NotBefore": extra.pop("not_before", "Mon, 11 Apr 2022 22:26:58 GMT"), **extra}
        for event_id, kind, resources, extra in raw]}
    return parse_document(document, 0).events


def fleet(document, domains=((0, 0), (0, 0), (1, 1)), names=("web1", "web2", "web3"), seen_by=None):
    """Hosts that all read ``document`` (one availability set), with their fault and update domains."""
    return [{"host": name, "vm_name": name.upper(), "fault_domain": fd, "update_domain": ud,
             "events": document if seen_by is None or name in seen_by else []}
            for name, (fd, ud) in zip(names, domains)]


def by_id(result):
    return {item["event_id"]: item for item in result["events"]}


def test_a_reboot_of_two_and_a_short_freeze_of_a_third():
    document = events(("R", "Reboot", ["WEB1", "web2"], {}), ("F", "Freeze", ["web3"], {"DurationInSeconds": 5}),
                      ("X", "Reboot", ["other9"], {}))
    result = plan(fleet(document), approve_rules=SHORT_FREEZE, drain_rules=DRAIN, max_share=0.67)
    reboot, freeze = by_id(result)["R"], by_id(result)["F"]
    assert (reboot["action"], reboot["hosts"], reboot["coordinator"], reboot["restore"]) == (
        "drain", ["web1", "web2"], "web3", True)  # VM names compared ignoring case; a bystander coordinates
    assert reboot["fault_domains"] == [0] and reboot["update_domains"] == [0] and reboot["outside"] == []
    assert (freeze["action"], freeze["rule"], freeze["coordinator"], freeze["restore"]) == (
        "approve", "Freeze events lasting at most 10 s", "web1", False)
    assert result["unrelated"] == ["X"] and result["allowed_out"] == 2 and result["hosts"] == 3
    assert [e["event_id"] for e in result["act_on"]] == ["F", "R"]  # same NotBefore: by id


def test_events_matching_no_rule_are_left_to_azure():
    document = events(("F", "Freeze", ["web3"], {"DurationInSeconds": 30}), ("U", "Freeze", ["web3"], {}))
    result = plan(fleet(document), approve_rules=SHORT_FREEZE, drain_rules=DRAIN)
    assert {i: (e["action"], e["reason"]) for i, e in by_id(result).items()} == {
        "F": ("leave", "it matches no rule, so Azure starts it at its NotBefore time"),
        "U": ("leave", "it matches no rule, so Azure starts it at its NotBefore time")}  # unknown duration: no match
    assert result["act_on"] == []


@pytest.mark.parametrize("share, allowed, action", [(0.5, 1, "hold"), (0.66, 1, "hold"), (2 / 3, 2, "drain"),
                                                    (1, 3, "drain")])
def test_the_share_of_hosts_out_at_once(share, allowed, action):
    document = events(("R", "Reboot", ["web1", "web2"], {}))
    result = plan(fleet(document), drain_rules=DRAIN, max_share=share)
    assert result["allowed_out"] == allowed and by_id(result)["R"]["action"] == action
    if action == "hold":
        assert by_id(result)["R"]["reason"] == (
            f"it would take 2 of 3 hosts out at once (web1, web2), more than the 1 that "
            f"imds_azure_maintenance_max_share {share:g} allows")


def test_fault_and_update_domain_limits():
    document = events(("R", "Reboot", ["web1", "web3"], {}))
    held = by_id(plan(fleet(document), drain_rules=DRAIN, max_share=1))["R"]
    assert held["action"] == "hold" and held["fault_domains"] == [0, 1]
    assert held["reason"] == ("its hosts are in 2 fault domains (0, 1), more than "
                              "imds_azure_maintenance_max_fault_domains 1")
    by_update = by_id(plan(fleet(document), drain_rules=DRAIN, max_share=1, max_fault_domains=0))["R"]
    assert by_update["action"] == "hold" and "2 update domains (0, 1)" in by_update["reason"]
    free = by_id(plan(fleet(document), drain_rules=DRAIN, max_share=1, max_fault_domains=2, max_update_domains=0))
    assert free["R"]["action"] == "drain"


def test_an_unknown_domain_holds_the_event_while_a_limit_applies():
    document = events(("R", "Reboot", ["web1"], {}))
    hosts = fleet(document)
    hosts[0]["fault_domain"] = ""  # as the facts give a missing platformFaultDomain
    assert "the fault domain of web1 is not known" in by_id(plan(hosts, drain_rules=DRAIN))["R"]["reason"]
    assert by_id(plan(hosts, drain_rules=DRAIN, max_fault_domains=0))["R"]["action"] == "drain"


def test_events_naming_vms_outside_the_play_are_held_unless_allowed():
    document = events(("R", "Reboot", ["web1", "db7"], {}))
    held = by_id(plan(fleet(document), drain_rules=DRAIN))["R"]
    assert held["action"] == "hold" and held["outside"] == ["db7"] and "(db7)" in held["reason"]
    assert by_id(plan(fleet(document), drain_rules=DRAIN, approve_outside=True))["R"]["action"] == "drain"


def test_the_coordinator_saw_the_event_and_is_not_named_by_it_when_it_can():
    document = events(("R", "Reboot", ["web1", "web2"], {}))
    only_named_saw_it = plan(fleet(document, seen_by={"web2"}), drain_rules=DRAIN, max_share=1)
    assert by_id(only_named_saw_it)["R"]["coordinator"] == "web2"
    everyone_named = plan(fleet(events(("R", "Reboot", ["web1", "web2", "web3"], {}))), drain_rules=DRAIN,
                          max_share=1, max_fault_domains=0, max_update_domains=0)
    assert by_id(everyone_named)["R"]["coordinator"] == "web1"


def test_started_events_come_first_and_a_copy_further_along_wins():
    scheduled = events(("A", "Reboot", ["web1"], {"not_before": "Mon, 11 Apr 2022 22:00:00 GMT"}),
                       ("B", "Redeploy", ["web3"], {}))
    started = events(("A", "Reboot", ["web1"], {"not_before": "Mon, 11 Apr 2022 22:00:00 GMT"}),
                     ("B", "Redeploy", ["web3"], {"status": "Started", "not_before": ""}))
    hosts = fleet(scheduled)
    hosts[2]["events"] = started
    result = plan(hosts, drain_rules=DRAIN)
    assert [(e["event_id"], e["event_status"]) for e in result["events"]] == [("B", "Started"), ("A", "Scheduled")]


def test_preempt_and_terminate_take_the_vm_away_for_good():
    document = events(("P", "Preempt", ["web1"], {}), ("T", "Terminate", ["web2"], {}), ("D", "Redeploy", ["web3"], {}))
    result = by_id(plan(fleet(document), drain_rules=DRAIN))
    assert {i: (e["action"], e["restore"]) for i, e in result.items()} == {
        "P": ("drain", False), "T": ("drain", False), "D": ("drain", True)}


def test_what_an_earlier_run_left_out_of_service():
    document = events(("R", "Reboot", ["web1"], {}), ("L", "Reboot", ["web3"], {}))
    drained = {"web1": {"event_id": "r"}, "web2": {"event_id": "OVER"}, "web3": {"event_id": "L"},
               "gone9": {"event_id": "R"}}
    result = plan(fleet(document), drain_rules=[{"event_types": ["Reboot"]}], max_share=1, max_fault_domains=0,
                  max_update_domains=0, drained=drained)
    assert result["restore_first"] == ["web2"]  # its event is over
    assert result["still_out"] == ["web1", "web3"] and result["drained_elsewhere"] == ["gone9"]
    # web3 is still out for L: the limit counts it while R is handled
    limited = plan(fleet(document), drain_rules=[{"event_types": ["Reboot"]}], max_share=0.34, max_fault_domains=0,
                   max_update_domains=0, drained=drained)
    assert by_id(limited)["R"]["action"] == "hold" and "(web1, web3)" in by_id(limited)["R"]["reason"]


@pytest.mark.parametrize("hosts, options, message", [
    ([], {}, "the hosts must be a non-empty list"),
    ([{"host": "a", "vm_name": "", "events": []}], {}, "host a has no VM name"),
    ([{"host": "a", "vm_name": "x", "events": []}, {"host": "b", "vm_name": "X", "events": []}], {},
     "hosts a and b are the same VM (X); list each VM once in the play"),
    ([{"host": "a", "vm_name": "x", "events": "none"}], {}, "host a has no list of events"),
    ([{"host": "a", "vm_name": "x", "facts_vm_name": "y", "events": []}], {},
     "the facts of host a describe VM y, not x: ansible-core 2.21 gives hosts one shared set of facts"),
    ([{"host": "a", "vm_name": "x", "events": [], "fault_domain": "two"}], {}, "the fault domain of a is 'two'"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_share": 0}, "max_share must be a number above 0"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_share": 1.5}, "max_share must be a number above 0"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_fault_domains": -1}, "max_fault_domains must be"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_fault_domains": "-1"}, "max_fault_domains must be"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_update_domains": "1.5"}, "max_update_domains must be"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_update_domains": "9" * 5000}, "max_update_domains must be"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"max_fault_domains": "\uff12"}, "max_fault_domains must be"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"approve_outside": "yes"}, "approve_outside must be true"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"drain_rules": [{}]},
     "imds_azure_maintenance_drain_rules rule 1 names nothing"),
    ([{"host": "a", "vm_name": "x", "events": []}], {"drained": ["a"]}, "must be a dict of hosts"),
])
def test_bad_input_is_one_line_naming_what_to_fix(hosts, options, message):
    with pytest.raises(MaintenanceInputError) as caught:
        plan(hosts, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_facts_of_the_vm_itself_pass_in_any_case():
    hosts = [{"host": "a", "vm_name": "Web1", "facts_vm_name": "web1", "events": []},
             {"host": "b", "vm_name": "web2", "facts_vm_name": None, "events": []},
             {"host": "c", "vm_name": "web3", "facts_vm_name": "", "events": []}]
    assert plan(hosts)["hosts"] == 3


def test_domain_limits_given_on_the_command_line():
    """-e imds_azure_maintenance_max_fault_domains=2 gives the string '2'."""
    document = events(("R", "Reboot", ["WEB1", "WEB3"], {}))
    held = plan(fleet(document), drain_rules=DRAIN, max_share=1, max_fault_domains="1", max_update_domains="0")
    assert by_id(held)["R"]["action"] == "hold"
    allowed = plan(fleet(document), drain_rules=DRAIN, max_share=1, max_fault_domains=" 2 ", max_update_domains="2")
    assert by_id(allowed)["R"]["action"] == "drain"
