"""The imds.azure.maintenance role over a fleet, by real ansible-playbook against the emulator.

One emulator process serves three VMs of one availability set by name, each inventory host
on its own port (imds_azure_endpoint): web1 and web2 in fault domain 0, web3 in fault
domain 1. A Reboot names web1 and web2, a Freeze of 2 seconds names web3. The drain and
restore tasks the test supplies leave a trace (one line per step, with the time), so the
test can tell who was out of service when, and the emulator's request log says who
approved what, and when.
"""
from __future__ import annotations

import json
import sys
import time

import pytest

from imds_emulator import Fleet  # tools/, on sys.path through tests/conftest.py

REBOOT = "0e7d5b7c-0000-4000-8000-00000000b007"
FREEZE = "0e7d5b7c-0000-4000-8000-00000000f12e"
VMS = [{"name": "web1", "fault_domain": 0, "update_domain": 0, "availability_set": "web"},
       {"name": "web2", "fault_domain": 0, "update_domain": 0, "availability_set": "web"},
       {"name": "web3", "fault_domain": 1, "update_domain": 1, "availability_set": "web"}]

# {{ trace }}: one line per drain and restore, "<step> <host> <unix time>"; appends are atomic.
# {{ fail_once }}: when set, the drain of web2 fails unless that marker file exists (and creates it).
DRAIN = """
- name: Take the host out of service
  ansible.builtin.shell: echo "drain {{ inventory_hostname }} {{ imds_azure_maintenance_event.event_id }} $(date +%s.%N)" >> "{{ trace }}"
  changed_when: true
  notify: Tell the monitoring
- name: Check that it is out, which fails once on web2
  ansible.builtin.shell: test -e "{{ fail_once }}" || { touch "{{ fail_once }}"; echo "still serving" >&2; exit 1; }
  when: fail_once | default('') | length > 0 and inventory_hostname == 'web2'
  changed_when: false
"""
RESTORE = """
- name: Put the host back into service, which fails once on web1 when asked to
  ansible.builtin.shell: test -e "{{ fail_restore }}" || { touch "{{ fail_restore }}"; echo "no answer" >&2; exit 1; }
  when: fail_restore | default('') | length > 0 and inventory_hostname == 'web1'
  changed_when: false
- name: Put the host back into service
  ansible.builtin.shell: echo "restore {{ inventory_hostname }} {{ imds_azure_maintenance_event.event_id }} $(date +%s.%N)" >> "{{ trace }}"
  changed_when: true
"""
PLAY = """
- name: Maintenance of the web tier
  hosts: web
  gather_facts: false
  roles:
    - role: imds.azure.maintenance
      vars:
        imds_azure_maintenance_drain_tasks: "{{ tasks_dir }}/drain.yml"
        imds_azure_maintenance_restore_tasks: "{{ tasks_dir }}/restore.yml"
        imds_azure_maintenance_approve_rules:
          - event_types: [Freeze]
            max_duration: 10
        imds_azure_maintenance_max_share: 0.67
        imds_azure_maintenance_poll_interval: 1
        imds_azure_maintenance_end_timeout: 60
  handlers:
    - name: Tell the monitoring
      ansible.builtin.shell: echo "{{ inventory_hostname }} $(date +%s.%N)" >> "{{ trace }}.handlers"
      changed_when: true
"""


@pytest.fixture
def fleet():
    with Fleet(VMS) as served:
        # The Reboot is over 3 s after it starts; the Freeze lasts 2 s. Both are far from NotBefore,
        # so only an approval starts them within the test.
        served.add_event(event_type="Reboot", resources=["web1", "web2"], not_before_seconds=900,
                         complete_after_seconds=3, event_id=REBOOT)
        served.add_event(event_type="Freeze", resources=["web3"], not_before_seconds=600, duration_seconds=2,
                         event_id=FREEZE)
        yield served


@pytest.fixture
def setup(tmp_path, fleet):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "drain.yml").write_text(DRAIN)
    (tasks / "restore.yml").write_text(RESTORE)
    inventory = "[web]\n" + "".join(
        f"{emu.name} ansible_connection=local ansible_python_interpreter={sys.executable} "
        f"imds_azure_endpoint={emu.url}\n" for emu in fleet)
    return {"inventory": inventory, "tasks": tasks, "trace": tmp_path / "trace.log",
            "reports": tmp_path / "reports", "marker": tmp_path / "drain-failed-once"}


