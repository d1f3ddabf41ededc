"""The win_uri transport: what it asks win_uri for, and how win_uri's results become answers or failures.

The results below have the shape win_uri.ps1 (ansible.windows 3.3.0) gives them: response
properties and headers flattened and snake_cased, content as text, .NET's messages.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils._client import BodyError, ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._detect import Evidence
from ansible_collections.imds.azure.plugins.module_utils._http import TransportError
from ansible_collections.imds.azure.plugins.modules import metadata_facts
from ansible_collections.imds.azure.plugins.plugin_utils._win_uri import (
    EVERY_STATUS, WIN_URI, WinUriError, WinUriTransport, response_from, url_timeout, win_uri_args)

DOC = {"compute": {"vmId": "abc", "name": "vm"}, "network": {"interface": []}}
PREFIX = "Unhandled exception occurred when sending web request. Exception: "


def answered(status=200, content=None, **headers):
    """A win_uri result for an answer: properties first, then headers as win_uri names them."""
    result = {"changed": False, "elapsed": 0.01, "url": "http://x", "msg": "OK", "status_code": status,
              "content_length": -1, "content_type": "", "content_encoding": "", "status_description": "OK",
              "content": json.dumps(DOC) if content is None else content}
    result.update(headers)
    return result


def failed(message, **extra):
    return {"changed": False, "elapsed": 2.0, "url": "http://x", "status_code": None, "failed": True,
            "msg": PREFIX + message, **extra}


class FakeWinUri:
    """execute(module, args) for WinUriTransport: records the args, answers from a list."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    def __call__(self, module, args):
        self.calls.append((module, args))
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


def test_the_options_win_uri_gets():
    args = win_uri_args("POST", "http://127.0.0.1:8/metadata/scheduledevents?api-version=2020-07-01",
                        {"Metadata": "true", "Content-Type": "application/json"}, b'{"StartRequests": []}', 3)
    assert args == {"url": "http://127.0.0.1:8/metadata/scheduledevents?api-version=2020-07-01", "method": "POST",
                    "headers": {"Metadata": "true", "Content-Type": "application/json"}, "use_proxy": False,
                    "follow_redirects": "none", "url_timeout": 3, "return_content": True,
                    "status_code": EVERY_STATUS, "body": '{"StartRequests": []}'}
    assert list(range(100, 600)) == EVERY_STATUS
    assert "body" not in win_uri_args("GET", "http://x", {}, None, 1)


@pytest.mark.parametrize("timeout, seconds", [(0.01, 1), (0.3, 1), (1.0, 1), (2.0, 2), (2.01, 3), (120.0, 120)])
def test_url_timeout_is_whole_seconds_rounded_up(timeout, seconds):
    assert url_timeout(timeout) == seconds


def test_an_answer_with_its_headers():
    result = answered(429, '{"error": "Too many requests"}', content_type="application/json; charset=utf-8",
                      retry_after="1", content_length="31", xmsrequestid="abc", server="Microsoft-IIS/10.0")
    response = response_from(result, 4096)
    assert response.status == 429 and response.body == b'{"error": "Too many requests"}'
    assert response.headers == {"content-type": "application/json; charset=utf-8", "retry-after": "1",
                                "content-length": "31"}


def test_headers_sent_in_lower_case_lose_their_separator_and_still_count():
    response = response_from(answered(200, "{}", contenttype="application/json", retryafter="2",
                                      transferencoding="Chunked", contentencoding="GZIP"), 4096)
    assert response.headers == {"content-type": "application/json", "retry-after": "2",
                                "transfer-encoding": "chunked", "content-encoding": "gzip"}


def test_a_status_outside_the_list_still_answers():
    """From 600 up win_uri fails, after it read the answer: status, headers and content are in the result."""
    result = answered(799, "odd", failed=True,
                      msg="Status code of request '799' is not in list of valid status codes 100 101 : 799'.")
    response = response_from(result, 4096)
    assert (response.status, response.body) == (799, b"odd")


