#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: scheduled_events
short_description: See, wait for and approve Azure scheduled maintenance events
version_added: 1.0.0
description:
  - Reads the scheduled events of the Azure Instance Metadata Service (IMDS) for this VM
    (reboots, redeployments, freezes, Spot evictions, scale-set deletions) with their times as
    ISO 8601 UTC timestamps and seconds from now.
  - Waits, bounded, for an event of given types to appear (O(wait_for)), which is what a play that
    drains a node before maintenance needs.
  - Approves events (O(approve) by id, or O(approve_rules) by type, source and duration) so that
    they start now instead of at their C(NotBefore) time. This is the only change the module makes,
    and the only time it reports RV(ignore:changed=true).
  - Waits, bounded, for events to end (O(wait_for_end)); an event is over once it has left the
    document, which also moves C(DocumentIncarnation). RV(phase_seconds) says how long each phase
    took (to appear, to start, to end), so a play knows when a drained node may go back into service.
  - Events are delivered to every VM of an availability set or scale-set placement group, so by
    default only the events whose C(Resources) name this VM are returned.
extends_documentation_fragment:
  - imds.azure.imds
  - imds.azure.imds.detection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - imds.azure.imds.action_plugin
attributes:
  check_mode:
    support: full
    details: Nothing is approved; RV(would_approve) lists what would be (by id or by rule), and
      RV(ignore:changed) says whether anything would be. Events are read, also on Windows hosts.
      O(wait_for) waits as usual; O(wait_for_end) does not wait (nothing was approved, so nothing
      would end sooner) and reports the document as it stands.
  diff_mode:
    support: none
