"""The facts module's main(): detection, options, results, with the transport patched."""
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _gather
from ansible_collections.imds.azure.plugins.module_utils._detect import AZURE_ASSET_TAG
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_PROBE_TIMEOUT as PROBE_TIMEOUT
from ansible_collections.imds.azure.plugins.modules import metadata_facts
from ansible_collections.imds.azure.tests.utils.modules import run_module
from ansible_collections.imds.azure.tests.utils.transport import NO_LOAD_BALANCER, ScriptedTransport

DOC = {
    "compute": {"vmId": "11111111-2222-3333-4444-555555555555", "name": "web0", "location": "westeurope",
                "platformFaultDomain": "1", "tagsList": [{"name": "env", "value": "prod"}],
                "userData": base64.b64encode(b"secret=1").decode()},
    "network": {"interface": [{"macAddress": "000D3AF806EC",
                               "ipv4": {"ipAddress": [{"privateIpAddress": "10.0.0.4", "publicIpAddress": ""}],
                                        "subnet": [{"address": "10.0.0.0", "prefix": "24"}]},
                               "ipv6": {"ipAddress": []}}]},
}


def run(monkeypatch, args, answers, load_balancer=(NO_LOAD_BALANCER,)):
    """Run main() with the transport answering from `answers` (and /metadata/loadbalancer from
    `load_balancer`: by default, IMDS's "no load balancer metadata"), each once; return (result, calls)."""
    transport = ScriptedTransport(*answers, strict=True, routes={"/metadata/loadbalancer": list(load_balancer)})
    return run_module(monkeypatch, metadata_facts, args, transport), transport.calls


def ok(doc=None):
    return HttpResponse(200, {}, json.dumps(DOC if doc is None else doc).encode())


@pytest.fixture
def dmi(tmp_path):
    def make(content):
        path = tmp_path / "chassis_asset_tag"
        path.write_text(content)
        return str(path)
    return make


def test_explicit_endpoint(monkeypatch):
    result, calls = run(monkeypatch, {"endpoint": "http://127.0.0.1:1"}, [ok()])
    facts = result["ansible_facts"]
    assert result["changed"] is False and not result["failed"]
    assert facts["ansible_azure_detected"] is True
    assert facts["ansible_azure_vm_id"] == DOC["compute"]["vmId"]
    assert facts["ansible_azure_tags"] == {"env": "prod"}
    assert facts["ansible_azure_platform_fault_domain"] == 1
    assert "given explicitly" in facts["ansible_azure_detection_reason"]
    assert len(calls) == 2 and calls[0]["url"].startswith("http://127.0.0.1:1/metadata/instance?api-version=")
    assert calls[1]["url"] == f"http://127.0.0.1:1/metadata/loadbalancer?api-version={facts['ansible_azure_api_version']}"
    assert facts["ansible_azure_load_balancer_status"] == "not_found" and not result["warnings"]


def test_user_data_left_out_by_default(monkeypatch):
    facts = run(monkeypatch, {"endpoint": "http://127.0.0.1:1"}, [ok()])[0]["ansible_facts"]
    assert "userData" not in facts["ansible_azure_metadata"]["compute"]
    assert "user_data" not in facts["ansible_azure_compute"]
    assert "secret" not in json.dumps(facts)


def test_user_data_opt_in(monkeypatch):
    facts = run(monkeypatch, {"endpoint": "http://127.0.0.1:1", "include_user_data": True}, [ok()])[0]["ansible_facts"]
    assert facts["ansible_azure_compute"]["user_data"] == "secret=1"


def test_not_azure_by_dmi_makes_no_request(monkeypatch, dmi):
    result, calls = run(monkeypatch, {"dmi_path": dmi("Default string\n")}, [])
    facts = result["ansible_facts"]
    assert not result["failed"] and calls == []
    assert facts["ansible_azure_detected"] is False and facts["ansible_azure_api_version"] is None
    assert "Default string" in facts["ansible_azure_detection_reason"]
    assert not result.get("warnings")


