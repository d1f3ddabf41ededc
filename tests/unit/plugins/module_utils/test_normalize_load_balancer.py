"""The load balancer document and its merge into the public IP facts: load_balancer() and
normalize(..., load_balancer=...), with real and hand-made documents (tests/fixtures/load-balancer/)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.imds.azure.plugins.module_utils._normalize import (
    LB_FAILED,
    LB_FOUND,
    LB_NOT_FOUND,
    LB_NOT_REQUESTED,
    ImdsDocumentError,
    LoadBalancer,
    load_balancer,
    merge_load_balancer,
    normalize,
)
from ansible_collections.imds.azure.tests.utils.facts import SCHEMA, is_valid, schema_errors

REPO = Path(__file__).resolve().parents[4]
REAL = REPO / "tests" / "fixtures" / "real-imds"
DOCUMENTS = REPO / "tests" / "fixtures" / "documents"
LOAD_BALANCERS = REPO / "tests" / "fixtures" / "load-balancer"
PUBLIC_FACTS = ("ansible_azure_interfaces", "ansible_azure_public_ipv4_addresses", "ansible_azure_public_ipv4",
                "ansible_azure_public_ipv4_source", "ansible_azure_public_ip_addresses", "ansible_azure_load_balancer",
                "ansible_azure_load_balancer_metadata", "ansible_azure_load_balancer_status")


def load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def lb(name: str) -> object:
    return load(LOAD_BALANCERS / name)


def nic(*addresses: tuple[str, str]) -> dict:
    """One interface with (private, public) IPv4 addresses, as the instance document has it."""
    return {"macAddress": "000D3AF806EC", "ipv6": {"ipAddress": []},
            "ipv4": {"ipAddress": [{"privateIpAddress": private, "publicIpAddress": public} for private, public in addresses],
                     "subnet": [{"address": "10.1.0.0", "prefix": "24"}]}}


def instance(*nics: dict) -> dict:
    return {"compute": {"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6"}, "network": {"interface": list(nics)}}


def gathered(document: dict, body: object, version: str = "2025-04-07") -> dict:
    facts = normalize(document, version, load_balancer=load_balancer(body))
    errors = schema_errors(facts, limit=1000)
    assert errors == []
    assert json.loads(json.dumps(facts)) == facts
    return facts


# --- the documented cases -------------------------------------------------------------

def test_microsoft_sample_standard_public_ip_is_merged_and_rules_typed():
    """The how-to's sample: the VM's public IP is only in the load balancer metadata."""
    body = lb("microsoft_howto_sample_dual_stack.json")
    facts = gathered(instance(nic(("10.1.0.4", ""))), body)
    assert facts["ansible_azure_interfaces"][0]["ipv4_addresses"] == [
        {"private": "10.1.0.4", "public": "51.0.0.1", "public_source": "load_balancer"}]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["51.0.0.1"]
    assert facts["ansible_azure_public_ipv4"] == "51.0.0.1"
    assert facts["ansible_azure_public_ipv4_source"] == "load_balancer"
    assert facts["ansible_azure_public_ip_addresses"] == [
        {"address": "51.0.0.1", "private": "10.1.0.4", "source": "load_balancer", "family": "ipv4"}]
    assert facts["ansible_azure_load_balancer"] == {
        "public_ip_addresses": [{"frontend_ip_address": "51.0.0.1", "private_ip_address": "10.1.0.4"}],
        "inbound_rules": [
            {"frontend_ip_address": "50.0.0.1", "protocol": "tcp", "frontend_port": 80, "backend_port": 443,
             "private_ip_address": "10.1.0.4"},
            {"frontend_ip_address": "2603:10e1:100:2::1:1", "protocol": "tcp", "frontend_port": 80,
             "backend_port": 443, "private_ip_address": "ace:cab:deca:deed::1"}],
        "outbound_rules": [
            {"frontend_ip_address": "50.0.0.1", "private_ip_address": "10.1.0.4"},
            {"frontend_ip_address": "2603:10e1:100:2::1:1", "private_ip_address": "ace:cab:deca:deed::1"}],
    }
    assert facts["ansible_azure_load_balancer_metadata"] == body
    assert facts["ansible_azure_load_balancer_status"] == "found"
    # the rules' frontends are the load balancer's, not the VM's: they are no public IP of the VM
    assert "50.0.0.1" not in json.dumps(facts["ansible_azure_public_ip_addresses"])


def test_standard_public_ip_on_the_nic_without_rules_real_capture():
    """cnquery's capture: one publicIpAddresses entry, no rules; its private address is the VM's."""
    body = load(REAL / "cnquery__loadbalancer_publicip_2023-07-01.json")
    facts = gathered(instance(nic(("10.0.0.4", ""))), body)
    assert facts["ansible_azure_public_ipv4"] == "172.184.192.212"
    assert facts["ansible_azure_public_ipv4_source"] == "load_balancer"
    assert facts["ansible_azure_load_balancer"] == {
        "public_ip_addresses": [{"frontend_ip_address": "172.184.192.212", "private_ip_address": "10.0.0.4"}],
        "inbound_rules": [], "outbound_rules": []}


def test_real_capture_beside_its_own_instance_document_whose_private_address_differs():
    """cnquery captured both bodies on one VM but its instance document carries the docs' sample
    network (10.144.133.132): the public address matches no interface and is still reported."""
    document = load(REAL / "cnquery__instance_afiune-metadata-test_linux_2021-02-01.json")
    facts = gathered(document, load(REAL / "cnquery__loadbalancer_publicip_2023-07-01.json"))
    assert facts["ansible_azure_interfaces"][0]["ipv4_addresses"] == [
        {"private": "10.144.133.132", "public": None, "public_source": None}]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["172.184.192.212"]
    assert facts["ansible_azure_public_ipv4"] == "172.184.192.212"
    assert facts["ansible_azure_public_ip_addresses"] == [
        {"address": "172.184.192.212", "private": "10.0.0.4", "source": "load_balancer", "family": "ipv4"}]


def test_the_instance_documents_public_address_keeps_its_place():
    """A (Basic SKU) public address in the instance document stays the interface's; a different one
    the load balancer gives the same private address is listed after the interfaces'."""
    body = {"loadbalancer": {"publicIpAddresses": [{"frontendIpAddress": "20.61.15.200", "privateIpAddress": "10.0.0.4"},
                                                   {"frontendIpAddress": "20.61.15.7", "privateIpAddress": "10.0.0.4"}],
                             "inboundRules": [], "outboundRules": []}}
    facts = gathered(instance(nic(("10.0.0.4", "20.61.15.7"))), body)
    assert facts["ansible_azure_interfaces"][0]["ipv4_addresses"] == [
        {"private": "10.0.0.4", "public": "20.61.15.7", "public_source": "instance"}]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["20.61.15.7", "20.61.15.200"]
    assert (facts["ansible_azure_public_ipv4"], facts["ansible_azure_public_ipv4_source"]) == ("20.61.15.7", "instance")
    assert facts["ansible_azure_public_ip_addresses"] == [
        {"address": "20.61.15.7", "private": "10.0.0.4", "source": "instance", "family": "ipv4"},
        {"address": "20.61.15.200", "private": "10.0.0.4", "source": "load_balancer", "family": "ipv4"}]


