"""/metadata/loadbalancer, checked against Microsoft's OpenAPI description and documents.

tests/emulator/openapi/loadbalancer/ holds the description of the endpoint (2020-10-01 and
newer) and Microsoft's examples; see the README there. Each documented answer is
emulated: the document of a VM behind a load balancer (Standard, Gateway), of a VM with a
Standard public IP on its NIC and no load balancer, the 404 for a VM in none, and the
transient answers of the troubleshooting page (the ``loadbalancer`` fault).
"""
from __future__ import annotations

import functools
import ipaddress
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imds_emulator import (
    API_VERSIONS, LOADBALANCER_ERRORS, LOADBALANCER_MISSING, Emulator, available_profiles, load_profile,
)

HERE = Path(__file__).resolve().parent
SPEC = HERE / "openapi" / "loadbalancer"
REAL = HERE.parents[1] / "tests" / "fixtures" / "real-imds"
SINCE = "2020-10-01"
LB_VERSIONS = [v for v in API_VERSIONS if v >= SINCE]
LB_PROFILES = [name for name in available_profiles() if load_profile(name).get("_loadbalancer") is not None]
NEW_PROFILES = ["standard-public-ip", "standard-lb", "nva-gateway-lb"]


@functools.lru_cache(maxsize=None)
def spec() -> dict:
    return json.loads((SPEC / "imds-loadbalancer.json").read_text())


def check(definition: str, value: Any) -> None:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": spec()["definitions"]}
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(value))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def described_keys(definition: str) -> set[str]:
    return set(spec()["definitions"][definition]["properties"])


def example(name: str) -> dict:
    return json.loads((SPEC / "examples" / name).read_text())["responses"]["200"]["body"]


