"""normalize() against generated IMDS-shaped documents (hypothesis; strategies in tests/utils/strategies.py).

Whatever the document, normalize() returns facts that validate against
docs/facts.schema.json, or raises ImdsDocumentError, and nothing else; the same document
always gives the same facts; userData stays out unless asked for.

The number of examples comes from the hypothesis profile named by HYPOTHESIS_PROFILE:
``imds-default`` (200 examples per test, the default test run) or ``ci-long`` (10,000,
run by scripts/property-tests).
"""
from __future__ import annotations

import base64
import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, normalize
from ansible_collections.imds.azure.tests.utils.facts import schema_errors
from ansible_collections.imds.azure.tests.utils.strategies import broken_documents, instance_documents, json_values, unicode_text

pytestmark = pytest.mark.property

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile("imds-default", max_examples=200, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("ci-long", max_examples=10_000, deadline=None, suppress_health_check=_QUIET)
PROFILE = settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "imds-default")))


def run(document: object, version: str, include_user_data: bool) -> dict | ImdsDocumentError:
    """normalize(), with ImdsDocumentError returned instead of raised; any other exception escapes."""
    try:
        return normalize(document, version, include_user_data=include_user_data)
    except ImdsDocumentError as error:
        return error


@PROFILE
@given(instance_documents(), st.booleans())
def test_instance_documents_give_the_same_schema_valid_facts_every_time(drawn, include_user_data):
    version, document = drawn
    before = json.dumps(document)
    facts = normalize(document, version, include_user_data=include_user_data)  # must not raise
    assert json.dumps(document) == before, "normalize() changed the document"
    assert schema_errors(facts) == []
    json.dumps(facts, allow_nan=False)  # plain JSON: Ansible can show and cache it
    # deterministic: the same facts, in the same key order, again and from a copy
    again = normalize(copy.deepcopy(document), version, include_user_data=include_user_data)
    assert json.dumps(again) == json.dumps(facts)

    assert facts["ansible_azure_api_version"] == version
    nics = document.get("network", {}).get("interface", [])
    assert len(facts["ansible_azure_interfaces"]) == len(nics)
    private = facts["ansible_azure_private_ipv4_addresses"]
    assert facts["ansible_azure_private_ipv4"] == (private[0] if private else None)
    for mac in facts["ansible_azure_mac_addresses"]:
        digits = mac.replace(":", "")
        if len(mac) == 17 and all(c in "0123456789abcdef" for c in digits):
            assert mac == mac.lower()
    # tags: tagsList wins (its last entry of a name), every tag is text
    compute = document.get("compute")
    tags_list = compute.get("tagsList") if isinstance(compute, dict) else None
    last = {}
    for entry in tags_list if isinstance(tags_list, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            last[entry["name"]] = entry.get("value")
    tags = facts["ansible_azure_tags"]
    for name, value in last.items():
        if value is None or isinstance(value, str):
            assert tags[name] == (value or "")
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in tags.items())


@PROFILE
@given(st.one_of(json_values(), broken_documents().map(lambda drawn: drawn[1]), instance_documents().map(
    lambda drawn: drawn[1])), st.booleans())
def test_anything_gives_facts_or_imds_document_error(document, include_user_data):
    outcome = run(document, "2025-04-07", include_user_data)
    if isinstance(outcome, ImdsDocumentError):
        assert isinstance(str(outcome), str) and str(outcome)
    else:
        assert schema_errors(outcome) == []


@PROFILE
@given(broken_documents(), st.booleans())
def test_documents_broken_at_the_top_are_refused(drawn, include_user_data):
    version, document = drawn
    with pytest.raises(ImdsDocumentError) as caught:
        normalize(document, version, include_user_data=include_user_data)
    message = str(caught.value)
    assert message and "Traceback" not in message
    assert message.isprintable(), "one line, no terminal escapes, whatever the document holds"
    assert len(message) < 1000


@PROFILE
@given(instance_documents(versions=("2021-01-01", "2023-07-01", "2025-04-07")),
       unicode_text(60).map(lambda text: f"imds-canary-{text}-secret"))
def test_user_data_only_with_the_opt_in(drawn, secret):
    version, document = drawn
    document.setdefault("compute", {})
    encoded = base64.b64encode(secret.encode("utf-8")).decode("ascii")
    document["compute"] = {**document["compute"], "userData": encoded}
    hidden = json.dumps(normalize(document, version, include_user_data=False), ensure_ascii=False)
    assert encoded not in hidden and secret not in hidden and "imds-canary-" not in hidden
    shown = normalize(document, version, include_user_data=True)
    assert shown["ansible_azure_compute"]["user_data"] == secret
    assert shown["ansible_azure_metadata"]["compute"]["userData"] == encoded
