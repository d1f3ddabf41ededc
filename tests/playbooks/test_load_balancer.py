"""The load balancer metadata through real ansible-playbook against the IMDS emulator.

Each documented case of /metadata/loadbalancer (Microsoft's load balancer IMDS how-to and its
troubleshooting page): a VM in no Standard load balancer (IMDS's 404), a Standard public IP on
the NIC and no load balancer, a Standard load balancer with inbound NAT, load-balancing and
outbound rules; the option off; an api-version before the category; a failing endpoint (the
emulator's fault switches). The profiles are written here from the emulator's no-public-ip
profile, so that they hold exactly what each case needs.
"""
from __future__ import annotations

import json

import jsonschema
import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import facts_playbook

NEWEST = "2025-04-07"
SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "docs" / "facts.schema.json").read_text(encoding="utf-8")))  # keyed as plays read the facts

# A VM behind a Standard load balancer: two inbound rules (a load-balancing rule and an inbound
# NAT rule, which IMDS lists alike), an IPv6 rule, an outbound rule; no instance-level public IP.
RULES = {
    "publicIpAddresses": [],
    "inboundRules": [
        {"frontendIpAddress": "20.40.60.80", "protocol": "tcp", "frontendPort": 443, "backendPort": 8443,
         "privateIpAddress": "{private}"},
        {"frontendIpAddress": "20.40.60.80", "protocol": "tcp", "frontendPort": 50001, "backendPort": 22,
         "privateIpAddress": "{private}"},
        {"frontendIpAddress": "2603:10e1:100:2::1:1", "protocol": "tcp", "frontendPort": 80, "backendPort": 80,
         "privateIpAddress": "fd00:4::10"},
    ],
    "outboundRules": [{"frontendIpAddress": "20.40.60.81", "privateIpAddress": "{private}"}],
}
# A Standard SKU public IP on the NIC, no load balancer (cnquery's capture has this shape).
PUBLIC_IP = {"publicIpAddresses": [{"frontendIpAddress": "20.40.60.90", "privateIpAddress": "{private}"}],
             "inboundRules": [], "outboundRules": []}


def profile_file(tmp_path, load_balancer: dict | None, name: str = "vm") -> tuple:
    """A profile: the no-public-ip VM with ``load_balancer`` as the emulator's _loadbalancer (None: none)."""
    from imds_emulator import load_profile  # the emulator's own reading of its profiles

    profile = load_profile("no-public-ip")
    private = profile["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"]
    profile.pop("_loadbalancer", None)
    if load_balancer is not None:
        profile["_loadbalancer"] = json.loads(json.dumps(load_balancer).replace("{private}", private))
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    return path, profile, private


def gather(playbook, emu, **options):
    """Run the module against ``emu`` with ``options``; the result, and the facts as a play reads them."""
    lines = "\n        ".join(f"{name}: {json.dumps(value)}" for name, value in options.items())
    result = playbook(facts_playbook(lines), extra_vars={"endpoint": emu.url})
    return result, result.read_json("facts.json") if result.returncode == 0 else None


def paths(emu) -> list[str]:
    return [r["path"] for r in emu.requests if r["path"].startswith("/metadata/")]


def test_vm_in_no_load_balancer(emulator, playbook, tmp_path):
    path, dummy, private = profile_file(tmp_path, None)
    emu = emulator(profile_file=path)
    result, facts = gather(playbook, emu)
    result.check()
    assert paths(emu) == ["/metadata/instance", "/metadata/loadbalancer"]
    assert emu.requests[-1]["status"] == 404  # IMDS's "No load balancer metadata is found"
    assert facts["azure_load_balancer_status"] == "not_found"
    assert facts["azure_load_balancer"] is None and facts["azure_load_balancer_metadata"] is None
    assert facts["azure_public_ipv4"] is None and facts["azure_public_ip_addresses"] == []
    assert facts["azure_private_ipv4"] == private
    assert "WARNING" not in result.output  # the ordinary answer, nothing to warn about


def test_standard_public_ip_on_the_nic(emulator, playbook, tmp_path):
    path, dummy, private = profile_file(tmp_path, PUBLIC_IP)
    emu = emulator(profile_file=path)
    result, facts = gather(playbook, emu)
    result.check()
    assert facts["azure_public_ipv4"] == "20.40.60.90"
    assert facts["azure_public_ipv4_source"] == "load_balancer"
    assert facts["azure_public_ipv4_addresses"] == ["20.40.60.90"]
    assert facts["azure_interfaces"][0]["ipv4_addresses"] == [
        {"private": private, "public": "20.40.60.90", "public_source": "load_balancer"}]
    # the instance document still says what IMDS put there: an empty publicIpAddress
    assert facts["azure_metadata"]["network"]["interface"][0]["ipv4"]["ipAddress"][0]["publicIpAddress"] == ""
    assert facts["azure_load_balancer"] == {
        "public_ip_addresses": [{"frontend_ip_address": "20.40.60.90", "private_ip_address": private}],
        "inbound_rules": [], "outbound_rules": []}
    assert "WARNING" not in result.output


LOOKUPS = """
    - name: The same load balancer paths, from the facts and live
      ansible.builtin.copy:
        content: "{{ {'facts': query('imds.azure.metadata', *terms, source='facts'),
                      'live': query('imds.azure.metadata', *terms, source='live', endpoint=endpoint)} | to_json }}"
        dest: "{{ out_dir }}/answers.json"
        mode: "0600"
"""


