"""The benchmarks in bench/ with tiny repeat counts, so that they never rot.

This checks that every benchmark runs and writes a well-formed result, and the request
counts that are facts rather than speed (one IMDS request per gather, one per template of
lookups). It asserts no speed goal: a slow or busy machine must not fail CI.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO

sys.path.insert(0, str(REPO / "bench"))
from run import BENCHMARKS  # noqa: E402  pylint: disable=wrong-import-position,import-error

try:  # the module profile (bench/_profile_driver.py) unpacks ansible-core 2.19+'s AnsiballZ
    import ansible.module_utils._internal._ansiballz  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(
        reason="the benchmarks profile the module through ansible-core 2.19+'s AnsiballZ; this is an older ansible-core")]
else:
    pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run `python bench/run.py --smoke` on every benchmark; return the output and the results by name.

    Two processes share the benchmarks, one per core: the smoke run's figures mean nothing,
    so they may disturb each other.
    """
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    groups = [BENCHMARKS[0::2], BENCHMARKS[1::2]]
    procs = [subprocess.Popen([sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--out", str(out), *group],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for group in groups]
    outputs, codes = [], []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            proc.kill()
            outputs.append(proc.communicate()[0])
        codes.append(proc.returncode)
    results = {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}
    return subprocess.CompletedProcess("bench/run.py --smoke", max(codes), "".join(outputs), ""), results


def numbers(result):
    return {key: value["value"] for key, value in result["metrics"].items()}


def test_every_benchmark_ran(smoke):
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(results) == sorted(BENCHMARKS)
    for name in BENCHMARKS:
        assert f"== {name}: " in proc.stdout


@pytest.mark.parametrize("name", BENCHMARKS)
def test_result_is_well_formed(smoke, name):
    result = smoke[1][name]
    assert "error" not in result, result.get("traceback")
    assert result["benchmark"] == name and result["smoke"] is True
    machine = result["machine"]
    assert isinstance(machine["nproc"], int) and machine["nproc"] >= 1
    assert machine["cpu_model"] and machine["python"].count(".") == 2
    assert machine["ansible_core"][:1].isdigit(), machine
    if "skipped" in result:  # off_azure without root
        assert name == "off_azure" and "root" in result["skipped"]
        return
    assert result["metrics"]
    for key, value in result["metrics"].items():
        assert isinstance(value["value"], (int, float)) and math.isfinite(value["value"]), key
        assert value["unit"], key
        if value["unit"] in ("ratio", "req"):  # differences in ms may be negative in a one-sample smoke run
            assert value["value"] >= 0, key
        if "goal" in value:
            assert isinstance(value["met"], bool), key
        if "n" in value:
            assert value["min"] <= value["value"] <= value["max"], key


def test_time_ratios_are_positive(smoke):
    results = smoke[1]
    for kind in ("facts", "uri"):
        for figure in (f"cpu ratio task {kind}", f"cpu ratio ad hoc {kind}", f"wall ratio task {kind}"):
            assert numbers(results["module_vs_ping"])[figure] > 0, figure
    for figure in ("ratio_sequential", "ratio_local_fact", "ratio_local_fact_ttl0", "cpu_ratio_local",
                   "cpu_ratio_local_ttl0", "cpu_ratio_sequential", "cpu_ratio_uri"):
        assert numbers(results["gather_facts"])[figure] > 0, figure
    assert numbers(results["lookup"])["first_live_call_ratio"] > 0
    assert numbers(results["lookup"])["facts_ratio_100_1"] > 0
    assert numbers(results["fleet"])["ratio_3_hosts"] > 0
    if "skipped" not in results["off_azure"]:
        assert numbers(results["off_azure"])["ratio_dmi_not_azure"] > 0


def test_request_counts(smoke):
    """Counts, not speed: one request per gather (two when negotiated), one per live template."""
    results = smoke[1]
    gather = numbers(results["requests_per_gather"])
    assert (gather["requests_known"], gather["requests_load_balancer_off"], gather["requests_negotiated"]) == (2, 1, 3)
    lookup = numbers(results["lookup"])
    assert (lookup["live_requests_100"], lookup["live_requests_1"], lookup["facts_requests"]) == (1, 1, 2)
    params = results["module_vs_ping"]["params"]
    # per round and variant, for metadata_facts and for uri: one ad hoc, N in the CPU playbook, N + 1 in the wall one
    assert params["imds_requests"] == 2 * (2 * params["tasks_per_playbook"] + 2) * params["rounds"] * len(
        params["variants"])
    # gather_facts counts too: the cached local fact asks once, the one with ttl 0 at every setup
    assert results["gather_facts"]["params"]["imds_requests"] == 3 * results["gather_facts"]["params"]["rounds"] + 1


def test_profile_names_the_phases(smoke):
    metrics = smoke[1]["profile_module"]["metrics"]
    for phase in ("import basic", "import the module and its module_utils", "detection", "normalization",
                  "request, its imports excluded", "imports made by the request",
                  "imports: the collection's files (compile and run)", "imports: what they import beyond basic",
                  "compile the collection's files that ran"):
        assert f"phase {phase}" in metrics
