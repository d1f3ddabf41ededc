"""The fault matrix through the Windows path: the same scenarios, each host a Windows host.

Every host is played by the stand-in connection (tests/playbooks/windows), so
imds.azure.metadata_facts takes its action plugin's Windows path: the client runs here
on the controller and each attempt is one ansible.windows.win_uri run, which the
stand-in performs against the emulator as win_uri does on .NET. Expected: the same
facts, the same failures and the same time bounds as on POSIX hosts, allowing what the
Windows path documents (docs/docsite/rst/windows.rst):

- per attempt, one module round trip (ATTEMPT_OVERHEAD), and win_uri's whole-second
  ``url_timeout`` (the last attempt may run up to a second past the deadline);
- .NET's own words for connection failures, which win_uri passes on and which tell
  less than a socket error does (WINDOWS_WORDS);
- win_uri's timeout ends at the headers: a body that arrives slowly is read whole
  (the 1 byte/s body is therefore not played here; a body that takes a few seconds is,
  and gives facts where POSIX hosts give a timeout).
"""
from __future__ import annotations

import json
import re

import pytest

from ansible_collections.imds.azure.tests.playbooks.faults.matrix import Outcome, Scenario, run_matrix
from ansible_collections.imds.azure.tests.playbooks.faults.report import register
from ansible_collections.imds.azure.tests.playbooks.test_fault_matrix import (
    FAIL_FAST, LINUX, SCENARIOS, T, assert_outcome, instance, selected_scenarios)
from ansible_collections.imds.azure.tests.playbooks.windows import standin_runs

ATTEMPT_OVERHEAD = 0.5  # seconds per attempt: one win_uri run (payload built, sent, answered) on a loaded runner
ROUNDING = 1.0  # win_uri's url_timeout is whole seconds: the last attempt may end up to 1 s past the deadline
SLOW_BODY_SECONDS = 4.0

# Where .NET (through win_uri) words a failure differently; the kind, the retries and the bound are the same.
WINDOWS_WORDS = {
    "connection refused": ("could not connect", "Unable to connect to the remote server"),
    "headers dribbled 1 byte/s": ("timed out after win_uri's url_timeout of 2 s", "The operation has timed out"),
    "accepts, never answers": ("timed out after win_uri's url_timeout of 2 s", "The operation has timed out"),
    "body shorter than Content-Length": ("cut short", "The connection was closed", "after 3 attempts"),
    "connection reset before the headers": ("connection reset", "after 3 attempts"),
    "connection reset mid-body": ("connection reset while win_uri read the body", "after 3 attempts"),
    "invalid UTF-8": ("not UTF-8", "U+FFFD"),
    # win_uri parses JSON content itself, recursively: such a body ends its PowerShell process
    "JSON nested 100,000 deep": ("ansible.windows.win_uri failed", "StackOverflowException"),
}
# Where the Windows path needs longer, and why (docs/docsite/rst/windows.rst says so too).
WINDOWS_BOUNDS = {
    "a 50 MiB body": (30.0, "win_uri reads the whole body and returns it twice (content, and json for a JSON "
                            "content type); the 4 MiB limit applies on the controller, afterwards"),
}
NOT_PLAYED = {
    "dribbles 1 byte/s": "win_uri's url_timeout ends at the headers and .NET reads the body with a 300 s timeout "
                         "per read, so a 1 byte/s body is read whole (an hour); see 'a body that takes 4 s'",
}


def slow_body_ends(outcome: Outcome) -> None:
    assert len(instance(outcome)) == 1
    assert outcome.client_seconds >= SLOW_BODY_SECONDS - 1, "the whole slow body was read"


SLOW_BODY = Scenario(
    "a body that takes 4 s (timeout 2 s)", "facts: win_uri's timeout ends at the headers (documented)",
    SLOW_BODY_SECONDS + T + 3.0, True, {"dribble": len(json.dumps(LINUX)) / SLOW_BODY_SECONDS}, FAIL_FAST,
    check=slow_body_ends)
