"""The normalizer: real and hand-made IMDS documents in, the facts a user reads out."""
from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import pytest

from ansible_collections.imds.azure.plugins.module_utils._normalize import (
    MAX_DEPTH,
    ImdsDocumentError,
    facts_warnings,
    missing_by_api_version,
    normalize,
    snake_case,
)
from ansible_collections.imds.azure.tests.utils.facts import is_valid, schema_errors
from ansible_collections.imds.azure.tests.utils.paths import FIXTURES

REAL = FIXTURES / "real-imds"
DOCUMENTS = FIXTURES / "documents"

# How each real body becomes an instance document. The file names say what each is
# (see tests/fixtures/real-imds/README.md); these two say it wrong or not at all.
WRAP_OVERRIDES = {
    "facter__instance_minimal_mock_2020-09-01.json": "compute",  # {"azEnvironment": ...}
    "nomad__compute_tagsList_filtered.json": "tagsList",  # /instance/compute/tagsList leaf
}
NOT_INSTANCE = ("_GetAttestedData_", "_GetIdentityInfo_", "__loadbalancer_", "__error_", "attested-data")

# Field knowledge the oracle below uses, written independently of FIELDS.
INT_KEYS = {
    "platformFaultDomain", "platformUpdateDomain", "platformSubFaultDomain", "diskSizeGB", "lun", "size",
    "bytesPerSecondThrottle", "opsPerSecondThrottle", "diskCapacityBytes",
}
BOOL_KEYS = {
    "isHostCompatibilityLayerVm", "secureBootEnabled", "virtualTpmEnabled", "encryptionAtHost",
    "disablePasswordAuthentication", "enabled", "writeAcceleratorEnabled", "isSharedDisk", "isUltraDisk",
    "hibernationEnabled",
}


def load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def wrapping(name: str) -> str | None:
    """How the real body ``name`` becomes an instance document (None: it is not one)."""
    if name in WRAP_OVERRIDES:
        return WRAP_OVERRIDES[name]
    if any(marker in name for marker in NOT_INSTANCE):
        return None
    if "__compute_" in name:
        return "compute"
    if "__network_" in name:
        return "network"
    if "__instance_" in name or "_GetInstanceMetadata_200" in name or "__metadata-v" in name:
        return "instance"
    raise AssertionError(f"{name}: say in WRAP_OVERRIDES or NOT_INSTANCE what this fixture is")


def as_document(name: str, body: object) -> dict:
    how = wrapping(name)
    if how == "compute":
        return {"compute": body}
    if how == "network":
        return {"network": body}
    if how == "tagsList":
        return {"compute": {"tagsList": body}}
    return body


REAL_NAMES = sorted(path.name for path in REAL.glob("*.json"))
INSTANCE_NAMES = [name for name in REAL_NAMES if wrapping(name)]
REJECTED_NAMES = [name for name in REAL_NAMES if not wrapping(name)]
DOCUMENT_NAMES = sorted(path.name for path in DOCUMENTS.glob("*.json") if not path.name.startswith("invalid_"))
INVALID_NAMES = sorted(path.name for path in DOCUMENTS.glob("invalid_*.json"))


def real(name: str) -> dict:
    return as_document(name, load(REAL / name))


def made(name: str) -> dict:
    return load(DOCUMENTS / name)


