# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 3: what adding Azure facts costs a play's fact gathering.

One playbook holds, per round, four plays on localhost that each gather facts:
  setup       facts_modules = ansible.builtin.setup (what every play pays today)
  sequential  facts_modules = setup, imds.azure.metadata_facts; parallel: false
  parallel    the same with parallel: true (ansible-core's default for two modules)
  uri         setup, then what users write without this collection: an ansible.builtin.uri
              task with Metadata: true and a set_fact that picks fields out
  setup_parallel  setup alone with parallel: true, which shows what ansible-core's async
              start and polling cost by themselves
The figure of a play is its "Gathering Facts" task time (plus, for uri, its two tasks).
facts_modules and parallel are set per play through the ansible_facts_modules and
ansible_facts_parallel variables; the play order rotates every round. Ratios are taken per
round against that round's setup play; the figures are their medians.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import EmulatorProcess, median, metric, ratio, run_playbook

NAME = "gather_facts"
TITLE = "gather_facts with setup + metadata_facts vs setup alone; uri + set_fact"
GOAL_PARALLEL = 1.05

PLAY = """- name: {kind} {round}
  hosts: localhost
  gather_facts: true
  gather_subset: {subset}
  gather_timeout: 120
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
KINDS = {
    "setup": ("[ansible.builtin.setup]", "false", ""),
    "sequential": ("[ansible.builtin.setup, imds.azure.metadata_facts]", "false", CHECK_OURS),
    "parallel": ("[ansible.builtin.setup, imds.azure.metadata_facts]", "true", CHECK_OURS),
    "uri": ("[ansible.builtin.setup]", "false", DIY),
    "setup_parallel": ("[ansible.builtin.setup]", "true", ""),
}


def playbook(endpoint: str, rounds: int, subset: str) -> str:
    plays = []
    names = list(KINDS)
    for index in range(rounds):
        for kind in names[index % len(names):] + names[:index % len(names)]:
            modules, parallel, tasks = KINDS[kind]
            plays.append(PLAY.format(kind=kind, round=index, modules=modules, parallel=parallel, endpoint=endpoint,
                                     subset=subset,
                                     tasks=tasks.format(round=index, endpoint=endpoint)
                                     or "    - name: nothing\n      ansible.builtin.meta: noop\n"))
    return "".join(plays)


def play_seconds(timings: dict[str, Any], kind: str, index: int) -> float:
    """The play's fact gathering, plus its uri and set_fact tasks."""
    counted = ("Gathering Facts", f"uri {index}", f"set_fact {index}")
    return sum(t["seconds"] for t in timings["tasks"] if t["play"] == f"{kind} {index}" and t["name"] in counted)


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    # the smoke run gathers setup's minimal subset, to stay quick; real figures use all of setup
    rounds, subset = (1, "[min]") if smoke else (6, "[all]")
    with EmulatorProcess(workdir) as emulator:
        timings = run_playbook(workdir / "run", playbook(emulator.url, rounds, subset))
        requests = len(emulator.imds_requests())
    seconds = {kind: [play_seconds(timings, kind, index) for index in range(rounds)] for kind in KINDS}
    ratios = {kind: [ratio(s, base) for s, base in zip(seconds[kind], seconds["setup"])] for kind in KINDS}
    metrics = {
        "ratio_sequential": metric(median(ratios["sequential"]), "ratio", spread=ratios["sequential"],
                                   note="setup + metadata_facts, parallel: false ÷ setup"),
        "ratio_parallel": metric(median(ratios["parallel"]), "ratio", GOAL_PARALLEL, ratios["parallel"],
                                 "setup + metadata_facts, parallel: true ÷ setup"),
        "ratio_parallel_vs_setup_parallel": metric(
            median([ratio(a, b) for a, b in zip(seconds["parallel"], seconds["setup_parallel"])]), "ratio",
            note="setup + metadata_facts, parallel: true ÷ setup alone, parallel: true"),
        "ratio_uri_set_fact": metric(median(ratios["uri"]), "ratio", spread=ratios["uri"],
                                     note="setup, then uri + set_fact tasks ÷ setup"),
    }
    for kind in KINDS:
        metrics[f"seconds_{kind}"] = metric(median(seconds[kind]), "s", spread=seconds[kind])
    return {"params": {"rounds": rounds, "latency_s": 0.003, "gather_subset": subset, "imds_requests": requests},
            "metrics": metrics}
