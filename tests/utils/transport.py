"""A scripted transport: the one fake of the HTTP adapter that the unit tests share.

Every request the client makes goes to ``ScriptedTransport.request`` instead of the network.
It answers from scripts, records every call, and refuses what nobody scripted:

- ``ScriptedTransport(a, b, c)`` answers a, then b, then c again and again;
- ``strict=True`` answers each one once and fails the test on a request after them;
- ``routes={"/metadata/x": [...], "POST /metadata/y": [...]}`` scripts a path (or a
  method and a path) of its own, ahead of the general script; ``.script(path, ...)``
  adds one later;
- ``emulator=Emulator(...)`` answers the rest through an in-process IMDS emulator's
  ``answer()`` (no socket): the independent oracle;
- ``endpoints=(...)`` fails the test on a request to any other ``scheme://host:port``.

An answer is an ``HttpResponse``, an exception to raise, a status (``int``: that status
with a JSON error body), a JSON value (``dict`` or ``list``: 200 with it as the body), or a
callable taking the URL that returns one of those.
"""
from __future__ import annotations

import json
import typing as t
from urllib.parse import parse_qsl, urlsplit

from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, Transport
from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimiter

DOC = {"compute": {"vmId": "abc"}, "network": {"interface": []}}
SCRIPTED_ERROR = b'{"error": "scripted"}'

Answer = t.Any  # HttpResponse | BaseException | int | dict | list | Callable[[str], Answer]


class ScriptedTransport(Transport):
    """Answers from scripts (see the module docstring); ``calls`` holds every request, in order.

    A call is a dict: method, url, path, query (a dict), headers, data, body (data read as
    JSON, or None), timeout, max_bytes and ``at`` (the FakeClock's time when it was sent).
    With a FakeClock, each request moves it on by ``cost`` seconds.
    """

    def __init__(self, *answers: Answer, routes: t.Mapping[str, t.Sequence[Answer]] | None = None,
                 emulator: t.Any = None, clock: t.Any = None, cost: float = 0.01,
                 strict: bool = False, endpoints: t.Sequence[str] | None = None) -> None:
        self.answers = list(answers)
        self.routes = {key: list(script) for key, script in (routes or {}).items()}
        self.emulator = emulator
        self.clock = clock
        self.cost = cost
        self.strict = strict
        self.endpoints = tuple(endpoints) if endpoints is not None else None
        self.calls: list[dict[str, t.Any]] = []

    def script(self, path: str, *answers: Answer) -> None:
        """Answer ``path`` (or "METHOD path") with ``answers`` from now on, ahead of anything else."""
        self.routes[path] = list(answers)

    def request(self, method, url, headers, data, timeout, max_bytes):
        parts = urlsplit(url)
        method = method or "GET"
        if self.endpoints is not None:
            assert f"{parts.scheme}://{parts.netloc}" in self.endpoints, f"a request left for {url}"
        self.calls.append({"method": method, "url": url, "path": parts.path,
                           "query": dict(parse_qsl(parts.query, keep_blank_values=True)),
                           "headers": dict(headers or {}), "data": data, "body": _json_or_none(data),
                           "timeout": timeout, "max_bytes": max_bytes,
                           "at": self.clock.now if self.clock is not None else None})
        if self.clock is not None:
            self.clock.now += self.cost
        script = self.routes.get(f"{method} {parts.path}", self.routes.get(parts.path))
        if script is None and (self.answers or self.emulator is None):
            script = self.answers
        if script is None:
            return _emulator_answer(self.emulator, method, parts, headers or {}, data)
        if not script:
            raise AssertionError(f"unexpected request: {method} {url}")
        answer = script.pop(0) if self.strict or len(script) > 1 else script[0]
        return _response(answer(url) if callable(answer) and not isinstance(answer, HttpResponse) else answer)

    # -- reading the calls -------------------------------------------------------------

    def paths(self) -> list[str]:
        return [call["path"] for call in self.calls]

    def queries(self) -> list[dict[str, str]]:
        return [call["query"] for call in self.calls]

    def of(self, method: str, path: str | None = None) -> list[dict[str, t.Any]]:
        """The calls with this method (and path)."""
        return [call for call in self.calls if call["method"] == method and path in (None, call["path"])]


def _json_or_none(data: bytes | None) -> t.Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def _response(answer: Answer) -> HttpResponse:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, HttpResponse):
        return answer
    if isinstance(answer, int):
        return HttpResponse(answer, {}, SCRIPTED_ERROR)
    if isinstance(answer, (dict, list)):
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(answer).encode())
    raise TypeError(f"not a scripted answer: {answer!r}")


def ok(doc: t.Any = None, status: int = 200, headers: t.Mapping[str, str] | None = None) -> HttpResponse:
    """A 200 answer with ``doc`` (DOC by default) as JSON."""
    return HttpResponse(status, dict(headers or {"content-type": "application/json"}),
                        json.dumps(DOC if doc is None else doc).encode())


def err(status: int, body: t.Any = None, headers: t.Mapping[str, str] | None = None) -> HttpResponse:
    """An answer with ``status`` and a JSON (or raw bytes) body."""
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
    return HttpResponse(status, dict(headers or {}), raw)


NO_LOAD_BALANCER = HttpResponse(404, {"content-type": "application/json"}, json.dumps(
    {"error": "No load balancer metadata is found. Please check if your VM is using any non-basic SKU load balancer "
              "and retry later."}).encode())


def instance_and_no_load_balancer(instance):
    """An answer for ScriptedTransport: ``instance`` for the instance document, IMDS's 404 for the load balancer."""
    def answer(url):
        return NO_LOAD_BALANCER if "/metadata/loadbalancer" in url else instance
    return answer


def _emulator_answer(emulator: t.Any, method: str, parts: t.Any, headers: t.Mapping[str, str],
                     data: bytes | None) -> HttpResponse:
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    sent = {name.lower(): value for name, value in headers.items()}
    reply = emulator.answer(method, parts.path, query, sent, data or b"")
    extra = {"content-type": reply.content_type} if reply.content_type else {}
    extra.update({name.lower(): value for name, value in reply.headers.items()})
    return HttpResponse(reply.status, extra, b"".join(reply.chunks()))


def client_on(transport: Transport, clock: t.Any, *, endpoint: str = "http://127.0.0.1:9",
              name: str = "test", **kwargs: t.Any) -> ImdsClient:
    """An ImdsClient over ``transport`` whose time, back-off and rate limit all run on ``clock``."""
    limiter = RateLimiter(name, clock=clock, sleep=clock.sleep)
    return ImdsClient(transport, endpoint=endpoint, clock=clock, sleep=clock.sleep, limiter=limiter, **kwargs)
