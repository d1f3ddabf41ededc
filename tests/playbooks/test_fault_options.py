"""Odd option values through real ansible-playbook runs of imds.azure.metadata_facts.

Every case is a host of one ansible-playbook run with its own emulator (on 127.0.0.1, or
::1 for the IPv6 endpoint). A value the module cannot use is one printable line that
names the option, reached before any request (the emulator saw nothing) and at once; a
value it can use gives the facts. A password in an endpoint is never repeated. The values
go in as a user writes them: through templates (strings, numbers) and, in the last test, as
YAML literals (a date, ``.nan``, ``.inf``).
"""
from __future__ import annotations

import fnmatch
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from ansible_collections.imds.azure.tests.playbooks.faults.hosts import HostOutcome, gather_play, play_with_emulators
from ansible_collections.imds.azure.tests.playbooks.faults.matrix import profile_document
from ansible_collections.imds.azure.tests.playbooks.faults.report import register

VM_ID = profile_document("linux")["compute"]["vmId"]
AT_ONCE = 20.0  # a task that fails before any request: worker, Python and AnsiballZ on a loaded runner
PASSWORD = "S3cret-imds-Passw0rd"

PLAY = gather_play(("endpoint", "timeout", "retry_timeout", "api_version", "probe_timeout", "include_user_data",
                    "require_azure", "filter"))


@dataclass(frozen=True)
class Case:
    """One odd value: ``options`` ("{url}", "{hostport}" and "{port}" become the emulator's)."""

    name: str
    options: dict[str, Any]
    ok: bool
    words: tuple[str, ...] = ()
    requests: int | None = 0  # how many requests the emulator must see; None: any
    ipv6: bool = False
    check: Callable[[dict], None] | None = None  # more assertions on the result
    bound: float = AT_ONCE

    def __str__(self) -> str:
        return self.name


def facts_of(result: dict) -> dict:
    """The facts as a play reads them: ansible_facts['azure_...']."""
    return {name[len("ansible_"):] if name.startswith("ansible_") else name: value
            for name, value in (result.get("ansible_facts") or {}).items()}


def refused(option: str, value: Any, *words: str) -> Case:
    return Case(f"{option}: {value!r}", {option: value}, False, (option, *words))


def facts_keys(expected: Callable[[list[str]], list[str]]):
    """The filter's result: the keys a shell-style match of the full facts gives."""
    def check(result: dict) -> None:
        names = sorted(result["ansible_facts"])
        assert names == sorted(expected(FULL_FACTS)), names
    return check


def matching(*patterns: str) -> Callable[[list[str]], list[str]]:
    def keep(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name[len("ansible_"):], p) for p in patterns)

    return lambda names: [name for name in names if keep(name)]


ODD_FILTERS = [
    ("an unclosed bracket", ["[", "azure_vm_id"]),
    ("'**'", ["**"]),
    ("an empty pattern and a real one", ["", "azure_vm_id"]),
    ("a pattern with an escape sequence", ["*\u001b[2J*", "azure_vm_id"]),
    ("the ansible_ prefix", ["ansible_azure_vm_id"]),
    ("the same pattern twice", ["azure_vm_id", "azure_vm_id"]),
    ("character classes", ["azure_[!a-z]*", "azure_vm_i[d]"]),
]

FULL_FACTS: list[str] = []  # the fact names of an unfiltered gather, filled by the run

