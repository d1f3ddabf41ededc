"""The one line a user reads when a call to IMDS fails: what happened, what to do, server text escaped."""
from __future__ import annotations

import types

import pytest

from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.module_utils._messages import ROUTE_HINT, attempts_text, failure

URL = "http://127.0.0.1:9/metadata/instance?api-version=2021-02-01"


def client(default=False, pinned=False, retry_timeout=70.0):
    return types.SimpleNamespace(is_default_endpoint=default, pinned=pinned, retry_timeout=retry_timeout)


def test_attempts_text():
    assert attempts_text(1) == "1 attempt" and attempts_text(3) == "3 attempts"


@pytest.mark.parametrize("kind, default, needle", [
    ("timeout", True, ROUTE_HINT),
    ("unreachable", True, "imds.azure.route"),
    ("refused", False, "Nothing listens at that address: check the endpoint."),
    ("too_large", False, "something other than IMDS answered"),
    ("truncated", False, "cut the answer short"),
    ("protocol", False, "Something other than IMDS answered."),
])
def test_transport_failures_say_what_to_do(kind, default, needle):
    error = failure(client(default), "transport", TransportError(kind, "went wrong"), URL, "2021-02-01", 1)
    assert isinstance(error, ImdsError) and error.kind == kind
    message = str(error)
    assert message.startswith(f"Could not get {URL} (api-version 2021-02-01): ") and needle in message
    assert error.to_result() == {"url": URL, "status": None, "api_version": "2021-02-01"}


def test_a_timeout_on_another_endpoint_has_no_route_hint():
    message = str(failure(client(False), "transport", TransportError("timeout", "timed out"), URL, "2021-02-01", 2))
    assert "imds.azure.route" not in message and "after 2 attempts" in message


@pytest.mark.parametrize("status, needle", [
    (404, "paths are case-sensitive"),
    (405, "does not allow that method"),
    (302, "IMDS never redirects"),
    (403, "firewall, proxy or security agent"),
    (400, "refused as malformed"),
])
def test_status_messages(status, needle):
    error = failure(client(), "status", HttpResponse(status, {}, b""), URL, "2021-02-01", 1)
    assert error.status == status and f"IMDS answered {status} for {URL}" in str(error) and needle in str(error)


@pytest.mark.parametrize("status, needle", [
    (410, "Raise retry_timeout to at least 70 s."),
    (429, "throttling this VM"),
    (500, "IMDS may be degraded"),
])
def test_giving_up_says_how_long_and_how_often(status, needle):
    error = failure(client(retry_timeout=10), "gave_up", HttpResponse(status, {}, b""), URL, "2021-02-01", 4)
    assert needle in str(error) and "4 attempts in 10 s" in str(error)


def test_a_pinned_version_refused_names_what_imds_offers():
    error = failure(client(pinned=True), "status", HttpResponse(400, {}, b""), URL, "2017-01-01", 1,
                    text="Bad request. api-version is invalid", offered=["2021-02-01", "2020-12-01"])
    assert "pinned api_version 2017-01-01 is not served here (IMDS offers 2021-02-01, 2020-12-01)" in str(error)


def test_server_text_is_escaped_and_on_one_line():
    error = failure(client(), "status", HttpResponse(500, {}, b""), URL, "2021-02-01", 1,
                    text="boom\n\x1b[2J[ERROR] forged line")
    assert "\n" not in str(error) and "\x1b" not in str(error) and "boom\\n\\x1b[2J" in str(error)


def test_a_body_that_is_not_json_says_what_it_starts_with():
    cause = types.SimpleNamespace(code="not_json", detail="Expecting value|<html><title>Sign in</title>")
    error = failure(client(), "body", cause, URL, "2021-02-01", 1)
    assert error.kind == "body" and error.status == 200
    assert "not JSON" in str(error) and "'<html><title>Sign in</title>'" in str(error) and "captive portal" in str(error)
