"""The fault matrix: imds.azure.metadata_facts against a misbehaving IMDS, through real ansible-playbook.

Each scenario states what the user must see (the right facts, or a failure whose
message names the cause) and the time the task may take at most; all scenarios play
in one ansible-playbook run (one host each, see tests/playbooks/faults/matrix.py) and
each is asserted on its own. The table of results is printed at the end of the run and
kept in docs/docsite/rst/reliability.rst.

Time bounds: ``timeout`` (T) and ``retry_timeout`` (R) are small here. Each scenario's
bound is on the client's own time: from the first request the emulator saw to the end of
the module process (the module's interpreter is a timed wrapper). A call that gives up
does so within R + T, the client's promise; EPS covers parsing, normalizing and the
process exit. The whole task (worker fork, Python start, AnsiballZ) must end within the
bound plus OVERHEAD, generous for a loaded 2-core runner.

The module runs with its defaults, so a gather whose instance document arrives also asks
for the load balancer metadata, within the same bound; the emulator's faults hit that
request too. The checks below look at the instance document's requests
(``instance()``); every scenario also checks the load balancer request (asked after a
success at the same api-version, never after a failure, and never a failed gather).
"""
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imds.azure.tests.playbooks.faults.matrix import Outcome, Scenario, profile_document, run_matrix
from ansible_collections.imds.azure.tests.playbooks.faults.report import register

T = 2.0  # per-request timeout (seconds)
R = 3.0  # retry_timeout for scenarios that must give up
EPS = 3.0  # parse, normalize, exit, on a loaded runner (the bounds that prove a deadline are far from it)
OVERHEAD = 20.0  # what a task costs around the module on a loaded runner
FAIL_FAST = {"timeout": T, "retry_timeout": R}
NEWEST = "2025-04-07"
LINUX = profile_document("linux")
VM_ID = LINUX["compute"]["vmId"]
KNOWN = ["2020-09-01", "2021-01-01", "2021-02-01"]  # a region that lags behind
UNKNOWN = ["2030-01-01", "2031-06-15"]  # only versions from the future
MAX_BACKOFF = [0.25 + 2 ** n for n in range(4)] + [8.25] * 100  # full jitter, capped at 8 s, + 0.25 s floor


LOAD_BALANCER = "/metadata/loadbalancer"


def instance(outcome: Outcome) -> list[dict]:
    """The requests of the instance document's call (its /metadata/versions included)."""
    return [r for r in outcome.requests if r["path"] != LOAD_BALANCER]


def load_balancer(outcome: Outcome) -> list[dict]:
    return [r for r in outcome.requests if r["path"] == LOAD_BALANCER]


def statuses(outcome: Outcome) -> list[int]:
    return [r["status"] for r in instance(outcome)]


def versions_asked(outcome: Outcome) -> list[str | None]:
    return [r["query"].get("api-version") for r in instance(outcome)]


def span(outcome: Outcome) -> float:
    """Seconds between the first and the last request of the instance document's call."""
    times = [r["time"] for r in instance(outcome)]
    return times[-1] - times[0] if times else 0.0


# -- checks beyond "facts or message" ----------------------------------------------------

def rode_out_410(outcome: Outcome) -> None:
    codes = statuses(outcome)
    assert codes[0] == 410 and codes[-1] == 200 and set(codes[:-1]) == {410}, codes
    # the 200 came after the 5 s window closed, and the client backed off, never spun
    assert span(outcome) >= 5.0
    times = [r["time"] for r in instance(outcome)]
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:])), times


def gave_up_within_deadline(outcome: Outcome) -> None:
    assert len(instance(outcome)) >= 2, "retried at least once"
    # no attempt began after retry_timeout (the emulator may log an arrival late on a loaded runner)
    assert span(outcome) <= R + TOLERANCE, f"retries lasted {span(outcome):.2f} s, retry_timeout is {R} s"


def retried_then_ok(count: int):
    def check(outcome: Outcome) -> None:
        codes = statuses(outcome)
        assert len(codes) == count + 1 and codes[-1] == 200, codes
        assert span(outcome) <= sum(MAX_BACKOFF[:count]) + TOLERANCE
    return check


def honoured_retry_after(outcome: Outcome) -> None:
    assert statuses(outcome) == [400, 429, 200]
    assert versions_asked(outcome) == [NEWEST, "2021-02-01", "2021-02-01"]
    requests = instance(outcome)
    waited = requests[2]["time"] - requests[1]["time"]
    assert 0.95 <= waited < 1.0 + EPS, f"waited {waited:.2f} s after Retry-After: 1"


def gave_up_at_once_on_long_retry_after(outcome: Outcome) -> None:
    assert statuses(outcome) == [400, 429]


def attempts(count: int):
    def check(outcome: Outcome) -> None:
        assert len(instance(outcome)) == count, statuses(outcome)
    return check


def transport_retried(outcome: Outcome) -> None:
    """A reset or a cut-short body is retried twice at most (and at least once when time allows)."""
    assert 2 <= len(outcome.requests) <= 3, statuses(outcome)


def no_request_logged(outcome: Outcome) -> None:
    assert outcome.requests == []


def redirect_not_followed(outcome: Outcome) -> None:
    assert len(outcome.requests) == 1, [r["path"] for r in outcome.requests]
    assert outcome.stage.trap is None or outcome.stage.trap.contacts == []


def proxy_untouched(outcome: Outcome) -> None:
    assert outcome.stage.trap.contacts == [], outcome.stage.trap.contacts
    assert [r["path"] for r in outcome.requests] == ["/metadata/instance", LOAD_BALANCER]
    for request in outcome.requests:
        headers = request["headers"]
        assert "x-forwarded-for" not in headers and "via" not in headers and headers["metadata"] == "true"


def negotiated(version: str, count: int):
    def check(outcome: Outcome) -> None:
        asked = versions_asked(outcome)
        assert len(asked) == count and asked[0] == NEWEST and asked[-1] == version, asked
        assert outcome.hosts[0].facts["azure_api_version"] == version
        # the load balancer at the negotiated version, not negotiated again
        assert [r["query"].get("api-version") for r in load_balancer(outcome)] == [version]
    return check


def asked_list_then_gave_up(outcome: Outcome) -> None:
    assert [r["path"] for r in outcome.requests] == ["/metadata/instance", "/metadata/versions"]


def duplicate_key_reported(outcome: Outcome) -> None:
    assert outcome.hosts[0].facts["azure_vm_id"] == "second-value-wins"
    assert "[WARNING]: IMDS at" in outcome.run.output and "named the key 'vmId' twice" in outcome.run.output


def nulls_kept(outcome: Outcome) -> None:
    facts = outcome.hosts[0].facts
    assert facts["azure_name"] is None and facts["azure_vm_size"] is None
    assert facts["azure_location"] == LINUX["compute"]["location"]
    assert facts["azure_private_ipv4"] is None
    assert facts["azure_compute"]["name"] is None


def load_balancer_answers(*expected: int):
    """The load balancer's requests answered these statuses, after the instance document's."""
    def check(outcome: Outcome) -> None:
        assert [r["status"] for r in load_balancer(outcome)] == list(expected)
        assert statuses(outcome) == [200]
    return check