def test_not_azure_by_dmi_fails_when_required(monkeypatch, dmi):
    result, calls = run(monkeypatch, {"dmi_path": dmi("Default string\n"), "require_azure": True}, [])
    assert result["failed"] and calls == []
    assert "does not look like an Azure VM" in result["msg"]


def test_azure_by_dmi_queries_default_endpoint(monkeypatch, dmi):
    result, calls = run(monkeypatch, {"dmi_path": dmi(AZURE_ASSET_TAG + "\n")}, [ok()])
    assert result["ansible_facts"]["ansible_azure_detected"] is True
    assert calls[0]["url"].startswith("http://169.254.169.254/metadata/instance?")
    assert calls[0]["timeout"] == 5.0


def test_azure_by_dmi_timeout_fails_with_route_hint(monkeypatch, dmi):
    result = run(monkeypatch, {"dmi_path": dmi(AZURE_ASSET_TAG)}, [TransportError("timeout", "timed out")])[0]
    assert result["failed"]
    assert "imds.azure.route" in result["msg"] and "169.254.169.254" in result["msg"]


def test_no_dmi_probe_times_out_means_not_azure(monkeypatch, tmp_path):
    result, calls = run(monkeypatch, {"dmi_path": str(tmp_path / "missing")}, [TransportError("timeout", "timed out")])
    facts = result["ansible_facts"]
    assert not result["failed"] and facts["ansible_azure_detected"] is False
    assert calls[0]["timeout"] == PROBE_TIMEOUT
    assert "could not be read" in facts["ansible_azure_detection_reason"]


def test_no_dmi_probe_refused_required_fails_with_hint(monkeypatch, tmp_path):
    result = run(monkeypatch, {"dmi_path": str(tmp_path / "missing"), "require_azure": True},
                 [TransportError("refused", "connection refused")])[0]
    assert result["failed"] and "imds.azure.route" in result["msg"]


def test_no_dmi_probe_answers(monkeypatch, tmp_path):
    result, calls = run(monkeypatch, {"dmi_path": str(tmp_path / "missing")},
                        [HttpResponse(500, {}, b""), ok()])
    assert result["ansible_facts"]["ansible_azure_detected"] is True
    assert [c["timeout"] for c in calls] == [PROBE_TIMEOUT, 5.0, 5.0]


def test_explicit_endpoint_failure_is_failure(monkeypatch):
    result = run(monkeypatch, {"endpoint": "http://127.0.0.1:1"}, [TransportError("refused", "connection refused")])[0]
    assert result["failed"] and "connection refused" in result["msg"]
    assert result["url"].startswith("http://127.0.0.1:1/metadata/instance")


@pytest.mark.parametrize("patterns, expected", [
    (["azure_vm_id"], {"ansible_azure_vm_id"}),
    (["ansible_azure_vm_id", "azure_tags"], {"ansible_azure_vm_id", "ansible_azure_tags"}),
    (["azure_*ipv4"], {"ansible_azure_private_ipv4", "ansible_azure_public_ipv4"}),
    (["nothing*"], set()),
])
def test_filter(monkeypatch, patterns, expected):
    facts = run(monkeypatch, {"endpoint": "http://127.0.0.1:1", "filter": patterns}, [ok()])[0]["ansible_facts"]
    assert set(facts) == expected


def test_check_mode_still_gathers(monkeypatch):
    result, calls = run(monkeypatch, {"endpoint": "http://127.0.0.1:1", "_ansible_check_mode": True}, [ok()])
    assert result["changed"] is False and result["ansible_facts"]["ansible_azure_detected"] is True


def test_document_that_is_not_an_object(monkeypatch):
    result = run(monkeypatch, {"endpoint": "http://127.0.0.1:1"}, [HttpResponse(200, {}, b"[1, 2]")])[0]
    assert result["failed"] and "not an instance document" in result["msg"]


def test_bad_endpoint_option(monkeypatch):
    result, calls = run(monkeypatch, {"endpoint": "169.254.169.254"}, [])
    assert result["failed"] and "not an http:// URL" in result["msg"] and calls == []


