"""The playbooks in docs/examples/ (the scenarios of Microsoft's IMDS documentation), run
as a user runs them, against a fleet of emulated VMs, with their outcome checked.

Each inventory host has its own emulator through the collection's switch
``imds_azure_endpoint`` (tests/playbooks/fleet.py); the examples have no endpoint of
their own. As documented, they write into reports/ of the folder ansible-playbook runs in
(created if missing), also the files meant for /etc on a VM, since the fleet's hosts have
a local connection; their variables are set from the inventory here and there.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.imds.azure.tests.playbooks.fleet import make_fleet
from ansible_collections.imds.azure.tests.utils.paths import REPO

EXAMPLES = REPO / "docs" / "examples"


ETC = ("/etc/azure-vm-id", "/etc/azure-public-ip")


def run_example(playbook, name, inventory, **extra_vars):
    """Run an example; the result's out_dir is reports/ of the folder it ran in."""
    for line in inventory.splitlines():
        assert line.startswith("[") or "imds_azure_endpoint=" in line or "=" in line.split()[0], \
            f"host without its own endpoint: {line}"
    before = {path: Path(path).exists() for path in ETC}
    result = playbook(EXAMPLES / name, inventory=inventory, extra_vars=extra_vars)
    assert {path: Path(path).exists() for path in ETC} == before, "an example wrote to /etc with a local connection"
    return dataclasses.replace(result, out_dir=result.out_dir.parent / "reports")


def without_user_data(compute):
    return {key: value for key, value in compute.items() if key != "userData"}


def test_every_example_is_tested():
    tested = {"track-vm-by-vmid.yml", "placement-by-fault-domain.yml", "support-case.yml",
              "which-azure-cloud.yml", "public-ip-as-text.yml", "drain.yml"}
    assert {path.name for path in EXAMPLES.glob("*.yml")} <= tested, "an example without a test here"


def test_track_vm_by_vmid(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 2)
    result = run_example(playbook, "track-vm-by-vmid.yml", fleet.inventory).check()
    for vm in fleet.vms:
        assert (result.out_dir / f"{vm.host}.vm-id").read_text() == f"{vm.vm_id}\n"
    compute = fleet.vms[0].emulator.document["compute"]
    assert result.read_json("vm-registry.json") == sorted(
        [{"vm_id": vm.vm_id, "inventory_host": vm.host, "name": vm.host, "location": compute["location"],
          "resource_group": compute["resourceGroupName"], "subscription_id": compute["subscriptionId"]}
         for vm in fleet.vms], key=lambda record: record["vm_id"])


def test_track_vm_by_vmid_refuses_the_same_vm_twice(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 1)
    twice = fleet.inventory + f"alias ansible_connection=local imds_azure_endpoint={fleet.vms[0].emulator.url}\n"
    result = run_example(playbook, "track-vm-by-vmid.yml", twice)
    assert result.returncode != 0
    assert re.search(rf"Two inventory hosts are the same VM:\s+{fleet.vms[0].vm_id} is\s+(alias and vm00|vm00 and alias)",
                     result.output), result.output
    assert not (result.out_dir / "vm-registry.json").exists()


def test_placement_by_fault_domain(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 4, fault_domains=3, update_domains=2)
    result = run_example(playbook, "placement-by-fault-domain.yml", fleet.inventory).check()
    by_domain = sorted(fleet.vms, key=lambda vm: (vm.fault_domain, vm.host))
    table = (result.out_dir / "hdfs-topology.table").read_text()
    assert table.splitlines() == [f"{vm.host} /fd{vm.fault_domain}/ud{vm.update_domain}" for vm in by_domain]
    labels = yaml.safe_load((result.out_dir / "k8s-node-labels.yml").read_text())
    assert labels == {vm.host: {"imds.azure/fault-domain": str(vm.fault_domain),
                                "imds.azure/update-domain": str(vm.update_domain)} for vm in fleet.vms}
    assert result.read_json("replica-hosts.json") == ["vm00", "vm01", "vm02"]
    assert {vm.fault_domain for vm in fleet.by_host().values() if vm.host in ("vm00", "vm01", "vm02")} == {0, 1, 2}


def test_placement_needs_as_many_fault_domains_as_replicas(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 2, fault_domains=2)
    result = run_example(playbook, "placement-by-fault-domain.yml", fleet.inventory)
    assert result.returncode != 0
    assert ("3 replicas need 3 fault domains, but the hosts span only 2 "
            "(azure_fault_domain_0, azure_fault_domain_1)") in result.output
    assert not (result.out_dir / "replica-hosts.json").exists()