def oracle_snake(name: str) -> str:
    """snake_case in two passes (acronym runs, then word starts): a different way to the same rule."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def oracle_tags(compute: dict) -> dict:
    tags = {}
    for segment in (compute.get("tags") or "").split(";"):
        if ":" in segment:
            name, value = segment[:segment.index(":")], segment[segment.index(":") + 1:]
        else:
            name, value = segment, ""
        if name:
            tags[name] = value
    for entry in compute.get("tagsList") or []:
        tags[entry["name"]] = entry["value"]
    return tags


def assert_converted(raw: object, fact: object, key: str = "", in_tags: bool = False) -> None:
    """Every value of ``raw`` compute is in ``fact`` as the conversion rules say."""
    if isinstance(raw, dict):
        assert isinstance(fact, dict), key
        assert sorted(fact) == sorted(oracle_snake(k) for k in raw), key
        for k, value in raw.items():
            assert_converted(value, fact[oracle_snake(k)], k, in_tags or k == "tagsList")
    elif isinstance(raw, list):
        assert isinstance(fact, list) and len(fact) == len(raw), key
        for raw_item, fact_item in zip(raw, fact):
            assert_converted(raw_item, fact_item, key, in_tags)
    elif isinstance(raw, str) and not in_tags:
        if raw == "":
            assert fact is None, key
        elif key in INT_KEYS and raw.isdigit():
            assert isinstance(fact, int) and not isinstance(fact, bool) and fact == int(raw), key
        elif key in BOOL_KEYS and raw in ("true", "false"):
            assert fact is (raw == "true"), key
        else:
            assert fact == raw, key
    else:
        assert fact == raw and type(fact) is type(raw), key


def nics(document: dict) -> list:
    return (document.get("network") or {}).get("interface") or []


# --- every real document ------------------------------------------------------------


def test_every_real_fixture_is_classified():
    assert len(INSTANCE_NAMES) >= 40 and len(REJECTED_NAMES) >= 15
    assert len(INSTANCE_NAMES) + len(REJECTED_NAMES) == len(list(REAL.glob("*.json")))
    assert {wrapping(name) for name in INSTANCE_NAMES} == {"instance", "compute", "network", "tagsList"}


@pytest.mark.parametrize("name", INSTANCE_NAMES)
def test_real_document_facts_say_what_the_document_says(name):
    document = real(name)
    compute = document.get("compute", {})
    facts = normalize(document, "2021-02-01")

    assert facts["ansible_azure_detected"] is True
    assert facts["ansible_azure_api_version"] == "2021-02-01"
    for fact, field in [("vm_id", "vmId"), ("name", "name"), ("location", "location"), ("vm_size", "vmSize"),
                        ("zone", "zone"), ("resource_group", "resourceGroupName"),
                        ("subscription_id", "subscriptionId"), ("environment", "azEnvironment")]:
        assert facts[f"ansible_azure_{fact}"] == (compute.get(field) or None), fact
    os_type = compute.get("osType") or None
    assert facts["ansible_azure_os_type"] == (os_type and os_type.capitalize())
    for fact, field in [("platform_fault_domain", "platformFaultDomain"),
                        ("platform_update_domain", "platformUpdateDomain")]:
        value = compute.get(field)
        assert facts[f"ansible_azure_{fact}"] == (int(value) if value else None), fact

    assert facts["ansible_azure_tags"] == oracle_tags(compute)
    assert_converted({k: v for k, v in compute.items() if k != "userData"}, facts["ansible_azure_compute"])
    assert "user_data" not in facts["ansible_azure_compute"]

    interfaces = facts["ansible_azure_interfaces"]
    assert len(interfaces) == len(nics(document))
    for nic, interface in zip(nics(document), interfaces):
        assert interface["mac_address"].replace(":", "").upper() == nic["macAddress"].upper()
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", interface["mac_address"])
        ipv4 = nic.get("ipv4", {})
        assert [a["private"] for a in interface["ipv4_addresses"]] == [a["privateIpAddress"] for a in ipv4.get("ipAddress", [])]
        assert [a["public"] for a in interface["ipv4_addresses"]] == [
            a.get("publicIpAddress") or None for a in ipv4.get("ipAddress", [])]
        assert [a["public_source"] for a in interface["ipv4_addresses"]] == [
            "instance" if a.get("publicIpAddress") else None for a in ipv4.get("ipAddress", [])]
        assert interface["ipv4_subnets"] == [f"{s['address']}/{s['prefix']}" for s in ipv4.get("subnet", [])]
        ipv6 = nic.get("ipv6", {})
        assert interface["ipv6_addresses"] == [a["privateIpAddress"] for a in ipv6.get("ipAddress", [])]
        assert interface["ipv6_subnets"] == [f"{s['address']}/{s['prefix']}" for s in ipv6.get("subnet", [])]

    every_ipv4 = [a for nic in nics(document) for a in nic.get("ipv4", {}).get("ipAddress", [])]
    private = [a["privateIpAddress"] for a in every_ipv4]
    public = [a["publicIpAddress"] for a in every_ipv4 if a.get("publicIpAddress")]
    assert facts["ansible_azure_private_ipv4_addresses"] == private
    assert facts["ansible_azure_public_ipv4_addresses"] == public
    assert facts["ansible_azure_private_ipv4"] == (private[0] if private else None)
    assert facts["ansible_azure_public_ipv4"] == (public[0] if public else None)
    assert facts["ansible_azure_public_ipv4_source"] == ("instance" if public else None)
    assert facts["ansible_azure_public_ip_addresses"] == [
        {"address": a["publicIpAddress"], "private": a["privateIpAddress"], "source": "instance", "family": "ipv4"}
        for a in every_ipv4 if a.get("publicIpAddress")]
    # no load balancer metadata asked for: the facts say so
    assert facts["ansible_azure_load_balancer_status"] == "not_requested"
    assert facts["ansible_azure_load_balancer"] is None and facts["ansible_azure_load_balancer_metadata"] is None
    assert facts["ansible_azure_ipv6_addresses"] == [
        a["privateIpAddress"] for nic in nics(document) for a in nic.get("ipv6", {}).get("ipAddress", [])]
    assert [m.replace(":", "") for m in facts["ansible_azure_mac_addresses"]] == [
        nic["macAddress"].lower() for nic in nics(document)]

    expected_metadata = copy.deepcopy(document)
    expected_metadata.get("compute", {}).pop("userData", None)
    assert facts["ansible_azure_metadata"] == expected_metadata


@pytest.mark.parametrize("include_user_data", [False, True])
@pytest.mark.parametrize("name", INSTANCE_NAMES + DOCUMENT_NAMES)
def test_facts_validate_against_the_schema(name, include_user_data):
    document = real(name) if name in INSTANCE_NAMES else made(name)
    facts = normalize(document, "2025-04-07", include_user_data=include_user_data)
    assert schema_errors(facts, limit=1000) == []
    assert json.loads(json.dumps(facts)) == facts  # plain JSON, as a module must return


def test_schema_covers_what_the_module_adds_and_the_not_azure_form():
    facts = normalize(real("suse-azuremetadata__metadata-v2019-08-15.json"), "2019-08-15")
    assert is_valid({**facts, "ansible_azure_detection_reason": "the DMI chassis asset tag is Azure's"})
    not_azure = {"ansible_azure_detected": False, "ansible_azure_api_version": None,
                 "ansible_azure_detection_reason": "no DMI chassis asset tag"}
    assert is_valid(not_azure)
    assert not is_valid({**not_azure, "ansible_azure_vm_id": None})
    assert not is_valid({**not_azure, "ansible_azure_api_version": "2019-08-15"})
    assert not is_valid({**facts, "ansible_azure_api_version": None})
    assert not is_valid({key: value for key, value in facts.items() if key != "ansible_azure_tags"})
    assert not is_valid({**facts, "ansible_azure_vmid": "typo"})
    assert not is_valid({**facts, "ansible_azure_platform_fault_domain": "0"})


@pytest.mark.parametrize("name", REJECTED_NAMES)
def test_bodies_that_are_not_instance_documents_are_rejected_with_a_reason(name):
    body = load(REAL / name)
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(body, "2021-02-01")
    message = str(caught.value)
    if isinstance(body, dict) and body.get("error"):
        assert message == f"IMDS answered with an error, not an instance document: {body['error']}"
    else:
        assert "neither compute nor network" in message
        assert ", ".join(list(body)[:2]) in message


def test_error_body_400_names_the_error():
    with pytest.raises(ImdsDocumentError, match=r"^IMDS answered with an error, not an instance document: Bad request\. "
                                                r"api-version was not specified"):
        normalize(load(REAL / "ohai__error_400_newest-versions_2019-08-15_code400.json"), "2019-08-15")


# --- real documents with tricky contents, expected facts written out ----------------


def test_two_nics_each_with_public_ip():
    facts = normalize(real("suse-azuremetadata__metadata-v2019-08-15.json"), "2019-08-15")
    assert facts["ansible_azure_interfaces"] == [
        {"mac_address": "00:0d:3a:ae:ec:51",
         "ipv4_addresses": [{"private": "172.16.17.4", "public": "52.166.143.158", "public_source": "instance"}],
         "ipv4_subnets": ["172.16.17.0/24"], "ipv6_addresses": [], "ipv6_subnets": []},
        {"mac_address": "00:0d:3a:ad:d8:53",
         "ipv4_addresses": [{"private": "172.16.17.5", "public": "52.142.197.66", "public_source": "instance"}],
         "ipv4_subnets": ["172.16.17.0/24"], "ipv6_addresses": [], "ipv6_subnets": []},
    ]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["52.166.143.158", "52.142.197.66"]
    assert facts["ansible_azure_private_ipv4"] == "172.16.17.4"
    assert facts["ansible_azure_mac_addresses"] == ["00:0d:3a:ae:ec:51", "00:0d:3a:ad:d8:53"]
    assert facts["ansible_azure_compute"]["storage_profile"]["os_disk"]["managed_disk"]["storage_account_type"] is None
    assert facts["ansible_azure_compute"]["storage_profile"]["os_disk"]["disk_size_gb"] == 30
    assert facts["ansible_azure_compute"]["tags_list"] == []
    assert facts["ansible_azure_tags"] == {}


def test_network_only_body_primary_with_ipv6_secondary_without_public_key():
    facts = normalize(real("cloud-init__network_two_nics_primary_ipv6.json"), "2021-08-01")
    assert facts["ansible_azure_interfaces"] == [
        {"mac_address": "00:0d:3a:04:75:98",
         "ipv4_addresses": [{"private": "10.0.0.4", "public": "104.46.124.81", "public_source": "instance"}],
         "ipv4_subnets": ["10.0.0.0/24"], "ipv6_addresses": ["fd00::4"], "ipv6_subnets": ["fd00::/64"]},
        {"mac_address": "22:0d:3a:04:75:98", "ipv4_addresses": [{"private": "10.0.1.5", "public": None, "public_source": None}],
         "ipv4_subnets": ["10.0.1.0/24"], "ipv6_addresses": [], "ipv6_subnets": []},
    ]
    assert facts["ansible_azure_compute"] == {}
    assert facts["ansible_azure_vm_id"] is None
    assert facts["ansible_azure_platform_fault_domain"] is None
    assert facts["ansible_azure_tags"] == {}


def test_network_only_body_with_three_ipv4_and_ipv6():
    facts = normalize(real("cloud-init__network_ipv6_and_multi_ipv4.json"), "2021-08-01")
    assert facts["ansible_azure_private_ipv4_addresses"] == ["10.0.0.4", "11.0.0.5", "12.0.0.6"]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["104.46.124.81", "104.46.124.82", "104.46.124.83"]
    assert facts["ansible_azure_ipv6_addresses"] == ["2001:dead:beef::1"]
    assert facts["ansible_azure_interfaces"][0]["ipv6_subnets"] == ["2001:dead:beef::16/10"]  # as sent, not recomputed


def test_interface_without_ipv4_at_all():
    facts = normalize(real("cloud-init__network_ipv6_secondaries_no_ipv4.json"), "2021-08-01")
    assert facts["ansible_azure_interfaces"] == [
        {"mac_address": "00:0d:3a:04:75:98", "ipv4_addresses": [], "ipv4_subnets": [],
         "ipv6_addresses": ["2001:dead:beef::1", "2001:dead:beef::2"], "ipv6_subnets": ["2001:dead:beef::16/10"]}]
    assert facts["ansible_azure_private_ipv4"] is None
    assert facts["ansible_azure_private_ipv4_addresses"] == []


def test_two_nics_with_the_same_private_ip_keep_both():
    facts = normalize(real("cloud-init__instance_network_two_nics.json"), "2021-08-01")
    assert facts["ansible_azure_private_ipv4_addresses"] == ["10.0.0.22", "10.0.0.22"]
    assert facts["ansible_azure_mac_addresses"] == ["00:11:22:33:44:55", "01:11:22:33:44:55"]
    assert facts["ansible_azure_public_ipv4"] is None


def test_duplicate_user_data_key_last_one_counts():
    # The document holds "userData" twice: "Zm9vYmFy" then "". JSON parsers keep the last.
    document = real("opentelemetry-python-contrib__compute_windows_2021-12-13.json")
    assert document["compute"]["userData"] == ""
    facts = normalize(document, "2021-12-13", include_user_data=True)
    assert facts["ansible_azure_compute"]["user_data"] is None
    assert facts["ansible_azure_tags"] == {
        "azsecpack": "nonprod", "platformsettings.host_environment.service.platform_optedin_for_rootcerts": "true"}
    assert facts["ansible_azure_compute"]["license_type"] == "Windows_Client"
    assert facts["ansible_azure_os_type"] == "Windows"
    assert facts["ansible_azure_zone"] == "1"


def test_user_data_is_left_out_unless_asked_for_and_decoded_when_asked():
    document = real("cnquery__instance_docs-derived_windows_toml_2021-02-01.json")
    before = json.dumps(document, sort_keys=True)

    hidden = normalize(document, "2021-02-01")
    assert "userData" not in hidden["ansible_azure_metadata"]["compute"]
    assert "user_data" not in hidden["ansible_azure_compute"]
    assert "Zm9vYmFy" not in json.dumps(hidden)
    assert hidden["ansible_azure_metadata"]["network"] == document["network"]

    shown = normalize(document, "2021-02-01", include_user_data=True)
    assert shown["ansible_azure_compute"]["user_data"] == "foobar"
    assert shown["ansible_azure_metadata"]["compute"]["userData"] == "Zm9vYmFy"

    assert json.dumps(document, sort_keys=True) == before  # the caller's document is untouched


def test_zone_in_and_scale_set_name_stay_strings():
    facts = normalize(real("WALinuxAgent__compute_deserialize_test.json"), "2018-02-01")
    assert facts["ansible_azure_zone"] == "In"
    assert facts["ansible_azure_compute"]["vm_scale_set_name"] == "MyScaleSet"
    assert facts["ansible_azure_compute"]["version"] == "UnitVersion"
    assert facts["ansible_azure_tags"] == {"Key1": "Value1", "Key2": "Value2"}
    assert facts["ansible_azure_platform_fault_domain"] == 0
    assert facts["ansible_azure_interfaces"] == []


def test_lowercase_os_type_is_fixed_in_the_shortcut_only():
    facts = normalize(real("opentelemetry-go-contrib__compute_fullMetadata_2021-12-13.json"), "2021-12-13")
    assert facts["ansible_azure_os_type"] == "Linux"
    assert facts["ansible_azure_compute"]["os_type"] == "linux"
    assert facts["ansible_azure_tags"] == {"env": "prod", "team": "obs", "secret": "hidden"}
    assert facts["ansible_azure_compute"]["os_profile"] == {"computer_name": "computer-name"}


def test_genuine_jammy_capture_with_extended_section():
    document = real("cloud-init__instance_2021-08-01_extended_jammy_pickle.json")
    facts = normalize(document, "2021-08-01", include_user_data=True)
    compute = facts["ansible_azure_compute"]
    assert compute["user_data"] is None  # "" on the VM
    assert compute["public_keys"][0]["key_data"].endswith("root@publishing\n")
    assert compute["extended_location"] == {"name": None, "type": None}
    assert compute["virtual_machine_scale_set"] == {"id": None}
    assert compute["storage_profile"]["resource_disk"] == {"size": 7168}
    assert compute["security_profile"] == {"secure_boot_enabled": False, "virtual_tpm_enabled": False}
    assert compute["is_host_compatibility_layer_vm"] is False
    assert compute["os_profile"]["disable_password_authentication"] is True
    assert compute["eviction_policy"] is None and compute["priority"] is None
    assert facts["ansible_azure_metadata"]["extended"] == {"compute": {"hasCustomData": True, "ppsType": "None"}}
    assert facts["ansible_azure_tags"] == {"name": "azure-0909-225241"}
    assert facts["ansible_azure_public_ipv4"] is None
    assert facts["ansible_azure_environment"] == "AzurePublicCloud"


def test_confidential_vm_with_empty_objects():
    compute = normalize(real("WALinuxAgent__compute_cvm_metadata_PR3486.json"), "2021-12-13")["ansible_azure_compute"]
    for key in ("additional_capabilities", "host_group", "extended_location", "os_profile", "plan", "storage_profile"):
        assert compute[key] == {}, key
    assert compute["public_keys"] == []
    assert compute["platform_sub_fault_domain"] is None
    assert compute["platform_fault_domain"] == 36 and compute["platform_update_domain"] == 42
    assert compute["security_profile"] == {
        "secure_boot_enabled": True, "virtual_tpm_enabled": False, "encryption_at_host": True,
        "security_type": "ConfidentialVM"}


def test_ultra_data_disk_numbers_and_flags():
    compute = normalize(real("opentelemetry-python-contrib__compute_linux_2021-12-13.json"), "2021-12-13")[
        "ansible_azure_compute"]
    assert compute["storage_profile"]["data_disks"] == [{
        "bytes_per_second_throttle": 979202048, "caching": "None", "create_option": "Empty",
        "disk_capacity_bytes": 274877906944, "disk_size_gb": 1024, "image": {"uri": None}, "is_shared_disk": False,
        "is_ultra_disk": True, "lun": 0,
        "managed_disk": {
            "id": "/subscriptions/xxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxx/resourceGroups/macikgo-test-may-23/providers/"
                  "Microsoft.Compute/disks/exampledatadiskname",
            "storage_account_type": "StandardSSD_LRS"},
        "name": "exampledatadiskname", "ops_per_second_throttle": 65280, "vhd": {"uri": None},
        "write_accelerator_enabled": False}]
    assert compute["tags_list"][1] == {
        "name": "platformsettings.host_environment.service.platform_optedin_for_rootcerts", "value": "true"}


def test_data_disk_encryption_ephemeral_settings_and_os_type():
    """dataDisks[].diffDiskSettings, encryptionSettings and osType (2019-06-01) are known fields:
    the flag is a bool, "" is null, and "" where an object belongs is null, as for the OS disk."""
    disks = normalize(made("data_disk_encryption_and_ephemeral_settings.json"), "2021-11-01")[
        "ansible_azure_compute"]["storage_profile"]["data_disks"]
    vault = "/subscriptions/{}/resourceGroups/testrg/providers/Microsoft.KeyVault/vaults/test-kv"
    assert disks[0]["diff_disk_settings"] == {"option": "Local"}
    assert disks[0]["encryption_settings"] == {
        "enabled": True,
        "disk_encryption_key": {
            "secret_url": "https://test-disk.vault.azure.net/secrets/data-disk-secret/0123456789abcdef",
            "source_vault": {"id": vault.format("test-source-guid")}},
        "key_encryption_key": {
            "key_url": "https://test-key.vault.azure.net/keys/data-disk-kek/fedcba9876543210",
            "source_vault": {"id": vault.format("test-key-guid")}}}
    assert disks[0]["os_type"] == "Windows"
    assert (disks[0]["lun"], disks[0]["disk_size_gb"]) == (0, 512)
    assert disks[1]["diff_disk_settings"] == {"option": None}
    assert disks[1]["encryption_settings"] == {"enabled": False,
                                               "disk_encryption_key": {"secret_url": None, "source_vault": {"id": None}}}
    assert disks[1]["os_type"] is None
    assert disks[2]["diff_disk_settings"] is None and disks[2]["encryption_settings"] is None
    assert disks[2]["os_type"] == "linux"  # as IMDS sent it; only the top-level shortcut fixes the case


def test_unicode_values_pass_through():
    facts = normalize(real("WALinuxAgent__instance_unicode_2018-02-01.json"), "2018-02-01")
    assert facts["ansible_azure_name"] == "héalth"
    assert facts["ansible_azure_vm_id"] == "é7fdbfc4-2déb-4a4é-8615-éa6aaf50162é"
    assert facts["ansible_azure_compute"]["offer"] == "UbuntuSérvér"


def test_case_mismatch_between_resource_group_and_resource_id_is_kept():
    facts = normalize(real("cnquery__instance_afiune-metadata-test_linux_2021-02-01.json"), "2021-02-01")
    assert facts["ansible_azure_resource_group"] == "TESTRESOURCES"
    assert "/resourceGroups/TestResources/" in facts["ansible_azure_compute"]["resource_id"]
    image = facts["ansible_azure_compute"]["storage_profile"]["image_reference"]
    assert image["exact_version"] == "20.04.202502181" and image["community_gallery_image_id"] is None


def test_tags_list_leaf_and_compute_fragment_bodies():
    facts = normalize(real("nomad__compute_tagsList_filtered.json"), "2021-02-01")
    assert facts["ansible_azure_tags"] == {"Environment": "Test", "abc": "def", "unique.foo": "true"}
    facts = normalize(real("facter__instance_minimal_mock_2020-09-01.json"), "2020-09-01")
    assert facts["ansible_azure_environment"] == "AzurePublicCloud"
    assert facts["ansible_azure_compute"] == {"az_environment": "AzurePublicCloud"}
    assert facts["ansible_azure_interfaces"] == []


def test_unknown_key_in_trivial_document_is_kept():
    facts = normalize(real("salt__instance_trivial_mock_2020-09-01.json"), "2020-09-01")
    assert facts["ansible_azure_compute"] == {"test": "fulltest"}


# --- hand-made documents -------------------------------------------------------------


def test_tags_list_wins_over_string_and_string_only_tags_are_kept():
    facts = normalize(made("tags_list_and_string_disagree.json"), "2021-02-01")
    assert facts["ansible_azure_tags"] == {"env": "production", "owner": "ops", "semi": "a;b", "onlyinstring": "yes"}
    assert facts["ansible_azure_compute"]["tags"] == "env:staging;owner:ops;onlyinstring:yes"


def test_empty_tags_list_beside_a_string_loses_nothing():
    facts = normalize(made("tags_list_empty_beside_string.json"), "2021-02-01")
    assert facts["ansible_azure_tags"] == {"Department": "IT", "CostCenter": "1234"}


def test_tags_string_splits_at_the_first_colon_and_skips_empty_segments():
    facts = normalize(made("tags_string_with_colons_and_stray_semicolons.json"), "2017-08-01")
    assert facts["ansible_azure_tags"] == {
        "url": "https://example.com:8443/p", "empty": "", "bare": "", "time": "12:30:00"}


def test_tag_values_are_never_converted():
    facts = normalize(made("tags_list_values_look_typed.json"), "2021-02-01")
    assert facts["ansible_azure_tags"] == {"enabled": "true", "count": "42", "blank": "", "unicode": "Zürich ☁"}
    tags_list = facts["ansible_azure_compute"]["tags_list"]
    assert tags_list[:4] == [{"name": "enabled", "value": "true"}, {"name": "count", "value": "42"},
                             {"name": "blank", "value": ""}, {"name": "unicode", "value": "Zürich ☁"}]
    assert tags_list[5] is None  # "not-an-object" where an object belongs
    assert facts["ansible_azure_compute"]["tags"] is None


@pytest.mark.parametrize(("tags", "expected"), [
    ("", {}),
    (";", {}),
    (";;;", {}),
    ("a:1", {"a": "1"}),
    ("a:1;", {"a": "1"}),
    ("a:1;b", {"a": "1", "b": ""}),
    ("a:1;a:2", {"a": "2"}),
    ("a::", {"a": ":"}),
    (":x;y:", {"y": ""}),
    ("k 1:v 1; k2:v2", {"k 1": "v 1", " k2": "v2"}),
])
def test_tags_string_forms(tags, expected):
    assert normalize({"compute": {"tags": tags}}, "2017-08-01")["ansible_azure_tags"] == expected


def test_tags_list_non_string_values_become_their_json_text():
    compute = {"tagsList": [{"name": "n", "value": 5}, {"name": "b", "value": True}, {"name": "none", "value": None},
                            {"name": "missing"}, {"name": 7, "value": "skipped"}]}
    facts = normalize({"compute": compute}, "2021-02-01")
    # a name that is a number is kept under its JSON text (it used to vanish without a word)
    assert facts["ansible_azure_tags"] == {"n": "5", "b": "true", "none": "", "missing": "", "7": "skipped"}


def test_flags_and_numbers_sent_as_json_types():
    facts = normalize(made("flags_and_numbers_as_json_types.json"), "2021-12-13")
    compute = facts["ansible_azure_compute"]
    assert compute["platform_fault_domain"] == 2
    assert compute["platform_update_domain"] == 7 and not isinstance(compute["platform_update_domain"], bool)
    assert compute["platform_sub_fault_domain"] is None
    assert compute["is_host_compatibility_layer_vm"] is False
    assert compute["security_profile"] == {"secure_boot_enabled": True, "virtual_tpm_enabled": True,
                                           "encryption_at_host": False}
    assert compute["storage_profile"] == {"data_disks": [{"lun": 3, "disk_size_gb": "not-a-number",
                                                          "is_ultra_disk": "yes"}],
                                          "resource_disk": {"size": 0}}
    assert facts["ansible_azure_os_type"] == "Windows"
    assert facts["ansible_azure_platform_fault_domain"] == 2
    assert facts["ansible_azure_platform_update_domain"] == 7


def test_fault_domain_that_is_not_a_number_stays_a_string_and_the_shortcut_is_none():
    facts = normalize(made("fault_domain_not_a_number.json"), "2017-12-01")
    assert facts["ansible_azure_compute"]["platform_fault_domain"] == "n/a"
    assert facts["ansible_azure_platform_fault_domain"] is None
    assert facts["ansible_azure_platform_update_domain"] == -1
    assert facts["ansible_azure_zone"] == "In"
    assert facts["ansible_azure_os_type"] == "FreeBSD"


@pytest.mark.parametrize(("raw", "expected"), [
    ("0", 0), ("007", 7), ("-3", -3), ("+4", 4), ("1" * 5000, "1" * 5000), (" 5", " 5"), ("5 ", "5 "),
    ("٣", "٣"), ("1.5", "1.5"), ("0x10", "0x10"), (12, 12), (3.0, 3), (2.5, "2.5"), (True, "true"),
    ("", None), (None, None), ({"a": 1}, None), ([1], None),
])
def test_integer_fields(raw, expected):
    compute = normalize({"compute": {"platformFaultDomain": raw}}, "2017-04-02")["ansible_azure_compute"]
    assert compute["platform_fault_domain"] == expected
    assert type(compute["platform_fault_domain"]) is type(expected)


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("false", False), ("True", True), ("FALSE", False), ("yes", "yes"), ("1", "1"),
    (True, True), (False, False), (1, "1"), ("", None), (None, None), ([], None),
])
def test_flag_fields(raw, expected):
    compute = normalize({"compute": {"securityProfile": {"secureBootEnabled": raw}}}, "2020-06-01")["ansible_azure_compute"]
    assert compute["security_profile"]["secure_boot_enabled"] == expected
    assert type(compute["security_profile"]["secure_boot_enabled"]) is type(expected)


@pytest.mark.parametrize(("raw", "expected"), [
    ("westus", "westus"), ("true", "true"), ("42", "42"), (42, "42"), (False, "false"), (1.5, "1.5"),
    ("", None), ({"x": 1}, None), (["westus"], None),
])
def test_string_fields(raw, expected):
    facts = normalize({"compute": {"location": raw}}, "2017-04-02")
    assert facts["ansible_azure_compute"]["location"] == expected
    assert facts["ansible_azure_location"] == expected


def test_known_objects_and_lists_of_the_wrong_type_become_none():
    compute = normalize({"compute": {"plan": "planName", "publicKeys": {"keyData": "x"},
                                     "storageProfile": {"dataDisks": ["disk0", {"lun": "1"}]}}},
                        "2019-06-01")["ansible_azure_compute"]
    assert compute == {"plan": None, "public_keys": None, "storage_profile": {"data_disks": [None, {"lun": 1}]}}


def test_unknown_fields_are_kept_snake_cased_and_not_converted():
    document = made("unknown_future_fields.json")
    facts = normalize(document, "2025-04-07")
    compute = facts["ansible_azure_compute"]
    assert compute["future_flag_enabled"] == "true"
    assert compute["future_count"] == "12"
    assert compute["future_empty"] is None
    assert compute["future_object"] == {"inner_id": "abc", "https_proxy_url": None,
                                        "nested_list": [{"some_key": "x"}, None, 5]}
    assert compute["security_profile"] == {"secure_boot_enabled": True, "future_security_thing": "false"}
    assert facts["ansible_azure_metadata"]["futureTopLevel"] == {"kept": "in metadata"}
    assert facts["ansible_azure_private_ipv4"] == "10.0.0.7"


def test_mac_addresses_in_every_form():
    facts = normalize(made("mac_addresses_in_every_form.json"), "2017-04-02")
    assert [nic["mac_address"] for nic in facts["ansible_azure_interfaces"]] == [
        "00:0d:3a:f8:06:ec", "00:0d:3a:f8:06:ed", "00:0d:3a:f8:06:ee", "not-a-mac", None, None]
    assert facts["ansible_azure_mac_addresses"] == [
        "00:0d:3a:f8:06:ec", "00:0d:3a:f8:06:ed", "00:0d:3a:f8:06:ee", "not-a-mac"]
    assert facts["ansible_azure_private_ipv4_addresses"] == [
        "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.15"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("000D3AF806EC", "00:0d:3a:f8:06:ec"), ("000d3af806ec", "00:0d:3a:f8:06:ec"),
    ("00:0D:3A:F8:06:EC", "00:0d:3a:f8:06:ec"), ("00-0D-3A-F8-06-EC", "00:0d:3a:f8:06:ec"),
    ("000D.3AF8.06EC", "00:0d:3a:f8:06:ec"), ("000D3AF806E", "000D3AF806E"), ("000D3AF806ECAA", "000D3AF806ECAA"),
    ("GG0D3AF806EC", "GG0D3AF806EC"), ("", None), (None, None), (123, None),
])
def test_mac_address_forms(raw, expected):
    facts = normalize({"network": {"interface": [{"macAddress": raw}]}}, "2017-04-02")
    assert facts["ansible_azure_interfaces"][0]["mac_address"] == expected


def test_odd_types_inside_interfaces_are_treated_as_absent():
    facts = normalize(made("interfaces_with_odd_inner_types.json"), "2017-04-02")
    assert facts["ansible_azure_interfaces"] == [
        {"mac_address": "00:0d:3a:00:00:10", "ipv4_addresses": [], "ipv4_subnets": [], "ipv6_addresses": [],
         "ipv6_subnets": []},
        {"mac_address": "00:0d:3a:00:00:11", "ipv4_addresses": [], "ipv4_subnets": [], "ipv6_addresses": [],
         "ipv6_subnets": []},
        {"mac_address": "00:0d:3a:00:00:12",
         "ipv4_addresses": [{"private": None, "public": None, "public_source": None},
                            {"private": "10.0.0.7", "public": None, "public_source": None}],
         "ipv4_subnets": ["10.0.0.0/24", "10.9.0.0"], "ipv6_addresses": ["fd00::7"], "ipv6_subnets": []},
        {"mac_address": None, "ipv4_addresses": [], "ipv4_subnets": [], "ipv6_addresses": [], "ipv6_subnets": []},
    ]
    assert facts["ansible_azure_private_ipv4_addresses"] == ["10.0.0.7"]
    assert facts["ansible_azure_mac_addresses"] == ["00:0d:3a:00:00:10", "00:0d:3a:00:00:11", "00:0d:3a:00:00:12"]


def test_dual_stack_with_secondary_addresses():
    facts = normalize(made("dual_stack_two_nics_with_secondary_addresses.json"), "2021-02-01")
    assert facts["ansible_azure_interfaces"][0] == {
        "mac_address": "60:45:bd:a5:a6:f1",
        "ipv4_addresses": [{"private": "10.1.0.4", "public": "20.1.2.3", "public_source": "instance"},
                           {"private": "10.1.0.5", "public": None, "public_source": None}],
        "ipv4_subnets": ["10.1.0.0/24"], "ipv6_addresses": ["ace:cab:deca::4", "ace:cab:deca::5"],
        "ipv6_subnets": ["ace:cab:deca::/64"]}
    assert facts["ansible_azure_private_ipv4_addresses"] == ["10.1.0.4", "10.1.0.5", "10.2.0.4"]
    assert facts["ansible_azure_public_ipv4_addresses"] == ["20.1.2.3", "20.1.2.4"]
    assert facts["ansible_azure_ipv6_addresses"] == ["ace:cab:deca::4", "ace:cab:deca::5"]
    assert facts["ansible_azure_public_ipv4"] == "20.1.2.3"


def test_user_data_multiline_utf8_is_decoded():
    facts = normalize(made("user_data_cloud_config_multiline.json"), "2021-01-01", include_user_data=True)
    assert facts["ansible_azure_compute"]["user_data"] == (
        "#cloud-config\npackages:\n  - nginx\nwrite_files:\n  - path: /etc/motd\n    content: Grüße\n")


@pytest.mark.parametrize("name", ["user_data_not_base64.json", "user_data_binary_gzip.json"])
def test_user_data_that_is_not_base64_text_is_kept_as_sent(name):
    document = made(name)
    facts = normalize(document, "2021-01-01", include_user_data=True)
    assert facts["ansible_azure_compute"]["user_data"] == document["compute"]["userData"]
    assert "userData" not in normalize(document, "2021-01-01")["ansible_azure_metadata"]["compute"]


@pytest.mark.parametrize(("raw", "expected"), [
    (base64.b64encode(b"hello").decode(), "hello"),
    ("aGVs\nbG8=\n", "hello"),  # line-wrapped base64
    ("aGVsbG8", "aGVsbG8"),  # padding missing: not base64
    ("", None),
    (None, None),
    (5, "5"),
    (["aGVsbG8="], None),
])
def test_user_data_values(raw, expected):
    facts = normalize({"compute": {"userData": raw}}, "2021-01-01", include_user_data=True)
    assert facts["ansible_azure_compute"]["user_data"] == expected


def test_camel_and_snake_spellings_of_one_key_are_both_kept():
    compute = normalize(made("key_written_both_camel_and_snake.json"), "2017-04-02")["ansible_azure_compute"]
    assert compute == {"vm_id": "snake-value", "vmId": "camel-value", "vm_size": "Standard_B1s"}
    compute = normalize({"compute": {"vm_id": "snake-value", "vmId": "camel-value"}}, "2017-04-02")["ansible_azure_compute"]
    assert compute == {"vm_id": "snake-value", "vmId": "camel-value"}


def test_empty_sections_give_empty_facts():
    facts = normalize(made("empty_compute_and_network.json"), "2025-04-07")
    assert facts["ansible_azure_compute"] == {}
    assert facts["ansible_azure_interfaces"] == []
    assert facts["ansible_azure_tags"] == {}
    for key in ("vm_id", "name", "location", "vm_size", "zone", "resource_group", "subscription_id", "os_type",
                "platform_fault_domain", "platform_update_domain", "environment", "private_ipv4", "public_ipv4"):
        assert facts[f"ansible_azure_{key}"] is None, key
    for key in ("private_ipv4_addresses", "public_ipv4_addresses", "ipv6_addresses", "mac_addresses"):
        assert facts[f"ansible_azure_{key}"] == [], key
    assert normalize(made("network_interface_list_empty.json"), "2025-04-07")["ansible_azure_interfaces"] == []
    assert normalize({"compute": {}, "network": {"interface": ""}}, "2025-04-07")["ansible_azure_interfaces"] == []


# --- rejected documents ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("invalid_compute_is_a_list.json", "compute is a list, not an object: this is not an IMDS instance document"),
    ("invalid_network_is_a_string.json", "network is a string, not an object: this is not an IMDS instance document"),
    ("invalid_interface_is_an_object.json", "network.interface is an object, not a list of network interfaces"),
    ("invalid_interface_entry_is_a_string.json",
     "network.interface[1] is a string, not a network interface object"),
    ("invalid_empty_object.json", "the document is an empty object; an instance document has compute and network"),
])
def test_invalid_documents_are_rejected_with_a_sentence(name, message):
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(made(name), "2021-02-01")
    assert str(caught.value) == message


@pytest.mark.parametrize(("document", "message"), [
    (None, "the document is null; an IMDS instance document is an object with compute and network"),
    ("text", "the document is a string; an IMDS instance document is an object with compute and network"),
    ([{"compute": {}}], "the document is a list; an IMDS instance document is an object with compute and network"),
    (3, "the document is a number; an IMDS instance document is an object with compute and network"),
    (True, "the document is a boolean; an IMDS instance document is an object with compute and network"),
    ({"compute": None}, "compute is null, not an object: this is not an IMDS instance document"),
    ({"error": ""}, "the document has neither compute nor network (its keys: error); a /metadata/instance/compute "
                    "or /network body must be wrapped as {\"compute\": ...} or {\"network\": ...}"),
    ({str(i): i for i in range(7)}, "the document has neither compute nor network (its keys: 0, 1, 2, 3, 4, ...); "
                                    "a /metadata/instance/compute or /network body must be wrapped as "
                                    "{\"compute\": ...} or {\"network\": ...}"),
])
def test_values_that_are_not_documents(document, message):
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(document, "2021-02-01")
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_nesting_deeper_than_any_imds_document_is_rejected():
    deep: object = "leaf"
    for dummy in range(MAX_DEPTH + 5):
        deep = {"level": deep}
    with pytest.raises(ImdsDocumentError, match=f"compute is nested more than {MAX_DEPTH} levels deep"):
        normalize({"compute": {"future": deep}}, "2025-04-07")
    deep = "leaf"
    for dummy in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ImdsDocumentError, match="nested more than"):
        normalize({"compute": {"future": deep}}, "2025-04-07")
    shallow: object = "leaf"
    for dummy in range(MAX_DEPTH - 3):
        shallow = {"level": shallow}
    assert normalize({"compute": {"future": shallow}}, "2025-04-07")["ansible_azure_compute"]["future"]["level"]


# --- snake_case -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("vmId", "vm_id"), ("platformFaultDomain", "platform_fault_domain"), ("azEnvironment", "az_environment"),
    ("isHostCompatibilityLayerVm", "is_host_compatibility_layer_vm"), ("diskSizeGB", "disk_size_gb"),
    ("osType", "os_type"), ("resourceId", "resource_id"), ("HTTPSProxy", "https_proxy"), ("vmID", "vm_id"),
    ("ipv4", "ipv4"), ("ipv4Address", "ipv4_address"), ("publicIpAddress", "public_ip_address"),
    ("URLPathID", "url_path_id"), ("already_snake", "already_snake"), ("VmSize", "vm_size"), ("A", "a"),
    ("", ""), ("newest-versions", "newest-versions"), ("keyData", "key_data"), ("sizeInGBs", "size_in_g_bs"),
])
def test_snake_case(name, expected):
    assert snake_case(name) == expected
    assert oracle_snake(name) == expected


# --- purity --------------------------------------------------------------------------


@pytest.mark.parametrize("name", INSTANCE_NAMES)
def test_normalize_is_pure_and_deterministic(name):
    document = real(name)
    before = json.dumps(document)
    first = normalize(document, "2021-02-01", include_user_data=True)
    second = normalize(copy.deepcopy(document), "2021-02-01", include_user_data=True)
    assert json.dumps(document) == before
    assert json.dumps(first) == json.dumps(second)
    assert normalize(document, "2021-02-01", include_user_data=1) == first  # truthy is enough


# --- hostile documents: depth anywhere, NaN, what is no JSON ------------------------------


def nested(levels: int, leaf: object = "leaf", container: str = "dict") -> object:
    """A value ``levels`` containers deep, built without recursion."""
    for dummy in range(levels):
        leaf = {"level": leaf} if container == "dict" else [leaf]
    return leaf


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 250, 900, 100_000])
@pytest.mark.parametrize("where", ["network", "extended", "compute"])
@pytest.mark.parametrize("container", ["dict", "list"])
def test_nesting_too_deep_anywhere_is_one_line_error(levels, where, container):
    """Deep JSON outside compute used to be passed through into azure_metadata and break Ansible's output."""
    document = {"compute": {"vmId": "x"}, "network": {"interface": []}}
    document[where] = {"future": nested(levels, container=container)}
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(document, "2025-04-07")
    assert str(caught.value) == (f"{where} is nested more than {MAX_DEPTH} levels deep; an IMDS instance document "
                                 "is not")


