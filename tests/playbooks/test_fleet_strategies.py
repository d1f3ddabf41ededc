"""Fleet settings: strategy free, high forks and serial batches over many hosts.

Every inventory host is a VM with its own IMDS emulator (tests/playbooks/fleet.py), so
each host must come out with its own facts, whatever order and parallelism Ansible
picks, and each emulator must see exactly the requests of its own host.
"""
from __future__ import annotations

import re
import threading
import time

import pytest

from ansible_collections.imds.azure.tests.playbooks.fleet import make_fleet

REPORT = """
    - name: Report
      ansible.builtin.debug:
        msg: >-
          FLEET {{ inventory_hostname }} {{ ansible_facts['azure_vm_id'] }} {{ ansible_facts['azure_name'] }}
          {{ ansible_facts['azure_platform_fault_domain'] }}
"""

FREE = """
- name: Azure facts over the fleet
  hosts: fleet
  gather_facts: false
  strategy: free
  tasks:
    - name: The first host waits until the test opens the gate
      ansible.builtin.wait_for:
        path: "{{ gate }}"
        timeout: 150
      when: inventory_hostname == 'vm00'
    - name: Gather
      imds.azure.metadata_facts:
    - name: Gather again, network facts only
      imds.azure.metadata_facts:
        filter: [azure_private_ipv4]
""" + REPORT

SERIAL = """
- name: Azure facts over the fleet
  hosts: fleet
  gather_facts: false
  strategy: free
  serial: [1, 2, "50%"]
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
""" + REPORT


def reported(output: str) -> dict[str, tuple[str, str, int]]:
    found = {}
    for host, vm_id, name, fault_domain in re.findall(r'"msg": "FLEET (\S+) (\S+) (\S+) (\d+)"', output):
        assert host not in found, f"{host} reported twice"
        found[host] = (vm_id, name, int(fault_domain))
    return found


GATHER = ["/metadata/instance", "/metadata/loadbalancer"]  # a gather: the document, then the load balancer
FILTERED = ["/metadata/instance"]  # a gather whose filter keeps no load balancer fact


def assert_every_host_has_its_own_facts(fleet, result, paths):
    assert reported(result.stdout) == {vm.host: (vm.vm_id, vm.host, vm.fault_domain) for vm in fleet.vms}
    for vm in fleet.vms:
        assert [r["path"] for r in vm.imds_requests()] == paths, vm.host
        assert re.search(rf"^{vm.host}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", result.stdout, re.M)


def open_gate_when(condition, gate, deadline):
    """Create the gate file once condition() holds, or at the deadline; tell which it was."""
    opened = {}

    def watch():
        while time.monotonic() < deadline and not condition():
            time.sleep(0.1)
        opened["by_progress"] = condition()
        gate.write_text("open\n")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, opened


@pytest.mark.slow
def test_strategy_free_with_high_forks(emulator, playbook, tmp_path):
    """forks above the host count and strategy free: hosts do not wait for a held-up host.

    vm00 waits at a gate that opens only when every other host has finished both gathers
    (or after two minutes). Under the default linear strategy the others would wait for
    vm00 at the end of the first task, and the gate would open by its deadline.
    """
    fleet = make_fleet(emulator, tmp_path, 8)
    held, others = fleet.vms[0], fleet.vms[1:]
    gate = tmp_path / "gate"
    thread, opened = open_gate_when(lambda: all(len(vm.imds_requests()) >= len(GATHER + FILTERED) for vm in others),
                                    gate, time.monotonic() + 120)
    result = playbook(FREE, inventory=fleet.inventory, cfg="forks = 50\n",
                      extra_vars={"gate": str(gate)}, timeout=240)
    thread.join(timeout=5)
    result.check()
    assert opened == {"by_progress": True}, "the other hosts waited for the held-up one"
    assert_every_host_has_its_own_facts(fleet, result, GATHER + FILTERED)
    assert held.imds_requests()[0]["time"] > max(vm.imds_requests()[-1]["time"] for vm in others)


@pytest.mark.slow
def test_serial_batches(emulator, playbook, tmp_path):
    """serial [1, 2, "50%"] over 8 hosts runs 1, 2, 4, then the last 1, one batch after the other."""
    fleet = make_fleet(emulator, tmp_path, 8)
    result = playbook(SERIAL, inventory=fleet.inventory, cfg="forks = 50\n", timeout=240).check()
    assert_every_host_has_its_own_facts(fleet, result, GATHER)
    batches = [fleet.vms[0:1], fleet.vms[1:3], fleet.vms[3:7], fleet.vms[7:8]]
    assert result.stdout.count("PLAY [Azure facts over the fleet]") == len(batches)
    for before, after in zip(batches, batches[1:]):
        last = max(r["time"] for vm in before for r in vm.imds_requests())
        first = min(r["time"] for vm in after for r in vm.imds_requests())
        assert last < first, f"batch {[vm.host for vm in after]} started before {[vm.host for vm in before]} ended"