options:
  api_version:
    description:
      # Overrides the fragment's text: scheduled events have their own api-versions.
      - The scheduled-events C(api-version) to ask for. Scheduled events are versioned apart from
        the instance metadata, so the versions of M(imds.azure.metadata_facts) do not apply here;
        the ones known are V(2017-08-01), V(2017-11-01), V(2019-01-01), V(2019-04-01),
        V(2019-08-01) and V(2020-07-01).
      - When not set, V(2020-07-01) is asked for, and if IMDS refuses it the newest scheduled-events
        version it offers is used. When set, exactly that version is used.
      - Older versions leave fields out (RV(events[].description) before 2019-04-01,
        RV(events[].event_source) before 2019-08-01, RV(events[].duration_in_seconds) before
        2020-07-01) and do not show newer event types (V(Preempt) before 2017-11-01, V(Terminate)
        before 2019-01-01).
      - An O(api_version) set for the whole C(imds.azure.imds) group in C(module_defaults) applies
        here too; set it for M(imds.azure.metadata_facts) alone instead.
    type: str
  vm_name:
    description:
      - The name this VM has in the C(Resources) of its events, that is its compute C(name).
      - When not set, it is read from IMDS (C(/metadata/instance/compute/name)), one request.
    type: str
  this_vm_only:
    description:
      - Return (and wait for) only the events whose C(Resources) include this VM. Names are
        compared ignoring case, as Azure does.
      - Set V(false) to see the events of every VM in the availability set or placement group, for
        example on a VM that coordinates approvals for the others.
    type: bool
    default: true
  approve:
    description:
      - Approve events so that they start now. Either a list of C(EventId)s, or V(all_for_this_vm)
        to approve every event that is C(Scheduled) and names this VM.
      - Event ids are approved whichever VMs they concern. An approval lets the event proceed for
        every VM in its C(Resources), not only for this one.
      - Ids of events that have already started are left alone (RV(already_started)); ids that are
        no longer in the document, because the event is over or was cancelled, are not an error
        (RV(not_found)).
      - An empty list approves nothing.
    type: list
    elements: str
  approve_rules:
    description:
      - Approve by rule instead of by id, for example what a user started, a C(Freeze) shorter than a
        few seconds, or the eviction of a Spot VM (a C(Preempt), which comes to Spot VMs only and
        cannot be avoided anyway).
      - A C(Scheduled) event in scope (this VM's, or every VM's with O(this_vm_only=false)) is approved
        when it matches at least one rule; it matches a rule when it has every property the rule
        names. RV(rule_matches) says which rule each event matched.
      - With O(wait_for), the rules apply once the wait has found its event.
      - An empty list approves nothing.
    type: list
    elements: dict
    suboptions:
      event_types:
        description: The event has one of these types.
        type: list
        elements: str
        choices: [Freeze, Reboot, Redeploy, Preempt, Terminate]
      event_sources:
        description:
          - The event's C(EventSource) is one of these. V(User) is maintenance someone started (a
            restart or redeploy from the portal or API). Events read with an api-version before
            V(2019-08-01) have no source and never match.
        type: list
        elements: str
        choices: [Platform, User]
      max_duration:
        description:
          - The event's C(DurationInSeconds) is known and at most this many seconds, for example
            V(10) for a short C(Freeze). An event whose duration Azure does not know never matches.
        type: float
  wait_for_end:
    description:
      - After waiting (O(wait_for)) and approving, wait until the events of this run have left the
        document, that is until they are over. Bounded by O(end_timeout); running out of time is not
        a failure (RV(end_timed_out=true)).
      - The events of this run are O(end_event_ids) when given; otherwise the ids given to
        O(approve), the events approved or matched by O(approve_rules), and the events O(wait_for)
        found; when none of these options is set, every event in scope at the first read.
      - On the VM a C(Reboot) or C(Redeploy) affects, the task ends with the VM; wait from a VM of the
        same availability set that the event does not name (as the role C(imds.azure.maintenance)
        does) or retry the task once the VM is back.
    type: bool
    default: false
  end_event_ids:
    description:
      - With O(wait_for_end), the ids of the events to wait for the end of, whichever VMs they
        concern. Ids not in the document when the wait begins are over already (RV(not_found)).
    type: list
    elements: str
  end_timeout:
    description:
      - Seconds to wait, with O(wait_for_end), for the events to end. A C(Freeze) lasts seconds, a
        C(Reboot) minutes, a C(Redeploy) can take longer.
    type: float
    default: 1800
  wait_for:
    description:
      - Wait until an event of one of these types is listed (for this VM unless
        O(this_vm_only=false)), whether it is C(Scheduled) or has C(Started).
      - The wait ends after O(wait_timeout) seconds without such an event; that is not a failure
        (RV(timed_out=true)).
    type: list
    elements: str
    choices: [Freeze, Reboot, Redeploy, Preempt, Terminate]
  wait_timeout:
    description:
      - Seconds to wait for an event of the O(wait_for) types. The time counts from IMDS's first
        answer (see O(first_call_timeout)).
      - One poll can outlast the deadline by up to O(timeout) plus O(retry_timeout) seconds when
        IMDS answers slowly or must be retried.
    type: float
    default: 300
  poll_interval:
    description:
      - Seconds between two polls while waiting. At least V(1), which keeps the module far below the
        5 requests per second IMDS allows a VM. Microsoft suggests polling once per second when
        short notices matter (a Spot eviction comes 30 seconds ahead).
    type: float
    default: 2
  first_call_timeout:
    description:
      - Seconds the first scheduled-events request may take. IMDS enables scheduled events for a VM
        on the first request (and again after 24 hours without one), and that request can take up
        to two minutes to answer.
      - Later requests use O(timeout). Values below O(timeout) count as O(timeout).
    type: float
    default: 120
notes:
  - IMDS answers only from inside the VM, so this module must run on the VM itself (not delegated
    to the controller).
  - With the default O(endpoint), a host whose DMI data says it is not an Azure VM fails at once,
    without a request. Where the DMI data cannot tell, the compute name request is asked first with
    O(probe_timeout), also when O(vm_name) is set, and no answer fails the task as "not an Azure VM".
  - A run makes one request for the VM name (unless O(vm_name) is given), one for the events, one
    per poll while waiting (for events to appear or to end), and when it approves one C(POST) and one
    more read to return the events as they stand after the approval.
  - The first request for events on a VM can take up to two minutes; see O(first_call_timeout).
    Scheduled events switch themselves off after 24 hours without a request.
seealso:
  - module: imds.azure.metadata_facts
  - name: Azure Metadata Service Scheduled Events for Linux VMs
    description: Microsoft's documentation of the API.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
author:
  - imds.azure maintainers (@imds-azure)