@pytest.fixture(scope="module")
def served():
    import requests

    emulators = {name: Emulator(profile=name).start() for name in available_profiles()}
    http = requests.Session()
    http.trust_env = False

    def fetch(profile: str, version: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        return http.request(method, emulators[profile].url + "/metadata/loadbalancer",
                            params={"api-version": version}, headers={"Metadata": "true"}, timeout=5, **kwargs)

    yield fetch
    http.close()
    for emu in emulators.values():
        emu.stop()


@pytest.mark.parametrize("name", sorted(path.name for path in (SPEC / "examples").iterdir()))
def test_microsofts_examples_validate_against_the_description(name):
    body = example(name)
    assert set(body) == {"loadbalancer"}  # every example wraps the object the description describes
    check("LoadBalancerMetadata", body["loadbalancer"])
    with pytest.raises(AssertionError):  # the validator has teeth: a port as a string
        check("LoadBalancerMetadata", {"inboundRules": [{"frontendPort": "80"}]})


def test_the_new_profiles_are_there_and_the_gateway_one_is_microsofts_example():
    assert set(NEW_PROFILES) <= set(LB_PROFILES)
    assert {"loadbalancer": load_profile("nva-gateway-lb")["_loadbalancer"]} == \
        example("GetLoadBalancerMetadata_gatewayLB.json")


@pytest.mark.parametrize("version", LB_VERSIONS)
@pytest.mark.parametrize("profile", LB_PROFILES)
def test_load_balancer_documents_match_the_description(served, profile, version):
    reply = served(profile, version)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    body = reply.json()
    assert body == {"loadbalancer": load_profile(profile)["_loadbalancer"]}
    document = body["loadbalancer"]
    check("LoadBalancerMetadata", document)
    assert set(document) <= described_keys("LoadBalancerMetadata")
    items = {"publicIpAddresses": "PublicIpAddress", "inboundRules": "LoadBalancerInboundRule",
             "outboundRules": "LoadBalancerOutboundRule", "tunnelInterfaces": "LoadBalancerTunnelInterface"}
    for key, definition in items.items():
        for item in document.get(key, []):
            assert set(item) == described_keys(definition), (key, item)


@pytest.mark.parametrize("profile", sorted(set(available_profiles()) - set(LB_PROFILES)))
def test_a_vm_in_no_load_balancer_gets_imds_404(served, profile):
    reply = served(profile, LB_VERSIONS[-1])
    assert reply.status_code == 404
    assert reply.json() == {"error": LOADBALANCER_MISSING}
    assert reply.json() == json.loads((REAL / "cnquery__loadbalancer_no_info_2023-07-01.json").read_text())
    check("ErrorResponse", reply.json())


def test_versions_before_2020_10_01_and_post_are_refused(served):
    older = served("standard-lb", "2020-09-01")
    assert older.status_code == 400 and "api-version" in older.json()["error"]
    check("ErrorResponse", older.json())
    posted = served("standard-lb", SINCE, method="POST", data="{}")
    assert posted.status_code == 405
    assert posted.json() == {"error": 'Http method isn\'t allowed: Path = "/metadata/loadbalancer", Method = "POST"'}


@pytest.mark.parametrize("profile", NEW_PROFILES)
def test_the_new_profiles_are_consistent_vms(served, profile):
    """Standard public IPs never appear in the instance document; every address the load
    balancer document gives the VM is one of its NICs' private addresses."""
    document = load_profile(profile)
    addresses = [a for nic in document["network"]["interface"] for a in nic["ipv4"]["ipAddress"]]
    assert all(a["publicIpAddress"] == "" for a in addresses)
    private = {a["privateIpAddress"] for a in addresses}
    lb = document["_loadbalancer"]
    for key in ("publicIpAddresses", "inboundRules", "outboundRules"):
        assert {item["privateIpAddress"] for item in lb[key]} <= private, key
    for key in ("publicIpAddresses", "inboundRules", "outboundRules"):
        for item in lb[key]:
            ipaddress.ip_address(item["frontendIpAddress"])
    for rule in lb["inboundRules"]:
        assert 0 <= rule["frontendPort"] <= 65535 and 0 <= rule["backendPort"] <= 65535


def test_what_each_kind_of_vm_is_answered(served):
    """The answers the client side builds on, by case (see the emulator page)."""
    public_ip = served("standard-public-ip", SINCE).json()["loadbalancer"]
    real = json.loads((REAL / "cnquery__loadbalancer_publicip_2023-07-01.json").read_text())["loadbalancer"]
    assert set(public_ip) == set(real) and public_ip["inboundRules"] == public_ip["outboundRules"] == []
    assert public_ip["publicIpAddresses"] == [{"frontendIpAddress": "20.93.41.17", "privateIpAddress": "10.1.0.4"}]
    behind = served("standard-lb", SINCE).json()["loadbalancer"]
    assert behind["publicIpAddresses"] == []
    assert {(r["protocol"], r["frontendPort"], r["backendPort"]) for r in behind["inboundRules"]} == {
        ("Tcp", 443, 8443), ("Tcp", 50002, 22), ("Udp", 50003, 3478)}
    assert behind["outboundRules"] == [{"frontendIpAddress": "20.103.84.11", "privateIpAddress": "10.1.0.5"}]
    gateway = served("nva-gateway-lb", SINCE).json()["loadbalancer"]
    assert [t["type"] for t in gateway["tunnelInterfaces"]] == ["Internal", "External"]


@pytest.mark.parametrize("name", sorted(LOADBALANCER_ERRORS))
def test_the_documented_transient_answers(client, name):
    imds = client("standard-lb", faults={"loadbalancer": name})
    reply = imds.get("/metadata/loadbalancer", api_version=SINCE)
    status, message = LOADBALANCER_ERRORS[name]
    assert (reply.status_code, reply.json()) == (status, {"error": message})
    check("ErrorResponse", reply.json())
    assert imds.get("/metadata/instance").status_code == 200  # only the load balancer endpoint
    imds.emu.set_faults()
    assert imds.get("/metadata/loadbalancer", api_version=SINCE).status_code == 200


def test_a_profile_may_carry_a_bad_load_balancer_document_only_by_mistake(tmp_path):
    from imds_emulator import EmulatorError

    document = load_profile("standard-lb")
    document["_loadbalancer"]["inboundRules"][0]["frontendPort"] = "443"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(EmulatorError, match=r"_loadbalancer.inboundRules\[0\].frontendPort must be an integer"):
        Emulator(profile_file=path)