def test_nesting_up_to_the_limit_is_kept_everywhere():
    for where in ("network", "extended"):
        document = {"compute": {}, where: {"future": nested(MAX_DEPTH - 2)}}
        facts = normalize(document, "2025-04-07")
        assert facts["ansible_azure_metadata"][where] == document[where]
        json.dumps(facts)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", [("compute", "platformFaultDomain"), ("compute", "future"),
                                   ("network", "future"), ("extended", "x")])
def test_nan_and_infinity_are_refused_wherever_they_are(value, where):
    document = {"compute": {}, "network": {"interface": []}}
    document.setdefault(where[0], {})[where[1]] = [1, {"deep": value}]
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(document, "2025-04-07")
    message = str(caught.value)
    assert f"{where[0]}.{where[1]}[1].deep is {value}, which is not JSON" in message and "\n" not in message


@pytest.mark.parametrize("value", [("a", "tuple"), {1, 2}, b"bytes", object(), complex(1, 2)])
def test_values_of_no_json_type_are_refused(value):
    with pytest.raises(ImdsDocumentError, match="which is no JSON value"):
        normalize({"compute": {"x": value}}, "2025-04-07")


def test_numbers_too_long_to_write_as_json_are_refused():
    with pytest.raises(ImdsDocumentError, match="network.x is a number of more than 4000 digits"):
        normalize({"compute": {}, "network": {"x": 10 ** 5000}}, "2025-04-07")
    json.dumps(normalize({"compute": {"platformFaultDomain": 10 ** 3000}}, "2025-04-07"))


