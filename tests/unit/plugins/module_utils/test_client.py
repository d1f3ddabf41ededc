"""The IMDS client against a scripted transport and a fake clock: every status, every failure."""
from __future__ import annotations

import json
import uuid

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _client
from ansible_collections.imds.azure.plugins.module_utils._client import (
    DEFAULT_ENDPOINT, ImdsClient, ImdsError, RateLimiter, retry_after_seconds)
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, Transport, TransportError
from ansible_collections.imds.azure.plugins.module_utils._versions import NEWEST
from tests.utils.clock import FakeClock

DOC = {"compute": {"vmId": "abc"}, "network": {"interface": []}}


class Script(Transport):
    """Answers from a list: HttpResponse, TransportError, or callables taking the URL."""

    def __init__(self, *answers, clock=None, cost=0.01):
        self.answers = list(answers)
        self.calls = []
        self.clock = clock
        self.cost = cost

    def request(self, method, url, headers, data, timeout, max_bytes):
        self.calls.append({"method": method, "url": url, "headers": dict(headers), "data": data, "timeout": timeout})
        if self.clock is not None:
            self.clock.now += self.cost
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            answer = answer(url)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(doc=None, status=200):
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(DOC if doc is None else doc).encode())


def err(status, body=None, headers=None):
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
    return HttpResponse(status, headers or {}, raw)


def client(transport, clock, **kwargs):
    limiter = RateLimiter("test", clock=clock, sleep=clock.sleep, directory=kwargs.pop("tmpdir", None))
    return ImdsClient(transport, endpoint=kwargs.pop("endpoint", "http://127.0.0.1:9"), clock=clock,
                      sleep=clock.sleep, limiter=limiter, **kwargs)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(autouse=True)
def _rate_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(_client.tempfile, "gettempdir", lambda: str(tmp_path))


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
    assert "not ready yet" in str(exc.value) and exc.value.status == 410
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


def test_first_timeout_applies_to_first_attempt_only(clock):
    t = Script(err(500), ok(), clock=clock)
    client(t, clock, timeout=7).instance(first_timeout=1.0)
    assert [c["timeout"] for c in t.calls] == [1.0, 7.0]


@pytest.mark.parametrize("body, needle", [
    (b'{"compute": {"vmId": "a"', "not JSON"),
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


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_an_error(clock, status):
    t = Script(err(status, headers={"location": "http://evil.example/"}), clock=clock)
    with pytest.raises(ImdsError, match="never redirects"):
        client(t, clock).instance()
    assert len(t.calls) == 1


def test_post_sends_json(clock):
    t = Script(ok({}), clock=clock)
    client(t, clock).post("/metadata/scheduledevents", {"StartRequests": [{"EventId": "x"}]}, {"x": "1"})
    call = t.calls[0]
    assert call["method"] == "POST" and json.loads(call["data"]) == {"StartRequests": [{"EventId": "x"}]}
    assert call["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("endpoint", ["169.254.169.254", "ftp://x", "http://", ""])
def test_bad_endpoint(endpoint):
    with pytest.raises(ImdsError, match="not an http:// URL"):
        ImdsClient(Script(ok()), endpoint=endpoint)


def test_bad_timeouts():
    with pytest.raises(ImdsError, match="timeout must be"):
        ImdsClient(Script(ok()), timeout=0)


def test_rate_limiter_keeps_five_per_second(clock, tmp_path):
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path))
    stamps = []
    for dummy in range(23):
        limiter.acquire()
        stamps.append(clock.now)
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 1.0 - 1e-9


def test_rate_limiter_is_shared_through_its_file(clock, tmp_path):
    a = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path))
    b = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path))
    for dummy in range(5):
        a.acquire()
    b.acquire()
    assert clock.sleeps and clock.sleeps[-1] > 0.9


def test_rate_limiter_ignores_garbage(clock, tmp_path):
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path))
    with open(limiter.path, "w") as handle:
        handle.write("nonsense 1e308 -5 " + " ".join(str(clock.now + 100) for dummy in range(10)))
    limiter.acquire()
    assert clock.sleeps == []


@pytest.mark.parametrize("value, expected", [("5", 5.0), ("0", 0.0), (" 2 ", 2.0), ("", None), (None, None), ("soon", None)])
def test_retry_after_parsing(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