"""

EXAMPLES = r"""
- name: List the scheduled events for this VM
  imds.azure.scheduled_events:
  register: maintenance

- name: Show when each starts
  ansible.builtin.debug:
    msg: "{{ item.event_type }} not before {{ item.not_before_utc }} ({{ item.seconds_until_not_before }} s)"
  loop: "{{ maintenance.events }}"

- name: Wait up to 10 minutes for a reboot, redeploy or freeze of this VM
  imds.azure.scheduled_events:
    wait_for: [Reboot, Redeploy, Freeze]
    wait_timeout: 600
  register: waited

- name: Approve the events the wait found, once the node is out of service
  imds.azure.scheduled_events:
    approve: "{{ waited.matched | map(attribute='event_id') }}"
  when: not waited.timed_out

- name: Approve everything scheduled for this VM
  imds.azure.scheduled_events:
    approve: all_for_this_vm

- name: Approve at once what a user started, short freezes and Spot evictions, then wait for them to end
  imds.azure.scheduled_events:
    approve_rules:
      - event_sources: [User]
      - event_types: [Freeze]
        max_duration: 10
      - event_types: [Preempt]
    wait_for_end: true
    end_timeout: 600
  register: by_rule

- name: Say how long the maintenance took
  ansible.builtin.debug:
    msg: "Started after {{ by_rule.phase_seconds.start }} s, over after {{ by_rule.phase_seconds.end }} s"
  when: by_rule.approved | length > 0

- name: From a VM the event does not name, wait for a reboot of two others to be over
  imds.azure.scheduled_events:
    this_vm_only: false
    wait_for_end: true
    end_event_ids: ["{{ waited.matched[0].event_id }}"]
    end_timeout: 1200

- name: See the events of every VM in the availability set, with an older api-version
  imds.azure.scheduled_events:
    this_vm_only: false
    api_version: "2019-08-01"
"""

RETURN = r"""
events:
  description:
    - The events for this VM (every event when O(this_vm_only=false)), in the order IMDS lists them.
    - After an approval they are read again, so approved events show their new status.
  returned: always
  type: list
  elements: dict
  contains:
    event_id:
      description: The event's C(EventId), as IMDS spells it. Give it to O(approve).
      type: str
      sample: C7061BAC-AFDC-4513-B24B-AA5F13A16123
    event_type:
      description: V(Freeze), V(Reboot), V(Redeploy), V(Preempt) (Spot eviction) or V(Terminate) (scale-set deletion).
      type: str
      sample: Freeze
    event_status:
      description: V(Scheduled), or V(Started) once it is approved or its time has come. Finished events are no longer listed.
      type: str
      sample: Scheduled
    resource_type:
      description: V(VirtualMachine).
      type: str
    resources:
      description: The names of the VMs the event affects.
      type: list
      elements: str
      sample: ["WestNO_0", "WestNO_1"]
    for_this_vm:
      description: Whether RV(events[].resources) names this VM (RV(vm_name)).
      type: bool
    not_before:
      description: C(NotBefore) as IMDS sends it (an RFC 1123 date), or V(null) once the event has started.
      type: str
      sample: Mon, 11 Apr 2022 22:26:58 GMT
    not_before_utc:
      description: The same time as ISO 8601 UTC, or V(null).
      type: str
      sample: "2022-04-11T22:26:58Z"
    seconds_until_not_before:
      description: Whole seconds from the module's run until C(NotBefore); negative once it has passed; V(null) without a time.
      type: int
      sample: 894
    description:
      description: Microsoft's description of the event, or V(null) (empty, or api-versions before 2019-04-01).
      type: str
    event_source:
      description: V(Platform) or V(User) (someone restarted or redeployed the VM); V(null) before api-version 2019-08-01.
      type: str
    duration_in_seconds:
      description:
        - How long the interruption is expected to last; V(0) means no interruption.
        - V(null) when Azure does not know (IMDS says C(-1)) or before api-version 2020-07-01.
      type: int
      sample: 5
document_incarnation:
  description: C(DocumentIncarnation), which increases whenever the events change.
  returned: always
  type: int
  sample: 3
vm_name:
  description: The name events were matched against (O(vm_name), or the compute name IMDS gave).
  returned: always
  type: str
  sample: web-linux-01