def load_balancer_waited_for_retry_after(outcome: Outcome) -> None:
    load_balancer_answers(429, 200)(outcome)
    first, second = load_balancer(outcome)
    assert 0.95 <= second["time"] - first["time"] < 1.0 + EPS
    assert outcome.hosts[0].facts["azure_load_balancer_status"] == "found"


def load_balancer_within_what_was_left(outcome: Outcome) -> None:
    """The instance document took nearly all of R: the load balancer still came, within R + T."""
    rode = statuses(outcome)
    assert rode[-1] == 200 and set(rode[:-1]) == {410}, rode
    [asked] = load_balancer(outcome)
    assert asked["status"] == 200
    assert asked["time"] - outcome.requests[0]["time"] <= R + T
    assert outcome.hosts[0].facts["azure_load_balancer_status"] == "found"


def one_clean_line(outcome: Outcome) -> None:
    message = outcome.hosts[0].msg
    assert message.isprintable(), repr(message)  # no line break, no terminal escape from the server


FORGED = 'Bad request\nok: [web01] => {"azure_vm_id": "forged"}\u001b[2K'


def body(text: str, status: int = 200, content_type: str = "application/json") -> dict:
    return {"body": {"text": text, "status": status, "content_type": content_type}}


def redirect(status: int, where: str):
    def faults(stage) -> dict:
        location = (f"{stage.trap.url}/metadata/instance?api-version={NEWEST}" if where == "host"
                    else f"/elsewhere/metadata/instance?api-version={NEWEST}")
        return {"redirect": {"status": status, "location": location}}
    return faults


DUPLICATE = ('{"compute": ' + json.dumps(LINUX["compute"])[:-1] + ', "vmId": "second-value-wins"}, "network": '
             + json.dumps(LINUX["network"]) + "}")
WITH_NULLS = json.loads(json.dumps(LINUX))
WITH_NULLS["compute"].update(name=None, vmSize=None)
for _nic in WITH_NULLS["network"]["interface"]:
    for _address in _nic["ipv4"]["ipAddress"]:
        _address["privateIpAddress"] = None
PROXY_NAMES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
PROXY_ENV = {name: "{trap}" for name in PROXY_NAMES}
PROXY_ENV.update(no_proxy="", NO_PROXY="")
GIVES_UP = R + T + EPS
AT_ONCE = EPS