def test_variables_set_in_the_inventory_and_the_folder_made_for_them(emulator, playbook, tmp_path):
    """What test_placement_needs_as_many_fault_domains_as_replicas refuses passes with replicas=2 from the
    inventory, and the files go to the inventory's reports_dir, a folder that did not exist."""
    fleet = make_fleet(emulator, tmp_path, 2, fault_domains=2)
    elsewhere = tmp_path / "not" / "yet" / "there"
    inventory = fleet.inventory + f"[all:vars]\nreports_dir={elsewhere}\nreplicas=2\n"
    result = run_example(playbook, "placement-by-fault-domain.yml", inventory).check()
    assert json.loads((elsewhere / "replica-hosts.json").read_text()) == ["vm00", "vm01"]
    assert (elsewhere / "hdfs-topology.table").read_text().splitlines() == ["vm00 /fd0/ud0", "vm01 /fd1/ud1"]
    assert not result.out_dir.exists()  # nothing in the default folder

    host_file = tmp_path / "agent" / "vm-id"
    host_file.parent.mkdir()  # the agent's folder: the play makes only its reports folder
    inventory = fleet.inventory.replace("vm00 ", f"vm00 vm_id_file={host_file} ", 1) + \
        f"[all:vars]\nregistry_file={tmp_path / 'registry.json'}\n"
    result = run_example(playbook, "track-vm-by-vmid.yml", inventory).check()
    assert host_file.read_text() == f"{fleet.vms[0].vm_id}\n"
    assert (result.out_dir / "vm01.vm-id").read_text() == f"{fleet.vms[1].vm_id}\n"
    assert len(json.loads((tmp_path / "registry.json").read_text())) == 2
    assert not (result.out_dir / "vm-registry.json").exists()


def test_support_case(emulator, playbook, tmp_path):
    fleet = make_fleet(emulator, tmp_path, 2, profile="linux")
    result = run_example(playbook, "support-case.yml", fleet.inventory).check()
    for vm in fleet.vms:
        report = result.read_json(f"{vm.host}-compute.json")
        compute = vm.emulator.document["compute"]
        assert compute["userData"], "the profile should carry user data, to show it is left out"
        assert report == {"inventory_host": vm.host, "api_version": "2025-04-07", "compute": without_user_data(compute)}
        assert compute["userData"] not in (result.out_dir / f"{vm.host}-compute.json").read_text()
        assert f"{vm.host}: {compute['vmSize']} in {compute['location']} zone" in result.stdout
        assert f"vmId {vm.vm_id}" in result.stdout


CLOUDS = [
    # (azEnvironment, location, newest api-version IMDS serves) -> (cloud, how it was found)
    ("AzurePublicCloud", "westeurope", None, "public", "azEnvironment AzurePublicCloud"),
    ("AzureUSGovernmentCloud", "usgovvirginia", None, "usgovernment", "azEnvironment AzureUSGovernmentCloud"),
    ("AZURECHINACLOUD", "chinanorth3", None, "china", "azEnvironment AZURECHINACLOUD"),
    ("AzureGermanCloud", "germanycentral", None, "germany", "azEnvironment AzureGermanCloud"),
    (None, "usdodeast", "2018-04-02", "usgovernment", "location usdodeast (api-version 2018-04-02 has no azEnvironment)"),
    (None, "chinaeast2", "2018-02-01", "china", "location chinaeast2 (api-version 2018-02-01 has no azEnvironment)"),
    (None, "germanynortheast", "2018-04-02", "germany", "location germanynortheast (api-version 2018-04-02 has no azEnvironment)"),
    (None, "germanywestcentral", "2018-04-02", "public", "location germanywestcentral (api-version 2018-04-02 has no azEnvironment)"),
    # Azure Stack Hub: each installation has its own Resource Manager endpoint, which the play cannot know
    ("AzureStack", "local", None, "azurestack", "azEnvironment AzureStack"),
    ("AZURESTACK", "redmond", None, "azurestack", "azEnvironment AZURESTACK"),
    ("AzureFutureCloud", "westeurope", None, "public", "location westeurope (azEnvironment AzureFutureCloud is not known here)"),
]
STACK_RESOURCE_MANAGER = "https://management.stack.example/"  # given to the second Azure Stack Hub VM only
RESOURCE_MANAGER = {"public": "https://management.azure.com/", "usgovernment": "https://management.usgovcloudapi.net/",
                    "china": "https://management.chinacloudapi.cn/", "germany": "https://management.microsoftazure.de/",
                    "azurestack": None}