def run(playbook, setup, *args, fail_once=False, fail_restore=False, play=PLAY):
    extra = {"tasks_dir": str(setup["tasks"]), "trace": str(setup["trace"]),
             "imds_azure_maintenance_report_dir": str(setup["reports"])}
    if fail_once:
        extra["fail_once"] = str(setup["marker"])
    if fail_restore:
        extra["fail_restore"] = str(setup["marker"])
    return playbook(play, inventory=setup["inventory"], extra_vars=extra, args=args, timeout=240)


def trace(setup):
    if not setup["trace"].exists():
        return []
    lines = [line.split() for line in setup["trace"].read_text().splitlines()]
    return [(step, host, event, float(when)) for step, host, event, when in lines]


def approvals(fleet):
    """(time, VM, event ids asked for) of every approval any VM's emulator served."""
    return sorted((r["time"], r["vm"], r["start_requests"]) for emu in fleet for r in emu.requests
                  if r["method"] == "POST" and r["status"] == 200)


def most_out_at_once(steps):
    out, most = set(), 0
    for step, host, _event, _when in sorted(steps, key=lambda s: s[3]):
        if step == "drain":
            out.add(host)
        else:
            out.discard(host)
        most = max(most, len(out))
    return most, out


def reports(setup):
    return [json.loads(path.read_text()) for path in sorted(setup["reports"].glob("maintenance-2*.json"))]


def status(fleet):
    return {e["EventId"]: e["EventStatus"] for e in fleet.events_document("web")["Events"]}


def test_a_round_over_the_fleet(fleet, setup, playbook):
    result = run(playbook, setup).check()
    steps = trace(setup)
    # the Reboot's two hosts were drained, the event approved once they were both out, then restored
    assert sorted((s, h, e) for s, h, e, _when in steps) == [
        ("drain", "web1", REBOOT), ("drain", "web2", REBOOT), ("restore", "web1", REBOOT), ("restore", "web2", REBOOT)]
    served = approvals(fleet)
    assert [ids for _t, _vm, ids in served] == [[FREEZE], [REBOOT]]  # each approved once; the Freeze by its rule
    reboot_approved = served[1][0]
    drains = [when for step, _h, _e, when in steps if step == "drain"]
    restores = [when for step, _h, _e, when in steps if step == "restore"]
    # the emulator's clock (monotonic) and date +%s differ in origin: compare through the wall clock
    offset = time.time() - time.monotonic()
    assert max(drains) < reboot_approved + offset < min(restores)
    assert served[0][0] + offset < min(drains)  # the Freeze was handled before anyone went out
    # the handlers the drain notified ran before the approval
    notified = [line.split() for line in (setup["trace"].parent / "trace.log.handlers").read_text().splitlines()]
    assert sorted(host for host, _when in notified) == ["web1", "web2"]
    assert max(float(when) for _host, when in notified) < reboot_approved + offset
    # approved by a VM the Reboot does not name, which also waited for its end
    assert served[1][1] == "web3"
    most, left_out = most_out_at_once(steps)
    assert most == 2 and left_out == set()
    assert status(fleet) == {}  # both events over

    (report,) = reports(setup)
    assert report["status"] == "ok" and report["check_mode"] is False
    assert report["limits"]["allowed_out"] == 2 and report["max_out_at_once"] == 2 <= report["limits"]["allowed_out"]
    # typed on every ansible-core (before 2.19 a template rendering one number gives a string)
    assert report["limits"] == {"max_share": 0.67, "allowed_out": 2, "max_fault_domains": 1, "max_update_domains": 1}
    assert isinstance(report["max_out_at_once"], int) and not isinstance(report["max_out_at_once"], bool)
    assert report["check_mode"] is False
    handled = {e["event_id"]: e for e in report["handled"]}
    assert list(handled) == [FREEZE, REBOOT] or list(handled) == [REBOOT, FREEZE]
    freeze, reboot = handled[FREEZE], handled[REBOOT]
    assert (freeze["action"], freeze["rule"], freeze["drained"], freeze["approved"]) == (
        "approve", "Freeze events lasting at most 10 s", [], [FREEZE])
    assert freeze["out_at_once"] == ["web3"] and freeze["ended"] is True and freeze["fault_domains"] == [1]
    assert (reboot["action"], reboot["hosts"], reboot["drained"], reboot["restored"], reboot["approved"]) == (
        "drain", ["web1", "web2"], ["web1", "web2"], ["web1", "web2"], [REBOOT])
    assert reboot["coordinator"] == "web3" and reboot["fault_domains"] == [0] and reboot["ended"] is True
    assert isinstance(reboot["drain_seconds"], float) and reboot["drain_seconds"] >= 0 and freeze["drain_seconds"] is None
    # over 3 s after the approval; the wait began after the approval task, so it saw less of it
    assert 0 < reboot["phase_seconds"]["end"] <= 3.5 and reboot["phase_seconds"]["start"] == 0
    assert report["still_drained"] == {} and report["not_handled"] == []
    assert json.loads((setup["reports"] / "maintenance-state.json").read_text()) == {"drained": {}}
    assert "2 event(s) handled, at most 2 host(s) out at once" in result.stdout

    # a second run finds nothing to do
    run(playbook, setup).check()
    assert len(trace(setup)) == 4 and len(approvals(fleet)) == 2
    assert [r["handled"] for r in reports(setup)][1] == []