SCENARIOS = [
    # -- IMDS says "not now" -------------------------------------------------------------
    Scenario("410 for the first 5 s, then 200", "facts, after riding out the 410s", 5 + 8.25 + AT_ONCE, True,
             {"status_for_seconds": {"status": 410, "seconds": 5}}, {"timeout": T, "retry_timeout": 20},
             check=rode_out_410),
    Scenario("410 beyond retry_timeout", "fails in time: service not ready", GIVES_UP, False,
             {"status_always": 410}, FAIL_FAST, words=("410", "going through updates", "retry_timeout"),
             check=gave_up_within_deadline),
    Scenario("429 x3 without Retry-After, then 200", "facts, after jittered back-off", sum(MAX_BACKOFF[:3]) + EPS,
             True, {"status_first_n": {"status": 429, "count": 3}}, {"timeout": T, "retry_timeout": 15},
             check=retried_then_ok(3)),
    Scenario("429 with Retry-After: 1 (limit 1 req/s, 2nd request)", "facts, Retry-After honoured", 2 + EPS, True,
             {"versions": KNOWN, "rate_limit": {"per_second": 1, "retry_after": 1}}, {"timeout": T, "retry_timeout": 10},
             check=honoured_retry_after),
    Scenario("429 with Retry-After: 30 > retry_timeout", "fails at once: throttled", AT_ONCE, False,
             {"versions": KNOWN, "rate_limit": {"per_second": 1, "retry_after": 30}}, {"timeout": T, "retry_timeout": 10},
             words=("429", "throttling", "asked to retry after 30 s (Retry-After)", "without waiting"),
             check=gave_up_at_once_on_long_retry_after),
    Scenario("429 always", "fails in time: throttled", GIVES_UP, False, {"status_always": 429}, FAIL_FAST,
             words=("429", "throttling", "5 requests per second"), check=gave_up_within_deadline),
    *[Scenario(f"{status} x2, then 200", "facts, after retries", sum(MAX_BACKOFF[:2]) + EPS, True,
               {"status_first_n": {"status": status, "count": 2}}, {"timeout": T, "retry_timeout": 10},
               check=retried_then_ok(2))
      for status in (500, 502, 503, 504)],
    *[Scenario(f"{status} always", "fails in time: IMDS degraded", GIVES_UP, False, {"status_always": status},
               FAIL_FAST, words=(f"IMDS answered {status}", "Gave up after", "degraded"),
               check=gave_up_within_deadline)
      for status in (500, 502, 503, 504)],
    # -- the connection misbehaves -------------------------------------------------------
    Scenario("connection refused", "fails at once, not retried", AT_ONCE, False, endpoint="closed",
             options=FAIL_FAST, words=("connection refused", "Nothing listens")),
    Scenario("connection reset before the headers", "fails after 2 retries: reset", GIVES_UP, False,
             {"reset": "before_headers"}, FAIL_FAST, words=("reset", "attempts"), check=transport_retried),
    Scenario("connection reset mid-body", "fails after 2 retries: reset", GIVES_UP, False,
             {"reset": "mid_body"}, FAIL_FAST, words=("reset", "attempts"), check=transport_retried),
    Scenario("accepts, never answers", "fails after timeout, not retried", T + EPS, False, {"hang": True},
             FAIL_FAST, words=("timed out",), check=attempts(1)),
    Scenario("dribbles 1 byte/s", "fails after timeout (whole response)", T + EPS, False, {"dribble": 1},
             FAIL_FAST, words=("timed out while reading the response body",), check=attempts(1)),
    Scenario("headers dribbled 1 byte/s", "fails after timeout, not retried", T + EPS, False, options=FAIL_FAST,
             endpoint="slow_headers", words=("timed out waiting for the status line and headers",),
             check=attempts(1)),
    Scenario("body shorter than Content-Length", "fails after 2 retries: truncated", GIVES_UP, False,
             {"truncate": True}, FAIL_FAST, words=("the response ended after", "attempts"),
             check=transport_retried),
    # -- the body is wrong ---------------------------------------------------------------
    Scenario("truncated JSON", "fails: not JSON", AT_ONCE, False, body('{"compute": {"vmId": "0f6'),
             FAIL_FAST, words=("not JSON",), check=attempts(1)),
    Scenario("HTML from a captive portal", "fails: not JSON, captive portal", AT_ONCE, False, {"html": True},
             FAIL_FAST, words=("not JSON", "captive portal", "<!DOCTYPE html>"), check=attempts(1)),
    Scenario("a JSON array", "fails: not an instance document", AT_ONCE, False,
             body(json.dumps([LINUX])), FAIL_FAST, words=("not an instance document", "the document is a list")),
    Scenario("a JSON string", "fails: not an instance document", AT_ONCE, False, body('"compute"'), FAIL_FAST,
             words=("not an instance document", "the document is a string")),
    Scenario("compute is a string", "fails: compute is not an object", AT_ONCE, False,
             body('{"compute": "Standard_D2s_v3", "network": {"interface": []}}'), FAIL_FAST,
             words=("compute is a string, not an object",)),
    Scenario("JSON nested 100,000 deep", "fails: nested too deep, no traceback", AT_ONCE, False,
             body('{"compute": ' + "[" * 100_000 + "]" * 100_000 + "}"), FAIL_FAST,
             words=("nested more than 64 levels",), check=attempts(1)),
    Scenario("a 50 MiB body", "fails quickly: larger than 4 MiB", T + EPS, False, {"body_size": 50 * 1024 * 1024},
             FAIL_FAST, words=("larger than 4194304 bytes", "something other than IMDS answered"), check=attempts(1)),
    Scenario("invalid UTF-8", "fails: not UTF-8", AT_ONCE, False,
             {"body": {"base64": base64.b64encode(b'{"compute": {"name": "caf\xff"}}').decode()}}, FAIL_FAST,
             words=("not UTF-8", "invalid start byte")),
    Scenario("error text with a line break and a terminal escape", "fails: the text shown escaped, on one line",
             AT_ONCE, False, body(json.dumps({"error": FORGED}), status=400), FAIL_FAST,
             words=("IMDS answered 400", "Bad request\\nok: [web01]", "\\x1b[2K"), check=one_clean_line),
    Scenario("an error body with 200 and a line break", "fails: not an instance document, on one line", AT_ONCE,
             False, body(json.dumps({"error": FORGED})), FAIL_FAST,
             words=("IMDS answered with an error", "Bad request\\nok: [web01]"), check=one_clean_line),
    Scenario("a duplicate key (vmId twice)", "facts, last value wins, with a warning", AT_ONCE, True,
             body(DUPLICATE), FAIL_FAST, words=("named the key 'vmId' twice", "the last value was used"),
             vm_id="second-value-wins", check=duplicate_key_reported),
    Scenario("null where a string belongs", "facts, nulls as null", AT_ONCE, True, body(json.dumps(WITH_NULLS)),
             FAIL_FAST, check=nulls_kept),
    # -- redirects: never followed -------------------------------------------------------
    *[Scenario(f"{status} redirect to another host", "fails: not followed, target untouched", AT_ONCE, False,
               redirect(status, "host"), FAIL_FAST, words=(f"IMDS answered {status}", "never redirects",
                                                           "not followed"), trap=True, check=redirect_not_followed)
      for status in (301, 302, 307)],
    Scenario("302 redirect to another path", "fails: not followed", AT_ONCE, False, redirect(302, "path"),
             FAIL_FAST, words=("IMDS answered 302", "not followed"), check=redirect_not_followed),
    # -- a proxy in the environment ------------------------------------------------------
    Scenario("proxy variables set, no_proxy empty", "facts; the proxy sees nothing", AT_ONCE, True,
             options=FAIL_FAST, env=PROXY_ENV, trap=True, check=proxy_untouched),
    # -- the 400 "newest-versions" answer --------------------------------------------------
    *[Scenario(f"400 {wording} wording, known versions offered", "facts at 2021-02-01", AT_ONCE, True,
               {"versions": KNOWN, "error_wording": wording}, FAIL_FAST, check=negotiated("2021-02-01", 2))
      for wording in ("new", "old")],
    *[Scenario(f"400 {wording} wording, only unknown versions", "fails: no known version served", AT_ONCE,
               False, {"versions": UNKNOWN, "error_wording": wording}, FAIL_FAST,
               words=("IMDS answered 400", "No api-version known to this collection is served here"),
               check=attempts(1))
      for wording in ("new", "old")],
    Scenario("400 new wording, known and unknown versions", "facts at the newest known", AT_ONCE, True,
             {"versions": ["2021-02-01", *UNKNOWN], "error_wording": "new"}, FAIL_FAST,
             check=negotiated("2021-02-01", 2)),
    Scenario("400 without the list, known versions served", "facts, via /metadata/versions", AT_ONCE, True,
             {"versions": KNOWN, "error_wording": "no_list"}, FAIL_FAST, check=negotiated("2021-02-01", 3)),
    Scenario("400 without the list, only unknown versions", "fails: no known version served", AT_ONCE, False,
             {"versions": UNKNOWN, "error_wording": "no_list"}, FAIL_FAST,
             words=("No api-version known to this collection is served here",), check=asked_list_then_gave_up),
    Scenario("400 for a pinned api_version", "fails: names the versions offered", AT_ONCE, False,
             {"versions": KNOWN, "error_wording": "old"}, {**FAIL_FAST, "api_version": NEWEST},
             words=(f"pinned api_version {NEWEST}", "2021-02-01"), check=attempts(1)),
    # -- the load balancer metadata, the gather's second request ---------------------------
    Scenario("load balancer refused (every 2nd request 400)", "facts; a warning, status failed", AT_ONCE, True,
             {"every_kth": {"k": 2, "status": 400}}, FAIL_FAST,
             words=("Load balancer metadata not read", "IMDS answered 400", LOAD_BALANCER),
             check=load_balancer_answers(400)),
    Scenario("load balancer 503 (every 2nd request), retried", "facts with the load balancer",
             MAX_BACKOFF[0] + EPS, True, {"every_kth": {"k": 2, "status": 503}}, FAIL_FAST,
             check=load_balancer_answers(503, 200)),
    Scenario("load balancer 429 with Retry-After: 1 (limit 1 req/s)", "facts, Retry-After honoured", 1 + EPS, True,
             {"rate_limit": {"per_second": 1, "retry_after": 1}}, {"timeout": T, "retry_timeout": 10},
             check=load_balancer_waited_for_retry_after),
    Scenario("load balancer 429 with Retry-After: 30 > retry_timeout", "facts at once; a warning", AT_ONCE, True,
             {"rate_limit": {"per_second": 1, "retry_after": 30}}, {"timeout": T, "retry_timeout": 10},
             words=("Load balancer metadata not read", "429", "asked to retry after 30 s (Retry-After)"),
             check=load_balancer_answers(429)),
    Scenario("410 for 2.5 s of R = 3 s, then the load balancer", "facts; the load balancer within R + T", GIVES_UP,
             True, {"status_for_seconds": {"status": 410, "seconds": 2.5}}, FAIL_FAST,
             check=load_balancer_within_what_was_left),
]


# == Widened for issue 14: hostile servers, by category ====================================
#
# The checks below assert the policy, on measures a loaded runner cannot bend: what reached
# the emulator (how many requests at most, how far apart: a sequential client's requests
# are at least its back-off apart, whatever the load), and the emulator's own clock of
# each answer (``ended``: when the answer was over or the client was seen to leave), so
# that a deadline is proven on the server's side, without the start-up and exit of
# Ansible and Python around the module.

TD = 3.0  # the timeout of the scenarios that dribble just under it (2 TD tells a per-read timeout apart)
UNDER = 0.9  # a byte every 0.9 TD: a per-read timeout never fires
TOLERANCE = 1.5  # a loaded runner: the client's close scheduled, the server's notice of it
MIN_DELAY = 0.25  # the client's back-off floor (plugins/module_utils/_client.py)
GIB = 1 << 30


def answered_within(seconds: float):
    """Every attempt was over (answered, or given up by the client) ``seconds`` after it arrived."""
    def check(outcome: Outcome) -> None:
        assert outcome.requests, "the emulator saw the request"
        for sent in outcome.requests:
            assert "ended" in sent, f"the emulator never saw attempt {sent} end"
            assert sent["ended"] - sent["time"] <= seconds + TOLERANCE, \
                f"an attempt lasted {sent['ended'] - sent['time']:.2f} s on the server's clock, timeout {seconds:g} s"
    return check


