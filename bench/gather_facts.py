# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 3: what adding Azure facts costs a play's fact gathering.

A first play installs the imds.azure.local_facts role twice (two fact folders: the default
ttl of 300 s, and ttl 0, which asks IMDS at every setup). Then one playbook holds, per
round, plays on localhost that each gather facts:
  setup       facts_modules = ansible.builtin.setup (what every play pays today)
  sequential  facts_modules = setup, imds.azure.metadata_facts; parallel: false
  local       setup alone, whose fact_path holds the role's local fact (answers from its cache)
  local_ttl0  the same with the fact that asks IMDS every time
  uri         setup, then what users write without this collection: an ansible.builtin.uri
              task with Metadata: true and a set_fact that picks fields out
Parallel mode (ansible-core's default for two facts modules) is left out: it starts every
facts module through async_wrapper and polls it, costing far more than it saves (2.4 to
2.8 x setup in earlier runs), and on a machine as loaded as the benchmarks' it made setup
exceed even a gather_timeout of 120 s.
The figure of a play is its "Gathering Facts" task time (plus, for uri, its two tasks).
facts_modules, parallel and fact_path are set per play (the ansible_facts_modules and
ansible_facts_parallel variables, the fact_path keyword); the play order rotates every
round. Ratios are taken per round against that round's setup play; the figures are their
medians.

Wall time on a busy machine moves a play's gathering by half its length, so a second set
counts CPU: per round and kind, one playbook of K plays that each gather that way (after
the installs), beside the same K plays with gather_facts false; a gathering's CPU is the
difference ÷ K, from rusage of the whole ansible-playbook process tree (controller,
setup, the fact, the module). Ratios are per round against setup's, and their median.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import EmulatorProcess, median, metric, ratio, run_playbook

NAME = "gather_facts"
TITLE = "gather_facts with setup + metadata_facts vs setup alone; uri + set_fact"
GOAL_LOCAL = 1.05
ROUNDS, CPU_ROUNDS, PLAYS = 6, 4, 3  # wall rounds; CPU rounds and plays per CPU playbook

PLAY = """- name: {kind} {round}
  hosts: localhost
  gather_facts: true
  gather_subset: {subset}
  gather_timeout: 600
  fact_path: {fact_path}
  vars:
    ansible_facts_modules: {modules}
    ansible_facts_parallel: {parallel}
  module_defaults:
    imds.azure.metadata_facts:
      endpoint: {endpoint}
  tasks:
{tasks}
"""
CHECK_OURS = """    - name: check {round}
      ansible.builtin.assert:
        that: ansible_facts['azure_vm_id'] is string and ansible_facts['distribution'] is defined
"""
DIY = """    - name: uri {round}
      ansible.builtin.uri:
        url: "{endpoint}/metadata/instance?api-version=2021-02-01"
        headers:
          Metadata: "true"
        use_proxy: false
        return_content: true
      register: imds
    - name: set_fact {round}
      ansible.builtin.set_fact:
        azure_vm_id: "{{{{ imds.json.compute.vmId }}}}"
        azure_location: "{{{{ imds.json.compute.location }}}}"
        azure_vm_size: "{{{{ imds.json.compute.vmSize }}}}"
        azure_tags: "{{{{ imds.json.compute.tagsList | items2dict(key_name='name', value_name='value') }}}}"
        azure_private_ipv4: "{{{{ imds.json.network.interface[0].ipv4.ipAddress[0].privateIpAddress }}}}"
"""
CHECK_LOCAL = """    - name: check {round}
      ansible.builtin.assert:
        that: ansible_local['azure']['vm_id'] is string and not ansible_local['azure']['failed']
"""
INSTALL = """- name: install the local facts
  hosts: localhost
  gather_facts: false
  tasks:
    - name: install {name}
      ansible.builtin.include_role:
        name: imds.azure.local_facts
      vars:
        local_facts_fact_path: {workdir}/{name}.d
        local_facts_lib_dir: {workdir}/{name}-lib
        local_facts_endpoint: {endpoint}
        local_facts_ttl: {ttl}
        local_facts_gather: false
"""
# facts_modules, parallel, fact folder, tasks after gathering
KINDS = {
    "setup": ("[ansible.builtin.setup]", "false", "empty", ""),
    "sequential": ("[ansible.builtin.setup, imds.azure.metadata_facts]", "false", "empty", CHECK_OURS),
    "local": ("[ansible.builtin.setup]", "false", "cached", CHECK_LOCAL),
    "local_ttl0": ("[ansible.builtin.setup]", "false", "uncached", CHECK_LOCAL),
    "uri": ("[ansible.builtin.setup]", "false", "empty", DIY),
}


def playbook(workdir: Path, endpoint: str, rounds: int, subset: str) -> str:
    (workdir / "empty.d").mkdir(parents=True, exist_ok=True)
    plays = [INSTALL.format(name=name, workdir=workdir, endpoint=endpoint, ttl=ttl)
             for name, ttl in (("cached", 3600), ("uncached", 0))]
    names = list(KINDS)
    for index in range(rounds):
        for kind in names[index % len(names):] + names[:index % len(names)]:
            modules, parallel, facts, tasks = KINDS[kind]
            plays.append(PLAY.format(kind=kind, round=index, modules=modules, parallel=parallel, endpoint=endpoint,
                                     subset=subset, fact_path=workdir / f"{facts}.d",
                                     tasks=tasks.format(round=index, endpoint=endpoint)
                                     or "    - name: nothing\n      ansible.builtin.meta: noop\n"))
    return "".join(plays)


CPU_KINDS = ("setup", "sequential", "local", "local_ttl0", "uri")


def cpu_playbook(workdir: Path, endpoint: str, kind: str | None, plays: int, subset: str) -> str:
    """``plays`` plays that gather as ``kind`` (None: the same plays without gathering).

    Only the uri kind keeps its tasks (they are its work); the checks of the other kinds are
    left out, since every task forks a worker and would count as gathering. The request
    counts check these playbooks instead.
    """
    modules, parallel, facts, tasks = KINDS[kind or "setup"]
    body = "".join(PLAY.format(kind=kind or "none", round=index, modules=modules, parallel=parallel,
                               endpoint=endpoint, subset=subset, fact_path=workdir / f"{facts}.d",
                               tasks=(tasks if kind == "uri" else "").format(round=index, endpoint=endpoint)
                               or "    - name: nothing\n      ansible.builtin.meta: noop\n")
                   for index in range(plays))
    return body if kind else body.replace("gather_facts: true", "gather_facts: false")


def play_seconds(timings: dict[str, Any], kind: str, index: int) -> float:
    """The play's fact gathering, plus its uri and set_fact tasks."""
    counted = ("Gathering Facts", f"uri {index}", f"set_fact {index}")
    return sum(t["seconds"] for t in timings["tasks"] if t["play"] == f"{kind} {index}" and t["name"] in counted)


def instance_requests(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    return [r for r in emulator.imds_requests() if r["path"] == "/metadata/instance"]


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    # the smoke run gathers setup's minimal subset, to stay quick; real figures use all of setup
    rounds, subset = (1, "[min]") if smoke else (ROUNDS, "[all]")
    cpu_rounds, plays = (1, 1) if smoke else (CPU_ROUNDS, PLAYS)
    with EmulatorProcess(workdir) as emulator:
        timings = run_playbook(workdir / "run", playbook(workdir, emulator.url, rounds, subset))
        # instance requests: a gather (module or local fact) also asks for the load balancer metadata
        requests = len(instance_requests(emulator))
        cpu: dict[str, list[float]] = {kind: [] for kind in CPU_KINDS}
        for index in range(cpu_rounds):
            base = run_playbook(workdir / f"cpu-{index}-none", cpu_playbook(workdir, emulator.url, None, plays, subset))
            for kind in CPU_KINDS if index % 2 == 0 else tuple(reversed(CPU_KINDS)):
                spent = run_playbook(workdir / f"cpu-{index}-{kind}",
                                     cpu_playbook(workdir, emulator.url, kind, plays, subset))
                cpu[kind].append((spent["cpu_seconds"] - base["cpu_seconds"]) / plays)
        cpu_requests = len(instance_requests(emulator)) - requests
    # per round: sequential, uri and the ttl-0 local fact; the cached one asks once in all
    if requests != 3 * rounds + 1:
        raise RuntimeError(f"{requests} IMDS requests, not {3 * rounds + 1}")
    # the CPU playbooks: sequential, uri and ttl-0 ask once per play; the cached fact is still fresh
    if cpu_requests != 3 * plays * cpu_rounds:
        raise RuntimeError(f"{cpu_requests} IMDS requests in the CPU playbooks, not {3 * plays * cpu_rounds}")
    seconds = {kind: [play_seconds(timings, kind, index) for index in range(rounds)] for kind in KINDS}
    ratios = {kind: [ratio(s, base) for s, base in zip(seconds[kind], seconds["setup"])] for kind in KINDS}
    metrics = {
        "ratio_sequential": metric(median(ratios["sequential"]), "ratio", spread=ratios["sequential"],
                                   note="setup + metadata_facts, parallel: false ÷ setup"),
        "ratio_local_fact": metric(median(ratios["local"]), "ratio", GOAL_LOCAL, ratios["local"],
                                   "setup with the role's local fact (cached) ÷ setup"),
        "ratio_local_fact_ttl0": metric(median(ratios["local_ttl0"]), "ratio", spread=ratios["local_ttl0"],
                                        note="setup with the local fact, ttl 0 (one request per setup) ÷ setup"),
        "ratio_uri_set_fact": metric(median(ratios["uri"]), "ratio", spread=ratios["uri"],
                                     note="setup, then uri + set_fact tasks ÷ setup"),
    }
    for kind in CPU_KINDS[1:]:
        ratios_cpu = [ratio(k, b) for k, b in zip(cpu[kind], cpu["setup"])]
        metrics[f"cpu_ratio_{kind}"] = metric(median(ratios_cpu), "ratio", GOAL_LOCAL if kind == "local" else None,
                                              ratios_cpu, f"CPU of one gathering, {kind} ÷ setup alone")
    for kind in CPU_KINDS:
        metrics[f"cpu_{kind}"] = metric(median(cpu[kind]) * 1000, "ms", spread=[v * 1000 for v in cpu[kind]])
    for kind in KINDS:
        metrics[f"seconds_{kind}"] = metric(median(seconds[kind]), "s", spread=seconds[kind])
    return {"params": {"rounds": rounds, "latency_s": 0.003, "gather_subset": subset, "imds_requests": requests,
                       "cpu_rounds": cpu_rounds, "plays_per_cpu_playbook": plays},
            "metrics": metrics}