def test_a_key_with_escapes_is_shown_escaped_in_the_depth_error():
    key = "\x1b[2Jnet\r\nwork\u202e"
    with pytest.raises(ImdsDocumentError) as caught:
        normalize({"compute": {}, key: nested(MAX_DEPTH + 1)}, "2025-04-07")
    assert str(caught.value).isprintable() and "\\x1b[2J" in str(caught.value)


# --- fields missing because of the api-version --------------------------------------------


def emulator_document(version: str) -> dict:
    from imds_emulator import Emulator, document_for_version  # the independent oracle, its own version table

    return document_for_version(Emulator(profile="linux").document, version)


def test_an_old_api_version_says_which_facts_it_lacks():
    facts = normalize(emulator_document("2017-08-01"), "2017-08-01")
    missing = facts["ansible_azure_missing_by_api_version"]
    for field in ("compute.zone", "compute.tagsList", "compute.storageProfile", "compute.azEnvironment",
                  "compute.vmScaleSetName", "compute.securityProfile"):
        assert field in missing
    assert "compute.tags" not in missing and "compute.vmId" not in missing  # 2017-08-01 has them
    assert not any(field.startswith("compute.storageProfile.") for field in missing)  # the outermost only
    assert "compute.userData" not in missing  # not asked for
    assert facts["ansible_azure_zone"] is None  # tags still come from the tags string (2017-08-01)
    [warning] = facts_warnings(facts)
    assert warning.startswith("IMDS answered with api-version 2017-08-01, which predates compute.vmScaleSetName "
                              "(since 2017-12-01), compute.zone (since 2017-12-01)")
    assert "not because the VM lacks them" in warning and f"and {len(missing) - 8} more" in warning
    assert warning.isprintable()