def test_duplicate_key_becomes_warning(monkeypatch):
    body = b'{"compute": {"vmId": "a", "vmId": "b"}, "network": {"interface": []}}'
    result = run(monkeypatch, {"endpoint": "http://127.0.0.1:1"}, [HttpResponse(200, {}, body)])[0]
    assert result["ansible_facts"]["ansible_azure_vm_id"] == "b"
    assert result["warnings"] and "'vmId' twice" in result["warnings"][0]


def test_fields_missing_because_of_the_api_version_are_named_in_a_warning(monkeypatch):
    old = {"compute": {"vmId": "a", "name": "web0", "location": "westeurope"}, "network": {"interface": []}}
    result = run(monkeypatch, {"endpoint": "http://127.0.0.1:1", "api_version": "2017-04-02"}, [ok(old)])[0]
    facts = result["ansible_facts"]
    assert "compute.zone" in facts["ansible_azure_missing_by_api_version"]
    assert any("predates" in w and "compute.zone (since 2017-12-01)" in w for w in result["warnings"])
    assert all("\n" not in w for w in result["warnings"])


# -- the load balancer metadata: the second request of a gather ---------------------------

LB_DOC = {"loadbalancer": {
    "publicIpAddresses": [{"frontendIpAddress": "20.61.15.200", "privateIpAddress": "10.0.0.4"}],
    "inboundRules": [{"frontendIpAddress": "20.61.15.201", "protocol": "tcp", "frontendPort": "2222",
                      "backendPort": 22, "privateIpAddress": "10.0.0.4"}],
    "outboundRules": [{"frontendIpAddress": "20.61.15.202", "privateIpAddress": "10.0.0.4"}]}}
ENDPOINT = {"endpoint": "http://127.0.0.1:1"}


def lb_answer(status, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {"content-type": "application/json"}, raw)


def test_standard_public_ip_is_merged_from_the_second_request(monkeypatch):
    result, calls = run(monkeypatch, ENDPOINT, [ok()], load_balancer=[ok(LB_DOC)])
    facts = result["ansible_facts"]
    assert [c["url"].split("?")[0] for c in calls] == ["http://127.0.0.1:1/metadata/instance",
                                                       "http://127.0.0.1:1/metadata/loadbalancer"]
    assert calls[1]["url"].endswith(f"?api-version={facts['ansible_azure_api_version']}")
    assert facts["ansible_azure_public_ipv4"] == "20.61.15.200"
    assert facts["ansible_azure_public_ipv4_source"] == "load_balancer"
    assert facts["ansible_azure_interfaces"][0]["ipv4_addresses"] == [
        {"private": "10.0.0.4", "public": "20.61.15.200", "public_source": "load_balancer"}]
    assert facts["ansible_azure_load_balancer"]["inbound_rules"] == [
        {"frontend_ip_address": "20.61.15.201", "protocol": "tcp", "frontend_port": 2222, "backend_port": 22,
         "private_ip_address": "10.0.0.4"}]
    assert facts["ansible_azure_load_balancer_metadata"] == LB_DOC
    assert facts["ansible_azure_load_balancer_status"] == "found"
    assert result["warnings"] == [] and not result["failed"]


def test_option_off_makes_one_request(monkeypatch):
    result, calls = run(monkeypatch, {**ENDPOINT, "load_balancer": False}, [ok()], load_balancer=[])
    facts = result["ansible_facts"]
    assert len(calls) == 1
    assert facts["ansible_azure_load_balancer_status"] == "not_requested" and facts["ansible_azure_public_ipv4"] is None
    assert result["warnings"] == []


@pytest.mark.parametrize(("patterns", "asked"), [
    (["azure_vm_id", "azure_tags"], False),
    (["azure_metadata"], False),
    (["azure_public_ipv4"], True),
    (["azure_interfaces"], True),
    (["azure_load_balancer*"], True),
    (["*"], True),
])
def test_filter_without_its_facts_saves_the_request(monkeypatch, patterns, asked):
    result, calls = run(monkeypatch, {**ENDPOINT, "filter": patterns}, [ok()],
                        load_balancer=[ok(LB_DOC)] if asked else [])
    assert len(calls) == (2 if asked else 1)
    if "azure_public_ipv4" in patterns:
        assert result["ansible_facts"] == {"ansible_azure_public_ipv4": "20.61.15.200"}


