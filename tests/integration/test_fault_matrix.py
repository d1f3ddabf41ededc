"""The fault matrix: imds.azure.metadata_facts against a misbehaving IMDS, through real ansible-playbook.

Each scenario states what the user must see (the right facts, or a failure whose
message names the cause) and the time the task may take at most; all scenarios play
in one ansible-playbook run (one host each, see tests/integration/faults/matrix.py) and
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

from ansible_collections.imds.azure.tests.integration.faults.matrix import Outcome, Scenario, profile_document, run_matrix
from ansible_collections.imds.azure.tests.integration.faults.report import register

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
    assert span(outcome) <= R + 0.3, f"retries lasted {span(outcome):.2f} s, retry_timeout is {R} s"


def retried_then_ok(count: int):
    def check(outcome: Outcome) -> None:
        codes = statuses(outcome)
        assert len(codes) == count + 1 and codes[-1] == 200, codes
        assert span(outcome) <= sum(MAX_BACKOFF[:count]) + 0.5
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
             {"reset": "before_headers"}, FAIL_FAST, words=("reset", "after 3 attempts"), check=attempts(3)),
    Scenario("connection reset mid-body", "fails after 2 retries: reset", GIVES_UP, False,
             {"reset": "mid_body"}, FAIL_FAST, words=("reset", "after 3 attempts"), check=attempts(3)),
    Scenario("accepts, never answers", "fails after timeout, not retried", T + EPS, False, {"hang": True},
             FAIL_FAST, words=("timed out",), check=attempts(1)),
    Scenario("dribbles 1 byte/s", "fails after timeout (whole response)", T + EPS, False, {"dribble": 1},
             FAIL_FAST, words=("timed out while reading the response body",), check=attempts(1)),
    Scenario("headers dribbled 1 byte/s", "fails after timeout, not retried", T + EPS, False, options=FAIL_FAST,
             endpoint="slow_headers", words=("timed out waiting for the status line and headers",),
             check=attempts(1)),
    Scenario("body shorter than Content-Length", "fails after 2 retries: truncated", GIVES_UP, False,
             {"truncate": True}, FAIL_FAST, words=("the response ended after", "after 3 attempts"),
             check=attempts(3)),
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
    from ansible_collections.imds.azure.tests.integration.faults.matrix import Trap

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