def test_which_azure_cloud(emulator, playbook, tmp_path):
    def customize(index, compute):
        environment, location = CLOUDS[index][0], CLOUDS[index][1]
        compute["location"] = location
        compute["azEnvironment"] = environment if environment else ""

    def faults(index):
        newest = CLOUDS[index][2]
        if newest is None:
            return None
        from imds_emulator import API_VERSIONS  # tools/, on sys.path through conftest
        return {"versions": [v for v in API_VERSIONS if v <= newest]}

    fleet = make_fleet(emulator, tmp_path, len(CLOUDS), customize=customize, faults=faults)
    stack = [vm.host for vm, case in zip(fleet.vms, CLOUDS) if case[3] == "azurestack"]
    inventory = fleet.inventory.replace(f"{stack[1]} ", f"{stack[1]} azure_stack_resource_manager={STACK_RESOURCE_MANAGER} ")
    result = run_example(playbook, "which-azure-cloud.yml", inventory).check()
    for vm, case in zip(fleet.vms, CLOUDS):
        newest, cloud, found = case[2:]
        resource_manager = STACK_RESOURCE_MANAGER if vm.host == stack[1] else RESOURCE_MANAGER[cloud]
        assert result.read_json(f"{vm.host}-cloud.json") == {
            "cloud": cloud, "from": found, "resource_manager": resource_manager}, vm.host
        versions = [r["query"].get("api-version") for r in vm.imds_requests()]
        assert versions[-1] == (newest or "2025-04-07"), vm.host
    assert (f"{stack[0]} is in the azurestack Azure cloud (from azEnvironment AzureStack); Resource Manager: the one "
            "of this Azure Stack Hub installation (set azure_stack_resource_manager)") in " ".join(result.stdout.split())


PUBLIC_IP_CASES = {
    # case: (instance document's publicIpAddress, the emulator's load balancer document, faults) ->
    #       (the file, what the play says)
    "standard public ip": ("", {"publicIpAddresses": [{"frontendIpAddress": "20.50.60.70", "privateIpAddress": "{private}"}],
                                "inboundRules": [], "outboundRules": []}, None,
                           "20.50.60.70", "20.50.60.70 (from the load balancer metadata)"),
    "basic public ip, no load balancer": ("52.1.2.3", None, None, "52.1.2.3", "52.1.2.3 (from the instance metadata)"),
    "no public ip at all": ("", None, None, "", "none"),
}


@pytest.mark.parametrize("case", list(PUBLIC_IP_CASES))
def test_public_ip_as_text(emulator, playbook, tmp_path, case):
    instance_public, load_balancer, faults, written, said = PUBLIC_IP_CASES[case]

    def profile(index, document):
        address = document["network"]["interface"][0]["ipv4"]["ipAddress"][0]
        address["publicIpAddress"] = instance_public
        document.pop("_loadbalancer", None)
        if load_balancer is not None:
            document["_loadbalancer"] = json.loads(json.dumps(load_balancer).replace("{private}",
                                                                                     address["privateIpAddress"]))

    fleet = make_fleet(emulator, tmp_path, 1, profile="no-public-ip", profile_hook=profile,
                       faults=lambda index: faults)
    result = run_example(playbook, "public-ip-as-text.yml", fleet.inventory).check()
    for vm in fleet.vms:
        assert (result.out_dir / f"{vm.host}.public-ip").read_text() == (f"{written}\n" if written else "")
        assert f"{vm.host}: public IPv4 is {said}" in result.stdout
        # the module on the VM made both requests; nothing else asked IMDS
        assert [r["path"] for r in vm.imds_requests()] == ["/metadata/instance", "/metadata/loadbalancer"]


def test_public_ip_as_text_stops_where_the_load_balancer_could_not_be_read(emulator, playbook, tmp_path):
    """The load balancer request fails (the emulator refuses every second request): the play
    says the address is not known instead of writing an empty file."""
    fleet = make_fleet(emulator, tmp_path, 1, profile="no-public-ip",
                       faults=lambda index: {"every_kth": {"k": 2, "status": 400}})
    result = run_example(playbook, "public-ip-as-text.yml", fleet.inventory)
    assert result.returncode != 0
    assert "The load balancer metadata of vm00 could not be read (failed; see the gather's warning)" in result.output
    assert "Load balancer metadata not read" in result.output and "IMDS answered 400" in result.output
    assert not (result.out_dir / "vm00.public-ip").exists()