def test_fields_below_a_present_object_are_listed_where_the_version_lacks_them():
    document = emulator_document("2021-02-01")
    assert document["compute"]["storageProfile"]["dataDisks"], "the profile has data disks"
    missing = normalize(document, "2021-02-01")["ansible_azure_missing_by_api_version"]
    assert "compute.storageProfile.dataDisks[].diskCapacityBytes" in missing  # 2021-05-01
    assert "compute.securityProfile.encryptionAtHost" in missing  # 2021-11-01
    assert "compute.storageProfile" not in missing and "compute.tagsList" not in missing


def test_the_newest_version_lacks_nothing_and_a_field_sent_anyway_is_not_missing():
    facts = normalize(emulator_document("2025-04-07"), "2025-04-07")
    assert facts["ansible_azure_missing_by_api_version"] == [] and facts_warnings(facts) == []
    assert missing_by_api_version({"compute": {"zone": "1"}}, "2017-08-01").count("compute.zone") == 0
    assert "compute.zone" in missing_by_api_version({"compute": {}}, "2017-08-01")
    assert "compute.userData" in missing_by_api_version({"compute": {}}, "2020-12-01", include_user_data=True)


@pytest.mark.parametrize("version", ["", "latest", None, 5, "2017-13-01"])
def test_an_api_version_that_is_no_date_lists_nothing(version):
    assert missing_by_api_version({"compute": {}}, version) == []