def call_ended_within(seconds: float):
    """From the first arrival to the end of the last answer, on the server's clock."""
    def check(outcome: Outcome) -> None:
        first, last = outcome.requests[0]["time"], max(r.get("ended", float("inf")) for r in outcome.requests)
        assert last - first <= seconds + TOLERANCE, f"the call lasted {last - first:.2f} s, promised {seconds:g} s"
    return check


def backed_off(outcome: Outcome) -> None:
    """Retried with the back-off floor between attempts, and no attempt began after retry_timeout.

    The last attempt may come sooner: when the next back-off would end past retry_timeout,
    the client waits what is left and tries once more at the deadline.
    """
    times = [r["time"] for r in outcome.requests]
    assert len(times) >= 2, "retried at least once"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps[:-1], default=MIN_DELAY) >= MIN_DELAY - 0.01, f"attempts {min(gaps):.3f} s apart: no back-off floor"
    assert gaps[-1] >= MIN_DELAY - 0.01 or times[-1] - times[0] >= R - 0.5, \
        f"the last attempt came {gaps[-1]:.3f} s after the one before, {times[-1] - times[0]:.2f} s into the call"
    assert times[-1] - times[0] <= R + TOLERANCE, f"an attempt began {times[-1] - times[0]:.2f} s after the first"
    assert busiest(times, 0.999) <= 5


def at_most(count: int):
    def check(outcome: Outcome) -> None:
        assert 1 <= len(outcome.requests) <= count, [(r["path"], r["query"], r["status"]) for r in outcome.requests]
    return check


def says_any(*texts: str):
    """The message names one of these (the last attempt may be a 503, or cut by the deadline)."""
    def check(outcome: Outcome) -> None:
        assert any(text in outcome.hosts[0].msg for text in texts), outcome.hosts[0].msg
    return check


def not_in_message(*texts: str):
    def check(outcome: Outcome) -> None:
        for text in texts:
            assert text not in outcome.hosts[0].msg, (text, outcome.hosts[0].msg)
    return check


def nothing_raw(outcome: Outcome) -> None:
    """No raw line break or escape from the server in the message, the warnings or the run's output."""
    for host in outcome.hosts:
        assert host.msg.isprintable(), repr(host.msg)
        assert all(w.isprintable() for w in host.warnings), host.warnings
    assert "\x1b" not in outcome.run.output and "\x07" not in outcome.run.output
    assert not [line for line in outcome.run.output.splitlines() if line.lstrip().startswith(("ok: [web01]", "forged"))]


def warned_at_most(lines: int, length: int = 1000):
    def check(outcome: Outcome) -> None:
        for host in outcome.hosts:
            assert len(host.warnings) <= lines, f"{len(host.warnings)} warnings"
            assert all(len(w) <= length and w.isprintable() for w in host.warnings), host.warnings[:3]
    return check


def each(*checks):
    def check(outcome: Outcome) -> None:
        for one in checks:
            one(outcome)
    return check


def with_compute(**extra) -> str:
    document = json.loads(json.dumps(LINUX))
    document["compute"].update(extra)
    return json.dumps(document)


def with_top(**extra) -> str:
    return json.dumps({**LINUX, **extra})


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep(where: str, levels: int) -> dict:
    """A document ``levels`` deep in all (the root counts one), the depth under ``where``."""
    if where == "compute":
        text = with_compute(deep="DEEP")
        below = levels - 2  # the root, compute
    elif where == "network":
        document = json.loads(json.dumps(LINUX))
        document["network"]["deep"] = "DEEP"
        text, below = json.dumps(document), levels - 2
    else:
        text, below = with_top(**{where: "DEEP"}), levels - 1
    return body(text.replace('"DEEP"', nested(below)))


def shown(text: str) -> str:
    """Text with its escapes spelled out, for a scenario's name (which pytest prints)."""
    return text.encode("unicode_escape").decode("ascii")


INSTANCE_ONLY = {"only_path": "/metadata/instance"}  # the load balancer request answered as usual


def raw(**headers: str) -> dict:
    return {"raw_headers": [[name.replace("_", "-"), value] for name, value in headers.items()]}


ESCAPES = "Oops\u001b[2J\u001b]0;pwned\u0007\nok: [web01] => forged\u202e"
DUPLICATES = '{"compute": ' + json.dumps(LINUX["compute"])[:-1] + "".join(
    f', "dup{n:04d}": 1, "dup{n:04d}": 2' for n in range(5000)) + '}, "network": ' + json.dumps(LINUX["network"]) + "}"
ESCAPED_DUPLICATE = ('{"compute": ' + json.dumps(LINUX["compute"])[:-1] + ', "k\\u001b[2J\\n": 1, "k\\u001b[2J\\n": 2}'
                     ', "network": ' + json.dumps(LINUX["network"]) + "}")
VERSION_ERROR = "Bad request. api-version is invalid or was not specified in the request."
HUGE_LIST = json.dumps({"error": VERSION_ERROR, "newest-versions":
                        [f"2099-{n % 12 + 1:02d}-{n % 28 + 1:02d}.{n}" for n in range(100_000)] + ["2021-02-01"]})
JUNK_LIST = json.dumps({"error": VERSION_ERROR, "newest-versions": [
    1, None, {"a": 1}, ["2021-02-01"], "\u001b[2J2021-02-01", "2021-02-01\nforged", "x" * 10_000, "2021-02-01"]})
USER_TEXT = "#cloud-config\nruncmd: [echo hi]\n\u001b[31mred\u001b[0m"
BINARY_USER_DATA = base64.b64encode(bytes(range(256)) * 4).decode()
HEAD_SECONDS = 1.0  # how long the head of each answer takes in the slow-503 scenario (T is 2)
SLOW_HEAD_RATE = 160 / HEAD_SECONDS  # the emulator's head is about 160 bytes
ON_VERSIONS = {"versions": UNKNOWN, "error_wording": "no_list", "only_path": "/metadata/versions"}