def test_several_nics_and_addresses_each_get_their_own():
    body = {"loadbalancer": {"publicIpAddresses": [
        {"frontendIpAddress": "20.0.0.6", "privateIpAddress": "10.2.1.4"},
        {"frontendIpAddress": "20.0.0.5", "privateIpAddress": "10.2.0.5"},
        {"frontendIpAddress": "20.0.0.7", "privateIpAddress": "10.9.9.9"}]}}
    facts = gathered(instance(nic(("10.2.0.4", "13.0.0.4"), ("10.2.0.5", ""), ("10.2.0.6", "")), nic(("10.2.1.4", ""))),
                     body)
    assert [[(a["public"], a["public_source"]) for a in interface["ipv4_addresses"]]
            for interface in facts["ansible_azure_interfaces"]] == [
        [("13.0.0.4", "instance"), ("20.0.0.5", "load_balancer"), (None, None)], [("20.0.0.6", "load_balancer")]]
    # interfaces first, in document order; then what no interface took
    assert facts["ansible_azure_public_ipv4_addresses"] == ["13.0.0.4", "20.0.0.5", "20.0.0.6", "20.0.0.7"]
    assert facts["ansible_azure_public_ipv4_source"] == "instance"
    # the facts that do not depend on the load balancer are those of the instance document alone
    alone = normalize(instance(nic(("10.2.0.4", "13.0.0.4"), ("10.2.0.5", ""), ("10.2.0.6", "")),
                               nic(("10.2.1.4", ""))), "2025-04-07")
    assert {k: v for k, v in facts.items() if k not in PUBLIC_FACTS} == {
        k: v for k, v in alone.items() if k not in PUBLIC_FACTS}