def test_check_mode_changes_nothing(fleet, setup, playbook):
    result = run(playbook, setup, "--check").check()
    assert approvals(fleet) == []
    assert status(fleet) == {REBOOT: "Scheduled", FREEZE: "Scheduled"}
    assert not setup["reports"].exists()  # no report, no state
    # the drain and restore tasks ran in check mode: shell does nothing there
    assert trace(setup) == []
    assert f"{REBOOT} (Reboot, Scheduled) on web1, web2: drain (Preempt/Reboot/Redeploy/Terminate events)" \
        in " ".join(result.stdout.split())
    assert "2 event(s) to handle, at most 2 host(s) out at once, 0 left or held; check mode: nothing approved, " \
        "no report written" in " ".join(result.stdout.split())


def test_a_rerun_after_a_failed_drain_finishes_the_job(fleet, setup, playbook):
    failed = run(playbook, setup, fail_once=True)
    assert failed.returncode != 0
    assert "run the role again to finish" in " ".join(failed.stdout.split())
    # web2's drain failed: the Reboot was not approved, what may be out is recorded
    assert [ids for _t, _vm, ids in approvals(fleet)] == [[FREEZE]]
    assert status(fleet) == {REBOOT: "Scheduled"}
    state = json.loads((setup["reports"] / "maintenance-state.json").read_text())
    assert sorted(state["drained"]) == ["web1", "web2"]
    assert {entry["event_id"] for entry in state["drained"].values()} == {REBOOT}
    (first,) = reports(setup)
    assert first["status"] == "failed"
    assert [f["host"] for f in first["failures"]] == ["web2"]
    assert "Check that it is out" in first["failures"][0]["task"]
    assert sorted((s, h) for s, h, _e, _w in trace(setup)) == [("drain", "web1"), ("drain", "web2")]

    run(playbook, setup, fail_once=True).check()
    assert [ids for _t, _vm, ids in approvals(fleet)] == [[FREEZE], [REBOOT]]  # approved once, in the rerun
    assert status(fleet) == {}
    steps = trace(setup)
    assert sorted((s, h) for s, h, _e, _w in steps) == [
        ("drain", "web1"), ("drain", "web1"), ("drain", "web2"), ("drain", "web2"), ("restore", "web1"),
        ("restore", "web2")]
    assert most_out_at_once(steps) == (2, set())
    assert json.loads((setup["reports"] / "maintenance-state.json").read_text()) == {"drained": {}}
    second = reports(setup)[1]
    assert second["status"] == "ok" and [e["event_id"] for e in second["handled"]] == [REBOOT]