HOSTILE = [
    # -- huge bodies, whatever the status and framing: refused at 4 MiB while being read -------
    *[Scenario(f"a 1 GiB {status} body, {framing}", "fails at once: larger than 4 MiB, not retried", T + EPS, False,
               {"error_body_size": {"status": status, "size": GIB}, "framing": key}, FAIL_FAST,
               words=("larger than 4194304 bytes", f"(status {status})"),
               check=each(attempts(1), answered_within(T)))
      for status, framing, key in ((503, "Content-Length", "length"), (404, "chunked", "chunked"),
                                   (500, "delimited by the connection's end", "close"),
                                   (429, "chunked", "chunked"))],
    Scenario("a 1 GiB 200 body, chunked", "fails at once: larger than 4 MiB", T + EPS, False,
             {"body_size": GIB, "framing": "chunked"}, FAIL_FAST, words=("larger than 4194304 bytes",),
             check=each(attempts(1), answered_within(T))),
    # -- framing: bodies delimited by chunks or by the connection's end --------------------------
    Scenario("a chunked body", "facts", AT_ONCE, True, {"framing": "chunked"}, FAIL_FAST, check=attempts(1)),
    Scenario("a body delimited by the connection's end", "facts", AT_ONCE, True, {"framing": "close"}, FAIL_FAST,
             check=attempts(1)),
    Scenario("a chunked body cut short", "fails after retries: cut short", GIVES_UP, False,
             {"framing": "chunked", "truncate": True}, FAIL_FAST,
             words=("the response ended after", "cut the answer short"), check=transport_retried),
    Scenario("a connection-close body cut short", "fails after retries: cut short", GIVES_UP, False,
             {"framing": "close", "truncate": True}, FAIL_FAST,
             words=("in the middle of its JSON document", "cut the answer short"), check=transport_retried),
    # -- encodings nobody asked for ------------------------------------------------------------
    Scenario("a gzip body", "fails: names the encoding", AT_ONCE, False, {"encoding": "gzip"}, FAIL_FAST,
             words=("gzip-encoded", "Content-Encoding: gzip"), check=attempts(1)),
    Scenario("a deflate body, chunked", "fails: names the encoding", AT_ONCE, False,
             {"encoding": "deflate", "framing": "chunked"}, FAIL_FAST, words=("deflate-encoded",),
             check=attempts(1)),
    Scenario("503 with a gzip body", "fails in time: retried as a 503", GIVES_UP, False,
             {"body": {"text": json.dumps({"error": "busy"}), "status": 503}, "encoding": "gzip"}, FAIL_FAST,
             words=("IMDS answered 503", "Gave up after"), check=backed_off),
    # -- interim answers -------------------------------------------------------------------------
    Scenario("two 103 Early Hints, then 200", "facts", AT_ONCE, True,
             {"interim": {"status": 103, "count": 2}}, FAIL_FAST, check=attempts(1)),
    Scenario("three 102 Processing, 0.3 s apart, then 200", "facts", 1 + AT_ONCE, True,
             {"interim": {"status": 102, "count": 3, "interval": 0.3}}, FAIL_FAST, check=attempts(1)),
    Scenario("endless 102 Processing", "fails at once: not a final answer, not retried", AT_ONCE, False,
             {"interim": {"status": 102, "count": 10 ** 9}}, FAIL_FAST, words=("interim (1xx) answers",),
             check=each(attempts(1), answered_within(T))),
    Scenario("endless 102 Processing, each just under the per-read timeout", "fails after timeout, not retried",
             TD + EPS, False, {"interim": {"status": 102, "count": 10 ** 9, "interval": UNDER * TD}},
             {"timeout": TD, "retry_timeout": R}, words=("timed out",), check=each(attempts(1), answered_within(TD))),
    # -- dribbled just under the per-read timeout: one deadline for the whole answer ----------------
    Scenario("status line and headers, a byte every 0.9 timeout", "fails after timeout (whole response)",
             TD + EPS, False, {"dribble_head": 1 / (UNDER * TD)}, {"timeout": TD, "retry_timeout": R},
             words=("timed out waiting for the status line and headers",),
             check=each(attempts(1), answered_within(TD))),
    Scenario("body, a byte every 0.9 timeout", "fails after timeout (whole response)", TD + EPS, False,
             {"dribble": 1 / (UNDER * TD)}, {"timeout": TD, "retry_timeout": R},
             words=("timed out while reading the response body",), check=each(attempts(1), answered_within(TD))),
    Scenario(f"503 always, each head taking {HEAD_SECONDS:g} s", "fails in time: retry_timeout + timeout", GIVES_UP,
             False, {"status_always": 503, "dribble_head": SLOW_HEAD_RATE}, FAIL_FAST,
             check=each(says_any("IMDS answered 503", "timed out"), answered_within(T), call_ended_within(R + T))),
    # -- the connection ----------------------------------------------------------------------------
    Scenario("accepts, never reads the request", "fails after timeout, not retried", T + EPS, False,
             {"mute": True}, FAIL_FAST, words=("timed out",), check=each(attempts(1), answered_within(T))),
    *[Scenario(f"resets after {size} bytes ({where})", "fails after retries: reset", GIVES_UP, False,
               {"reset_after": size}, FAIL_FAST, words=("reset",), check=transport_retried)
      for size, where in ((10, "inside the status line"), (120, "inside the headers"), (1500, "inside the body"))],
    Scenario("302 redirect to itself (a loop)", "fails: not followed", AT_ONCE, False,
             {"redirect": {"status": 302, "location": f"/metadata/instance?api-version={NEWEST}"}}, FAIL_FAST,
             words=("IMDS answered 302", "not followed"), check=attempts(1)),
    Scenario("308 redirect loop on another host", "fails: not followed, target untouched", AT_ONCE, False,
             redirect(308, "host"), FAIL_FAST, words=("IMDS answered 308", "never redirects"), trap=True,
             check=redirect_not_followed),
    # -- not HTTP, or HTTP no IMDS speaks -----------------------------------------------------------
    *[Scenario(f"status line {line!r}", "fails at once: not HTTP, not retried", AT_ONCE, False,
               {"status_line": line}, FAIL_FAST, words=("not a valid HTTP answer", "Something other than IMDS"),
               check=attempts(1))
      for line in ("ICY 200 OK", "HTTP/1.1 2OO OK", "HTTP/1.1 99 Low")],
    Scenario("status 600", "fails at once: names the status", AT_ONCE, False,
             {"status_line": "HTTP/1.1 600 Beyond"}, FAIL_FAST, words=("IMDS answered 600",), check=attempts(1)),
    Scenario("101 Switching Protocols as the answer", "fails at once: an interim status alone", AT_ONCE, False,
             {"status_line": "HTTP/1.1 101 Switching Protocols"}, FAIL_FAST,
             words=("IMDS answered 101", "interim status alone"), check=attempts(1)),
    Scenario("150 headers", "fails at once: not HTTP", AT_ONCE, False,
             {"raw_headers": [[f"X-Pad-{n}", "x"] for n in range(150)]}, FAIL_FAST,
             words=("not a valid HTTP answer",), check=attempts(1)),
    Scenario("a 100 KiB header line", "fails at once: not HTTP", AT_ONCE, False,
             raw(X_Pad="x" * 100_000), FAIL_FAST, words=("not a valid HTTP answer",), check=attempts(1)),
    # -- server text with escapes and line breaks: shown escaped, on one line ---------------------
    Scenario("500 whose reason phrase forges a line", "fails in time; the message on one line", GIVES_UP, False,
             {"status_always": 500, "reason": ESCAPES}, FAIL_FAST, words=("IMDS answered 500",),
             check=each(nothing_raw, backed_off)),
    Scenario("503 whose error text forges a line", "fails in time; the text escaped, on one line", GIVES_UP,
             False, body(json.dumps({"error": ESCAPES}), status=503), FAIL_FAST,
             words=("IMDS answered 503", "Oops\\x1b[2J"), check=each(nothing_raw, backed_off)),
    Scenario("a Content-Encoding with escapes and a line break", "fails: the encoding shown escaped", AT_ONCE,
             False, raw(Content_Encoding="gzip\u001b[2J\r\nX-Forged: 1"), FAIL_FAST,
             words=("-encoded body", "gzip\\x1b[2j"), check=each(nothing_raw, attempts(1))),
    Scenario("a key with escapes, sent twice", "facts; the warning on one line", AT_ONCE, True,
             {**body(ESCAPED_DUPLICATE), **INSTANCE_ONLY}, FAIL_FAST, words=("twice",), check=each(nothing_raw, warned_at_most(1))),
    Scenario("5,000 keys, each sent twice", "facts; a bounded warning", AT_ONCE, True, {**body(DUPLICATES), **INSTANCE_ONLY}, FAIL_FAST,
             words=("twice",), check=each(nothing_raw, warned_at_most(3))),
    # -- Retry-After, odd values: the back-off floor holds, a wait beyond the budget ends at once ---
    *[Scenario(f"{status} with Retry-After: {shown(value)}", "fails in time, backing off (floor 0.25 s)", GIVES_UP,
               False, {"status_always": status, **raw(Retry_After=value)}, FAIL_FAST,
               words=(f"IMDS answered {status}", "attempts in 3 s"), check=each(backed_off, not_in_message("without")))
      for status, value in ((503, "0"), (429, "-5"), (503, "0.001"), (429, "nan"), (503, "inf"), (429, "1e999"),
                            (503, "Wed, 21 Oct 2015 07:28:00 GMT"), (429, "soon\u001b[2J"))],
    *[Scenario(f"{status} with Retry-After: {value}", "fails at once: asked for more than retry_timeout", AT_ONCE,
               False, {"status_always": status, **raw(Retry_After=value)}, FAIL_FAST,
               words=(f"IMDS answered {status}", "without waiting"), check=attempts(1))
      for status, value in ((503, "99999999999"), (429, "Fri, 31 Dec 9999 23:59:59 GMT"))],
    # -- numbers and depth JSON allows and IMDS never sends -----------------------------------------
    *[Scenario(f"{value} in the document", "fails at once: not standard JSON", AT_ONCE, False,
               body(with_compute(platformFaultDomain="VALUE").replace('"VALUE"', value)), FAIL_FAST,
               words=("which standard JSON (and IMDS) never sends",), check=attempts(1))
      for value in ("NaN", "Infinity", "-Infinity", "1e999")],
    *[Scenario(f"JSON {levels} levels deep {'inside' if where == 'compute' else 'outside'} compute ({where})",
               "fails at once: nested too deep, no traceback", AT_ONCE, False, deep(where, levels), FAIL_FAST,
               words=("nested more than 64 levels",), check=attempts(1))
      for where, levels in (("compute", 65), ("network", 65), ("compute", 250), ("network", 250),
                            ("extended", 900), ("compute", 100_000), ("extended", 100_000))],
    # -- the 400 that lists the newest versions, when it is huge or holds junk -----------------------
    Scenario("400 listing 100,000 versions", "fails in time: at most one more request", AT_ONCE, False,
             body(HUGE_LIST, status=400), FAIL_FAST, words=("IMDS answered 400",), check=at_most(2)),
    Scenario("400 listing junk (numbers, null, escapes, 10 KB strings)", "fails: at most one more request",
             AT_ONCE, False, body(JUNK_LIST, status=400), FAIL_FAST, words=("IMDS answered 400",),
             check=each(at_most(2), nothing_raw)),
    Scenario("400 listing junk, api_version pinned", "fails: the offer shown escaped, on one line", AT_ONCE, False,
             body(JUNK_LIST, status=400), {**FAIL_FAST, "api_version": NEWEST},
             words=(f"pinned api_version {NEWEST}", "\\x1b[2J"), check=each(attempts(1), nothing_raw)),
    # -- /metadata/versions, asked when the 400 lists nothing: it hangs or lies --------------------
    Scenario("/metadata/versions hangs", "fails in time: no known version", T + EPS, False,
             {**ON_VERSIONS, "hang": True}, FAIL_FAST, words=("IMDS answered 400",),
             check=each(asked_list_then_gave_up, answered_within(T))),
    Scenario("/metadata/versions dribbles its head under the per-read timeout", "fails in time: no known version",
             T + EPS, False, {**ON_VERSIONS, "dribble_head": 1 / (UNDER * T)}, FAIL_FAST, words=("IMDS answered 400",),
             check=each(asked_list_then_gave_up, answered_within(T))),
    Scenario("/metadata/versions lies (offers a version the region refuses)", "fails: at most 3 requests",
             AT_ONCE, False, {**ON_VERSIONS, "body": {"text": json.dumps({"apiVersions": ["2021-02-01"]})}},
             FAIL_FAST, words=("IMDS answered 400",), check=at_most(3)),
    Scenario("/metadata/versions answers 50 MiB", "fails: no known version", T + EPS, False,
             {**ON_VERSIONS, "body_size": 50 * 1024 * 1024}, FAIL_FAST, words=("IMDS answered 400",),
             check=asked_list_then_gave_up),
    Scenario("/metadata/versions lists junk", "fails: no known version, on one line", AT_ONCE, False,
             {**ON_VERSIONS, "body": {"text": json.dumps({"apiVersions": [1, None, "\u001b[2J", {"a": 1}, [2]]})}},
             FAIL_FAST, words=("IMDS answered 400",), check=each(asked_list_then_gave_up, nothing_raw)),
    Scenario("/metadata/versions answers HTML", "fails: no known version", AT_ONCE, False,
             {**ON_VERSIONS, "html": True}, FAIL_FAST, words=("IMDS answered 400",), check=asked_list_then_gave_up),
    # -- userData that is not text --------------------------------------------------------------------
    Scenario("binary userData, include_user_data", "facts; the user data kept undecoded", AT_ONCE, True,
             body(with_compute(userData=BINARY_USER_DATA)), {**FAIL_FAST, "include_user_data": True},
             check=lambda outcome: outcome.hosts[0].facts["azure_compute"]["user_data"] == BINARY_USER_DATA),
    Scenario("userData with terminal escapes, include_user_data", "facts; the text as data, never raw output",
             AT_ONCE, True, body(with_compute(userData=base64.b64encode(USER_TEXT.encode()).decode())),
             {**FAIL_FAST, "include_user_data": True},
             check=each(nothing_raw,
                        lambda outcome: outcome.hosts[0].facts["azure_compute"]["user_data"] == USER_TEXT)),
    # -- proxies from the environment, with no_proxy tricks: never used ----------------------------
    *[Scenario(f"proxy variables, {label}", "facts; the proxy sees nothing", AT_ONCE, True, options=FAIL_FAST,
               env=env, trap=True, check=proxy_untouched)
      for label, env in (
          ("upper case only", {"HTTP_PROXY": "{trap}", "NO_PROXY": ""}),
          ("no_proxy naming another host", {"http_proxy": "{trap}", "no_proxy": "example.com,.internal"}),
          ("all_proxy and ALL_PROXY only", {"ALL_PROXY": "{trap}", "all_proxy": "{trap}"}),
          ("CGI REQUEST_METHOD set (httpoxy)", {"HTTP_PROXY": "{trap}", "REQUEST_METHOD": "GET"}),
          ("no_proxy naming the endpoint's host on another port", {"http_proxy": "{trap}", "no_proxy": "127.0.0.1:1"}),
          ("no_proxy 'localhost' only", {"http_proxy": "{trap}", "HTTP_PROXY": "{trap}", "no_proxy": "localhost"}))],
]
SCENARIOS += HOSTILE
assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def selected_scenarios(request, scenarios: list[Scenario]) -> list[Scenario]:
    """The scenarios whose tests this session runs in the requesting module (all when none is selected)."""
    selected = {item.callspec.params["scenario"].name for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "scenario" in item.callspec.params}
    return [s for s in scenarios if s.name in selected] or scenarios


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory):
    """Play every selected scenario in one ansible-playbook run; {name: Outcome}."""
    report = register(request.config)
    outcomes = run_matrix(selected_scenarios(request, SCENARIOS), tmp_path_factory.mktemp("fault-matrix"))
    run = next(iter(outcomes.values())).run
    report.wall["the one ansible-playbook run of the metadata_facts scenarios"] = run.seconds
    return outcomes


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(matrix, scenario, request):
    outcome = matrix[scenario.name]
    row = {"scenario": scenario.name, "expected": f"{scenario.expected} (<= {scenario.bound:g} s)",
           "observed": outcome.observed(), "seconds": outcome.client_seconds, "task": outcome.seconds,
           "bound": scenario.bound, "requests": len(outcome.requests), "result": "FAIL"}
    register(request.config).add(row)
    assert_outcome(outcome, scenario.bound, scenario.words)
    row["result"] = "pass"