def test_two_nics_with_the_same_private_address_both_get_it():
    """cloud-init's fixture: two NICs with the same private IP; the load balancer cannot tell them apart."""
    document = load(REAL / "cloud-init__instance_network_two_nics.json")
    body = {"loadbalancer": {"publicIpAddresses": [{"frontendIpAddress": "20.1.1.1", "privateIpAddress": "10.0.0.22"}]}}
    facts = gathered(document, body)
    assert [a["public"] for interface in facts["ansible_azure_interfaces"] for a in interface["ipv4_addresses"]] == [
        "20.1.1.1", "20.1.1.1"]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["20.1.1.1", "20.1.1.1"]  # one per address, as before


def test_ipv6_public_address_is_listed_not_merged():
    body = {"loadbalancer": {"publicIpAddresses": [{"frontendIpAddress": "2603:10e1:100:2::1:1",
                                                    "privateIpAddress": "ace:cab:deca:deed::1"}]}}
    document = instance(nic(("10.1.0.4", "")))
    document["network"]["interface"][0]["ipv6"] = {"ipAddress": [{"privateIpAddress": "ace:cab:deca:deed::1"}]}
    facts = gathered(document, body)
    assert facts["ansible_azure_public_ipv4_addresses"] == [] and facts["ansible_azure_public_ipv4"] is None
    assert facts["ansible_azure_public_ipv4_source"] is None
    assert facts["ansible_azure_public_ip_addresses"] == [
        {"address": "2603:10e1:100:2::1:1", "private": "ace:cab:deca:deed::1", "source": "load_balancer",
         "family": "ipv6"}]
    assert facts["ansible_azure_interfaces"][0]["ipv6_addresses"] == ["ace:cab:deca:deed::1"]


def test_addresses_that_are_not_public_are_not_merged():
    """publicIpAddresses is "the instance level public or private IP": only public ones count."""
    document = instance(nic(*[(f"10.1.0.{n}", "") for n in range(4, 10)]))
    facts = gathered(document, lb("not_public_frontends.json"))
    assert facts["ansible_azure_public_ipv4_addresses"] == ["20.40.60.80"]
    assert [a["public"] for a in facts["ansible_azure_interfaces"][0]["ipv4_addresses"]] == [
        "20.40.60.80", None, None, None, None, None]
    assert [item["address"] for item in facts["ansible_azure_public_ip_addresses"]] == ["20.40.60.80"]
    # they are still in the load balancer facts, as IMDS sent them
    assert [e["frontend_ip_address"] for e in facts["ansible_azure_load_balancer"]["public_ip_addresses"]] == [
        "10.1.0.100", "172.20.0.9", "192.168.7.7", "100.64.1.1", "169.254.169.254", "fd00:1::5", "fe80::1",
        "not an address", "20.40.60.80"]


def test_private_addresses_match_in_any_spelling():
    body = {"loadbalancer": {"publicIpAddresses": [{"frontendIpAddress": "20.1.1.1", "privateIpAddress": "10.1.0.4"}]}}
    facts = gathered(instance(nic(("10.1.0.4", ""))), body)
    assert facts["ansible_azure_public_ipv4"] == "20.1.1.1"
    body = {"loadbalancer": {"publicIpAddresses": [{"frontendIpAddress": "20.1.1.1", "privateIpAddress": "10.1.0.44"}]}}
    facts = gathered(instance(nic(("10.1.0.4", ""))), body)
    assert facts["ansible_azure_interfaces"][0]["ipv4_addresses"][0]["public"] is None


# --- typing and odd values ------------------------------------------------------------