@pytest.mark.parametrize("message, kind, words", [
    ("The operation has timed out", "timeout", "timed out after win_uri's url_timeout of 2 s"),
    ('Exception calling "GetResponse" with "0" argument(s): "The operation has timed out"', "timeout",
     "(The operation has timed out)"),
    ("Unable to connect to the remote server", "unreachable", "nothing listens there, or there is no route"),
    ('Exception calling "GetRequestStream" with "0" argument(s): "Unable to connect to the remote server"',
     "unreachable", "could not connect"),
    ("The remote name could not be resolved: 'imds.example'", "unreachable", "could not be resolved"),
    ("The underlying connection was closed: An unexpected error occurred on a receive.", "reset",
     "connection reset or closed before the answer"),
    ("The underlying connection was closed: The connection was closed unexpectedly.", "reset", "connection reset"),
    ('Exception calling "CopyTo" with "1" argument(s): "Unable to read data from the transport connection: An '
     'existing connection was forcibly closed by the remote host."', "reset", "while win_uri read the body"),
    ('Exception calling "CopyTo" with "1" argument(s): "Unable to read data from the transport connection: The '
     'connection was closed."', "truncated", "cut short"),
    ("The server committed a protocol violation. Section=ResponseStatusLine", "protocol", "not a valid HTTP answer"),
    ("Something nobody expected", "error", "win_uri: Something nobody expected"),
])
def test_dotnet_failures_become_transport_failures(message, kind, words):
    with pytest.raises(TransportError) as caught:
        response_from(failed(message), 4096, 2)
    assert caught.value.kind == kind and words in str(caught.value)
    assert "Exception calling" not in str(caught.value)


def test_win_uri_not_running_is_an_error_that_says_so():
    crashed = {"failed": True, "msg": "MODULE FAILURE: No start of json char found",
               "module_stderr": "Process is terminated due to StackOverflowException.\r\n", "rc": -1073741571}
    with pytest.raises(WinUriError) as caught:
        response_from(crashed, 4096)
    assert caught.value.kind == "error"
    assert str(caught.value) == (f"{WIN_URI} failed: MODULE FAILURE: No start of json char found "
                                 "(stderr: Process is terminated due to StackOverflowException.)")
    with pytest.raises(WinUriError, match="Unsupported parameters"):
        response_from({"failed": True, "msg": "Unsupported parameters for (win_uri) module: use_proxy"}, 4096)
    with pytest.raises(WinUriError, match="returned no status and content"):
        response_from({"changed": False}, 4096)


def test_a_header_flattened_over_the_status_is_refused():
    with pytest.raises(TransportError) as caught:
        response_from(answered("200"), 4096)
    assert caught.value.kind == "protocol"


def test_max_bytes_applies_to_every_status():
    with pytest.raises(TransportError) as caught:
        response_from(answered(500, "x" * 5000), 4096)
    assert caught.value.kind == "too_large" and "(status 500)" in str(caught.value)
    assert response_from(answered(200, "é" * 2048), 4096).body == "é".encode() * 2048


def test_replacement_characters_in_a_2xx_body_mean_it_was_not_utf8():
    with pytest.raises(BodyError) as caught:
        response_from(answered(200, '{"name": "caf\ufffd"}'), 4096)
    assert caught.value.code == "not_utf8" and "U+FFFD at character 13" in caught.value.detail
    # an error body is only read for its text; a compressed one is the client's to report as encoded
    assert response_from(answered(500, "\ufffd"), 4096).status == 500
    assert response_from(answered(200, "\ufffd", content_encoding="gzip"), 4096).headers["content-encoding"] == "gzip"


def test_the_client_retries_through_win_uri():
    execute = FakeWinUri(answered(410, '{"error": "updating"}'), answered(200))
    client = ImdsClient(WinUriTransport(execute), endpoint="http://127.0.0.1:8", retry_timeout=10,
                        limiter=_NoLimit(), sleep=lambda seconds: None)
    assert client.instance().data == DOC
    assert [module for module, _args in execute.calls] == [WIN_URI, WIN_URI]
    assert execute.calls[0][1]["headers"]["Metadata"] == "true"


@pytest.mark.parametrize("require_azure", [False, True])
def test_detection_on_windows_probes_with_the_first_request(require_azure):
    """Default endpoint, no DMI file: the first request is the probe, win_uri's timeout whole seconds."""
    execute = FakeWinUri(failed("The operation has timed out"))
    params = {"endpoint": "http://169.254.169.254", "api_version": None, "timeout": 5.0, "retry_timeout": 70.0,
              "include_user_data": False, "filter": ["*"], "require_azure": require_azure,
              "dmi_path": "/nonexistent", "probe_timeout": 1.0, "fact_path": None}
    result = metadata_facts.run(params, WinUriTransport(execute), evidence=Evidence(None, "the host runs Windows"),
                                limiter=_NoLimit())
    assert len(execute.calls) == 1 and execute.calls[0][1]["url_timeout"] == 1
    if require_azure:
        assert result["failed"] and "apply the imds.azure.route role" in result["msg"]
    else:
        assert result["ansible_facts"]["ansible_azure_detected"] is False
        assert result["ansible_facts"]["ansible_azure_detection_reason"] == (
            "the host runs Windows, and http://169.254.169.254 did not answer within 1 s (timeout)")


class _NoLimit:
    def acquire(self, deadline, hold=None):
        return "t"

    def done(self, ticket, deadline=None):
        pass