def assert_outcome(outcome: Outcome, bound: float, words: tuple[str, ...]) -> None:
    """What the user must see in a scenario: facts or a failure naming the cause, within ``bound``."""
    scenario = outcome.scenario
    assert "Traceback" not in outcome.run.output
    for host in outcome.hosts:
        assert "Traceback" not in json.dumps(host.result)
        assert "module_stderr" not in host.result
        if scenario.ok:
            assert host.status == "ok", host.msg
            assert host.facts["azure_detected"] is True
            assert host.facts["azure_vm_id"] == (scenario.vm_id or VM_ID)
            for word in words:
                assert any(word in w for w in host.warnings), (word, host.warnings)
            # the load balancer was asked at the document's api-version; whatever it answered, the
            # gather stands, and a failure is one warning
            assert {r["query"].get("api-version") for r in load_balancer(outcome)} == {host.facts["azure_api_version"]}
            status = host.facts["azure_load_balancer_status"]
            assert status in ("found", "failed"), status
            told = [w for w in host.warnings if w.startswith("Load balancer metadata not read")]
            assert len(told) == (status == "failed"), host.warnings
        else:
            assert host.status == "failed", host.facts
            for word in words:
                assert word in host.msg, (word, host.msg)
            assert load_balancer(outcome) == [], "the load balancer was asked after the gather had failed"
        assert host.module_seconds is not None, "the timed interpreter ran the module"
        assert host.seconds <= bound + OVERHEAD, f"the task took {host.seconds:.1f} s"
    for sent in outcome.requests:  # IMDS's own rules (the emulator would answer 400 otherwise)
        if sent.get("muted"):  # a connection the server never read: no request to check
            continue
        assert sent["headers"].get("metadata") == "true" and "x-forwarded-for" not in sent["headers"], sent
    if outcome.client_seconds is None:  # nothing reached IMDS: the whole module was quick
        assert scenario.endpoint == "closed"
        assert outcome.module_seconds <= OVERHEAD
    else:
        assert outcome.client_seconds <= bound, \
            f"{outcome.client_seconds:.2f} s from the first request, bound {bound:g} s"
    if scenario.check is not None:
        scenario.check(outcome)


