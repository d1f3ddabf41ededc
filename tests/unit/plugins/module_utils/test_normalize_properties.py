"""Property tests: whatever JSON comes in, normalize() returns schema-valid facts or says why not."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, normalize
from ansible_collections.imds.azure.plugins.module_utils._versions import FIELDS
from ansible_collections.imds.azure.tests.utils.facts import schema_errors

pytestmark = pytest.mark.property

# Names IMDS uses, so that generated documents hit the known fields, not only unknown ones.
NAMES = sorted({segment.replace("[]", "") for field in FIELDS for segment in field.path.split(".")})
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(["", "true", "false", "0", "42", "-1", "In", "000D3AF806EC", "a:b;c:d", "Zm9vYmFy"])
           | st.text(max_size=12))
KEYS = st.sampled_from(NAMES) | st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=30)
INSTANCE = st.fixed_dictionaries({}, optional={"compute": JSON, "network": JSON, "extended": JSON})
SMALL = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                     max_leaves=8)
ADDRESS = st.sampled_from(["10.0.0.4", "20.1.2.3", "", "fd00::4", "10.0.0.0", "24", "64"])
ENTRY = st.dictionaries(st.sampled_from(["privateIpAddress", "publicIpAddress", "address", "prefix"]),
                        ADDRESS | ADDRESS | SMALL, max_size=4)
FAMILY = st.fixed_dictionaries({}, optional={"ipAddress": st.lists(ENTRY, max_size=3) | SMALL,
                                             "subnet": st.lists(ENTRY, max_size=2) | SMALL})
NIC_VALUE = FAMILY | SMALL | st.sampled_from(["000D3AF806EC", "00-0d-3a-f8-06-ec"])
NIC = st.dictionaries(st.sampled_from(["macAddress", "ipv4", "ipv6", "x"]), NIC_VALUE, max_size=4)
NETWORKED = st.fixed_dictionaries({"network": st.fixed_dictionaries({"interface": st.lists(NIC, max_size=3)})},
                                  optional={"compute": st.dictionaries(KEYS, SMALL, max_size=8)})


def check(document: object, include_user_data: bool) -> None:
    before = json.dumps(document)
    try:
        facts = normalize(document, "2025-04-07", include_user_data=include_user_data)
    except ImdsDocumentError as error:
        assert str(error)
        return
    finally:
        assert json.dumps(document) == before
    assert schema_errors(facts, limit=1000) == []
    json.dumps(facts, allow_nan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, st.booleans())
def test_any_json_value(document, include_user_data):
    check(document, include_user_data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(INSTANCE, st.booleans())
def test_any_instance_shaped_document(document, include_user_data):
    check(document, include_user_data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NETWORKED, st.booleans())
def test_any_document_with_interfaces(document, include_user_data):
    check(document, include_user_data)


def _two_pass_snake(name: str) -> str:
    import re

    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("aBcDzZ09_-xYÉé"), max_size=12) | st.sampled_from(NAMES))
def test_snake_case_matches_the_two_pass_rule(name):
    from ansible_collections.imds.azure.plugins.module_utils._normalize import snake_case

    assert snake_case(name) == _two_pass_snake(name)