def test_no_load_balancer_metadata_is_an_answer_without_warning(monkeypatch):
    result, calls = run(monkeypatch, ENDPOINT, [ok()])  # IMDS's 404 "No load balancer metadata is found"
    facts = result["ansible_facts"]
    assert len(calls) == 2 and result["warnings"] == []
    assert facts["ansible_azure_load_balancer_status"] == "not_found"
    assert facts["ansible_azure_load_balancer"] is None and facts["ansible_azure_public_ipv4"] is None


def test_real_404_body_of_a_vm_without_load_balancer(monkeypatch):
    from pathlib import Path

    body = (Path(__file__).resolve().parents[3] / "fixtures" / "real-imds"
            / "cnquery__loadbalancer_no_info_2023-07-01.json").read_bytes()
    result = run(monkeypatch, ENDPOINT, [ok()], load_balancer=[lb_answer(404, body)])[0]
    assert result["ansible_facts"]["ansible_azure_load_balancer_status"] == "not_found" and result["warnings"] == []


DOC_PUBLIC = json.loads(json.dumps(DOC))
DOC_PUBLIC["network"]["interface"][0]["ipv4"]["ipAddress"][0]["publicIpAddress"] = "52.1.2.3"


@pytest.mark.parametrize(("answer", "words"), [
    (lb_answer(404, {"error": "Load Balancer metadata API isn't available right now. Retry later"}),
     ["IMDS answered 404", "isn't available right now", "try again later"]),
    (lb_answer(404, b""), ["IMDS answered 404", "/metadata/loadbalancer", "try again later"]),
    (lb_answer(400, {"error": "Unexpected request. Check the query parameters and retry."}),
     ["IMDS answered 400", "Unexpected request", "refused as malformed"]),
    (lb_answer(405, {"error": "Http method isn't allowed"}), ["IMDS answered 405"]),
    (lb_answer(200, b""), ["not JSON"]),
    (lb_answer(200, b"<html>portal</html>"), ["not JSON", "<html>portal"]),
    (lb_answer(200, {}), ["not a load balancer document", "no loadbalancer object"]),
    (lb_answer(200, []), ["not a load balancer document", "the document is a list"]),
    (lb_answer(200, {"loadbalancer": "none"}), ["not a load balancer document", "loadbalancer is a string"]),
    (lb_answer(200, {"error": "No load balancer metadata is found."}), ["answered with an error"]),
    (TransportError("timeout", "timed out waiting for the status line and headers"), ["timed out"]),
    (TransportError("refused", "connection refused"), ["connection refused"]),
])
def test_a_failing_second_request_never_costs_the_instance_facts(monkeypatch, answer, words):
    result, calls = run(monkeypatch, {**ENDPOINT, "retry_timeout": 0}, [ok(DOC_PUBLIC)], load_balancer=[answer])
    facts = result["ansible_facts"]
    assert not result["failed"] and facts["ansible_azure_detected"] is True
    assert facts["ansible_azure_vm_id"] == DOC["compute"]["vmId"]
    assert facts["ansible_azure_load_balancer_status"] == "failed"
    assert facts["ansible_azure_load_balancer"] is None and facts["ansible_azure_load_balancer_metadata"] is None
    # the public IP facts say what is known: the instance document's address
    assert facts["ansible_azure_public_ipv4"] == "52.1.2.3" and facts["ansible_azure_public_ipv4_source"] == "instance"
    assert len(result["warnings"]) == 1, result["warnings"]
    warning = result["warnings"][0]
    assert warning.startswith("Load balancer metadata not read") and "are unknown" in warning
    assert warning.isprintable()
    for word in words:
        assert word in warning, (word, warning)
    assert "imds.azure.route" not in warning  # IMDS answered the first request: the route is fine


def test_server_errors_are_retried_within_the_deadline(monkeypatch):
    answers = [lb_answer(503, {"error": "Service unavailable"}), ok(LB_DOC)]
    result, calls = run(monkeypatch, ENDPOINT, [ok()], load_balancer=answers)
    assert len(calls) == 3 and result["ansible_facts"]["ansible_azure_load_balancer_status"] == "found"
    assert result["warnings"] == []


