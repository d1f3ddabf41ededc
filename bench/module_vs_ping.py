# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 2: wall time of an imds.azure.metadata_facts task ÷ an ansible.builtin.ping task.

Each run is one playbook on localhost (local connection) with two plays: ansible's
defaults, then the same with pipelining (ansible_pipelining), which takes the per-task file
copy away and so leaves the modules' own cost a larger share. In each play ping and
metadata_facts tasks alternate, so both see the same machine load; a task's time is from
its start to its result (the bench_timer callback), so ansible-playbook's start-up is in
neither. The first task of each kind is left out (it builds the module's payload). The
ratio of the medians is taken per play; the figure is the median over runs.
"""
from __future__ import annotations

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


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    pairs, runs = (1, 1) if smoke else (12, 3)
    samples = {variant: {"ping": [], "facts": [], "ratios": []} for variant in VARIANTS}
    with EmulatorProcess(workdir) as emulator:
        kinds = {"ping": "ansible.builtin.ping:",
                 "facts": f"imds.azure.metadata_facts:\n  endpoint: {emulator.url}"}
        playbook = "".join(PLAY.format(variant=variant, pipelining=value, tasks=interleaved_tasks(kinds, pairs + 1))
                           for variant, value in VARIANTS.items())
        for index in range(runs):
            timings = run_playbook(workdir / f"run-{index}", playbook)
            for variant, data in samples.items():
                play = {"tasks": [t for t in timings["tasks"] if t["play"] == variant]}
                ping, facts = task_seconds(play, "ping "), task_seconds(play, "facts ")
                data["ping"] += ping
                data["facts"] += facts
                data["ratios"].append(ratio(median(facts), median(ping)))
        requests = len(emulator.imds_requests())
    if requests != len(VARIANTS) * (pairs + 1) * runs:
        raise RuntimeError(f"{requests} IMDS requests for {len(VARIANTS) * (pairs + 1) * runs} facts tasks")
    metrics: dict[str, Any] = {}
    for variant, data in samples.items():
        metrics[f"ratio_{variant}"] = metric(median(data["ratios"]), "ratio", GOAL, data["ratios"],
                                             "median over runs of median(facts task) / median(ping task)")
        metrics[f"ping_task_{variant}"] = metric(median(data["ping"]), "s", spread=data["ping"])
        metrics[f"facts_task_{variant}"] = metric(median(data["facts"]), "s", spread=data["facts"])
        metrics[f"extra_{variant}"] = metric((median(data["facts"]) - median(data["ping"])) * 1000, "ms",
                                             note="what a facts task costs beyond a ping task")
    return {"params": {"pairs_per_run": pairs, "runs": runs, "latency_s": 0.003, "connection": "local",
                       "imds_requests": requests},
            "metrics": metrics}