def test_a_rerun_after_a_failed_restore_restores_first(fleet, setup, playbook):
    failed = run(playbook, setup, fail_restore=True)
    assert failed.returncode != 0
    # approved and over, but the restore failed: both hosts are still recorded as out
    assert [ids for _t, _vm, ids in approvals(fleet)] == [[FREEZE], [REBOOT]] and status(fleet) == {}
    state = json.loads((setup["reports"] / "maintenance-state.json").read_text())
    assert sorted(state["drained"]) == ["web1", "web2"]
    assert reports(setup)[0]["status"] == "failed" and reports(setup)[0]["still_drained"].keys() == {"web1", "web2"}

    run(playbook, setup, fail_restore=True).check()
    assert len(approvals(fleet)) == 2  # nothing approved again
    assert sorted((s, h) for s, h, _e, _w in trace(setup)) == [
        ("drain", "web1"), ("drain", "web2"), ("restore", "web1"), ("restore", "web2")]
    second = reports(setup)[1]
    assert second["status"] == "ok" and second["restored_first"] == ["web1", "web2"] and second["handled"] == []
    assert json.loads((setup["reports"] / "maintenance-state.json").read_text()) == {"drained": {}}


def test_facts_shared_between_hosts_never_make_a_plan(fleet, setup, playbook):
    """ansible-core 2.21 (ansible/ansible#87148): after a run_once set_fact on hosts without facts, every host
    holds one shared set of facts, the last host's. The role then either has each host's own domains (an
    ansible-core without the bug) or stops before anything is approved, naming the cause; never a plan made
    from another VM's fault domain."""
    play = PLAY.replace("  gather_facts: false\n", """  gather_facts: false
  pre_tasks:
    - name: A run_once set_fact before the hosts have facts
      ansible.builtin.set_fact:
        started: "{{ now() }}"
      run_once: true
""")
    result = run(playbook, setup, play=play)
    text = " ".join(result.stdout.split())
    if result.returncode == 0:
        handled = {e["event_id"]: e for e in reports(setup)[0]["handled"]}
        assert handled[REBOOT]["fault_domains"] == [0] and handled[FREEZE]["fault_domains"] == [1]
        return
    assert "not web" in text and "ansible-core 2.21 gives hosts one shared set of facts after a run_once set_fact " \
        "(ansible/ansible#87148); gather facts before it, or clear them (meta: clear_facts) before the role" in text
    assert approvals(fleet) == [] and trace(setup) == []
    assert "Traceback" not in result.stdout + result.stderr


# -- docs/examples/drain.yml ----------------------------------------------------------------------

def test_the_drain_example(fleet, setup, playbook, tmp_path):
    from ansible_collections.imds.azure.tests.utils.paths import REPO

    reports_dir = tmp_path / "example-reports"

    def example(**extra):
        return playbook(REPO / "docs" / "examples" / "drain.yml", inventory=setup["inventory"], timeout=240,
                        extra_vars={"drain_hosts": "web", "drain_grace_seconds": 0, "reports_dir": str(reports_dir),
                                    **extra})

    # by default half the hosts may be out: the Reboot of two of three is held, the Freeze approved by its rule
    example().check()
    assert [ids for _t, _vm, ids in approvals(fleet)] == [[FREEZE]]
    (held,) = [json.loads(p.read_text()) for p in reports_dir.glob("maintenance-2*.json")]
    assert [(e["event_id"], e["action"]) for e in held["not_handled"]] == [(REBOOT, "hold")]
    assert "would take 2 of 3 hosts out at once" in held["not_handled"][0]["reason"]
    assert status(fleet) == {REBOOT: "Scheduled"}

    # two of three allowed: both drained (the flag files), approved once, over, flags lowered
    result = example(drain_max_share=0.67).check()
    assert [ids for _t, _vm, ids in approvals(fleet)] == [[FREEZE], [REBOOT]] and status(fleet) == {}
    reports_written = sorted(reports_dir.glob("maintenance-2*.json"))
    assert len(reports_written) == 2 and str(reports_written[1]) in result.stdout
    done = json.loads(reports_written[1].read_text())
    assert [(e["event_id"], e["drained"], e["restored"]) for e in done["handled"]] == [
        (REBOOT, ["web1", "web2"], ["web1", "web2"])]
    assert list(reports_dir.glob("*.out-of-service")) == []
    assert "Raise the flag that takes the VM out of the load balancer" in result.stdout
