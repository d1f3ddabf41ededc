"""The facts JSON Schema (docs/facts.schema.json) agrees with FIELDS and with the normalizer.

The schema is keyed as plays read the facts (``ansible_facts['azure_vm_id']``); the
reference pages of the docsite are generated from it and from FIELDS by
scripts/facts-docs (which scripts/test runs with --check).
"""
from __future__ import annotations

import jsonschema

from ansible_collections.imds.azure.plugins.module_utils._normalize import normalize, snake_case
from ansible_collections.imds.azure.plugins.module_utils._versions import FIELDS
from ansible_collections.imds.azure.tests.utils.facts import SCHEMA, as_users_see


def fact_path(imds_path: str) -> str:
    """compute.storageProfile.dataDisks[].diskSizeGB -> storage_profile.data_disks[].disk_size_gb."""
    parts = imds_path.split(".")[1:]
    return ".".join(snake_case(part[:-2]) + "[]" if part.endswith("[]") else snake_case(part) for part in parts)


def _schema_nodes(node: dict, prefix: str, found: dict[str, dict]) -> None:
    for name, child in node.get("properties", {}).items():
        found[f"{prefix}{name}"] = child
        _schema_nodes(child, f"{prefix}{name}.", found)
        if isinstance(child.get("items"), dict):
            _schema_nodes(child["items"], f"{prefix}{name}[].", found)


KIND_TYPES = {
    "str": ["string", "null"],
    "raw": ["string", "null"],
    "base64": ["string", "null"],
    "int": ["integer", "string", "null"],
    "bool": ["boolean", "string", "null"],
    "object": ["object", "null"],
    "list": ["array", "null"],
}


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_names_the_facts_as_plays_read_them():
    """ansible_facts['azure_vm_id']: the module's ansible_azure_* keys as ansible-core strips them."""
    document = {"compute": {"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "name": "vm"},
                "network": {"interface": []}}
    facts = normalize(document, "2025-04-07")
    assert all(name.startswith("ansible_azure_") for name in facts)  # what the module returns
    seen = as_users_see({**facts, "ansible_azure_detection_reason": "the endpoint was given explicitly"})
    assert sorted(seen) == sorted(SCHEMA["properties"])
    assert seen["azure_vm_id"] == "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
    # the module's own keys are not what the schema describes
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(facts)


def test_schema_compute_matches_the_field_table():
    """Every compute field in FIELDS is in the schema with the type its kind gives, and back."""
    found: dict[str, dict] = {}
    _schema_nodes(SCHEMA["$defs"]["compute"], "", found)
    expected = {fact_path(f.path): f for f in FIELDS if f.path.startswith("compute.")}
    assert sorted(found) == sorted(expected)
    for path, field in expected.items():
        assert found[path]["type"] == KIND_TYPES[field.kind], path
        assert found[path].get("description"), f"{path} has no description"


def test_schema_load_balancer_matches_the_field_table():
    """Every load balancer field in FIELDS is in the schema with the type its kind gives, and back."""
    found: dict[str, dict] = {}
    _schema_nodes(SCHEMA["$defs"]["load_balancer"], "", found)
    expected = {fact_path(f.path): f for f in FIELDS if f.path.startswith("loadbalancer.")}
    assert sorted(found) == sorted(expected)
    for path, field in expected.items():
        # the three lists are always lists (of whole entries), never null
        assert found[path]["type"] == ("array" if field.kind == "list" else KIND_TYPES[field.kind]), path
        assert found[path].get("description"), f"{path} has no description"


def test_every_leaf_fact_has_an_example():
    found: dict[str, dict] = {}
    _schema_nodes(SCHEMA, "", found)
    _schema_nodes(SCHEMA["$defs"]["compute"], "azure_compute.", found)
    _schema_nodes(SCHEMA["$defs"]["interface"], "azure_interfaces[].", found)
    _schema_nodes(SCHEMA["$defs"]["public_ip_address"], "azure_public_ip_addresses[].", found)
    _schema_nodes(SCHEMA["$defs"]["load_balancer"], "azure_load_balancer.", found)
    containers = {"object", "array"}
    missing = [path for path, node in found.items()
               if "$ref" not in node and not containers & set(node["type"] if isinstance(node["type"], list) else [node["type"]])
               and "examples" not in node]
    assert missing == []


def test_every_top_level_fact_is_required_and_documented():
    module_only = ["azure_detection_reason"]
    assert SCHEMA["else"]["required"] == [name for name in SCHEMA["properties"] if name not in module_only]
    assert SCHEMA["additionalProperties"] is False
    for name, node in SCHEMA["properties"].items():
        assert name.startswith("azure_")
        assert node.get("description") or "$ref" in node, name
        imds = node.get("x-imds-field")
        if imds:
            assert imds in {f.path for f in FIELDS}, f"{name}: x-imds-field {imds} is not in FIELDS"