# --- tagsList entries whose name is no string ----------------------------------------------


def test_tag_names_that_are_no_string_are_kept_under_their_json_text():
    compute = {"tagsList": [{"name": 7, "value": "seven"}, {"name": True, "value": "t"}, {"name": 1.5, "value": "x"},
                            {"name": {"a": 1}, "value": "obj"}, {"name": ["l"], "value": 2}]}
    facts = normalize({"compute": compute}, "2025-04-07")
    assert facts["ansible_azure_tags"] == {"7": "seven", "true": "t", "1.5": "x", '{"a": 1}': "obj", '["l"]': "2"}
    assert facts_warnings(facts) == []


def test_entries_that_name_no_tag_are_left_out_with_a_warning():
    compute = {"tagsList": [{"name": "env", "value": "prod"}, {"name": None, "value": "a"}, {"value": "b"},
                            {"name": "", "value": "c"}, "env:test", 5, None]}
    facts = normalize({"compute": compute}, "2025-04-07")
    assert facts["ansible_azure_tags"] == {"env": "prod"}
    [warning] = facts_warnings(facts)
    assert warning.startswith("compute.tagsList entries 1, 2, 3, 4, 5, 6 name no tag")
    assert "ansible_facts['azure_metadata'] has the raw list" in warning
    one = facts_warnings(normalize({"compute": {"tagsList": [{"value": "b"}]}}, "2025-04-07"))
    assert one == ["compute.tagsList entry 0 names no tag (not an object, or a name that is missing, null or "
                   "empty), so ansible_facts['azure_tags'] leaves it out; ansible_facts['azure_metadata'] has the raw "
                   "list."]
