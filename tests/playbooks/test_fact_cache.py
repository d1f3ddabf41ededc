"""Azure facts through Ansible's fact caches: jsonfile, and a real Redis server.

A first ansible-playbook run gathers the facts (imds.azure.metadata_facts as a
gather_facts module) into the cache; a second run, a new process with gather_facts
false, uses them and the lookup's facts source. The emulators' logs prove that the
second run sent no IMDS request.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.imds.azure.tests.playbooks.fleet import make_fleet

GATHER = """
- name: Gather into the cache
  hosts: fleet
  gather_facts: true
  module_defaults:
    imds.azure.metadata_facts:
      endpoint: "{{ imds_azure_endpoint }}"  # gather_facts runs fact modules without their action plugin
  tasks:
    - name: Gathered
      ansible.builtin.assert:
        that: ansible_facts['azure_detected']
"""

USE = """
- name: Use the cached facts
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Write what the facts and the lookup say
      ansible.builtin.copy:
        content: >-
          {{ {'vm_id': ansible_facts['azure_vm_id'],
              'fault_domain': ansible_facts['azure_platform_fault_domain'],
              'lookup_vm_id': lookup('imds.azure.metadata', 'compute/vmId', source='facts'),
              'lookup_auto_name': lookup('imds.azure.metadata', 'compute/name'),
              'lookup_ip_text': lookup('imds.azure.metadata', 'network/interface/0/ipv4/ipAddress/0/privateIpAddress',
                                       format='text')} | to_json }}
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
"""

FACTS_MODULES = "facts_modules = imds.azure.metadata_facts\n"


def cached_facts(entries: dict[str, str | bytes], host: str) -> tuple[str, dict]:
    """The one cache entry for `host` among {name: stored text}, decoded, and its raw text.

    ansible-core 2.19 and later prefix the key with a schema id (s1_vm00) and store the
    facts as a JSON string under __payload__; older versions store the facts as they are.
    """
    names = [name for name in entries if name == host or name.endswith(f"_{host}")]
    assert len(names) == 1, f"expected one cache entry for {host}, found {sorted(entries)}"
    raw = entries[names[0]]
    raw = raw.decode() if isinstance(raw, bytes) else raw
    stored = json.loads(raw)
    if isinstance(stored, dict) and set(stored) == {"__payload__"}:
        stored = json.loads(stored["__payload__"])
    return raw, stored


def run_twice(fleet, playbook, cfg):
    """Gather (run 1), then use (run 2); return run 2's result after checking the logs."""
    playbook(GATHER, inventory=fleet.inventory, cfg=cfg).check()
    for vm in fleet.vms:
        assert [r["path"] for r in vm.imds_requests()] == ["/metadata/instance", "/metadata/loadbalancer"], vm.host
        vm.emulator.clear_log()
    result = playbook(USE, inventory=fleet.inventory, cfg=cfg).check()
    for vm in fleet.vms:
        assert vm.emulator.requests == [], f"{vm.host}'s IMDS was asked in the second run"
        answer = result.read_json(f"{vm.host}.json")
        private_ip = vm.emulator.document["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"]
        assert answer == {"vm_id": vm.vm_id, "fault_domain": vm.fault_domain, "lookup_vm_id": vm.vm_id,
                          "lookup_auto_name": vm.host, "lookup_ip_text": private_ip}
    return result


def test_jsonfile_cache(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 2)
    cache = tmp_path / "facts-cache"
    cfg = f"{FACTS_MODULES}fact_caching = jsonfile\nfact_caching_connection = {cache}\nfact_caching_timeout = 600\n"
    run_twice(fleet, playbook, cfg)
    entries = {path.name: path.read_text() for path in cache.iterdir()}
    for vm in fleet.vms:
        raw, stored = cached_facts(entries, vm.host)
        assert stored["ansible_azure_vm_id"] == vm.vm_id
        assert stored["ansible_azure_metadata"]["compute"]["vmId"] == vm.vm_id
        # user data may hold secrets: it is left out of the facts, so out of the cache
        assert "userData" not in stored["ansible_azure_metadata"]["compute"]
        assert vm.emulator.document["compute"]["userData"] not in raw


def test_without_a_cache_the_second_run_has_no_facts(emulator, playbook, tmp_path):
    """The control: the same two runs with the default memory cache; the lookup says what is missing."""
    fleet = make_fleet(emulator, tmp_path, 1)
    playbook(GATHER, inventory=fleet.inventory, cfg=FACTS_MODULES).check()
    fleet.vms[0].emulator.clear_log()
    lookup_only = """
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'compute/vmId', source='facts') }}"
"""
    result = playbook(lookup_only, inventory=fleet.inventory, cfg=FACTS_MODULES)
    assert result.returncode != 0
    assert "source=facts, and host vm00 has no IMDS facts (ansible_facts['azure_metadata'])" in result.output
    assert fleet.vms[0].emulator.requests == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    """Debian's redis-server on a random loopback port, no persistence; stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/bootstrap does it as root)")
    redis = pytest.importorskip("redis", reason="the redis Python package is missing (scripts/bootstrap installs it from tests/requirements.txt)")
    for attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path), "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        output = proc.stdout.read().decode(errors="replace")
        if attempt == 2:
            pytest.fail(f"redis-server did not start: {output}")
    try:
        yield port, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_redis_cache(emulator, playbook, tmp_path, redis_server):
    port, client = redis_server
    fleet = make_fleet(emulator, tmp_path, 2)
    cfg = (f"{FACTS_MODULES}fact_caching = community.general.redis\n"
           f"fact_caching_connection = 127.0.0.1:{port}:0\nfact_caching_prefix = imds_test_\n"
           "fact_caching_timeout = 600\n")
    run_twice(fleet, playbook, cfg)
    keys = sorted(key.decode() for key in client.scan_iter(match="imds_test_*", _type="string"))
    entries = {key: client.get(key) for key in keys}
    for vm in fleet.vms:
        raw, stored = cached_facts(entries, vm.host)
        assert stored["ansible_azure_vm_id"] == vm.vm_id
        assert "userData" not in stored["ansible_azure_metadata"]["compute"]
        assert vm.emulator.document["compute"]["userData"] not in raw
        key = next(key for key in keys if key.endswith(vm.host))
        assert 0 < client.ttl(key) <= 600