def test_values_as_strings_and_odd_entries():
    facts = load_balancer(lb("values_as_strings_and_odd_entries.json")).facts
    assert facts == {
        "public_ip_addresses": [
            {"frontend_ip_address": None, "private_ip_address": "10.0.0.4"},
            {"frontend_ip_address": "20.30.40.51", "private_ip_address": None}],
        "inbound_rules": [
            {"frontend_ip_address": "20.30.40.51", "protocol": "Udp", "frontend_port": 5000, "backend_port": 5001,
             "private_ip_address": "10.0.0.4"},
            {"frontend_ip_address": "20.30.40.51", "protocol": "All", "frontend_port": 0, "backend_port": 0,
             "private_ip_address": "10.0.0.4", "enable_floating_ip": "false"},
            # a port that is no number stays what it was; a protocol that is no string becomes its JSON text
            {"frontend_ip_address": "20.30.40.51", "protocol": "6", "frontend_port": "22a", "backend_port": 22,
             "private_ip_address": "10.0.0.4"},
            # values of a kind IMDS never sends in a known field
            {"frontend_ip_address": "20.30.40.51", "protocol": "tcp", "frontend_port": "true", "backend_port": None,
             "private_ip_address": None}],
        "outbound_rules": [],  # an object where a list belongs
        "some_future_field": {"tunnel_interfaces": [{"port": "10800", "type": "Internal"}]},
    }


def test_unknown_key_in_an_entry_is_kept_and_the_known_one_is_null():
    facts = load_balancer(lb("microsoft_howto_sample_misspelled_frontend_key.json")).facts
    assert facts["outbound_rules"][1] == {"frontend_ip_address": None, "private_ip_address": "ace:cab:deca:deed::1",
                                          "frotend_ip_address": "2603:10e1:100:2::1:1"}


def test_empty_and_missing_lists():
    assert load_balancer({"loadbalancer": {}}).facts == {
        "public_ip_addresses": [], "inbound_rules": [], "outbound_rules": []}
    facts = gathered(instance(nic(("10.1.0.4", ""))), {"loadbalancer": {"publicIpAddresses": None}})
    assert facts["ansible_azure_load_balancer_status"] == "found"
    assert facts["ansible_azure_public_ipv4"] is None and facts["ansible_azure_public_ip_addresses"] == []


def test_the_document_is_neither_changed_nor_copied():
    body = lb("microsoft_howto_sample_dual_stack.json")
    before = copy.deepcopy(body)
    document = instance(nic(("10.1.0.4", "")))
    document_before = copy.deepcopy(document)
    first = normalize(document, "2025-04-07", load_balancer=load_balancer(body))
    assert body == before and document == document_before
    assert first["ansible_azure_load_balancer_metadata"] is body
    assert normalize(document, "2025-04-07", load_balancer=load_balancer(body)) == first


@pytest.mark.parametrize(("body", "message"), [
    ([], "the document is a list; an IMDS load balancer document is an object with a loadbalancer object"),
    ("loadbalancer", "the document is a string; an IMDS load balancer document is an object"),
    ({}, "the document has no loadbalancer object (its keys: none); this is not an IMDS load balancer document"),
    ({"publicIpAddresses": []}, "the document has no loadbalancer object (its keys: publicIpAddresses)"),
    ({"loadbalancer": []}, "loadbalancer is a list, not an object"),
    ({"loadbalancer": None}, "loadbalancer is null, not an object"),
    ({"error": "No load balancer\nmetadata"},
     "IMDS answered with an error, not a load balancer document: No load balancer\\nmetadata"),
])
def test_documents_that_are_not_load_balancer_documents(body, message):
    with pytest.raises(ImdsDocumentError) as caught:
        load_balancer(body)
    assert message in str(caught.value)
    assert str(caught.value).isprintable()


def test_the_real_404_body_is_no_load_balancer_document():
    with pytest.raises(ImdsDocumentError, match="^IMDS answered with an error, not a load balancer document: "
                                                "No load balancer metadata is found"):
        load_balancer(load(REAL / "cnquery__loadbalancer_no_info_2023-07-01.json"))


def test_nested_too_deep():
    deep: object = "x"
    for dummy in range(80):
        deep = {"a": deep}
    with pytest.raises(ImdsDocumentError, match="^loadbalancer is nested more than 64 levels deep; an IMDS load "
                                                "balancer document is not$"):
        load_balancer({"loadbalancer": {"future": deep}})


# --- what the facts say without a document --------------------------------------------