def test_standard_load_balancer_with_rules(emulator, playbook, tmp_path):
    path, profile, private = profile_file(tmp_path, RULES)
    emu = emulator(profile_file=path)
    result, facts = gather(playbook, emu)
    result.check()
    assert facts["azure_load_balancer_status"] == "found"
    assert facts["azure_load_balancer"] == {
        "public_ip_addresses": [],
        "inbound_rules": [
            {"frontend_ip_address": "20.40.60.80", "protocol": "tcp", "frontend_port": 443, "backend_port": 8443,
             "private_ip_address": private},
            {"frontend_ip_address": "20.40.60.80", "protocol": "tcp", "frontend_port": 50001, "backend_port": 22,
             "private_ip_address": private},
            {"frontend_ip_address": "2603:10e1:100:2::1:1", "protocol": "tcp", "frontend_port": 80,
             "backend_port": 80, "private_ip_address": "fd00:4::10"}],
        "outbound_rules": [{"frontend_ip_address": "20.40.60.81", "private_ip_address": private}],
    }
    # the frontends of rules are the load balancer's addresses, not the VM's
    assert facts["azure_public_ipv4"] is None and facts["azure_public_ip_addresses"] == []
    assert facts["azure_load_balancer_metadata"] == {"loadbalancer": profile["_loadbalancer"]}
    assert SCHEMA.is_valid(facts)

    # the lookup answers the same paths from the facts as IMDS does live
    emu.clear_log()
    terms = ["loadbalancer", "loadbalancer/loadbalancer/inboundRules/1/frontendPort",
             "loadbalancer/loadbalancer/outboundRules/0"]
    answers = playbook(facts_playbook(tasks=LOOKUPS), extra_vars={"endpoint": emu.url, "terms": terms}).check() \
        .read_json("answers.json")
    assert answers["facts"] == answers["live"] == [
        {"loadbalancer": profile["_loadbalancer"]}, 50001, {"frontendIpAddress": "20.40.60.81", "privateIpAddress": private}]
    # the module's two requests, then one live request per load balancer term
    assert paths(emu) == ["/metadata/instance"] + ["/metadata/loadbalancer"] * 4


def test_option_off_is_one_request(emulator, playbook, tmp_path):
    path, dummy, private = profile_file(tmp_path, PUBLIC_IP)
    emu = emulator(profile_file=path)
    result, facts = gather(playbook, emu, load_balancer=False)
    result.check()
    assert paths(emu) == ["/metadata/instance"]
    assert facts["azure_load_balancer_status"] == "not_requested"
    assert facts["azure_public_ipv4"] is None  # what the instance document alone says
    assert "WARNING" not in result.output


@pytest.mark.parametrize(("faults", "words"), [
    # the emulator refuses every second request: the load balancer's
    ({"every_kth": {"k": 2, "status": 400}}, ["IMDS answered 400", "/metadata/loadbalancer", "refused as malformed"]),
    # a region that serves nothing from 2020-10-01: the category is not asked for
    ({"versions": ["2019-06-01", "2020-06-01", "2020-09-01"]}, ["api-version 2020-09-01 predates /metadata/loadbalancer"]),
])
def test_a_failing_load_balancer_endpoint_never_fails_the_gather(emulator, playbook, tmp_path, faults, words):
    path, profile, private = profile_file(tmp_path, PUBLIC_IP)
    emu = emulator(profile_file=path, faults=faults)
    result, facts = gather(playbook, emu)
    result.check()
    assert facts["azure_vm_id"] == profile["compute"]["vmId"]
    assert facts["azure_private_ipv4"] == private
    assert facts["azure_load_balancer_status"] in ("failed", "not_requested")
    assert facts["azure_public_ipv4"] is None and facts["azure_load_balancer"] is None
    warnings = [line for line in result.output.splitlines() if "[WARNING]: Load balancer metadata not read" in line]
    assert len(warnings) == 1, result.output
    for word in words:
        assert word in result.output, word
    assert "Traceback" not in result.output


def test_a_server_error_is_retried_within_the_gathers_deadline(emulator, playbook, tmp_path):
    """Every second request answers 500: the load balancer's first attempt fails, its retry succeeds."""
    path, dummy, private = profile_file(tmp_path, PUBLIC_IP)
    emu = emulator(profile_file=path, faults={"every_kth": {"k": 2, "status": 500}})
    result, facts = gather(playbook, emu, retry_timeout=10)
    result.check()
    assert [(r["path"], r["status"]) for r in emu.requests] == [
        ("/metadata/instance", 200), ("/metadata/loadbalancer", 500), ("/metadata/loadbalancer", 200)]
    assert facts["azure_public_ipv4"] == "20.40.60.90" and "WARNING" not in result.output


def profile_names() -> list[str]:
    from imds_emulator import available_profiles

    return available_profiles()


@pytest.mark.parametrize("name", profile_names())
def test_every_emulator_profile_gathers_what_it_serves(emulator, playbook, name):
    """For each profile (those with a load balancer included), the module's facts are what the
    normalizer makes of the two documents the emulator serves, and fit the schema."""
    from imds_emulator import document_for_version, load_profile, public_document

    from ansible_collections.imds.azure.plugins.module_utils._normalize import (
        LB_NOT_FOUND, LoadBalancer, load_balancer, normalize)

    profile = load_profile(name)
    emu = emulator(profile=name)
    result, facts = gather(playbook, emu)
    result.check()
    served = profile.get("_loadbalancer")
    lb = load_balancer({"loadbalancer": served}) if isinstance(served, dict) else LoadBalancer(LB_NOT_FOUND)
    expected = normalize(document_for_version(public_document(profile), NEWEST), NEWEST, load_balancer=lb)
    assert {"ansible_" + key: value for key, value in facts.items() if key != "azure_detection_reason"} == expected
    assert SCHEMA.is_valid(facts)
    assert paths(emu) == ["/metadata/instance", "/metadata/loadbalancer"]
