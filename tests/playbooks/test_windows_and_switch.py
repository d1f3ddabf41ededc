"""Mixed inventories, gather_facts on Windows hosts, and the one switch to another endpoint, through real ansible-playbook.

The Windows host is played by the stand-in connection (tests/playbooks/windows); every
endpoint is an emulator on 127.0.0.1.
"""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.tests.playbooks.windows import CFG, INVENTORY_VARS, STANDIN_LOG, standin_runs
from ansible_collections.imds.azure.tests.utils.paths import REPO

PROFILES = REPO / "tools" / "imds_emulator" / "profiles"
FACTS_MODULES = "facts_modules = ansible.builtin.setup, imds.azure.metadata_facts\ngather_timeout = 60\n"
# The documented mixed inventory: Windows hosts have their own fact modules.
MIXED = f"""[linux]
lin1 ansible_connection=local

[windows]
win1 {INVENTORY_VARS}

[windows:vars]
ansible_facts_modules=["ansible.windows.setup"]
"""


def vm_id(profile):
    from imds_emulator import load_profile  # tools/, on sys.path through conftest

    return load_profile(profile)["compute"]["vmId"]


def vm_name(profile):
    from imds_emulator import load_profile

    return load_profile(profile)["compute"]["name"]


def saved(result, name="saved.json"):
    return result.read_json(name)


# The documented play for mixed inventories: gather, then the task form where facts are missing.
GATHER_PLAY = """
- hosts: all
  gather_facts: true
  gather_subset: ["!all"]
  vars:
    ansible_facts_parallel: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ ENDPOINT }}"
  tasks:
    - name: Azure facts where gather_facts did not bring them (the Windows hosts)
      imds.azure.metadata_facts:
      when: ansible_facts['azure_detected'] is not defined
"""


def gather_play(endpoint: str, tasks: str) -> str:
    return GATHER_PLAY.replace("ENDPOINT", endpoint) + tasks


MIXED_PLAY = gather_play("endpoints[inventory_hostname]", """

    - name: List the scheduled events
      imds.azure.scheduled_events:
      register: listed

    - name: Approve them
      imds.azure.scheduled_events:
        approve: all_for_this_vm
      register: approved

    - name: Save what each host got
      ansible.builtin.copy:
        content: "{{ {'os_family': ansible_facts['os_family'], 'vm_id': ansible_facts['azure_vm_id'],
                      'listed': listed.events | map(attribute='event_id') | list,
                      'approved': approved.approved} | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
""")


def test_mixed_inventory_gathers_lists_and_approves_on_both(emulator, playbook, tmp_path):
    linux, windows = emulator(profile="linux"), emulator(profile="windows")
    events = {name: emu.add_event(event_type="Freeze") for name, emu in (("lin1", linux), ("win1", windows))}
    log = tmp_path / "standin.jsonl"
    result = playbook(MIXED_PLAY, extra_vars={"endpoints": {"lin1": linux.url, "win1": windows.url}},
                      inventory=MIXED, cfg=FACTS_MODULES + CFG, env={STANDIN_LOG: str(log)}).check()
    for host, profile, family in (("lin1", "linux", "Debian"), ("win1", "windows", "Windows")):
        got = saved(result, f"{host}.json")
        assert got["vm_id"] == vm_id(profile)
        assert got["listed"] == got["approved"] == [events[host]["EventId"]]
        assert (got["os_family"] == "Windows") == (family == "Windows")
    assert "skipping: [lin1]" in result.stdout and "ok: [win1]" in result.stdout  # the task form only on Windows
    for emu in (linux, windows):
        assert [e["EventStatus"] for e in emu.events_document()["Events"]] == ["Started"]
    # the Windows host's requests all went through win_uri: instance, name, events, POST, events again
    runs = [r for r in standin_runs(log) if r["module"] == "ansible.windows.win_uri"]
    assert len(runs) == len([r for r in windows.requests if r["path"].startswith("/metadata/")])
    assert [r["args"]["method"] for r in runs].count("POST") == 1


def test_gather_facts_on_windows_without_the_setting_names_the_fix(emulator, playbook):
    emu = emulator(profile="windows")
    pb = """
- hosts: all
  gather_facts: true
  gather_subset: ["!all"]
  vars:
    ansible_facts_parallel: false
  module_defaults:
    imds.azure.metadata_facts:
      endpoint: "{{ endpoint }}"
  tasks: []
"""
    result = playbook(pb, extra_vars={"endpoint": emu.url}, inventory=f"win1 {INVENTORY_VARS}\n",
                      cfg=FACTS_MODULES + CFG)
    assert result.returncode != 0
    assert "imds.azure.metadata_facts runs as a task" in result.stdout
    assert "ansible_facts_modules=ansible.windows.setup" in result.stdout
    assert "interpreter" not in result.output.lower() and "Traceback" not in result.output
    assert emu.requests == []


# -- the switch ----------------------------------------------------------------------------------