api_version:
  description: The scheduled-events api-version that answered.
  returned: always
  type: str
  sample: "2020-07-01"
document:
  description: The scheduled-events document as IMDS returned it, every VM's events included.
  returned: always
  type: dict
approved:
  description: The ids of the events this run approved. Always empty in check mode.
  returned: always
  type: list
  elements: str
would_approve:
  description: The ids of the events that would be approved.
  returned: in check mode, when O(approve) is set
  type: list
  elements: str
already_started:
  description: Ids given to O(approve) whose event has started already; nothing was sent for them.
  returned: always
  type: list
  elements: str
not_found:
  description:
    - Ids given to O(approve) that are not (or no longer) in the document; nothing was sent for them.
    - Ids given to O(end_event_ids) that were not in the document when the end wait began (over already).
  returned: always
  type: list
  elements: str
matched:
  description: With O(wait_for), the events of those types that ended the wait; empty when it timed out.
  returned: when O(wait_for) is set
  type: list
  elements: dict
timed_out:
  description: With O(wait_for), whether O(wait_timeout) passed without such an event.
  returned: when O(wait_for) is set
  type: bool
waited_seconds:
  description: With O(wait_for), how long the wait took, in seconds.
  returned: when O(wait_for) is set
  type: float
rule_matches:
  description:
    - With O(approve_rules), each event in scope that matched a rule, whatever its status, and the
      first rule it matched (counted from 1).
  returned: when O(approve_rules) is set
  type: list
  elements: dict
  contains:
    event_id:
      description: The event's C(EventId).
      type: str
    event_type:
      description: Its type.
      type: str
    rule:
      description: The number of the first rule it matched, from 1.
      type: int
      sample: 2
    rule_text:
      description: That rule in words.
      type: str
      sample: Freeze events lasting at most 10 s
ended:
  description: With O(wait_for_end), whether every event of this run has left the document.
  returned: when O(wait_for_end) is set
  type: bool
end_timed_out:
  description: With O(wait_for_end), whether O(end_timeout) passed with events still listed.
  returned: when O(wait_for_end) is set
  type: bool
waited_for_end:
  description: With O(wait_for_end), the ids of the events this run waited for the end of.
  returned: when O(wait_for_end) is set
  type: list
  elements: str
still_listed:
  description: With O(wait_for_end), the ids of those events still in the document at the end of the run.
  returned: when O(wait_for_end) is set
  type: list
  elements: str
phase_seconds:
  description:
    - How long each phase of this run took, in seconds, or V(null) for a phase the run did not go
      through (or, for RV(phase_seconds.start) and RV(phase_seconds.end), did not see finish).
  returned: always
  type: dict
  contains:
    appear:
      description: With O(wait_for), the wait for an event to appear.
      type: float
    start:
      description: With O(wait_for_end), from the beginning of the end wait until none of the events was still C(Scheduled).
      type: float
    end:
      description: With O(wait_for_end), from the beginning of the end wait until all of them had left the document.
      type: float
  sample: {"appear": 12.0, "start": 0.0, "end": 64.5}
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
  sample: Approved C7061BAC-AFDC-4513-B24B-AA5F13A16123 (Freeze).
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.imds.azure.plugins.module_utils._bytecode import kept_code

with kept_code(__name__ == "__main__"):  # run on the host: compiled once per host, not per run
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._detect import NotOnAzure, host_evidence, request_on_azure
    from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
    from ansible_collections.imds.azure.plugins.module_utils._events import (
        APPROVE_ALL, EVENT_SOURCES, EVENT_TYPES, EVENTS_PATH, EventsDocument, EventsDocumentError, all_started,
        describe, matching_rule, parse_document, plan_approval, poll_until, read_rules, select, start_requests,
        still_listed)
    from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport
    from ansible_collections.imds.azure.plugins.module_utils._options import (
        DEFAULT_PROBE_TIMEOUT, MAX_TIMEOUT, MAX_WAIT, OptionError, imds_argument_spec, seconds)
    from ansible_collections.imds.azure.plugins.module_utils._text import printable
    from ansible_collections.imds.azure.plugins.module_utils._versions import EVENTS_NEWEST, EVENTS_VERSIONS