# The POSIX matrix plays every row. The Windows path shares the client (statuses, retries, deadlines,
# negotiation, documents) and differs in its transport, so it plays each category once: not the rows
# about HTTP framing (chunked and close-delimited bodies, encodings, 1xx answers, raw status lines and
# headers, resets after N bytes, a server that never reads), which .NET parses before win_uri returns and
# the stand-in can only imitate, and one row of each family of variants that the client alone decides.
WIRE_SWITCHES = {"framing", "encoding", "interim", "dribble_head", "reason", "status_line", "raw_headers",
                 "reset_after", "mute", "error_body_size"}
VARIANTS = re.compile(r"^(proxy variables, (?!set)|JSON \d+ levels|/metadata/versions (answers|lists)|400 listing|"
                      r"(binary )?userData|-?Infinity|1e999|NaN in|5,000 keys|a key with escapes|body, a byte every|"
                      r"30[28] redirect (to itself|loop)|50[24] )")


def played_on_windows(scenario: Scenario) -> bool:
    faults = scenario.faults if isinstance(scenario.faults, dict) else {}
    return (scenario.name not in NOT_PLAYED and not set(faults) & WIRE_SWITCHES
            and not VARIANTS.match(scenario.name))


WINDOWS_SCENARIOS = [s for s in SCENARIOS if played_on_windows(s)] + [SLOW_BODY]


def ie_proxy_at_the_trap(scenario: Scenario, stage) -> dict:
    """Where the POSIX scenario sets proxy variables, the Windows host's IE proxy points at the trap."""
    return {"imds_standin_ie_proxy": stage.trap.url} if scenario.env and stage.trap else {}


@pytest.fixture(scope="module")
def windows_matrix(request, tmp_path_factory):
    """Every selected scenario on a Windows host, in one ansible-playbook run; ({name: Outcome}, win_uri runs)."""
    report = register(request.config)
    tmp = tmp_path_factory.mktemp("fault-matrix-windows")
    outcomes = run_matrix(selected_scenarios(request, WINDOWS_SCENARIOS), tmp, windows=True,
                          hostvars_for=ie_proxy_at_the_trap)
    run = next(iter(outcomes.values())).run
    report.wall["the one ansible-playbook run of the Windows scenarios"] = run.seconds
    runs: dict[str, list[dict]] = {}
    for line in standin_runs(tmp / "standin.jsonl"):
        runs.setdefault(line["host"], []).append(line)
    return outcomes, runs


@pytest.mark.parametrize("scenario", WINDOWS_SCENARIOS, ids=str)
def test_scenario_on_windows(windows_matrix, scenario, request):
    outcomes, runs = windows_matrix
    outcome = outcomes[scenario.name]
    attempts = max(len(outcome.requests), 1)
    bound = WINDOWS_BOUNDS.get(scenario.name, (scenario.bound,))[0] + ROUNDING + ATTEMPT_OVERHEAD * attempts
    row = {"scenario": f"[Windows] {scenario.name}", "expected": f"{scenario.expected} (<= {bound:g} s)",
           "observed": outcome.observed(), "seconds": outcome.client_seconds, "task": outcome.seconds,
           "bound": bound, "requests": len(outcome.requests), "result": "FAIL"}
    register(request.config).add(row)
    assert_outcome(outcome, bound, WINDOWS_WORDS.get(scenario.name, scenario.words))
    for host in outcome.hosts:
        host_runs = runs.get(host.host, [])
        assert host_runs and all(r["module"] == "ansible.windows.win_uri" for r in host_runs), host_runs
        if scenario.endpoint == "emulator":  # every request IMDS saw was one win_uri run, and nothing else
            assert len(host_runs) == len(outcome.requests), (len(host_runs), len(outcome.requests))
        for line in host_runs:
            args = line["args"]
            assert args["use_proxy"] is False and args["follow_redirects"] == "none" and args["return_content"]
            assert args["headers"]["Metadata"] == "true" and isinstance(args["url_timeout"], int)
            assert line["status_codes"] == [100, 599, 500], "every status is the client's to judge"
    row["result"] = "pass"


def test_every_difference_names_a_scenario():
    names = {s.name for s in SCENARIOS}
    assert set(NOT_PLAYED) <= names and set(WINDOWS_WORDS) <= names and set(WINDOWS_BOUNDS) <= names
    assert all(reason for _bound, reason in WINDOWS_BOUNDS.values()) and all(NOT_PLAYED.values())