@pytest.mark.parametrize("status", [LB_NOT_FOUND, LB_NOT_REQUESTED, LB_FAILED])
def test_without_a_document_the_instance_facts_stand_and_the_status_says_why(status):
    document = load(REAL / "suse-azuremetadata__metadata-v2019-08-15.json")
    alone = normalize(document, "2021-02-01")
    facts = normalize(document, "2021-02-01", load_balancer=LoadBalancer(status))
    assert facts == {**alone, "ansible_azure_load_balancer_status": status}
    assert facts["ansible_azure_public_ipv4"] == "52.166.143.158"
    assert facts["ansible_azure_public_ipv4_source"] == "instance"
    assert facts["ansible_azure_load_balancer"] is None and facts["ansible_azure_load_balancer_metadata"] is None
    assert is_valid(facts)


def test_found_without_typed_facts_counts_as_failed():
    facts = normalize(instance(nic(("10.1.0.4", ""))), "2025-04-07", load_balancer=LoadBalancer(LB_FOUND, {}))
    assert facts["ansible_azure_load_balancer_status"] == LB_FAILED and facts["ansible_azure_load_balancer"] is None


def real_network(name: str) -> dict:
    """A real document with a network section; a /network body wrapped as {"network": ...}."""
    body = load(REAL / name)
    return {"network": body} if "__network_" in name else body


# the real documents with a network section (the others have nothing to merge into)
REAL_INSTANCES = sorted(path.name for path in REAL.glob("*.json")
                        if "__network_" in path.name or isinstance(load(path), dict) and "network" in load(path))


@pytest.mark.parametrize("name", REAL_INSTANCES)
@pytest.mark.parametrize("body_name", sorted(path.name for path in LOAD_BALANCERS.glob("*.json")))
def test_every_real_instance_document_with_every_load_balancer_document(name, body_name):
    """The merge never costs a fact: everything but the public IP facts is what the instance document
    alone gives, every interface address keeps its private address, and the facts fit the schema."""
    document = real_network(name)
    alone = normalize(document, "2025-04-07")
    facts = gathered(document, lb(body_name))
    assert {k: v for k, v in facts.items() if k not in PUBLIC_FACTS} == {
        k: v for k, v in alone.items() if k not in PUBLIC_FACTS}
    for merged, before in zip(facts["ansible_azure_interfaces"], alone["ansible_azure_interfaces"]):
        assert [a["private"] for a in merged["ipv4_addresses"]] == [a["private"] for a in before["ipv4_addresses"]]
        for after, was in zip(merged["ipv4_addresses"], before["ipv4_addresses"]):
            if was["public"] is not None:
                assert after == was  # the instance document's public address is never replaced
    # the instance document's public addresses are all there, in their order
    remaining = iter(facts["ansible_azure_public_ipv4_addresses"])
    assert all(address in remaining for address in alone["ansible_azure_public_ipv4_addresses"])


def test_merge_is_a_pure_function_of_the_instance_facts():
    """merge_load_balancer() leaves its input alone, and merging again (another answer) starts over
    from the instance document's addresses."""
    document = instance(nic(("10.1.0.4", ""), ("10.1.0.5", "52.1.1.5")))
    alone = normalize(document, "2025-04-07")
    before = copy.deepcopy(alone)
    found = merge_load_balancer(alone, load_balancer(lb("microsoft_howto_sample_dual_stack.json")))
    assert alone == before
    assert found == normalize(document, "2025-04-07", load_balancer=load_balancer(
        lb("microsoft_howto_sample_dual_stack.json")))
    assert found["ansible_azure_public_ipv4_addresses"] == ["51.0.0.1", "52.1.1.5"]
    again = merge_load_balancer(found, LoadBalancer(LB_FAILED))
    assert again == {**alone, "ansible_azure_load_balancer_status": "failed"}


def test_the_schema_names_every_status_and_source():
    from ansible_collections.imds.azure.plugins.module_utils._normalize import (
        LB_STATUSES, SOURCE_INSTANCE, SOURCE_LOAD_BALANCER)

    schema = SCHEMA
    assert schema["properties"]["azure_load_balancer_status"]["enum"] == list(LB_STATUSES)
    assert schema["properties"]["azure_public_ipv4_source"]["enum"] == [SOURCE_INSTANCE, SOURCE_LOAD_BALANCER, None]
    assert schema["$defs"]["public_ip_address"]["properties"]["source"]["enum"] == [SOURCE_INSTANCE, SOURCE_LOAD_BALANCER]
