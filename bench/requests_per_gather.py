# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 1: IMDS requests per gather, counted in the emulator's request log.

Two emulators: one serves every api-version (the collection's newest is known), the other
only versions up to 2021-02-01, as a lagging region does, so the newest is refused and one
must be negotiated. A playbook alternates metadata_facts tasks: against the first with the
defaults (the instance document, then the load balancer metadata: 2 requests) and with
load_balancer: false (1), against the second with the defaults (the refused request, the
negotiated one, the load balancer: 3). Every request in an emulator's log is given to the
task whose time window holds it (the log and the bench_timer callback use the same
monotonic clock).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import EmulatorProcess, interleaved_tasks, median, metric, ratio, run_playbook

NAME = "requests_per_gather"
TITLE = "IMDS requests per metadata_facts gather, version known vs negotiated"
LAGGING_REGION = ["2019-06-01", "2020-06-01", "2020-09-01", "2020-12-01", "2021-01-01", "2021-02-01"]

PLAYBOOK = """- name: {name}
  hosts: localhost
  gather_facts: false
  tasks:
{tasks}"""


def per_task(timings: dict[str, Any], prefix: str, requests: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    counts, seconds = [], []
    for task in timings["tasks"]:
        if task["name"].startswith(prefix):
            counts.append(sum(1 for r in requests if task["start"] <= r["time"] <= task["end"]))
            seconds.append(task["seconds"])
    return counts, seconds


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    rounds = 1 if smoke else 8
    with EmulatorProcess(workdir, "known") as known, \
            EmulatorProcess(workdir, "lagging", faults={"versions": LAGGING_REGION}) as lagging:
        kinds = {"known": f"imds.azure.metadata_facts:\n  endpoint: {known.url}\nregister: known_result",
                 "off": f"imds.azure.metadata_facts:\n  endpoint: {known.url}\n  load_balancer: false\n"
                        "register: off_result",
                 "negotiated": f"imds.azure.metadata_facts:\n  endpoint: {lagging.url}\nregister: negotiated_result",
                 "check": "ansible.builtin.assert:\n  that:\n"
                          "    - known_result.ansible_facts.ansible_azure_api_version != negotiated_result.ansible_facts.ansible_azure_api_version\n"
                          f"    - negotiated_result.ansible_facts.ansible_azure_api_version == '{LAGGING_REGION[-1]}'\n"
                          "    - known_result.ansible_facts.ansible_azure_load_balancer_status in ['found', 'not_found']\n"
                          "    - off_result.ansible_facts.ansible_azure_load_balancer_status == 'not_requested'"}
        timings = run_playbook(workdir / "run", PLAYBOOK.format(name=NAME, tasks=interleaved_tasks(kinds, rounds)))
        known_counts, known_seconds = per_task(timings, "known ", known.imds_requests())
        off_counts, off_seconds = per_task(timings, "off ", known.imds_requests())
        negotiated_counts, negotiated_seconds = per_task(timings, "negotiated ", lagging.imds_requests())
        paths = sorted({f"{r['path']}?api-version={r['query'].get('api-version')}" for r in lagging.imds_requests()})
    return {
        "params": {"gathers_each": rounds, "latency_s": 0.003, "lagging_region_versions": LAGGING_REGION,
                   "negotiated_requests_seen": paths},
        "metrics": {
            "requests_known": metric(median(known_counts), "req", 2, known_counts,
                                     "per gather: the instance document and the load balancer metadata", exact=True),
            "requests_load_balancer_off": metric(median(off_counts), "req", 1, off_counts,
                                                 "per gather with load_balancer: false", exact=True),
            "requests_negotiated": metric(median(negotiated_counts), "req", 3, negotiated_counts, "per gather",
                                          exact=True),
            "total_requests_known": metric(sum(known_counts), "req", note=f"for {rounds} gathers"),
            "total_requests_negotiated": metric(sum(negotiated_counts), "req", note=f"for {rounds} gathers"),
            "task_time_ratio_negotiated_known": metric(
                ratio(median(negotiated_seconds[1:] or negotiated_seconds), median(known_seconds[1:] or known_seconds)),
                "ratio", note="one more round trip; first task of each left out"),
            "task_time_ratio_known_off": metric(
                ratio(median(known_seconds[1:] or known_seconds), median(off_seconds[1:] or off_seconds)),
                "ratio", note="the load balancer's round trip; first task of each left out"),
        },
    }
