"""The IMDS client against a scripted transport and a fake clock: every status, every failure."""
from __future__ import annotations

import json
import uuid

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _client
from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient, retry_after_seconds
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_ENDPOINT
from ansible_collections.imds.azure.plugins.module_utils._versions import NEWEST
from ansible_collections.imds.azure.tests.utils.clock import FakeClock
from ansible_collections.imds.azure.tests.utils.transport import DOC, ScriptedTransport as Script, client_on as client, err, ok


@pytest.fixture
def clock():
    return FakeClock()


def test_headers_and_url(clock):
    t = Script(ok(), clock=clock)
    r = client(t, clock).instance()
    assert r.data == DOC and r.api_version == NEWEST and r.attempts == 1
    call = t.calls[0]
    assert call["method"] == "GET"
    assert call["url"] == f"http://127.0.0.1:9/metadata/instance?api-version={NEWEST}"
    assert call["headers"]["Metadata"] == "true"
    assert "X-Forwarded-For" not in call["headers"] and "x-forwarded-for" not in call["headers"]
    uuid.UUID(call["headers"]["x-ms-client-request-id"])


def test_fresh_request_id_each_request(clock):
    t = Script(err(500), ok(), clock=clock)
    client(t, clock).instance()
    ids = {c["headers"]["x-ms-client-request-id"] for c in t.calls}
    assert len(ids) == 2


def test_path_and_text_format(clock):
    t = Script(HttpResponse(200, {}, b"10.0.0.4"), clock=clock)
    r = client(t, clock, api_version="2021-02-01").instance("network/interface/0/ipv4/ipAddress/0/privateIpAddress", fmt="text")
    assert r.data == "10.0.0.4"
    assert t.calls[0]["url"].startswith("http://127.0.0.1:9/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?")
    assert "format=text" in t.calls[0]["url"] and "api-version=2021-02-01" in t.calls[0]["url"]


@pytest.mark.parametrize("offered, expected", [
    (["2021-02-01", "2021-01-01", "2020-12-01"], "2021-02-01"),
    (["2099-01-01", "2019-07-15", "2019-06-04"], "2019-06-04"),  # versions we do not know are skipped
])
def test_negotiates_version_from_400_body(clock, offered, expected):
    body = {"error": "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds",
            "newest-versions": offered}
    t = Script(err(400, body), ok(), clock=clock)
    c = client(t, clock)
    r = c.instance()
    assert r.api_version == expected and c.api_version == expected
    assert len(t.calls) == 2 and f"api-version={expected}" in t.calls[1]["url"]


def test_negotiation_without_list_asks_versions(clock):
    body = {"error": "Bad request. api-version was not specified in the request"}
    versions = HttpResponse(200, {}, json.dumps({"apiVersions": ["2017-04-02", "2018-10-01", "2019-02-01"]}).encode())
    t = Script(err(400, body), versions, ok(), clock=clock)
    r = client(t, clock).instance()
    assert r.api_version == "2019-02-01"
    assert "/metadata/versions" in t.calls[1]["url"] and "api-version" not in t.calls[1]["url"]


