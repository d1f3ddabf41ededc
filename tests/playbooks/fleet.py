"""A fleet of Azure VMs on one machine: one IMDS emulator and one inventory host per VM.

Each host uses the local connection and its own emulator (the collection's switch
``imds_azure_endpoint`` as a host variable), which serves a copy of a profile with the
host's own vmId, name, fault and update domain. So a play over the fleet behaves as over
real VMs: every host has its own IMDS, and a fact that lands on the wrong host shows.
"""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ansible_collections.imds.azure.tests.utils.paths import REPO

PROFILES = REPO / "tools" / "imds_emulator" / "profiles"


@dataclass
class Vm:
    host: str
    vm_id: str
    fault_domain: int
    update_domain: int
    emulator: Any = None

    def imds_requests(self) -> list[dict]:
        return [r for r in self.emulator.requests if r["path"].startswith("/metadata/")]


@dataclass
class Fleet:
    vms: list[Vm] = field(default_factory=list)

    @property
    def inventory(self) -> str:
        """Every host with its own imds_azure_endpoint: no play may fall back to 169.254.169.254."""
        lines = ["[fleet]"]
        for vm in self.vms:
            lines.append(f"{vm.host} ansible_connection=local ansible_python_interpreter={sys.executable} "
                         f"imds_azure_endpoint={vm.emulator.url}")
        return "\n".join(lines) + "\n"

    def by_host(self) -> dict[str, Vm]:
        return {vm.host: vm for vm in self.vms}


def make_fleet(emulator: Callable[..., Any], tmp_path: Path, size: int, *, profile: str = "linux",
               fault_domains: int = 3, update_domains: int = 5,
               latency: Callable[[int], float] = lambda index: 0.0,
               customize: Callable[[int, dict], None] = lambda index, compute: None,
               faults: Callable[[int], dict | None] = lambda index: None,
               profile_hook: Callable[[int, dict], None] = lambda index, profile: None) -> Fleet:
    """Start `size` emulators, each serving its own VM, and describe them.

    customize(index, compute) may change a VM's compute document further; faults(index)
    gives the fault switches of its emulator (for example {"versions": [...]});
    profile_hook(index, profile) may change the whole profile (the network, the emulator's
    ``_loadbalancer``).
    """
    base = json.loads((PROFILES / f"{profile}.json").read_text())
    folder = tmp_path / "fleet-profiles"
    folder.mkdir(parents=True, exist_ok=True)
    fleet = Fleet()
    for index in range(size):
        host = f"vm{index:02d}"
        vm = Vm(host=host, vm_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}.fleet.test")),
                fault_domain=index % fault_domains, update_domain=index % update_domains)
        document = json.loads(json.dumps(base))
        document["compute"].update({
            "vmId": vm.vm_id, "name": host,
            "platformFaultDomain": str(vm.fault_domain), "platformUpdateDomain": str(vm.update_domain),
        })
        customize(index, document["compute"])
        profile_hook(index, document)
        path = folder / f"{host}.json"
        path.write_text(json.dumps(document))
        vm.emulator = emulator(profile_file=path, latency=latency(index), faults=faults(index))
        fleet.vms.append(vm)
    return fleet
