"""The imds.azure.emulator role, run by real ansible-playbook: start, use, start again, stop."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils.paths import EMULATOR

START_AND_GATHER = """
- name: Start the emulator and read the facts from it
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start
      ansible.builtin.include_role:
        name: imds.azure.emulator
      vars:
        imds_azure_emulator_dir: "{{ state }}"
        imds_azure_emulator_port: 0
        imds_azure_emulator_profile: "{{ profile | default('spot') }}"
        imds_azure_emulator_faults: {"versions": ["2021-02-01", "2023-07-01"]}
    - name: Gather from it
      imds.azure.metadata_facts:
        endpoint: "{{ imds_azure_emulator_url }}"
    - name: Read its faults through the control API
      ansible.builtin.uri:
        url: "{{ imds_azure_emulator_url }}/_emulator/faults"
        use_proxy: false
      register: faults
    - name: Keep what the test checks
      ansible.builtin.copy:
        content: "{{ {'url': imds_azure_emulator_url, 'name': ansible_facts['azure_name'],
                      'faults': faults.json, 'log': imds_azure_emulator_log_file} | to_json }}"
        dest: "{{ out_dir }}/started.json"
        mode: "0600"
"""


def role_play(title: str, **variables) -> str:
    """A play on localhost that applies the role with these variables (and the test's state folder)."""
    settings = {"imds_azure_emulator_dir": "{{ state }}", **variables}
    lines = "\n".join(f"        {name}: {json.dumps(value)}" for name, value in settings.items())
    return f"""
- name: {title}
  hosts: localhost
  gather_facts: false
  roles:
    - role: imds.azure.emulator
      vars:
{lines}
"""


STOP = role_play("Stop the emulator", imds_azure_emulator_state="stopped")


def recap(result) -> str:
    return [line for line in result.stdout.splitlines() if line.startswith("localhost")][-1]


def status(result, task: str) -> str:
    """How a task of the role ended: ok, changed, skipping or failed."""
    after = result.stdout.split(f"TASK [imds.azure.emulator : {task}]", 1)[1]
    return after.strip().split("\n", 2)[1 if after.strip().startswith("*") else 0].split(":", 1)[0]


def refused(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except OSError:
        return True


def test_start_use_start_again_and_stop(playbook, tmp_path):
    state = tmp_path / "state"
    first = playbook(START_AND_GATHER, extra_vars={"state": str(state)}).check()
    started = first.read_json("started.json")
    assert started["name"] == "batch-spot-07"
    assert started["faults"] == {"versions": ["2021-02-01", "2023-07-01"]}
    assert (state / "default.pid").is_file() and oct(state.stat().st_mode & 0o777) == "0o700"
    logged = [json.loads(line) for line in Path(started["log"]).read_text(encoding="utf-8").splitlines()]
    # the gather: the instance document, then the load balancer metadata (the spot VM is in none: 404)
    assert [(entry["path"], entry["status"]) for entry in logged][-2:] == [
        ("/metadata/instance", 200), ("/metadata/loadbalancer", 404)]
    assert {entry["path"] for entry in logged} == {"/metadata/instance", "/metadata/loadbalancer"}
    assert status(first, "Start the emulator in the background") == "changed"

    again = playbook(START_AND_GATHER, extra_vars={"state": str(state)}).check()
    assert again.read_json("started.json")["url"] == started["url"]  # the same emulator, not a new one
    assert status(again, "Start the emulator in the background") == "skipping"
    assert status(again, "Ask whether this emulator runs already") == "ok"

    other = playbook(START_AND_GATHER, extra_vars={"state": str(state), "profile": "windows"})
    assert other.returncode != 0
    assert "An emulator named default already runs" in other.stdout and "with other settings" in other.stdout

    stopped = playbook(STOP, extra_vars={"state": str(state)}).check()
    assert status(stopped, "Stop the emulator") == "changed"
    assert not (state / "default.pid").exists() and refused(started["url"])
    again = playbook(STOP, extra_vars={"state": str(state)}).check()  # stopping a stopped one is fine
    assert status(again, "Stop the emulator") == "ok" and "changed=0" in recap(again)


FLEET = """
- name: A fleet from the role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start three VMs in one process
      ansible.builtin.include_role:
        name: imds.azure.emulator
      vars:
        imds_azure_emulator_dir: "{{ state }}"
        imds_azure_emulator_name: fleet
        imds_azure_emulator_fleet:
          - {name: web1, port: 0, fault_domain: 0}
          - {name: web2, port: 0, fault_domain: 1, profile: windows}
        imds_azure_emulator_timeline_file: "{{ timeline }}"
    - name: Read each VM's events
      ansible.builtin.uri:
        url: "{{ item.value }}/metadata/scheduledevents?api-version=2020-07-01"
        headers:
          Metadata: "true"
        use_proxy: false
      loop: "{{ imds_azure_emulator_urls | dict2items }}"
      register: events
    - name: Gather web2's facts
      imds.azure.metadata_facts:
        endpoint: "{{ imds_azure_emulator_urls.web2 }}"
    - name: Keep what the test checks
      ansible.builtin.copy:
        content: "{{ {'urls': imds_azure_emulator_urls, 'url': imds_azure_emulator_url,
                      'events': events.results | map(attribute='json') | list,
                      'web2': [ansible_facts['azure_name'], ansible_facts['azure_os_type']]} | to_json }}"
        dest: "{{ out_dir }}/fleet.json"
        mode: "0600"
    - name: Stop it
      ansible.builtin.include_role:
        name: imds.azure.emulator
      vars:
        imds_azure_emulator_dir: "{{ state }}"
        imds_azure_emulator_name: fleet
        imds_azure_emulator_state: stopped
"""


def test_a_fleet_with_a_timeline(playbook, tmp_path):
    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps({"events": [{"event_type": "Reboot", "resources": ["web1", "web2"],
                                                "event_id": "r1"}]}))
    result = playbook(FLEET, extra_vars={"state": str(tmp_path / "state"), "timeline": str(timeline)}).check()
    fleet = result.read_json("fleet.json")
    assert sorted(fleet["urls"]) == ["web1", "web2"] and fleet["url"] == ""
    assert all(doc["Events"][0]["EventId"] == "r1" for doc in fleet["events"])
    assert fleet["web2"] == ["web2", "Windows"]
    assert all(refused(url) for url in fleet["urls"].values())


def test_a_taken_port_is_a_clear_failure(playbook, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = playbook(role_play("Start on a taken port", imds_azure_emulator_port=port),
                          extra_vars={"state": str(tmp_path / "state")})
    assert result.returncode != 0
    assert f"imds-emulator: error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stdout


def test_a_bad_fault_is_refused_before_anything_starts(playbook, tmp_path):
    result = playbook(role_play("Start with a bad fault", imds_azure_emulator_port=0,
                                imds_azure_emulator_faults={"delay": -1}),
                      extra_vars={"state": str(tmp_path / "state")})
    assert result.returncode != 0
    assert "imds-emulator: error: fault 'delay' must be a non-negative number" in result.stdout
    assert not (tmp_path / "state" / "default.pid").exists()


@pytest.fixture(autouse=True)
def nothing_left_running(tmp_path):
    """Whatever a test did, no emulator of its state folder outlives it."""
    yield
    for pid_file in (tmp_path / "state").glob("*.pid"):
        subprocess.run([sys.executable, str(EMULATOR), "--stop", "--pid-file", str(pid_file)], check=False,
                       capture_output=True, timeout=30)
