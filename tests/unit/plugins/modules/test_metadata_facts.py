"""The facts module's main(): detection, options, results, with the transport patched."""
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils._detect import AZURE_ASSET_TAG
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_PROBE_TIMEOUT as PROBE_TIMEOUT
from ansible_collections.imds.azure.plugins.modules import metadata_facts
from tests.utils.modules import run_module
from tests.utils.transport import ScriptedTransport

DOC = {
    "compute": {"vmId": "11111111-2222-3333-4444-555555555555", "name": "web0", "location": "westeurope",
                "platformFaultDomain": "1", "tagsList": [{"name": "env", "value": "prod"}],
                "userData": base64.b64encode(b"secret=1").decode()},
    "network": {"interface": [{"macAddress": "000D3AF806EC",
                               "ipv4": {"ipAddress": [{"privateIpAddress": "10.0.0.4", "publicIpAddress": ""}],
                                        "subnet": [{"address": "10.0.0.0", "prefix": "24"}]},
                               "ipv6": {"ipAddress": []}}]},
}


class _Strict(ScriptedTransport):
    """Answers in order and refuses a request nobody expected."""

    def request(self, method, url, headers, data, timeout, max_bytes):
        if not self.answers:
            raise AssertionError(f"unexpected request to {url}")
        answer = self.answers.pop(0)
        self.calls.append({"url": url, "timeout": timeout})
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(monkeypatch, args, answers):
    """Run main() with the transport answering from `answers`; return (result, calls)."""
    transport = _Strict(*answers)
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
    assert len(calls) == 1 and calls[0]["url"].startswith("http://127.0.0.1:1/metadata/instance?api-version=")


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
    assert [c["timeout"] for c in calls] == [PROBE_TIMEOUT, 5.0]


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


@pytest.mark.xfail(reason="defect (fault matrix, issue 14): filter_facts uses fnmatch, whose translate() is quadratic "
                          "in unclosed '[' on Python 3.11: 8,000 of them cost 2 s of CPU, 100,000 about 5 minutes (more "
                          "on a busy host), outside any bound; refuse overlong patterns in metadata_facts", strict=True)
def test_an_odd_filter_pattern_costs_no_time():
    import time

    facts = {"ansible_azure_vm_id": "x", "ansible_azure_detected": True}
    started = time.process_time()
    metadata_facts.filter_facts(facts, ["[" * 8000, "azure_vm_id"])
    assert time.process_time() - started < 0.5