SWITCH_PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Facts from wherever the switch points
      imds.azure.metadata_facts:
      register: switched
    - name: The task's own endpoint wins over the switch
      imds.azure.metadata_facts:
        endpoint: "{{ task_endpoint }}"
      register: own
    - name: Events from wherever the switch points
      imds.azure.scheduled_events:
      register: events
    - name: The lookup follows the switch too
      ansible.builtin.set_fact:
        looked_up: "{{ lookup('imds.azure.metadata', 'compute/vmId', source='live', allow_live_for_remote_hosts=true) }}"
    - name: Save
      ansible.builtin.copy:
        content: "{{ {'switched': switched.ansible_facts.ansible_azure_vm_id,
                      'reason': switched.ansible_facts.ansible_azure_detection_reason,
                      'own': own.ansible_facts.ansible_azure_vm_id, 'events_vm': events.vm_name,
                      'looked_up': looked_up} | to_json }}"
        dest: "{{ out_dir }}/saved.json"
        mode: "0600"
      delegate_to: localhost
"""


@pytest.mark.parametrize("where", ["var", "env", "ini"])
def test_the_switch_points_every_plugin_at_the_emulator(emulator, playbook, host, where):
    switched, own = emulator(profile="scaleset"), emulator(profile="linux")
    extra = {"task_endpoint": own.url}
    env, cfg = {}, host.get("cfg", "")
    if where == "var":  # as an inventory variable
        inventory = host.get("inventory", "localhost ansible_connection=local\n").rstrip("\n")
        inventory += f" imds_azure_endpoint={switched.url}\n"
    else:
        inventory = host.get("inventory", "localhost ansible_connection=local\n")
        if where == "env":
            env["ANSIBLE_IMDS_AZURE_ENDPOINT"] = switched.url
        else:
            cfg += f"\n[imds_azure]\nendpoint = {switched.url}\n"
    result = playbook(SWITCH_PLAY, extra_vars=extra, inventory=inventory, cfg=cfg, env=env).check()
    got = saved(result)
    assert got == {"switched": vm_id("scaleset"), "own": vm_id("linux"), "events_vm": vm_name("scaleset"),
                   "looked_up": vm_id("scaleset"),
                   "reason": f"the endpoint {switched.url} was given explicitly and answered"}
    # with the switch, an explicit endpoint: asked at once, no probe (one instance request, one lookup)
    instance = [r for r in switched.requests if r["path"] == "/metadata/instance"]
    assert len(instance) == 2
    assert [r["path"] for r in own.requests] == ["/metadata/instance", "/metadata/loadbalancer"]


def test_gather_facts_follows_the_switch_through_module_defaults(emulator, playbook, host):
    """gather_facts runs fact modules without their action plugins: module_defaults carries the switch."""
    switched = emulator(profile="scaleset")
    pb = gather_play("imds_azure_endpoint | default(omit)", """
    - ansible.builtin.copy:
        content: "{{ ansible_facts['azure_vm_id'] | to_json }}"
        dest: "{{ out_dir }}/saved.json"
        mode: "0600"
      delegate_to: localhost
""")
    inventory = host.get("inventory", "localhost ansible_connection=local\n").rstrip("\n")
    inventory += f" imds_azure_endpoint={switched.url}\n"
    if host:  # the documented setting for Windows hosts
        inventory += '\n[all:vars]\nansible_facts_modules=["ansible.windows.setup"]\n'
    result = playbook(pb, inventory=inventory, cfg=FACTS_MODULES + host.get("cfg", "")).check()
    assert saved(result) == vm_id("scaleset")
    assert len([r for r in switched.requests if r["path"] == "/metadata/instance"]) == 1


def test_a_templated_switch_variable_is_templated(emulator, playbook, host):
    switched = emulator(profile="scaleset")
    pb = """
- hosts: all
  gather_facts: false
  vars:
    imds_azure_endpoint: "{{ emulator_url }}"
  tasks:
    - imds.azure.metadata_facts:
    - imds.azure.scheduled_events:
    - name: The lookup templates the switch too
      ansible.builtin.copy:
        content: "{{ lookup('imds.azure.metadata', 'compute/vmId', source='live', allow_live_for_remote_hosts=true)
                     | to_json }}"
        dest: "{{ out_dir }}/saved.json"
        mode: "0600"
      delegate_to: localhost
"""
    result = playbook(pb, extra_vars={"emulator_url": switched.url}, **host).check()
    assert saved(result) == vm_id("scaleset")
    assert [r["path"] for r in switched.requests if r["path"] != "/metadata/instance/compute/name"] == [
        "/metadata/instance", "/metadata/loadbalancer", "/metadata/scheduledevents", "/metadata/instance"]


def test_a_bad_switch_is_a_clear_failure(playbook, host):
    pb = """
- hosts: all
  gather_facts: false
  tasks:
    - imds.azure.metadata_facts:
"""
    result = playbook(pb, env={"ANSIBLE_IMDS_AZURE_ENDPOINT": "http://127.0.0.1:1/metadata"}, **host)
    assert result.returncode != 0
    assert "has a path, query or fragment" in result.stdout and "Traceback" not in result.output
