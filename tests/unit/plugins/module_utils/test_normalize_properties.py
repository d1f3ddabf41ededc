"""Property tests: whatever JSON comes in, normalize() returns schema-valid facts or says why not."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, load_balancer, normalize
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


# Load balancer documents: the known fields with addresses that match the interfaces' (or not),
# ports as numbers and strings, and odd values everywhere.
LB_ADDRESS = ADDRESS | st.sampled_from(["20.1.2.4", "2603:10e1:100:2::1:1", "192.168.1.1", "fe80::1", "x"])
LB_ENTRY = st.dictionaries(
    st.sampled_from(["frontendIpAddress", "privateIpAddress", "protocol", "frontendPort", "backendPort", "extra"]),
    LB_ADDRESS | st.integers(-1, 70000) | st.sampled_from(["80", "tcp", "Udp"]) | SMALL, max_size=6)
LB_INNER = st.fixed_dictionaries({}, optional={name: st.lists(LB_ENTRY | SMALL, max_size=4) | SMALL
                                               for name in ("publicIpAddresses", "inboundRules", "outboundRules")})
LB_DOCUMENT = st.fixed_dictionaries({"loadbalancer": LB_INNER}) | st.dictionaries(KEYS, SMALL, max_size=3) | SMALL


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NETWORKED, LB_DOCUMENT)
def test_any_load_balancer_document_merged(document, body):
    """load_balancer() refuses or reads any value; the merge keeps every non-public fact and fits the schema."""
    before = json.dumps(body)
    try:
        read = load_balancer(body)
    except ImdsDocumentError as error:
        assert str(error) and str(error).isprintable()
        return
    finally:
        assert json.dumps(body) == before
    facts = normalize(document, "2025-04-07", load_balancer=read)
    alone = normalize(document, "2025-04-07")
    errors = schema_errors(facts, limit=1000)
    assert errors == []
    json.dumps(facts, allow_nan=False)
    public = {"ansible_azure_interfaces", "ansible_azure_public_ipv4_addresses", "ansible_azure_public_ipv4",
              "ansible_azure_public_ipv4_source", "ansible_azure_public_ip_addresses", "ansible_azure_load_balancer",
              "ansible_azure_load_balancer_metadata", "ansible_azure_load_balancer_status"}
    assert {k: v for k, v in facts.items() if k not in public} == {k: v for k, v in alone.items() if k not in public}
    assert facts["ansible_azure_load_balancer_status"] == "found"
    for rule in facts["ansible_azure_load_balancer"]["inbound_rules"]:
        for port in ("frontend_port", "backend_port"):  # numbers are ints; nothing else is made one
            assert not isinstance(rule[port], (float, bool))


def _two_pass_snake(name: str) -> str:
    import re

    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("aBcDzZ09_-xYÉé"), max_size=12) | st.sampled_from(NAMES))
def test_snake_case_matches_the_two_pass_rule(name):
    from ansible_collections.imds.azure.plugins.module_utils._normalize import snake_case

    assert snake_case(name) == _two_pass_snake(name)


# -- hostile documents: deep anywhere, NaN, no JSON at all, text that forges output -------------

from ansible_collections.imds.azure.plugins.module_utils._normalize import facts_warnings  # noqa: E402
from ansible_collections.imds.azure.tests.utils.properties import assert_one_line, bounded  # noqa: E402
from ansible_collections.imds.azure.tests.utils.strategies import deep_values, hostile_values, instance_documents  # noqa: E402

BOUNDED = bounded(150)


def check_hostile(document: object, version: object, include_user_data: bool) -> None:
    """A result that is plain JSON and fits the schema, or ImdsDocumentError with one printable line."""
    try:
        facts = normalize(document, version, include_user_data=include_user_data)  # type: ignore[arg-type]
    except ImdsDocumentError as error:
        assert_one_line(str(error))
        return
    json.dumps(facts, allow_nan=False)  # never NaN, never too deep for Ansible's output
    for warning in facts_warnings(facts):
        assert_one_line(warning)
    if isinstance(version, str):
        assert schema_errors(facts, limit=1000) == []


@BOUNDED
@given(st.fixed_dictionaries({}, optional={"compute": hostile_values(), "network": hostile_values(),
                                           "extended": hostile_values()}),
       st.sampled_from(["2017-04-02", "2019-06-01", "2025-04-07", "", "latest"]), st.booleans())
def test_any_hostile_document_gives_facts_or_one_line(document, version, include_user_data):
    check_hostile(document, version, include_user_data)


@BOUNDED
@given(instance_documents(), st.sampled_from(["compute", "network", "extended"]), deep_values(), st.booleans())
def test_deep_nesting_anywhere_in_a_real_document_is_refused_in_one_line(drawn, where, deep, include_user_data):
    version, document = drawn
    document[where] = {"x": deep} if where != "network" else {**document.get("network", {}), "x": deep}
    check_hostile(document, version, include_user_data)