MIN_POLL_INTERVAL = 1.0
FIRST_CALL_TIMEOUT = 120.0  # Microsoft: the call that enables scheduled events can take two minutes


class Events:
    """The scheduled events of one VM, read through one IMDS client."""

    def __init__(self, client: ImdsClient, vm_name: str, first_call_timeout: float) -> None:
        self.client = client
        self.vm_name = vm_name
        self.first_timeout: float | None = max(first_call_timeout, client.timeout)
        self.warnings: list[str] = []
        self.raw: t.Any = None

    def read(self) -> EventsDocument:
        response = self.client.get(EVENTS_PATH, first_timeout=self.first_timeout)
        self.first_timeout = None  # only the very first request may be slow
        try:
            parsed = parse_document(response.data, time.time(), self.vm_name)
        except EventsDocumentError as exc:
            raise ImdsError(f"IMDS at {response.url} (api-version {response.api_version}) answered with something "
                            f"that is not a scheduled-events document: {exc}.", url=response.url,
                            status=response.status, api_version=response.api_version, kind="body") from None
        self.raw = response.data
        self.warnings.extend(w for w in response.warnings + parsed.warnings if w not in self.warnings)
        return parsed

    def approve(self, event_ids: list[str]) -> tuple[list[str], list[str], list[str]]:
        """POST the start requests. Returns (approved, already started, gone).

        IMDS answers 200 for valid event ids and 400 for a malformed request; an event
        that ended between our read and the POST may be refused too. On a 400 the
        document is read again: when some events are gone, the ones still scheduled are
        approved and the rest reported; when none is gone, the 400 is an error.
        """
        try:
            self._post(event_ids)
            return event_ids, [], []
        except ImdsError as exc:
            if exc.status != 400:
                raise
            current = {item["event_id"]: item["event_status"] for item in self.read().events}
            if all(event_id in current for event_id in event_ids):
                raise  # nothing vanished: the refusal is about something else
        still = [event_id for event_id in event_ids if current.get(event_id) == "Scheduled"]
        started = [event_id for event_id in event_ids if event_id in current and event_id not in still]
        gone = [event_id for event_id in event_ids if event_id not in current]
        if still:
            self._post(still)
        return still, started, gone

    def _post(self, event_ids: list[str]) -> None:
        self.client.post(EVENTS_PATH, start_requests(event_ids))  # IMDS answers an approval with an empty body


def find_vm_name(params: dict[str, t.Any], events_client: ImdsClient, evidence: t.Any = "dmi") -> str:
    """The name this VM has in the events' Resources, once it is clear the host may be an Azure VM.

    With the default endpoint and a host whose DMI data cannot tell, the compute name
    request is the probe: no answer within probe_timeout means "not an Azure VM".
    ``evidence``: ``"dmi"`` reads the host's DMI data here; the action plugin passes what
    it knows of a Windows host.
    """
    client = ImdsClient(events_client.transport, endpoint=events_client.endpoint, timeout=events_client.timeout,
                        retry_timeout=events_client.retry_timeout, limiter=events_client.limiter)
    if evidence == "dmi":
        evidence = host_evidence(client)
    elif not client.is_default_endpoint:
        evidence = None  # an endpoint given explicitly is always asked, as host_evidence() says
    if params["vm_name"] and (evidence is None or evidence.azure):
        return params["vm_name"].strip()
    probe = seconds(params["probe_timeout"], "probe_timeout", above_minimum=True, maximum=MAX_TIMEOUT)
    detected = request_on_azure(client, lambda first: client.instance("compute/name", fmt="text", first_timeout=first),
                                probe_timeout=probe, evidence=evidence)
    if params["vm_name"]:
        return params["vm_name"].strip()
    name = detected.response.data.strip()
    if not name:
        raise ImdsError(f"IMDS at {client.endpoint} gave an empty compute name; set vm_name.", url=client.endpoint)
    return name