def test_duplicate_key_in_the_load_balancer_document_is_a_warning(monkeypatch):
    body = b'{"loadbalancer": {"publicIpAddresses": [], "publicIpAddresses": [{"frontendIpAddress": "20.0.0.9", ' \
           b'"privateIpAddress": "10.0.0.4"}]}}'
    result = run(monkeypatch, ENDPOINT, [ok()], load_balancer=[lb_answer(200, body)])[0]
    assert result["ansible_facts"]["ansible_azure_public_ipv4"] == "20.0.0.9"
    assert len(result["warnings"]) == 1 and "'publicIpAddresses' twice" in result["warnings"][0]
    assert "/metadata/loadbalancer" in result["warnings"][0]


@pytest.mark.parametrize("version", ["2019-06-01", "2020-09-01"])
def test_pinned_version_before_2020_10_01_skips_it_with_a_warning(monkeypatch, version):
    result, calls = run(monkeypatch, {**ENDPOINT, "api_version": version}, [ok(DOC_PUBLIC)], load_balancer=[])
    facts = result["ansible_facts"]
    assert len(calls) == 1 and facts["ansible_azure_load_balancer_status"] == "not_requested"
    assert facts["ansible_azure_public_ipv4"] == "52.1.2.3"
    lb_warning, *others = result["warnings"]
    assert lb_warning == (
        f"Load balancer metadata not read: api-version {version} predates /metadata/loadbalancer (2020-10-01), so "
        "public IP addresses that IMDS reports only there (Standard SKU) are unknown. Use an api_version of "
        "2020-10-01 or newer where IMDS serves one, or set load_balancer=false.")
    # and the normalizer names the instance fields that this old api-version lacks
    assert [w for w in others if "predates compute." in w] == others and len(others) == 1


def test_negotiated_version_before_2020_10_01_skips_it(monkeypatch):
    refused = lb_answer(400, {"error": "Bad request. api-version is invalid or was not specified in the request.",
                              "newest-versions": ["2020-09-01", "2020-07-15"]})
    result, calls = run(monkeypatch, ENDPOINT, [refused, ok()], load_balancer=[])
    assert [c["url"].rsplit("=", 1)[1] for c in calls] == ["2025-04-07", "2020-09-01"]
    assert result["ansible_facts"]["ansible_azure_load_balancer_status"] == "not_requested"
    assert "predates /metadata/loadbalancer" in result["warnings"][0]


def test_pinned_version_from_2020_10_01_is_used_for_both(monkeypatch):
    result, calls = run(monkeypatch, {**ENDPOINT, "api_version": "2020-10-01"}, [ok()], load_balancer=[ok(LB_DOC)])
    assert [c["url"].rsplit("=", 1)[1] for c in calls] == ["2020-10-01", "2020-10-01"]
    assert result["ansible_facts"]["ansible_azure_load_balancer_status"] == "found"


def test_the_gather_keeps_its_bound(monkeypatch):
    """The second request shares the first one's deadline: retries stop at retry_timeout from the start
    of the gather, and no attempt ends later than retry_timeout + timeout after it."""
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimiter
    from ansible_collections.imds.azure.tests.utils.clock import FakeClock

    clock = FakeClock()
    transport = ScriptedTransport(ok(), lb_answer(503, {"error": "Service unavailable"}), clock=clock, cost=0.5)
    params = dict(metadata_facts.argument_spec())
    params = {name: spec.get("default") for name, spec in params.items()}
    params.update(endpoint="http://127.0.0.1:1", retry_timeout=10.0, timeout=2.0)
    client = ImdsClient(transport, endpoint=params["endpoint"], timeout=2.0, retry_timeout=10.0, clock=clock,
                        sleep=clock.sleep, limiter=RateLimiter("test", clock=clock, sleep=clock.sleep))
    start = clock.now
    facts, warnings = _gather.gather(params, client)
    assert facts["ansible_azure_load_balancer_status"] == "failed"
    assert len(warnings) == 1 and "IMDS answered 503" in warnings[0] and "Gave up after" in warnings[0]
    lb_calls = [c for c in transport.calls if "/metadata/loadbalancer" in c["url"]]
    assert len(lb_calls) >= 2
    assert all(c["at"] - start <= 10.0 for c in transport.calls)  # no attempt starts after retry_timeout
    assert clock.now - start <= 10.0 + 2.0  # nor ends after retry_timeout + timeout