CASES = [
    # -- timeouts ----------------------------------------------------------------------------------
    *[refused("timeout", value, *words) for value, words in (
        ("nan", ("finite",)), ("inf", ("finite",)), ("-inf", ("finite",)), (1e10, ("at most 3600",)),
        (1e308, ("at most 3600",)), (0, ("greater than 0",)), (-1, ("greater than 0",)), ("abc", ()),
        ("", ()), ("1e999", ("finite",)), ([5], ()))],
    *[refused("retry_timeout", value, *words) for value, words in (
        ("nan", ("finite",)), ("inf", ("finite",)), (-1, ("at least 0",)), (1e10, ("at most",)), ("soon", ()))],
    Case("retry_timeout: 0 (no retries)", {"retry_timeout": 0}, True, requests=1),
    *[refused("probe_timeout", value, *words) for value, words in (
        (0, ("greater than 0",)), ("nan", ("finite",)), (-1, ("greater than 0",)), (1e10, ("at most",)))],
    # -- api_version ---------------------------------------------------------------------------------
    *[refused("api_version", value, "a date such as 2021-02-01") for value in (
        "", "latest", "2021-02-30x", "2021-02-01; rm -rf /", "2021-02-01&x=1", "2021-13-01", "20210201",
        "2021-02-01\u001b[2J")],
    Case("api_version: ' 2021-02-01 ' (spaces)", {"api_version": " 2021-02-01 "}, True, requests=1,
         check=lambda result: facts_of(result)["azure_api_version"] == "2021-02-01"),
    Case("api_version: 2099-01-01 (a date no IMDS serves)", {"api_version": "2099-01-01"}, False,
         ("pinned api_version 2099-01-01",), requests=1),
    # -- endpoint --------------------------------------------------------------------------------------
    *[Case(f"endpoint: {label}", {"endpoint": value}, False, words) for label, value, words in (
        ("with a path", "{url}/metadata/instance", ("path, query or fragment",)),
        ("with a query", "{url}?api-version=2021-02-01", ("path, query or fragment",)),
        ("with a fragment", "{url}#instance", ("path, query or fragment",)),
        ("with user:password", f"http://admin:{PASSWORD}@{{hostport}}", ("user name or password", "admin:***@")),
        ("with a user", "http://admin@{hostport}", ("user name or password",)),
        ("with a backslash before @", "http://{hostport}\\@evil.example", ("user name or password",)),
        ("https://", "https://{hostport}", ("plain HTTP",)),
        ("ftp://", "ftp://{hostport}", ("not an http:// URL",)),
        ("without a scheme", "{hostport}", ("not an http:// URL",)),
        ("http:// alone", "http://", ("not an http:// URL",)),
        ("port 0", "http://127.0.0.1:0", ("not a valid URL",)),
        ("port 99999", "http://127.0.0.1:99999", ("not a valid URL",)),
        ("port with a letter", "http://127.0.0.1:8o", ("not a valid URL",)),
        ("an empty port", "http://127.0.0.1:", ("not a valid URL",)),
        ("full-width digits", "http://\uff11\uff12\uff17.0.0.1:{port}", ("endpoint",)),
        ("with a terminal escape", "{url}\u001b[2J", ("not a valid URL",)),
        ("10,000 characters", "http://" + "a" * 10_000 + ":{port}", ("endpoint",)),
        ("a list", ["{url}"], ("endpoint",)),
    )],
    *[Case(f"endpoint: {label}", {"endpoint": value}, True, requests=1) for label, value in (
        ("with a trailing slash", "{url}/"),
        ("upper-case scheme", "HTTP://{hostport}"),
        ("with spaces around", "  {url}  "),
        ("localhost (a name)", "http://localhost:{port}"),
        ("127.1 (short form)", "http://127.1:{port}"),
        ("0x7f000001 (hexadecimal)", "http://0x7f000001:{port}"),
        ("an IPv6 literal", "http://[::1]:{port}"),
    )],
    # -- booleans ------------------------------------------------------------------------------------------
    refused("include_user_data", "maybe"),
    refused("require_azure", "perhaps"),
    # -- filter ------------------------------------------------------------------------------------------------
    *[Case(f"filter: {label}", {"filter": patterns}, True, requests=1, check=facts_keys(matching(*patterns)))
      for label, patterns in ODD_FILTERS],
    Case("filter: nothing matches", {"filter": ["no_such_fact"]}, True, requests=1,
         check=lambda result: result["ansible_facts"] == {}),
    Case("filter: a pattern of 10,000 stars", {"filter": ["*" * 10_000 + "_id"]}, False,
         ("filter", "10003 characters", "at most 200 characters"), requests=0),
]
assert len({c.name for c in CASES}) == len(CASES)


def expand(value: Any, url: str, hostport: str, port: int) -> Any:
    if isinstance(value, str):
        return value.replace("{url}", url).replace("{hostport}", hostport).replace("{port}", str(port))
    if isinstance(value, list):
        return [expand(item, url, hostport, port) for item in value]
    return value


def run_cases(cases: list[Case], tmp_path: Path) -> dict[str, HostOutcome]:
    """One ansible-playbook run, one host per case (each with its own emulator)."""
    from imds_emulator import Emulator

    def start(case: Case) -> tuple[Any, dict]:
        host = "::1" if case.ipv6 or "[::1]" in json.dumps(case.options) else "127.0.0.1"
        emu = Emulator(host=host, port=0, profile="linux").start()
        hostport = f"[{host}]:{emu.port}" if ":" in host else f"{host}:{emu.port}"
        options = {"endpoint": emu.url, "timeout": 3, "retry_timeout": 3}
        options.update({k: expand(v, emu.url, hostport, emu.port) for k, v in case.options.items()})
        return emu, options

    return {case.name: outcome for case, outcome in zip(cases, play_with_emulators(PLAY, cases, tmp_path, start))}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    baseline = Case("baseline: no odd value", {}, True, requests=1)
    ran = run_cases([baseline, *CASES], tmp_path_factory.mktemp("fault-options"))
    FULL_FACTS[:] = sorted(ran[baseline.name].result["ansible_facts"])
    return ran


