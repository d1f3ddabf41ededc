"""imds.azure.metadata_facts through real ansible-playbook against the IMDS emulator."""
from __future__ import annotations

import json
import re
import time

import pytest

from ansible_collections.imds.azure.tests.utils import netns
from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import facts_playbook

PROFILES = REPO / "tools" / "imds_emulator" / "profiles"
NEWEST = "2025-04-07"


def gather(extra=""):
    return facts_playbook(extra)


def profile(name):
    return json.loads((PROFILES / f"{name}.json").read_text())


def imds_requests(emu):
    return [r for r in emu.requests if r["path"].startswith("/metadata/")]


def test_module_as_task(emulator, playbook, host):
    emu = emulator(profile="linux")
    result = playbook(gather(), extra_vars={"endpoint": emu.url}, **host).check()
    facts = result.read_json("facts.json")
    doc = profile("linux")
    assert facts["azure_detected"] is True
    assert facts["azure_api_version"] == NEWEST
    assert facts["azure_vm_id"] == doc["compute"]["vmId"]
    assert facts["azure_name"] == doc["compute"]["name"]
    assert facts["azure_location"] == doc["compute"]["location"]
    assert facts["azure_platform_fault_domain"] == int(doc["compute"]["platformFaultDomain"])
    assert facts["azure_tags"] == {t["name"]: t["value"] for t in doc["compute"]["tagsList"]}
    assert facts["azure_private_ipv4"] == doc["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"]
    assert "userData" not in facts["azure_metadata"]["compute"]
    # the load balancer metadata, as the profile's emulator serves it (404 without one)
    served = doc.get("_loadbalancer")
    assert facts["azure_load_balancer_status"] == ("found" if served else "not_found")
    assert facts["azure_load_balancer_metadata"] == ({"loadbalancer": served} if served else None)
    # exactly two IMDS requests per gather when the version is known, with the right headers:
    # the instance document, then the load balancer metadata at the same api-version
    requests = imds_requests(emu)
    assert [r["path"] for r in requests] == ["/metadata/instance", "/metadata/loadbalancer"]
    for request in requests:
        assert request["query"] == {"api-version": NEWEST}
        assert request["headers"]["metadata"] == "true"
        assert "x-forwarded-for" not in request["headers"]
        assert "x-ms-client-request-id" in request["headers"]
    assert gather_status(result) == "ok"
    assert "WARNING" not in result.output


def gather_status(result):
    """The status ansible-playbook printed for the Gather task (ok, changed, failed...)."""
    match = re.search(r"TASK \[Gather\] \**\n(\w+):", result.stdout)
    return match.group(1) if match else None


def test_top_level_injected_names_too(emulator, playbook, host):
    emu = emulator(profile="windows")
    pb = """
- hosts: all
  gather_facts: false
  tasks:
    - imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
    - ansible.builtin.copy:
        content: "{{ {'top': ansible_azure_os_type, 'ns': ansible_facts['azure_os_type']} | to_json }}"
        dest: "{{ out_dir }}/names.json"
        mode: "0600"
      delegate_to: localhost
"""
    names = playbook(pb, extra_vars={"endpoint": emu.url}, **host).check().read_json("names.json")
    assert names == {"top": "Windows", "ns": "Windows"}


def test_gather_facts_module_with_module_defaults(emulator, playbook):
    emu = emulator(profile="scaleset")
    pb = """
- hosts: all
  gather_facts: true
  module_defaults:
    imds.azure.metadata_facts:
      endpoint: "{{ endpoint }}"
  tasks:
    - ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out_dir }}/facts.json"
        mode: "0600"
"""
    # a loaded CI machine can take more than setup's default 10 s in parallel mode
    cfg = "facts_modules = ansible.builtin.setup, imds.azure.metadata_facts\ngather_timeout = 60\n"
    facts = playbook(pb, extra_vars={"endpoint": emu.url}, cfg=cfg).check().read_json("facts.json")
    assert facts["azure_vm_id"] == profile("scaleset")["compute"]["vmId"]
    assert facts["azure_compute"]["vm_scale_set_name"] == profile("scaleset")["compute"]["vmScaleSetName"]
    assert "distribution" in facts  # setup ran too
    assert [r["path"] for r in imds_requests(emu)] == ["/metadata/instance", "/metadata/loadbalancer"]


