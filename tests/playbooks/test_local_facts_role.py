"""The imds.azure.local_facts role through real ansible-playbook runs against the emulator.

Every run keeps to the test's tmp_path: the role installs into a fact_path and a library
folder there, plays read local facts from there (the play keyword fact_path), the fact
keeps its answers in TMPDIR's private folder there, and the emulator's endpoint is always
given explicitly.
"""
from __future__ import annotations

import json
import re

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO

PROFILE = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "linux.json").read_text())
EXTRAS = {"failed", "from_cache", "fetched_at", "warnings"}

INSTALL = """
- name: Install
  hosts: all
  gather_facts: false
  roles:
    - role: imds.azure.local_facts
      vars:
        local_facts_fact_path: "{{ fact_dir }}"
        local_facts_lib_dir: "{{ lib_dir }}"
        local_facts_endpoint: "{{ endpoint }}"
        local_facts_ttl: "{{ ttl | default(300) }}"
        local_facts_deadline: "{{ deadline | default(5) }}"
        local_facts_timeout: "{{ timeout | default(2) }}"
        local_facts_state: "{{ state | default('present') }}"
"""
GATHER = """
- name: Gather with setup
  hosts: all
  gather_facts: true
  gather_subset: [min]
  fact_path: "{{ fact_dir }}"
  tasks:
    - name: Save what setup read
      ansible.builtin.copy:
        content: "{{ ansible_local | to_json }}"
        dest: "{{ out_dir }}/local-{{ label }}.json"
        mode: "0600"
"""
MODULE = """
- name: The module, for comparison
  hosts: all
  gather_facts: false
  tasks:
    - name: Gather with the module
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
    - name: Save the module's facts
      ansible.builtin.copy:
        content: "{{ ansible_facts | dict2items | selectattr('key', 'match', 'azure_') | items2dict | to_json }}"
        dest: "{{ out_dir }}/module.json"
        mode: "0600"
"""


@pytest.fixture
def play(playbook, tmp_path):
    """ansible-playbook with TMPDIR in the test's folder: the fact's cache (in TMPDIR's private folder) too."""
    def run(pb, **kwargs):
        return playbook(pb, env={"TMPDIR": str(tmp_path)}, **kwargs)
    return run


def imds_requests(emu):
    return [r for r in emu.requests if r["path"].startswith("/metadata/")]


def gathers(emu):
    """How many gathers asked IMDS: each reads the instance document (and then the load balancer metadata)."""
    return len([r for r in emu.requests if r["path"] == "/metadata/instance"])


def paths(tmp_path, **extra):
    return {"fact_dir": str(tmp_path / "facts.d"), "lib_dir": str(tmp_path / "lib"), **extra}


def recap_changed(result):
    return int(re.search(r"changed=(\d+)", result.stdout).group(1))


def test_setup_brings_the_module_facts_without_prefix(emulator, play, tmp_path):
    emu = emulator(profile="linux")
    variables = paths(tmp_path, endpoint=emu.url)
    result = play(INSTALL + GATHER + MODULE, extra_vars={**variables, "label": "first"}).check()
    local = result.read_json("local-first.json")["azure"]
    module = result.read_json("module.json")
    assert local["failed"] is False and local["detected"] is True
    assert local["vm_id"] == PROFILE["compute"]["vmId"]
    assert {k: v for k, v in local.items() if k not in EXTRAS} == {
        name[len("azure_"):]: value for name, value in module.items()}
    # the role read the fact once (one request); the later setup served it from the cache
    assert local["from_cache"] is True
    assert gathers(emu) == 2  # the role's setup, and the module
    (tmp_path / "facts.d" / "azure.fact").stat()
    assert (tmp_path / "facts.d" / "azure.fact").stat().st_mode & 0o777 == 0o755


def test_the_collection_switch_reaches_the_role(emulator, play, tmp_path):
    """imds_azure_endpoint (here from the inventory) is the role's endpoint when local_facts_endpoint is not set."""
    emu = emulator(profile="linux")
    install = INSTALL.replace('        local_facts_endpoint: "{{ endpoint }}"\n', "")
    assert "local_facts_endpoint" not in install
    result = play(install + GATHER, extra_vars={**paths(tmp_path), "label": "switch"},
                  inventory=f"localhost ansible_connection=local imds_azure_endpoint={emu.url}\n").check()
    local = result.read_json("local-switch.json")["azure"]
    assert local["failed"] is False and local["vm_id"] == PROFILE["compute"]["vmId"]
    assert gathers(emu) == 1 and emu.url in (tmp_path / "facts.d" / "azure.fact").read_text()


def test_idempotent_and_check_mode(emulator, play, tmp_path):
    emu = emulator(profile="linux")
    variables = paths(tmp_path, endpoint=emu.url)
    checked = play(INSTALL, extra_vars=variables, args=("--check",)).check()
    assert recap_changed(checked) > 0
    assert not (tmp_path / "facts.d").exists() and not (tmp_path / "lib").exists()
    assert imds_requests(emu) == []
    assert recap_changed(play(INSTALL, extra_vars=variables).check()) > 0
    again = play(INSTALL, extra_vars=variables).check()
    assert recap_changed(again) == 0, again.stdout
    assert gathers(emu) == 1  # read once, right after the first install


def test_a_failing_fact_never_breaks_setup(emulator, play, tmp_path):
    emu = emulator(profile="linux")
    variables = paths(tmp_path, endpoint=emu.url, ttl=0, deadline=1, timeout=0.5)
    play(INSTALL, extra_vars=variables).check()
    emu.set_faults(hang=True)
    result = play(GATHER, extra_vars={**variables, "label": "hang"}).check()
    local = result.read_json("local-hang.json")["azure"]
    assert local["failed"] is True and "timed out" in local["msg"] and emu.url in local["msg"]
    assert "azure.fact" not in result.output  # no setup warning: the fact printed JSON and exited 0
    emu.stop()
    module_utils = tmp_path / "lib" / "ansible_collections" / "imds" / "azure" / "plugins" / "module_utils"
    for compiled in module_utils.rglob("*.pyc"):
        compiled.unlink()
    (module_utils / "_client.py").unlink()
    result = play(GATHER, extra_vars={**variables, "label": "broken"}).check()
    local = result.read_json("local-broken.json")["azure"]
    assert local["failed"] is True and "_client" in local["msg"] and "apply the imds.azure.local_facts role" in local["msg"]


def test_state_absent_removes_it(emulator, play, tmp_path):
    emu = emulator(profile="linux")
    variables = paths(tmp_path, endpoint=emu.url)
    play(INSTALL, extra_vars=variables).check()
    removed = play(INSTALL + GATHER, extra_vars={**variables, "state": "absent", "label": "gone"}).check()
    assert recap_changed(removed) == 3  # the launcher, the library and the saved facts
    assert not (tmp_path / "lib").exists() and list((tmp_path / "facts.d").iterdir()) == []
    assert "azure" not in removed.read_json("local-gone.json")
    assert recap_changed(play(INSTALL, extra_vars={**variables, "state": "absent"}).check()) == 0


def test_the_role_checks_its_arguments(emulator, play, tmp_path):
    emu = emulator(profile="linux")
    result = play(INSTALL, extra_vars={**paths(tmp_path, endpoint=emu.url), "state": "gone"})
    assert result.returncode != 0 and "local_facts_state" in result.output
