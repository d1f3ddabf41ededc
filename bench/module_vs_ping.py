# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 2: wall time of an imds.azure.metadata_facts task ÷ an ansible.builtin.ping task.

Each run is one playbook on localhost (local connection) with two plays: ansible's
defaults, then the same with pipelining (ansible_pipelining), which takes the per-task file
copy away and so leaves the modules' own cost a larger share. In each play ping and
metadata_facts tasks alternate, so both see the same machine load; a task's time is from
its start to its result (the bench_timer callback), so ansible-playbook's start-up is in
neither. The first task of each kind is left out (it builds the module's payload). The
ratio of the medians is taken per play; the figure is the median over runs. A third kind,
metadata_facts with filter: [azure_vm_id], does the same work on the host but returns a
tiny result: the difference is what the controller spends on a full set of Azure facts.

A second figure counts CPU instead of wall time, which a busy machine disturbs less: per
round, three playbooks (N pings, N metadata_facts, none) run one after the other, and the
user + system CPU of each whole ansible-playbook process tree is read from rusage; a
task's CPU is (playbook - empty playbook) / N, controller and module together.
"""
from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from _lib import EmulatorProcess, interleaved_tasks, median, metric, ratio, run_playbook, task_seconds

NAME = "module_vs_ping"
TITLE = "metadata_facts task ÷ ping task, localhost, emulator at 3 ms"
GOAL = 1.10
VARIANTS = {"default": "false", "pipelining": "true"}

PLAY = """- name: {variant}
  hosts: localhost
  gather_facts: false
  vars:
    ansible_pipelining: {pipelining}
  tasks:
{tasks}    - name: check the facts came from the emulator
      ansible.builtin.assert:
        that: ansible_facts['azure_detected'] and ansible_facts['azure_vm_id'] is string
"""


def cpu_seconds(run_dir: Path, playbook: str) -> float:
    """User + system CPU of one ansible-playbook run and every process it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_playbook(run_dir, playbook)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def cpu_per_task(workdir: Path, kinds: dict[str, str], tasks: int, rounds: int) -> dict[str, list[float]]:
    empty = "- name: empty\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n"
    found: dict[str, list[float]] = {kind: [] for kind in kinds}
    for index in range(rounds):
        base = cpu_seconds(workdir / f"cpu-empty-{index}", empty)
        for kind, body in kinds.items():
            playbook = (f"- name: {kind}\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
                        + interleaved_tasks({kind: body}, tasks))
            found[kind].append((cpu_seconds(workdir / f"cpu-{kind}-{index}", playbook) - base) / tasks)
    return found


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    pairs, runs = (1, 1) if smoke else (8, 3)
    samples: dict[str, dict[str, list[float]]] = {
        variant: {"ping": [], "facts": [], "small": [], "ratios": []} for variant in VARIANTS}
    with EmulatorProcess(workdir) as emulator:
        kinds = {"ping": "ansible.builtin.ping:",
                 "facts": f"imds.azure.metadata_facts:\n  endpoint: {emulator.url}"}
        filtered = {**kinds, "small": f"imds.azure.metadata_facts:\n  endpoint: {emulator.url}\n  filter: [azure_vm_id]"}
        playbook = "".join(PLAY.format(variant=variant, pipelining=value, tasks=interleaved_tasks(filtered, pairs + 1))
                           for variant, value in VARIANTS.items())
        for index in range(runs):
            timings = run_playbook(workdir / f"run-{index}", playbook)
            for variant, data in samples.items():
                play = {"tasks": [t for t in timings["tasks"] if t["play"] == variant]}
                ping, facts = task_seconds(play, "ping "), task_seconds(play, "facts ")
                data["ping"] += ping
                data["facts"] += facts
                data["small"] += task_seconds(play, "small ")
                data["ratios"].append(ratio(median(facts), median(ping)))
        requests = len(emulator.imds_requests())
        if requests != 2 * len(VARIANTS) * (pairs + 1) * runs:
            raise RuntimeError(f"{requests} IMDS requests for {2 * len(VARIANTS) * (pairs + 1) * runs} facts tasks")
        cpu = cpu_per_task(workdir, kinds, pairs + 1, runs)
    metrics: dict[str, Any] = {}
    for variant, data in samples.items():
        metrics[f"ratio_{variant}"] = metric(median(data["ratios"]), "ratio", GOAL, data["ratios"],
                                             "median over runs of median(facts task) / median(ping task)")
        metrics[f"ping_task_{variant}"] = metric(median(data["ping"]), "s", spread=data["ping"])
        metrics[f"facts_task_{variant}"] = metric(median(data["facts"]), "s", spread=data["facts"])
        metrics[f"extra_{variant}"] = metric((median(data["facts"]) - median(data["ping"])) * 1000, "ms",
                                             note="what a facts task costs beyond a ping task")
        metrics[f"result_size_{variant}"] = metric((median(data["facts"]) - median(data["small"])) * 1000, "ms",
                                                   note="full facts task - filter: [azure_vm_id] task")
    cpu_ratios = [ratio(f, p) for f, p in zip(cpu["facts"], cpu["ping"])]
    metrics["ratio_cpu_default"] = metric(median(cpu_ratios), "ratio", GOAL, cpu_ratios,
                                          "CPU of a facts task / CPU of a ping task, per round")
    metrics["cpu_ping_task"] = metric(median(cpu["ping"]) * 1000, "ms", spread=[v * 1000 for v in cpu["ping"]])
    metrics["cpu_facts_task"] = metric(median(cpu["facts"]) * 1000, "ms", spread=[v * 1000 for v in cpu["facts"]])
    return {"params": {"pairs_per_run": pairs, "runs": runs, "latency_s": 0.003, "connection": "local",
                       "imds_requests": requests},
            "metrics": metrics}