def test_negotiation_happens_once(clock):
    body = {"error": "api-version is invalid", "newest-versions": ["2021-02-01"]}
    t = Script(err(400, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert len(t.calls) == 2
    assert exc.value.status == 400 and "No api-version known" in str(exc.value)


def test_pinned_version_is_not_renegotiated(clock):
    body = {"error": "api-version is invalid", "newest-versions": ["2021-02-01", "2021-01-01"]}
    t = Script(err(400, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock, api_version="2025-04-07").instance()
    assert len(t.calls) == 1
    msg = str(exc.value)
    assert "pinned api_version 2025-04-07" in msg and "2021-02-01" in msg


def test_no_common_version(clock):
    body = {"error": "api-version is invalid", "newest-versions": ["2099-01-01"]}
    t = Script(err(400, body), clock=clock)
    with pytest.raises(ImdsError, match="No api-version known to this collection"):
        client(t, clock).instance()
    assert len(t.calls) == 1


@pytest.mark.parametrize("status", [410, 429, 500, 502, 503, 504])
def test_retries_then_succeeds(clock, status):
    t = Script(err(status), err(status), ok(), clock=clock)
    r = client(t, clock).instance()
    assert r.data == DOC and r.attempts == 3
    assert len(clock.sleeps) == 2 and all(s >= _client.MIN_DELAY for s in clock.sleeps)


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_never_retries(clock, status):
    t = Script(err(status, {"error": "nope"}), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert len(t.calls) == 1 and exc.value.status == status
    assert f"IMDS answered {status}" in str(exc.value) and "nope" in str(exc.value)


def test_retry_after_is_honoured(clock):
    t = Script(err(429, headers={"retry-after": "3"}), ok(), clock=clock)
    client(t, clock).instance()
    assert clock.sleeps == [3.0]


def test_retry_after_beyond_deadline_gives_up(clock):
    t = Script(err(429, headers={"retry-after": "100"}), ok(), clock=clock)
    with pytest.raises(ImdsError, match="throttling"):
        client(t, clock, retry_timeout=10).instance()
    assert len(t.calls) == 1


def test_410_storm_outlasting_deadline_fails_in_time(clock):
    t = Script(err(410), clock=clock, cost=0.05)
    start = clock.now
    with pytest.raises(ImdsError) as exc:
        client(t, clock, retry_timeout=20).instance()
    elapsed = clock.now - start
    assert 19 <= elapsed <= 20 + 5
    assert "going through updates" in str(exc.value) and exc.value.status == 410
    assert len(t.calls) > 3


def test_retry_timeout_zero_means_one_attempt(clock):
    t = Script(err(503), ok(), clock=clock)
    with pytest.raises(ImdsError, match="503"):
        client(t, clock, retry_timeout=0).instance()
    assert len(t.calls) == 1


@pytest.mark.parametrize("kind", ["timeout", "refused", "unreachable", "too_large", "error"])
def test_transport_failures_are_not_retried(clock, kind):
    t = Script(TransportError(kind, "boom"), ok(), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert len(t.calls) == 1 and exc.value.kind == kind
    assert "http://127.0.0.1:9/metadata/instance" in str(exc.value)


@pytest.mark.parametrize("kind", ["reset", "truncated"])
def test_resets_are_retried_a_little(clock, kind):
    t = Script(TransportError(kind, "boom"), ok(), clock=clock)
    assert client(t, clock).instance().data == DOC
    t = Script(TransportError(kind, "boom"), clock=clock)
    with pytest.raises(ImdsError):
        client(t, clock).instance()
    assert len(t.calls) == 1 + _client.TRANSPORT_RETRIES


def test_timeout_on_default_endpoint_names_route_role(clock):
    t = Script(TransportError("timeout", "timed out"), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock, endpoint=DEFAULT_ENDPOINT).instance()
    assert "imds.azure.route" in str(exc.value) and "169.254.0.0/16" in str(exc.value)


def test_timeout_on_other_endpoint_has_no_route_hint(clock):
    t = Script(TransportError("timeout", "timed out"), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert "imds.azure.route" not in str(exc.value)


def test_timeout_after_imds_answered_this_client_has_no_route_hint(clock):
    """A second call (the load balancer after the instance document) that times out: the route
    to IMDS works, since IMDS answered the first."""
    t = Script(ok(), TransportError("timeout", "timed out"), clock=clock)
    c = client(t, clock, endpoint=DEFAULT_ENDPOINT)
    c.instance()
    with pytest.raises(ImdsError) as exc:
        c.get("/metadata/loadbalancer")
    assert "timed out" in str(exc.value) and "imds.azure.route" not in str(exc.value)


def test_until_brings_the_deadline_forward(clock):
    """A call made after another shares its deadline: no retry starts after ``until``, no attempt
    ends after ``until`` + timeout."""
    t = Script(err(503), clock=clock, cost=0.5)
    c = client(t, clock, timeout=2, retry_timeout=70)
    start = clock.now
    with pytest.raises(ImdsError) as exc:
        c.get("/metadata/loadbalancer", until=start + 3)
    assert len(t.calls) >= 2 and all(call["at"] - start <= 3 for call in t.calls)
    assert clock.now - start <= 3 + 2
    assert "IMDS answered 503" in str(exc.value) and "Gave up after" in str(exc.value)


def test_until_in_the_past_leaves_one_attempt_with_what_is_left(clock):
    t = Script(err(503), clock=clock)
    c = client(t, clock, timeout=5, retry_timeout=70)
    with pytest.raises(ImdsError):
        c.get("/metadata/loadbalancer", until=clock.now - 1.5)
    assert len(t.calls) == 1 and t.calls[0]["timeout"] == pytest.approx(3.5)


def test_until_later_than_retry_timeout_changes_nothing(clock):
    t = Script(err(503), clock=clock, cost=0.5)
    c = client(t, clock, timeout=2, retry_timeout=3)
    start = clock.now
    with pytest.raises(ImdsError):
        c.get("/metadata/loadbalancer", until=start + 60)
    assert all(call["at"] - start <= 3 for call in t.calls) and clock.now - start <= 3 + 2


def test_no_load_balancer_text_is_kept_and_worded(clock):
    body = {"error": "No load balancer metadata is found. Please check if your VM is using any non-basic SKU load "
                     "balancer and retry later."}
    t = Script(err(404, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).get("/metadata/loadbalancer")
    assert exc.value.status == 404 and exc.value.text == body["error"]
    assert "only for VMs behind a Standard SKU load balancer" in str(exc.value)
    assert "does not exist in IMDS" not in str(exc.value)


def test_first_timeout_applies_to_first_attempt_only(clock):
    t = Script(err(500), ok(), clock=clock)
    client(t, clock, timeout=7).instance(first_timeout=1.0)
    assert [c["timeout"] for c in t.calls] == [1.0, 7.0]


@pytest.mark.parametrize("body, needle", [
    (b'{"compute": {"vmId": a}}', "not JSON"),  # whole but malformed (cut short: see below)
    (b"<html><body>Login to the hotel wifi</body></html>", "captive portal"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_bad_bodies(clock, body, needle):
    t = Script(HttpResponse(200, {}, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert needle in str(exc.value) and exc.value.kind == "body"


def test_duplicate_keys_last_wins_with_warning(clock):
    t = Script(HttpResponse(200, {}, b'{"compute": {"userData": "a", "userData": ""}}'), clock=clock)
    r = client(t, clock).instance()
    assert r.data == {"compute": {"userData": ""}}
    assert len(r.warnings) == 1 and "'userData' twice" in r.warnings[0]


def test_thousands_of_duplicate_keys_make_one_short_warning(clock):
    """A hostile document with 5,000 keys sent twice: one warning line, not 5,000 (issue 14 fault matrix)."""
    pairs = "".join(f'"dup{n:04d}\\u001b[2J": 1, "dup{n:04d}\\u001b[2J": 2, ' for n in range(5000))
    body = ('{"compute": {' + pairs + '"vmId": "x"}, "k' + "x" * 5000 + '": 1, "k' + "x" * 5000 + '": 2}').encode()
    r = client(Script(HttpResponse(200, {}, body), clock=clock), clock).instance()
    assert r.data["compute"]["vmId"] == "x"
    assert len(r.warnings) == 1, len(r.warnings)
    warning = r.warnings[0]
    assert warning.isprintable() and len(warning) < 1000, warning
    assert "'dup0000\\x1b[2J'" in warning and "and 4996 more" in warning and "twice" in warning


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_an_error(clock, status):
    t = Script(err(status, headers={"location": "http://evil.example/"}), clock=clock)
    with pytest.raises(ImdsError, match="never redirects"):
        client(t, clock).instance()
    assert len(t.calls) == 1


def test_post_sends_json(clock):
    t = Script(HttpResponse(200, {}, b""), clock=clock)
    r = client(t, clock).post("/metadata/scheduledevents", {"StartRequests": [{"EventId": "x"}]})
    call = t.calls[0]
    assert call["method"] == "POST" and json.loads(call["data"]) == {"StartRequests": [{"EventId": "x"}]}
    assert call["headers"]["Content-Type"] == "application/json" and r.data == ""


@pytest.mark.parametrize("endpoint, needle", [
    ("169.254.169.254", "not an http:// URL"), ("ftp://x", "not an http:// URL"), ("http://", "not an http:// URL"),
    ("", "endpoint must be a URL"), ("https://169.254.169.254", "IMDS is plain HTTP"),
    ("http://169.254.169.254/metadata/instance", "has a path, query or fragment"),
    ("http://u:hunter2@127.0.0.1:9", "carries a user name or password"),
])
def test_bad_endpoint(endpoint, needle):
    with pytest.raises(ImdsError) as exc:
        ImdsClient(Script(ok()), endpoint=endpoint)
    assert needle in str(exc.value) and exc.value.kind == "config" and "hunter2" not in str(exc.value)


@pytest.mark.parametrize("options, needle", [
    ({"timeout": 0}, "timeout must be greater than 0"), ({"timeout": float("nan")}, "timeout must be a finite"),
    ({"timeout": float("inf")}, "timeout must be a finite"), ({"timeout": 1e10}, "at most 3600"),
    ({"retry_timeout": -1}, "retry_timeout must be at least 0"), ({"retry_timeout": float("nan")}, "finite"),
    ({"api_version": ""}, "api_version must be a date"), ({"api_version": "latest"}, "api_version must be a date"),
])
def test_bad_options_are_one_line_errors(options, needle):
    with pytest.raises(ImdsError) as exc:
        ImdsClient(Script(ok()), endpoint="http://127.0.0.1:9", **options)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("value, expected", [("5", 5.0), ("0", 0.0), (" 2 ", 2.0), ("", None), (None, None), ("soon", None)])
def test_retry_after_parsing(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


@pytest.mark.parametrize("retry_after", ["0", "-5", "0.001", "1e-9"])
def test_a_tiny_retry_after_never_lowers_the_back_off_floor(clock, retry_after):
    """Retry-After: 0 must not turn the client into a 5-per-second loop for the whole retry_timeout."""
    t = Script(err(429, headers={"retry-after": retry_after}), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock, retry_timeout=10).instance()
    assert all(delay >= _client.MIN_DELAY for delay in clock.sleeps[:-1])
    assert len(t.calls) <= 12  # jittered exponential back-off, not 50 attempts
    assert "without waiting" not in str(exc.value) and "gave up after" in str(exc.value)


@pytest.mark.parametrize("answers", [
    # a 400 that asks for negotiation, /metadata/versions, then the retried request: each slow
    [err(400, {"error": "api-version is invalid"}), "slow", "slow"],
    [err(410), err(410), err(410), "slow"],
    ["slow_reset", "slow_reset", "slow"],
])
def test_one_call_never_outlasts_retry_timeout_plus_timeout(clock, answers):
    """Negotiation, the versions request, back-off and slow attempts all count against one deadline."""
    def slow(url):  # the transport takes what it was given, as a dribbling server makes it
        clock.now += t.calls[-1]["timeout"]
        raise TransportError("timeout", "timed out")

    def slow_reset(url):
        clock.now += t.calls[-1]["timeout"] * 0.99
        raise TransportError("reset", "connection reset by the peer")

    script = [slow if a == "slow" else slow_reset if a == "slow_reset" else a for a in answers]
    t = Script(*script, clock=clock, cost=0.0)
    start = clock.now
    with pytest.raises(ImdsError):
        client(t, clock, timeout=3, retry_timeout=4).instance()
    assert clock.now - start <= 4 + 3 + 1e-6
    assert all(call["timeout"] > 0 for call in t.calls)


def test_attempts_get_only_the_time_that_is_left(clock):
    t = Script(err(503), clock=clock, cost=0.5)
    start = clock.now
    with pytest.raises(ImdsError):
        client(t, clock, timeout=5, retry_timeout=3).instance()
    assert len(t.calls) >= 2
    assert all(call["at"] + call["timeout"] <= start + 3 + 5 + 1e-6 for call in t.calls)
    assert all(call["at"] <= start + 3 + 1e-6 for call in t.calls)  # no attempt starts after retry_timeout


def test_a_whole_body_of_broken_json_is_not_json(clock):
    """Framed by its Content-Length, the body came whole: broken JSON is the server's, not the network's."""
    body = b'{"compute": {"vmId": "0f6'
    t = Script(HttpResponse(200, {"content-length": str(len(body))}, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert "not JSON" in str(exc.value) and exc.value.kind == "body" and len(t.calls) == 1


@pytest.mark.parametrize("body", [b'{"compute": {"vmId": "a"', b'{"compute": {"vmId": "a', b"[1, 2, [3"])
def test_a_body_cut_short_without_length_is_retried_and_named(clock, body):
    t = Script(HttpResponse(200, {}, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert exc.value.kind == "truncated" and "middle of its JSON document" in str(exc.value)
    assert len(t.calls) == 1 + _client.TRANSPORT_RETRIES
    t = Script(HttpResponse(200, {}, body), ok(), clock=clock)
    assert client(t, clock).instance().data == DOC


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-custom"])
def test_a_compressed_body_names_its_encoding(clock, encoding):
    import gzip

    t = Script(HttpResponse(200, {"content-encoding": encoding}, gzip.compress(json.dumps(DOC).encode())), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert f"{encoding}-encoded body (Content-Encoding: {encoding})" in str(exc.value) and exc.value.kind == "body"


@pytest.mark.parametrize("body, needle", [
    (b'{"compute": {"platformFaultDomain": NaN}}', "NaN"),
    (b'{"compute": {"x": Infinity}}', "Infinity"),
    (b'{"compute": {"x": -Infinity}}', "-Infinity"),
    (b'{"compute": {"x": 1e999}}', "1e999"),
])
def test_numbers_standard_json_cannot_hold_are_refused(clock, body, needle):
    t = Script(HttpResponse(200, {}, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert needle in str(exc.value) and "standard JSON" in str(exc.value) and exc.value.kind == "body"


@pytest.mark.parametrize("depth", [65, 250, 900, 5000])
def test_json_nested_too_deep_anywhere_is_refused(clock, depth):
    body = b'{"network": ' + b"[" * depth + b"]" * depth + b"}"
    t = Script(HttpResponse(200, {}, body), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert "nested more than 64 levels" in str(exc.value) and exc.value.kind == "body"


def test_json_at_the_depth_limit_is_read(clock):
    body = b'{"network": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert client(Script(HttpResponse(200, {}, body), clock=clock), clock).instance().data["network"]


@pytest.mark.parametrize("text", ["\x1b[2J\x1b]0;pwned\x07", "line one\r\nFAKE: ok", "\u202eevil", "a\u2028b\x00c"])
def test_server_text_in_messages_is_escaped(clock, text):
    t = Script(err(403, {"error": text}), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock).instance()
    assert str(exc.value).isprintable()


def test_token_404_and_timeouts_are_retried(clock):
    t = Script(err(404, {"error": "IMDS endpoint is updating"}), TransportError("timeout", "timed out"),
               ok({"access_token": "x"}), clock=clock)
    r = client(t, clock, api_version="2018-02-01").get("/metadata/identity/oauth2/token", {"resource": "r"},
                                                       policy=_client.TOKEN_RETRY)
    assert r.data == {"access_token": "x"} and len(t.calls) == 3


def test_a_persistent_token_404_gives_up_with_its_meaning(clock):
    t = Script(err(404, {"error": "IMDS endpoint is updating"}), clock=clock)
    with pytest.raises(ImdsError) as exc:
        client(t, clock, api_version="2018-02-01", retry_timeout=5).get(
            "/metadata/identity/oauth2/token", {"resource": "r"}, policy=_client.TOKEN_RETRY)
    assert exc.value.status == 404 and "identity endpoint is updating" in str(exc.value)