def test_action_group_module_defaults(emulator, playbook, host):
    emu = emulator(profile="linux")
    pb = """
- hosts: all
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ endpoint }}"
      filter: [azure_vm_id]
  tasks:
    - imds.azure.metadata_facts:
    - ansible.builtin.copy:
        content: "{{ ansible_facts | dict2items | selectattr('key', 'match', 'azure_') | items2dict | to_json }}"
        dest: "{{ out_dir }}/facts.json"
        mode: "0600"
      delegate_to: localhost
"""
    facts = playbook(pb, extra_vars={"endpoint": emu.url}, **host).check().read_json("facts.json")
    assert facts == {"azure_vm_id": profile("linux")["compute"]["vmId"]}


def test_filter(emulator, playbook, host):
    emu = emulator(profile="multi-nic-ipv6")
    facts = playbook(gather("filter: ['azure_*ipv6*', 'ansible_azure_mac_addresses']"),
                     extra_vars={"endpoint": emu.url}, **host).check().read_json("facts.json")
    assert set(facts) == {"azure_ipv6_addresses", "azure_mac_addresses"}
    assert facts["azure_ipv6_addresses"]
    assert all(m.count(":") == 5 and m == m.lower() for m in facts["azure_mac_addresses"])


def test_hostile_proxy_environment_is_ignored(emulator, playbook, host):
    emu = emulator(profile="linux")
    proxy = emulator(profile="windows")  # records anything sent to it
    env = {name: proxy.url for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
    env.update(no_proxy="", NO_PROXY="")
    pb = gather().replace("  tasks:", "  environment:\n    http_proxy: \"{{ proxy }}\"\n    HTTP_PROXY: \"{{ proxy }}\"\n  tasks:")
    # a Windows host's proxy is its Internet Explorer setting, which win_uri uses unless use_proxy is false
    extra = {"endpoint": emu.url, "proxy": proxy.url, "imds_standin_ie_proxy": proxy.url}
    facts = playbook(pb, extra_vars=extra, env=env, **host).check().read_json("facts.json")
    assert facts["azure_vm_id"] == profile("linux")["compute"]["vmId"]
    assert proxy.requests == []
    assert len(imds_requests(emu)) == 2


def test_pinned_old_api_version(emulator, playbook, host):
    emu = emulator(profile="linux")
    result = playbook(gather("api_version: '2017-04-02'"), extra_vars={"endpoint": emu.url}, **host).check()
    facts = result.read_json("facts.json")
    assert facts["azure_api_version"] == "2017-04-02"
    assert facts["azure_vm_id"] == profile("linux")["compute"]["vmId"]
    assert facts["azure_environment"] is None  # azEnvironment came with 2018-10-01
    assert facts["azure_resource_group"] is None  # came with 2017-08-01
    # /metadata/loadbalancer came with 2020-10-01: not asked, and the user is told why
    assert [(r["path"], r["query"]["api-version"]) for r in imds_requests(emu)] == [("/metadata/instance", "2017-04-02")]
    assert facts["azure_load_balancer_status"] == "not_requested"
    assert "[WARNING]: Load balancer metadata not read: api-version 2017-04-02 predates" in result.output


def test_version_negotiated_where_region_lags(emulator, playbook, host):
    emu = emulator(profile="linux", faults={"versions": ["2020-09-01", "2021-01-01", "2021-02-01"]})
    result = playbook(gather(), extra_vars={"endpoint": emu.url}, **host).check()
    facts = result.read_json("facts.json")
    assert facts["azure_api_version"] == "2021-02-01"
    assert [(r["path"], r["query"].get("api-version")) for r in imds_requests(emu)] == [
        ("/metadata/instance", NEWEST), ("/metadata/instance", "2021-02-01"), ("/metadata/loadbalancer", "2021-02-01")]


def test_pinned_version_refused_is_a_clear_failure(emulator, playbook, host):
    emu = emulator(profile="linux", faults={"versions": ["2021-01-01", "2021-02-01"]})
    result = playbook(gather("api_version: '2025-04-07'"), extra_vars={"endpoint": emu.url}, **host)
    assert result.returncode != 0
    assert "pinned api_version 2025-04-07" in result.stdout and "2021-02-01" in result.stdout
    assert "Traceback" not in result.output


def test_410_storm_that_ends(emulator, playbook, host):
    emu = emulator(profile="linux", faults={"status_for_seconds": {"status": 410, "seconds": 3, "from": "first_request"}})
    start = time.monotonic()
    facts = playbook(gather("retry_timeout: 30"), extra_vars={"endpoint": emu.url}, **host).check().read_json("facts.json")
    assert facts["azure_vm_id"] == profile("linux")["compute"]["vmId"]
    instance = [r for r in imds_requests(emu) if r["path"] == "/metadata/instance"]
    statuses = [r["status"] for r in instance]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {410}
    assert time.monotonic() - start < 30
    times = [r["time"] for r in instance]
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:]))  # backed off, never spun
    # the load balancer was asked once the storm was over, within the same deadline
    assert [r["path"] for r in imds_requests(emu)][len(instance):] == ["/metadata/loadbalancer"]
    assert facts["azure_load_balancer_status"] == ("found" if profile("linux").get("_loadbalancer") else "not_found")