def check_options(p: dict[str, t.Any]) -> str | None:
    """The first problem with the options, as a message, or None.

    The numbers are made finite floats within bounds here (``nan``, ``inf`` and ``1e308``
    are refused), so that no wait below can be endless.
    """
    if p["api_version"] is not None and p["api_version"] not in EVENTS_VERSIONS:
        return (f"api_version {printable(p['api_version'], 40)!r} is not a scheduled-events api-version. Scheduled "
                f"events are versioned apart from the instance metadata: use one of {', '.join(EVENTS_VERSIONS)}, "
                f"or leave api_version unset to use {EVENTS_NEWEST}. (An api_version set for the imds.azure.imds "
                "group in module_defaults applies here too; set it for imds.azure.metadata_facts alone.)")
    try:
        p["poll_interval"] = seconds(p["poll_interval"], "poll_interval", minimum=MIN_POLL_INTERVAL,
                                     maximum=MAX_TIMEOUT)
        p["wait_timeout"] = seconds(p["wait_timeout"], "wait_timeout", maximum=MAX_WAIT)
        p["first_call_timeout"] = seconds(p["first_call_timeout"], "first_call_timeout", above_minimum=True,
                                          maximum=MAX_TIMEOUT)
    except OptionError as exc:
        # poll_interval's floor keeps far below IMDS's limit of 5 requests per second
        hint = " (IMDS allows 5 requests per second.)" if str(exc).startswith("poll_interval must be at least") else ""
        return f"{exc}{hint}"
    try:
        p["end_timeout"] = seconds(p["end_timeout"], "end_timeout", maximum=MAX_WAIT)
        read_rules(p["approve_rules"])
    except (OptionError, ValueError) as exc:
        return f"{str(exc).rstrip('.')}."
    if any(not event_id.strip() for event_id in p["end_event_ids"] or []):
        return "end_event_ids holds an empty event id."
    if p["end_event_ids"] and not p["wait_for_end"]:
        return "end_event_ids names the events wait_for_end waits for; set wait_for_end: true as well."
    if p["vm_name"] is not None and not p["vm_name"].strip():
        return "vm_name is empty; leave it unset to read the name from IMDS."
    requested = p["approve"] or []
    if APPROVE_ALL in requested and len(requested) > 1:
        return f"approve takes either {APPROVE_ALL} alone or a list of event ids, not both."
    if any(not event_id.strip() for event_id in requested):
        return "approve holds an empty event id."
    return None


def approve_by_rules(session: Events, doc: EventsDocument, p: dict[str, t.Any], check_mode: bool,
                     result: dict[str, t.Any]) -> EventsDocument:
    """Approve the Scheduled events in scope that match a rule; RV(rule_matches) names them all."""
    rules = read_rules(p["approve_rules"])
    matches = []
    for item in select(doc.events, p["this_vm_only"]):
        index = matching_rule(item, rules)
        if index is not None:
            matches.append({"event_id": item["event_id"], "event_type": item["event_type"], "rule": index + 1,
                            "rule_text": rules[index].describe()})
    result["rule_matches"] = matches
    if not matches:
        result["would_approve" if check_mode else "approved"] = []
        scope = "this VM's" if p["this_vm_only"] else "the"
        result["msg"] = f"No event matched approve_rules ({len(select(doc.events, p['this_vm_only']))} of " \
                        f"{scope} events looked at)."
        return doc
    return approve(session, doc, [match["event_id"] for match in matches], check_mode, result)


def end_ids(p: dict[str, t.Any], doc: EventsDocument, result: dict[str, t.Any]) -> list[str]:
    """The events this run waits for the end of (see the option wait_for_end)."""
    if p["end_event_ids"]:
        return [event_id.strip() for event_id in p["end_event_ids"]]
    named: list[str] = []
    if p["approve"] and APPROVE_ALL not in p["approve"]:
        named += [event_id.strip() for event_id in p["approve"]]
    named += result.get("approved", []) + result.get("would_approve", []) + result.get("already_started", [])
    named += [match["event_id"] for match in result.get("rule_matches", [])]
    named += [item["event_id"] for item in result.get("matched", [])]
    if not (p["approve"] is not None or p["approve_rules"] is not None or p["wait_for"]):
        named = [item["event_id"] for item in select(doc.events, p["this_vm_only"])]
    return list(dict.fromkeys(named))


