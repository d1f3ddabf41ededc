"""Instance documents no IMDS should send, through real ansible-playbook runs of imds.azure.metadata_facts.

Issue 14, defects 8 and 13: JSON nested hundreds of levels outside ``compute`` went into
``azure_metadata`` and broke Ansible's output; an old api-version lost tags and zone without
a word; a ``tagsList`` name that is a number vanished from ``azure_tags``.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.imds.azure.tests.playbooks.test_metadata_facts import gather, profile


def public(document: dict) -> dict:
    """An emulator profile without its own settings (keys starting with _): the document IMDS serves."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


def nested_json(levels: int) -> str:
    return "[" * levels + '"leaf"' + "]" * levels


@pytest.mark.parametrize("where", ["network", "extended"])
@pytest.mark.parametrize("levels", [250, 900])
def test_deep_json_outside_compute_is_a_one_line_failure(emulator, playbook, where, levels):
    document = public(profile("linux"))
    document.setdefault(where, {})["future"] = "DEEP"
    document = json.dumps(document).replace('"DEEP"', nested_json(levels))
    emu = emulator(profile="linux", faults={"body": {"text": document}})
    result = playbook(gather("api_version: '2025-04-07'"), extra_vars={"endpoint": emu.url})
    assert result.returncode == 2, result.output
    # the client refuses it before the normalizer sees it, wherever it is in the document
    assert "answered with JSON nested more than 64 levels deep; IMDS documents are a few levels deep" in result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output


def test_an_old_api_version_says_which_facts_it_lacks(emulator, playbook):
    emu = emulator(profile="linux")
    result = playbook(gather("api_version: '2017-08-01'"), extra_vars={"endpoint": emu.url}).check()
    facts = result.read_json("facts.json")
    assert facts["azure_api_version"] == "2017-08-01" and facts["azure_zone"] is None
    missing = facts["azure_missing_by_api_version"]
    assert {"compute.zone", "compute.tagsList", "compute.storageProfile", "compute.azEnvironment"} <= set(missing)
    newest = playbook(gather(), extra_vars={"endpoint": emu.url}).check().read_json("facts.json")
    assert newest["azure_missing_by_api_version"] == [] and newest["azure_zone"] == profile("linux")["compute"]["zone"]


def test_tag_names_that_are_no_string_stay_in_the_tags(emulator, playbook):
    document = public(profile("linux"))
    document["compute"]["tagsList"] = [{"name": 7, "value": "seven"}, {"name": "env", "value": "prod"}]
    document["compute"]["tags"] = ""
    emu = emulator(profile="linux", faults={"body": {"text": json.dumps(document)}})
    facts = playbook(gather("api_version: '2025-04-07'"), extra_vars={"endpoint": emu.url}).check().read_json(
        "facts.json")
    assert facts["azure_tags"] == {"7": "seven", "env": "prod"}
