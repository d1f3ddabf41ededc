"""A scripted transport: the one fake of the HTTP adapter that unit tests share."""
from __future__ import annotations

import json

from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, Transport

DOC = {"compute": {"vmId": "abc"}, "network": {"interface": []}}


class ScriptedTransport(Transport):
    """Answers from a list, in order (the last one again and again): an HttpResponse, an
    exception to raise, or a callable taking the URL that returns either. Records every call;
    with a FakeClock, each request moves it on by ``cost`` seconds."""

    def __init__(self, *answers, clock=None, cost=0.01):
        self.answers = list(answers)
        self.calls = []
        self.clock = clock
        self.cost = cost

    def request(self, method, url, headers, data, timeout, max_bytes):
        self.calls.append({"method": method, "url": url, "headers": dict(headers), "data": data,
                           "timeout": timeout, "max_bytes": max_bytes,
                           "at": self.clock.now if self.clock is not None else None})
        if self.clock is not None:
            self.clock.now += self.cost
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, HttpResponse):
            answer = answer(url)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def ok(doc=None, status=200, headers=None):
    """A 200 answer with ``doc`` (DOC by default) as JSON."""
    return HttpResponse(status, dict(headers or {"content-type": "application/json"}),
                        json.dumps(DOC if doc is None else doc).encode())


def err(status, body=None, headers=None):
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