@pytest.mark.parametrize("case", CASES, ids=str)
def test_odd_option_value(outcomes, case, request):
    outcome = outcomes[case.name]
    result, msg = outcome.result, str(outcome.result.get("msg", ""))
    row = {"scenario": f"option {case.name}", "expected": "facts" if case.ok else "one-line failure, no request",
           "observed": "facts" if outcome.status == "ok" else f"failed: {msg}", "seconds": None,
           "task": outcome.seconds, "bound": case.bound, "requests": len(outcome.requests), "result": "FAIL"}
    register(request.config).add(row)
    assert "Traceback" not in outcome.output and "module_stderr" not in result, result
    if case.ok:
        assert outcome.status == "ok", msg
        facts = facts_of(result)
        if "filter" not in case.options:
            assert facts["azure_vm_id"] == VM_ID and facts["azure_detected"] is True
    else:
        assert outcome.status == "failed", result
        assert msg.isprintable() and len(msg) < 1000, repr(msg)
        for word in case.words:
            assert word in msg, (word, msg)
    assert PASSWORD not in outcome.output and PASSWORD not in msg
    if case.requests is not None:
        assert len(outcome.requests) == case.requests, [r["path"] for r in outcome.requests]
    assert outcome.seconds <= case.bound, f"the task took {outcome.seconds:.1f} s"
    if case.check is not None:
        case.check(result)
    row["result"] = "pass"


# -- YAML literals: a date, .nan, .inf, an integer, as a user types them ----------------------------

YAML_PLAY = """
- name: Option values as YAML literals
  hosts: localhost
  gather_facts: false
  tasks:
    - name: api_version as a YAML date
      imds.azure.metadata_facts: {endpoint: "{{ url }}", api_version: 2021-02-01}
      register: date_version
      ignore_errors: true
    - name: timeout .nan
      imds.azure.metadata_facts: {endpoint: "{{ url }}", timeout: .nan}
      register: nan_timeout
      ignore_errors: true
    - name: timeout .inf
      imds.azure.metadata_facts: {endpoint: "{{ url }}", timeout: .inf}
      register: inf_timeout
      ignore_errors: true
    - name: retry_timeout -.inf
      imds.azure.metadata_facts: {endpoint: "{{ url }}", retry_timeout: -.inf}
      register: minus_inf_retry
      ignore_errors: true
    - name: probe_timeout .nan
      imds.azure.metadata_facts: {endpoint: "{{ url }}", probe_timeout: .nan}
      register: nan_probe
      ignore_errors: true
    - name: api_version as an integer
      imds.azure.metadata_facts: {endpoint: "{{ url }}", api_version: 20210201}
      register: int_version
      ignore_errors: true
    - name: Save the results
      ansible.builtin.copy:
        content: "{{ {'date_version': date_version, 'nan_timeout': nan_timeout, 'inf_timeout': inf_timeout,
                      'minus_inf_retry': minus_inf_retry, 'nan_probe': nan_probe, 'int_version': int_version}
                     | to_json }}"
        dest: "{{ out_dir }}/results.json"
        mode: "0600"
"""


def test_option_values_as_yaml_literals(emulator, playbook):
    emu = emulator(profile="linux")
    started = time.monotonic()
    run = playbook(YAML_PLAY, extra_vars={"url": emu.url}).check()
    results = run.read_json("results.json")
    assert "Traceback" not in run.output
    # a YAML date is the date the user meant: that api-version, pinned
    assert facts_of(results["date_version"])["azure_api_version"] == "2021-02-01", results["date_version"]
    assert [r["query"].get("api-version") for r in emu.requests if r["path"] == "/metadata/instance"] == ["2021-02-01"]
    for name, words in (("nan_timeout", "timeout must be a finite number"), ("inf_timeout", "timeout must be a finite"),
                        ("minus_inf_retry", "retry_timeout must be a finite"),
                        ("nan_probe", "probe_timeout must be a finite"), ("int_version", "api_version must be a date")):
        assert results[name]["failed"] and words in results[name]["msg"], (name, results[name])
        assert results[name]["msg"].isprintable()
    assert len(emu.requests) == 2, "no odd value sent a request (the two are the date_version gather's)"
    assert time.monotonic() - started < 120