# -- two plays at once on one host, the lookup live: one shared limit of 5 requests/s ----

TWO_PLAYS = """
- name: Facts and live lookups from every fork
  hosts: all
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
        retry_timeout: 30
    - name: Live lookups, each one request (cache_ttl=0)
      ansible.builtin.set_fact:
        answers: "{{ answers | default([]) + [lookup('imds.azure.metadata', 'compute/vmId', source='live',
                     cache_ttl=0, endpoint=endpoint, retry_timeout=30)] }}"
      loop: "{{ range(lookups) | list }}"
    - name: Save what the host got
      ansible.builtin.copy:
        content: "{{ {'facts': ansible_facts['azure_vm_id'], 'lookups': answers} | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
"""


def busiest(times: list[float], window: float) -> int:
    """The most requests that fall in any ``window`` seconds."""
    return max((sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times)), default=0)


def test_two_plays_at_once_stay_under_5_requests_per_second(emulator, playbook, request):
    """Two ansible-playbook runs, four forks each, the module and the live lookup in every fork."""
    from ansible_collections.imds.azure.tests.playbooks.faults.matrix import Trap

    emu = emulator(profile="linux")
    trap = Trap("127.0.0.2")  # the controller's proxy variables point here; it must see nothing
    hosts, lookups = 4, 4
    inventory = "".join(f"vm{n} ansible_connection=local\n" for n in range(hosts))
    env = {name: trap.url for name in PROXY_ENV if name.lower() != "no_proxy"}
    env.update(no_proxy="", NO_PROXY="")
    runs: dict[str, object] = {}
    spans: dict[str, tuple[float, float]] = {}

    def play(name: str) -> None:
        import time

        start = time.monotonic()
        runs[name] = playbook(TWO_PLAYS, extra_vars={"endpoint": emu.url, "lookups": lookups},
                              inventory=inventory, cfg=f"forks = {hosts}\n", env=env)
        spans[name] = (start, time.monotonic())

    import threading

    threads = [threading.Thread(target=play, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trap.stop()

    times = sorted(r["time"] for r in emu.requests)
    expected = 2 * hosts * (2 + lookups)  # per host: the gather's two requests, one per live lookup
    per_second = busiest(times, 1.0)
    overall = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    overlap = min(span_[1] for span_ in spans.values()) - max(span_[0] for span_ in spans.values())
    row = {"scenario": f"two plays at once, {hosts} forks each, module + live lookup (cache_ttl=0)",
           "expected": "all answers; <= 5 requests in any 1 s; the proxy sees nothing",
           "observed": f"{len(times)} requests in {times[-1] - times[0]:.1f} s ({overall:.1f}/s), "
                       f"at most {per_second} in any 1 s; plays overlapped {overlap:.1f} s",
           "seconds": times[-1] - times[0], "task": max(r.seconds for r in runs.values()),
           "bound": expected / 2.5, "requests": len(times), "result": "FAIL"}
    register(request.config).add(row)

    for name, run in runs.items():
        assert run.returncode == 0, f"play {name}:\n{run.output}"
        assert "Traceback" not in run.output
        for n in range(hosts):
            saved = run.read_json(f"vm{n}.json")
            assert saved == {"facts": VM_ID, "lookups": [VM_ID] * lookups}
    assert overlap > 3, "the two plays ran at the same time"
    assert len(times) == expected, [r["path"] for r in emu.requests]
    assert {r["status"] for r in emu.requests} == {200}
    assert all(r["headers"].get("metadata") == "true" and "x-forwarded-for" not in r["headers"]
               for r in emu.requests)
    # A request holds its place in the shared window from admission to its end, and
    # counts for one second after: so arrivals too keep to 5 in any second (the 1 ms is
    # the rounding of the window file's 6 decimals).
    assert busiest(times, 0.999) <= 5, times
    # 5 in any second allows up to 5 * (whole seconds spanned + 1) in all (the average over
    # the span may exceed 5/s slightly: 40 requests can span 7.0 s without breaking the rule)
    assert len(times) <= 5 * (int(times[-1] - times[0]) + 1), times
    assert trap.contacts == []
    assert times[-1] - times[0] <= row["bound"], "throughput at least half the limit"
    row["result"] = "pass"


# -- 20 forks, live lookups without a cache, IMDS throttling at 5/s: never a 429 ---------

def test_twenty_forks_of_live_lookups_never_meet_a_429(emulator, playbook, request):
    """Issue 14, defect 3: with 20 forks of live lookups a sixth request arrived within one second and IMDS
    answered 429. The emulator plays IMDS's own limit (429 beyond 5 arrivals in any sliding second): it must
    never have to use it."""
    emu = emulator(profile="linux", faults={"rate_limit": {"per_second": 5, "retry_after": 1}})
    hosts, lookups = 20, 3
    inventory = "".join(f"vm{n:02d} ansible_connection=local\n" for n in range(hosts))
    run = playbook(TWO_PLAYS, extra_vars={"endpoint": emu.url, "lookups": lookups}, inventory=inventory,
                   cfg=f"forks = {hosts}\n", timeout=900)
    times = sorted(r["time"] for r in emu.requests)
    codes = [r["status"] for r in emu.requests]
    expected = hosts * (2 + lookups)  # per host: the gather's two requests, one per live lookup
    row = {"scenario": f"{hosts} forks, module + {lookups} live lookups each (cache_ttl=0), IMDS limit 5/s",
           "expected": "all answers; no 429; <= 5 arrivals in any 1 s",
           "observed": f"{len(times)} requests in {times[-1] - times[0]:.1f} s, {codes.count(429)} answered 429, "
                       f"at most {busiest(times, 0.999)} in any 1 s",
           "seconds": times[-1] - times[0], "task": run.seconds, "bound": expected / 1.5, "requests": len(times),
           "result": "FAIL"}
    register(request.config).add(row)
    assert run.returncode == 0, run.output[-5000:]
    assert "Traceback" not in run.output
    for n in range(hosts):
        assert run.read_json(f"vm{n:02d}.json") == {"facts": VM_ID, "lookups": [VM_ID] * lookups}
    assert 429 not in codes, f"{codes.count(429)} requests met IMDS's limit"
    assert len(times) == expected and set(codes) == {200}
    assert busiest(times, 0.999) <= 5, times  # the 1 ms: the window file keeps 6 decimals
    # the limit does not serialize the forks: at least 1.5 per second, on a loaded runner too
    assert times[-1] - times[0] <= row["bound"], "throughput below 1.5 requests per second"
    row["result"] = "pass"


# -- a 50 MiB body: refused at 4 MiB, memory bounded ----------------------------------

MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[3])
from ansible_collections.imds.azure.plugins.module_utils import _http
from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
client = ImdsClient(getattr(_http, sys.argv[2])(), endpoint=sys.argv[1], timeout=20, retry_timeout=0)
try:
    outcome = "facts" if client.instance().data else "empty"
except ImdsError as exc:
    outcome = exc.kind
print(outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.parametrize("transport", ["HttpClientTransport"])
def test_50_mib_body_is_refused_with_bounded_memory(emulator, transport, request):
    """The client stops reading at 4 MiB: its peak memory grows by about that, not by 50 MiB."""
    import subprocess
    import sys

    from ansible_collections.imds.azure.tests.utils.paths import collections_path

    def probe(url):
        proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, url, transport, str(collections_path())],
                              capture_output=True, text=True, timeout=120, check=True)
        outcome, kib = proc.stdout.split()
        return outcome, int(kib) / 1024

    normal = emulator(profile="linux")
    huge = emulator(profile="linux", faults={"body_size": 50 * 1024 * 1024})
    base_outcome, base_mib = probe(normal.url)
    outcome, peak_mib = probe(huge.url)
    row = {"scenario": f"a 50 MiB body, peak memory ({transport})", "expected": "refused; peak grows < 16 MiB",
           "observed": f"{outcome}; peak {peak_mib:.0f} MiB vs {base_mib:.0f} MiB for a normal document",
           "seconds": None, "task": None, "bound": "16 MiB", "requests": len(huge.requests), "result": "FAIL"}
    register(request.config).add(row)
    assert base_outcome == "facts"
    assert outcome == "too_large"
    assert peak_mib - base_mib < 16, f"{peak_mib - base_mib:.1f} MiB more than for a normal document"
    row["result"] = "pass"