def test_410_storm_outlasting_the_deadline(emulator, playbook, host):
    emu = emulator(profile="linux", faults={"status_always": 410})
    result = playbook(gather("retry_timeout: 4\n        timeout: 2"), extra_vars={"endpoint": emu.url}, **host)
    assert result.returncode != 0
    assert "going through updates" in result.stdout and "410" in result.stdout
    assert "Traceback" not in result.output
    requests = imds_requests(emu)
    assert requests[-1]["time"] - requests[0]["time"] <= 4 + 0.5


def test_check_mode(emulator, playbook, host):
    emu = emulator(profile="linux")
    result = playbook(gather(), extra_vars={"endpoint": emu.url}, args=("--check",), **host).check()
    assert result.read_json("facts.json")["azure_vm_id"] == profile("linux")["compute"]["vmId"]
    assert gather_status(result) == "ok"


def test_bad_option_is_a_clear_failure(emulator, playbook, host):
    result = playbook(gather(), extra_vars={"endpoint": "not-a-url"}, **host)
    assert result.returncode != 0 and "not an http:// URL" in result.stdout
    assert "Traceback" not in result.output


# -- the default endpoint, only inside network namespaces we create -------------------

needs_root = netns.skip_unless_possible()


# The default endpoint, and the DMI file the test writes: the module decides as on a VM
DMI_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - imds.azure.metadata_facts:
        dmi_path: "{{ dmi }}"
    - ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


@pytest.mark.netns
@needs_root
def test_default_endpoint_inside_namespace(tmp_path):
    """The emulator on the real 169.254.169.254:80, in a namespace of our own."""
    from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

    dmi = tmp_path / "chassis_asset_tag"
    dmi.write_text("7783-7084-3265-9085-8269-3286-77\n")
    pb = tmp_path / "pb.yml"
    pb.write_text(DMI_PLAY)
    out = tmp_path / "facts.json"
    log = tmp_path / "requests.jsonl"
    script = f"""{netns.serve_imds(tmp_path / "port", profile="linux", log=log)}
{netns.exports(ansible_env(tmp_path))}
ansible-playbook -i localhost, {pb} -e dmi={dmi} -e out={out}
kill %1
"""
    proc = netns.run_unshared(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = json.loads(out.read_text())
    assert facts["azure_vm_id"] == profile("linux")["compute"]["vmId"]
    assert "Azure's" in facts["azure_detection_reason"]
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["path"] for r in requests] == ["/metadata/instance", "/metadata/loadbalancer"]


@pytest.mark.netns
@needs_root
@pytest.mark.parametrize("dmi_content, expect_reason", [
    ("Default string\n", "not Azure's"),
    (None, "did not answer"),
])
def test_off_azure_inside_namespace(tmp_path, dmi_content, expect_reason):
    """Not on Azure: DMI says so (no request at all), or no DMI and nothing answers (1 s probe)."""
    from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

    dmi = tmp_path / "chassis_asset_tag"
    if dmi_content is not None:
        dmi.write_text(dmi_content)
    out = tmp_path / "facts.json"
    pb = tmp_path / "pb.yml"
    pb.write_text(DMI_PLAY)
    # a namespace where 169.254.0.0/16 is on-link through a veth pair nobody answers on:
    # the request leaves by the wrong interface and dies there, as on a cluster node
    script = f"""
ip link set lo up
ip link add clu0 type veth peer name clu1
ip link set clu0 up
ip link set clu1 up
ip addr add 169.254.1.156/16 dev clu0
{netns.exports(ansible_env(tmp_path))}
ansible-playbook -i localhost, {pb} -e dmi={dmi} -e out={out}
"""
    start = time.monotonic()
    proc = netns.run_unshared(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = json.loads(out.read_text())
    assert facts["azure_detected"] is False and facts["azure_api_version"] is None
    assert expect_reason in facts["azure_detection_reason"]
    assert "WARNING" not in proc.stdout + proc.stderr
    assert time.monotonic() - start < 60