def test_no_time_left_after_the_instance_document(tmp_path):
    """Only the probe may take longer than timeout: an instance document that arrives after
    retry_timeout + timeout leaves nothing for the load balancer, which is not asked."""
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimiter
    from ansible_collections.imds.azure.tests.utils.clock import FakeClock

    clock = FakeClock()
    transport = ScriptedTransport(ok(), clock=clock, cost=5.0)
    params = {name: spec.get("default") for name, spec in metadata_facts.argument_spec().items()}
    params.update(retry_timeout=1.0, timeout=2.0, probe_timeout=10.0, dmi_path=str(tmp_path / "no-dmi"))
    client = ImdsClient(transport, timeout=2.0, retry_timeout=1.0, clock=clock, sleep=clock.sleep,
                        limiter=RateLimiter("test", clock=clock, sleep=clock.sleep))
    facts, warnings = _gather.gather(params, client)
    assert [c["url"].split("?")[0] for c in transport.calls] == ["http://169.254.169.254/metadata/instance"]
    assert facts["ansible_azure_vm_id"] == DOC["compute"]["vmId"]
    assert facts["ansible_azure_load_balancer_status"] == "failed"
    assert warnings == ["Load balancer metadata not read: the instance document took all of the gather's time "
                        "(retry_timeout + timeout, 3 s), so public IP addresses that IMDS reports only there "
                        "(Standard SKU) are unknown."]


def test_with_retry_timeout_0_it_is_asked_once_in_what_is_left(monkeypatch):
    result, calls = run(monkeypatch, {**ENDPOINT, "retry_timeout": 0, "timeout": 3},
                        [ok()], load_balancer=[lb_answer(503, {"error": "Service unavailable"})])
    assert len(calls) == 2 and 0 < calls[1]["timeout"] <= 3
    assert result["ansible_facts"]["ansible_azure_load_balancer_status"] == "failed"
    assert "IMDS answered 503" in result["warnings"][0] and "Gave up after 1 attempt" in result["warnings"][0]


def test_run_without_the_option_in_params_asks_for_it(monkeypatch):
    """The action plugin for Windows hosts calls run() with the params it has: the default holds."""
    params = {name: spec.get("default") for name, spec in metadata_facts.argument_spec().items()}
    del params["load_balancer"]
    params["endpoint"] = "http://127.0.0.1:1"
    transport = ScriptedTransport(ok(), strict=True, routes={"/metadata/loadbalancer": [ok(LB_DOC)]})
    result = _gather.run(params, transport)
    assert result["ansible_facts"]["ansible_azure_public_ipv4"] == "20.61.15.200"
    assert len(transport.calls) == 2 and result["warnings"] == []


def test_no_load_balancer_request_after_a_document_that_is_not_an_instance_document(monkeypatch):
    result, calls = run(monkeypatch, ENDPOINT, [ok({"error": "Bad request"})], load_balancer=[])
    assert result["failed"] and "not an instance document" in result["msg"]
    assert len(calls) == 1


def test_a_filter_pattern_longer_than_any_fact_name_is_refused_before_any_request(monkeypatch):
    """fnmatch's translation is quadratic in unclosed brackets: 8,000 of them cost seconds of CPU."""
    result, calls = run(monkeypatch, {**ENDPOINT, "filter": ["[" * 8000, "azure_vm_id"]}, [], load_balancer=[])
    assert result["failed"] and calls == []
    assert result["msg"] == ("filter: a pattern of 8000 characters is longer than any fact name; give patterns of at "
                             "most 200 characters, such as azure_*ip*.")
    assert run(monkeypatch, {**ENDPOINT, "filter": ["[" * 200]}, [ok()], load_balancer=[])[0]["ansible_facts"] == {}