# -- huge error bodies: the module's own peak memory, whatever the status and framing ------

MODULE_MEMORY_PROBE = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "ansible_collections.imds.azure.plugins.modules.metadata_facts"],
                      input=sys.argv[1], capture_output=True, text=True, timeout=300)
print(done.stdout.strip().splitlines()[-1])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.parametrize("faults", [
    {"error_body_size": {"status": 503, "size": GIB}},
    {"error_body_size": {"status": 404, "size": GIB}, "framing": "chunked"},
    {"error_body_size": {"status": 500, "size": GIB}, "framing": "close"},
    {"error_body_size": {"status": 429, "size": GIB}, "framing": "chunked", "raw_headers": [["Retry-After", "0"]]},
    {"body_size": GIB, "framing": "chunked"},
], ids=["503 1 GiB Content-Length", "404 1 GiB chunked", "500 1 GiB to the connection's end",
        "429 1 GiB chunked with Retry-After 0", "200 1 GiB chunked"])
def test_the_module_refuses_a_huge_body_with_bounded_memory(emulator, faults, request):
    """Issue 14, defect 1: a 1 GiB error body cost the module about 2 GB. The module itself (its main(), as
    AnsiballZ runs it) now stops at 4 MiB: its peak memory grows by about that, whatever the status and framing."""
    import os
    import subprocess
    import sys

    from ansible_collections.imds.azure.tests.utils.paths import collections_path

    def probe(url):
        args = json.dumps({"ANSIBLE_MODULE_ARGS": {"endpoint": url, "timeout": 20, "retry_timeout": 0}})
        done = subprocess.run([sys.executable, "-c", MODULE_MEMORY_PROBE, args], capture_output=True, text=True,
                              timeout=600, check=True, env={**os.environ, "PYTHONPATH": str(collections_path())})
        result, kib = done.stdout.strip().splitlines()
        return json.loads(result), int(kib) / 1024

    normal = emulator(profile="linux")
    huge = emulator(profile="linux", faults=faults)
    base, base_mib = probe(normal.url)
    result, peak_mib = probe(huge.url)
    name = request.node.callspec.id
    row = {"scenario": f"module memory: {name}", "expected": "refused at 4 MiB; peak grows < 16 MiB",
           "observed": f"{result.get('msg', 'facts')[:160]}; peak {peak_mib:.0f} MiB vs {base_mib:.0f} MiB",
           "seconds": None, "task": None, "bound": "16 MiB", "requests": len(huge.requests), "result": "FAIL"}
    register(request.config).add(row)
    assert "ansible_facts" in base and not base.get("failed")
    assert result["failed"] and "larger than 4194304 bytes" in result["msg"], result
    assert len(huge.requests) == 1, "a body too large is not retried"
    assert peak_mib - base_mib < 16, f"{peak_mib - base_mib:.1f} MiB more than for a normal document"
    row["result"] = "pass"