def wait_end(session: Events, doc: EventsDocument, p: dict[str, t.Any], check_mode: bool,
             result: dict[str, t.Any]) -> EventsDocument:
    """Wait until the events of this run have left the document (they are over), bounded by end_timeout."""
    ids = end_ids(p, doc, result)
    listed = still_listed(doc.events, ids)
    result["waited_for_end"] = ids
    gone = [event_id for event_id in ids if event_id.casefold() not in {i.casefold() for i in listed}]
    if p["end_event_ids"]:
        result["not_found"] = list(dict.fromkeys(result["not_found"] + gone))
    before = result.get("msg", "")
    lead = f"{before} " if before else ""
    if check_mode and listed:
        result.update(ended=False, end_timed_out=False, still_listed=listed)
        result["msg"] = f"{lead}Check mode: not waiting for the end of {describe(listed, doc.events)}."
        return doc
    start = time.monotonic()
    started_after: list[float] = []

    def over(current: EventsDocument) -> bool:
        if not started_after and all_started(current.events, ids):
            started_after.append(round(time.monotonic() - start, 1))
        return not still_listed(current.events, ids)

    doc, done, _polls = poll_until(session.read, over, p["end_timeout"], p["poll_interval"],
                                   time.monotonic, time.sleep, first=doc)
    phases = result["phase_seconds"]
    phases["start"] = started_after[0] if started_after else None
    phases["end"] = round(time.monotonic() - start, 1) if done else None
    result.update(ended=done, end_timed_out=not done, still_listed=still_listed(doc.events, ids))
    if not ids:
        result["msg"] = f"{lead}No event to wait for the end of."
    elif done:
        result["msg"] = f"{lead}Over after {phases['end']:g} s: {describe(ids, [])} (incarnation {doc.incarnation})."
    else:
        result["msg"] = f"{lead}Still listed after {p['end_timeout']:g} s (end_timeout): " \
                        f"{describe(result['still_listed'], doc.events)}."
    return doc


def wait(session: Events, first: EventsDocument, p: dict[str, t.Any], result: dict[str, t.Any]) -> EventsDocument:
    types = p["wait_for"]

    def found(doc: EventsDocument) -> bool:
        return bool(select(doc.events, p["this_vm_only"], types))

    start = time.monotonic()
    doc, done, _polls = poll_until(session.read, found, p["wait_timeout"], p["poll_interval"],
                                   time.monotonic, time.sleep, first=first)
    result["waited_seconds"] = round(time.monotonic() - start, 1)
    result["phase_seconds"]["appear"] = result["waited_seconds"] if done else None
    result["timed_out"] = not done
    result["matched"] = select(doc.events, p["this_vm_only"], types) if done else []
    kinds = ", ".join(types)
    whose = f" for {printable(session.vm_name, 80)}" if p["this_vm_only"] else ""
    if done:
        result["msg"] = f"Found {describe([e['event_id'] for e in result['matched']], doc.events)}{whose} " \
                        f"after {result['waited_seconds']:g} s."
    else:
        result["msg"] = f"No {kinds} event{whose} appeared within {p['wait_timeout']:g} s."
    return doc


def approve(session: Events, doc: EventsDocument, requested: list[str], check_mode: bool,
            result: dict[str, t.Any]) -> EventsDocument:
    plan = plan_approval(doc.events, requested)
    result["already_started"] = list(plan.already_started)
    result["not_found"] = list(plan.not_found)
    notes = []
    if plan.already_started:
        notes.append(f"already started: {describe(plan.already_started, [])}")
    if plan.not_found:
        notes.append(f"not (or no longer) listed, so nothing to approve: {describe(plan.not_found, [])}")
    tail = f" ({'; '.join(notes)})" if notes else ""
    if check_mode:
        result["would_approve"] = list(plan.approve)
        result["changed"] = bool(plan.approve)
        result["msg"] = (f"Would approve {describe(plan.approve, doc.events)}{tail}." if plan.approve
                         else f"Nothing to approve{tail}.")
        return doc
    if not plan.approve:
        result["msg"] = f"Nothing to approve{tail}."
        return doc
    approved, started, gone = session.approve(plan.approve)
    result["approved"] = approved
    result["already_started"] += started
    result["not_found"] += gone
    result["changed"] = bool(approved)
    if started or gone:
        meanwhile = describe(started + gone, [])
        tail = f" ({'; '.join(notes + [f'started or ended meanwhile: {meanwhile}'])})"
    result["msg"] = (f"Approved {describe(approved, doc.events)}{tail}." if approved
                     else f"Nothing left to approve{tail}.")
    return session.read()  # the events as they stand now (approved ones have started)


def argument_spec() -> dict[str, t.Any]:
    return dict(
        **imds_argument_spec(),
        vm_name=dict(type="str"),
        this_vm_only=dict(type="bool", default=True),
        approve=dict(type="list", elements="str"),
        approve_rules=dict(type="list", elements="dict", options=dict(
            event_types=dict(type="list", elements="str", choices=list(EVENT_TYPES)),
            event_sources=dict(type="list", elements="str", choices=list(EVENT_SOURCES)),
            max_duration=dict(type="float"),
        )),
        wait_for_end=dict(type="bool", default=False),
        end_event_ids=dict(type="list", elements="str"),
        end_timeout=dict(type="float", default=1800.0),
        wait_for=dict(type="list", elements="str", choices=list(EVENT_TYPES)),
        wait_timeout=dict(type="float", default=300.0),
        poll_interval=dict(type="float", default=2.0),
        first_call_timeout=dict(type="float", default=FIRST_CALL_TIMEOUT),
        probe_timeout=dict(type="float", default=DEFAULT_PROBE_TIMEOUT),
    )


# What AnsibleModule (and the action plugin's validator for Windows hosts) checks beside the spec.
ARGUMENT_SPEC_KWARGS: dict[str, t.Any] = dict(mutually_exclusive=[("approve", "wait_for"),
                                                                  ("approve", "approve_rules")])


def run(params: dict[str, t.Any], transport: t.Any, check_mode: bool = False, evidence: t.Any = "dmi",
        limiter: t.Any = None) -> dict[str, t.Any]:
    """The module's result for ``params``: events, or ``failed`` and ``msg``; with ``warnings``.

    ``transport`` carries each HTTP attempt (http.client on the host; win_uri, through the
    action plugin, for a Windows host), ``evidence`` and ``limiter`` as the host allows.
    """
    p = params
    problem = check_options(p)
    if problem:
        return {"failed": True, "msg": problem}
    result: dict[str, t.Any] = {"changed": False, "approved": [], "already_started": [], "not_found": [],
                                "phase_seconds": {"appear": None, "start": None, "end": None}}
    try:
        client = ImdsClient(transport, endpoint=p["endpoint"], api_version=p["api_version"], timeout=p["timeout"],
                            retry_timeout=p["retry_timeout"], known_versions=EVENTS_VERSIONS, limiter=limiter)
        vm_name = find_vm_name(p, client, evidence)
        session = Events(client, vm_name, p["first_call_timeout"])
        doc = session.read()
        if p["wait_for"]:
            doc = wait(session, doc, p, result)
        if p["approve"] is not None:
            doc = approve(session, doc, p["approve"], check_mode, result)
        elif p["approve_rules"] is not None and not result.get("timed_out"):
            doc = approve_by_rules(session, doc, p, check_mode, result)
        if p["wait_for_end"]:
            doc = wait_end(session, doc, p, check_mode, result)
    except OptionError as exc:
        return {"failed": True, "msg": str(exc), **result}
    except NotOnAzure as exc:
        return {"failed": True, **result,
                "msg": f"This host does not look like an Azure VM ({exc.reason}), so it has no scheduled events. "
                       f"Run the task on Azure VMs only, or set endpoint to an IMDS emulator. {exc.hint}".strip()}
    except ImdsError as exc:
        return {"failed": True, "msg": str(exc), **exc.to_result(), **result}
    events = select(doc.events, p["this_vm_only"])
    if "msg" not in result:
        whose = f"for {printable(vm_name, 80)}" if p["this_vm_only"] else "for any VM"
        result["msg"] = f"{len(events)} scheduled event{'s' if len(events) != 1 else ''} {whose} " \
                        f"({len(doc.events)} in the document, incarnation {doc.incarnation})."
    return {"events": events, "document_incarnation": doc.incarnation, "vm_name": vm_name,
            "api_version": client.api_version, "document": session.raw, **result, "warnings": session.warnings}


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, **ARGUMENT_SPEC_KWARGS)
    result = run(module.params, HttpClientTransport(), module.check_mode)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
