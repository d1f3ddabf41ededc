# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 2: an imds.azure.metadata_facts task ÷ an ansible.builtin.ping task, and its peers.

Everything runs on localhost over the local connection against the emulator (3 ms per
request). Per round, and for each variant of the collection (this checkout; with
``run.py --baseline REF`` also the collection at REF, in alternating order):

- ad hoc: ``ansible localhost -m ping``, ``-m imds.azure.metadata_facts``, ``-m uri``
  (the request users write by hand), alternating; whole command, CPU of the process tree;
- as a task, CPU: four playbooks, one per kind (N pings, N facts tasks, N ``uri`` +
  ``set_fact`` pairs, none); a task's CPU is (playbook - empty playbook) / N, controller
  and module together, from rusage of the whole ansible-playbook process tree;
- as a task, wall: one playbook in which the kinds alternate, so that a burst of load
  from elsewhere hits all of them; a task's time is from its start to its result
  (bench_timer), the first of each kind left out (it builds the module's payload).

Ratios are taken per round (CPU) or per run (wall) and the figure is their median.

As root, a second set runs inside a network namespace of its own whose loopback holds
169.254.169.254, with the emulator listening there on port 80: ping, and metadata_facts with
its default endpoint and a DMI file that says Azure (the path a real VM takes: detection,
then the real address). ``sap.sap_operations.azure_imds`` asks 169.254.169.254 itself (no
endpoint option), so it can only run there: it joins that set when the collection is
installed, and is reported as skipped otherwise (the ``ansible`` package does not ship it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _lib import (EmulatorProcess, imds_namespace, interleaved_tasks, median, metric, ratio, run_adhoc, run_playbook,
                  task_seconds, variants)

NAME = "module_vs_ping"
TITLE = "metadata_facts ÷ ping, ad hoc and as a task (CPU and wall); uri + set_fact; sap azure_imds"
GOAL = 1.10
TASKS, ROUNDS = 6, 5  # tasks per playbook, rounds
DETECTED = '"ansible_azure_detected": true'

URI = """ansible.builtin.uri:
  url: "{endpoint}/metadata/instance?api-version=2021-02-01"
  headers:
    Metadata: "true"
  use_proxy: false
register: imds"""
SET_FACT = """ansible.builtin.set_fact:
  azure_vm_id: "{{ imds.json.compute.vmId }}"
  azure_location: "{{ imds.json.compute.location }}"
  azure_vm_size: "{{ imds.json.compute.vmSize }}"
  azure_tags: "{{ imds.json.compute.tagsList | items2dict(key_name='name', value_name='value') }}"
  azure_private_ipv4: "{{ imds.json.network.interface[0].ipv4.ipAddress[0].privateIpAddress }}"
"""
PLAY = """- name: {name}
  hosts: localhost
  gather_facts: false
  tasks:
{tasks}"""
SAP_MODULE = "sap.sap_operations.azure_imds"


def kinds(endpoint: str) -> dict[str, dict[str, str]]:
    """Each kind of work as the tasks of one unit (uri is two tasks: the request and set_fact)."""
    return {
        "ping": {"ping": "ansible.builtin.ping:"},
        "facts": {"facts": f"imds.azure.metadata_facts:\n  endpoint: {endpoint}"},
        "uri": {"uri": URI.format(endpoint=endpoint), "set_fact": SET_FACT},
    }


def unit_tasks(units: dict[str, dict[str, str]], count: int) -> str:
    """``count`` rounds of every unit's tasks, named ``<task> <round>``."""
    flat: dict[str, str] = {}
    for tasks in units.values():
        flat.update(tasks)
    return interleaved_tasks(flat, count)


def unit_seconds(timings: dict[str, Any], tasks: dict[str, str]) -> list[float]:
    """Per round, the summed time of a unit's tasks (first round left out)."""
    per_task = [task_seconds(timings, f"{name} ") for name in tasks]
    return [sum(values) for values in zip(*per_task)]


def sap_installed(collections: Path) -> bool:
    """Whether the sap.sap_operations collection is beside ours or in the ansible package."""
    import ansible_collections  # pylint: disable=import-outside-toplevel

    roots = [collections, *(Path(p).parent for p in ansible_collections.__path__)]
    return any((root / "ansible_collections" / "sap" / "sap_operations").is_dir() for root in roots)


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    tasks, rounds = (1, 1) if smoke else (TASKS, ROUNDS)
    found = variants(workdir)
    cpu: dict[str, dict[str, list[float]]] = {v.label: {} for v in found}
    adhoc: dict[str, dict[str, list[float]]] = {v.label: {} for v in found}
    walls: dict[str, dict[str, list[float]]] = {v.label: {} for v in found}
    wall_ratios: dict[str, dict[str, list[float]]] = {v.label: {"facts": [], "uri": []} for v in found}
    with EmulatorProcess(workdir) as emulator:
        units = kinds(emulator.url)
        uri_args = (f"url={emulator.url}/metadata/instance?api-version=2021-02-01 "
                    "headers={'Metadata':'true'} use_proxy=false")
        adhoc_args = {"ping": ("ansible.builtin.ping", "", '"ping": "pong"'),
                      "facts": ("imds.azure.metadata_facts", f"endpoint={emulator.url}", DETECTED),
                      "uri": ("ansible.builtin.uri", uri_args, '"status": 200')}
        empty = PLAY.format(name="empty", tasks="    - name: nothing\n      ansible.builtin.meta: noop\n")
        for index in range(rounds):
            for variant in found if index % 2 == 0 else list(reversed(found)):
                label, where = variant.label, workdir / f"{index}-{found.index(variant)}"
                order = list(units) if index % 2 == 0 else list(reversed(units))
                for kind in order:
                    module, args, expect = adhoc_args[kind]
                    _wall, seconds = run_adhoc(where / f"adhoc-{kind}", module, args, expect=expect,
                                               collections=variant.collections)
                    adhoc[label].setdefault(kind, []).append(seconds)
                base = run_playbook(where / "empty", empty, collections=variant.collections)["cpu_seconds"]
                for kind in order:
                    spent = run_playbook(where / f"cpu-{kind}", PLAY.format(name=kind, tasks=unit_tasks(
                        {kind: units[kind]}, tasks)), collections=variant.collections)["cpu_seconds"]
                    cpu[label].setdefault(kind, []).append((spent - base) / tasks)
                timings = run_playbook(where / "wall", PLAY.format(name="wall", tasks=unit_tasks(units, tasks + 1)),
                                       collections=variant.collections)
                per_unit = {kind: unit_seconds(timings, units[kind]) for kind in units}
                for kind, values in per_unit.items():
                    walls[label].setdefault(kind, []).extend(values)
                for kind in ("facts", "uri"):
                    wall_ratios[label][kind].append(ratio(median(per_unit[kind]), median(per_unit["ping"])))
        # the load balancer request of a gather (from imds.azure 1.1 on) comes on top; count the instance requests
        requests = len([r for r in emulator.imds_requests() if r["path"] == "/metadata/instance"])
        # per round and variant: 1 ad hoc + N (CPU playbook) + N + 1 (wall playbook), for facts and for uri
        expected = 2 * (1 + tasks + tasks + 1) * rounds * len(found)
        if requests != expected:
            raise RuntimeError(f"{requests} instance requests, not {expected}: one per facts or uri task")
    metrics: dict[str, Any] = {}
    for variant in found:
        label = variant.label
        prefix = "" if label == "this checkout" else f"{label}: "
        for kind in ("facts", "uri"):
            note = {"facts": "metadata_facts", "uri": "uri + set_fact (what users write without the collection)"}[kind]
            cpu_ratios = [ratio(k, p) for k, p in zip(cpu[label][kind], cpu[label]["ping"])]
            adhoc_ratios = [ratio(k, p) for k, p in zip(adhoc[label][kind], adhoc[label]["ping"])]
            goal = GOAL if kind == "facts" and not prefix else None
            metrics[f"{prefix}cpu ratio task {kind}"] = metric(
                median(cpu_ratios), "ratio", goal, cpu_ratios, f"CPU of a {note} task ÷ a ping task, per round")
            metrics[f"{prefix}cpu ratio ad hoc {kind}"] = metric(
                median(adhoc_ratios), "ratio", goal, adhoc_ratios, "ansible -m: CPU of the whole command ÷ -m ping")
            metrics[f"{prefix}wall ratio task {kind}"] = metric(
                median(wall_ratios[label][kind]), "ratio", spread=wall_ratios[label][kind],
                note="per run: median task time ÷ ping's")
        for kind in units:
            metrics[f"{prefix}cpu task {kind}"] = metric(
                median(cpu[label][kind]) * 1000, "ms", spread=[v * 1000 for v in cpu[label][kind]])
            metrics[f"{prefix}cpu ad hoc {kind}"] = metric(median(adhoc[label][kind]) * 1000, "ms",
                                                           spread=[v * 1000 for v in adhoc[label][kind]])
            metrics[f"{prefix}wall task {kind}"] = metric(median(walls[label][kind]), "s", spread=walls[label][kind])
    outcome: dict[str, Any] = {"params": {"tasks_per_playbook": tasks, "rounds": rounds, "latency_s": 0.003,
                                          "connection": "local", "imds_requests": requests,
                                          "variants": [v.label for v in found]},
                               "metrics": metrics}
    outcome["namespace"] = namespace_peers(workdir, found[0], tasks, rounds)
    return outcome


def namespace_peers(workdir: Path, variant: Any, tasks: int, rounds: int) -> dict[str, Any]:
    """ping, metadata_facts (default endpoint, DMI says Azure) and, if installed, the sap module,
    in a namespace whose 169.254.169.254:80 is the emulator; CPU per task as above."""
    import os  # pylint: disable=import-outside-toplevel

    if os.geteuid() != 0:
        return {"skipped": "needs root to create a network namespace"}
    dmi = workdir / "chassis_asset_tag"
    dmi.write_text("7783-7084-3265-9085-8269-3286-77\n", encoding="ascii")
    units = {"ping": {"ping": "ansible.builtin.ping:"},
             "facts": {"facts": f"imds.azure.metadata_facts:\n  dmi_path: {dmi}"}}
    outcome: dict[str, Any] = {}
    if sap_installed(variant.collections):
        units["sap"] = {"sap": f"{SAP_MODULE}:"}
    else:
        outcome["sap"] = {"skipped": f"{SAP_MODULE} is not installed (the ansible package does not ship it)"}
    cpu: dict[str, list[float]] = {kind: [] for kind in units}
    try:
        with imds_namespace(workdir) as (prefix, log):
            empty = PLAY.format(name="empty", tasks="    - name: nothing\n      ansible.builtin.meta: noop\n")
            for index in range(rounds):
                where = workdir / f"netns-{index}"
                base = run_playbook(where / "empty", empty, prefix=prefix, collections=variant.collections)
                for kind, unit in units.items():
                    spent = run_playbook(where / kind, PLAY.format(name=kind, tasks=unit_tasks({kind: unit}, tasks)),
                                         prefix=prefix, collections=variant.collections)
                    cpu[kind].append((spent["cpu_seconds"] - base["cpu_seconds"]) / tasks)
            # the instance requests (each gather also asks for the load balancer metadata)
            lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            requests = len([line for line in lines if json.loads(line).get("path") == "/metadata/instance"])
    except RuntimeError as exc:
        return {"skipped": str(exc).splitlines()[0]}
    # each facts task asked the emulator at 169.254.169.254 once (the sap module's requests come on top)
    if requests < tasks * rounds or ("sap" not in units and requests != tasks * rounds):
        raise RuntimeError(f"{requests} requests reached the emulator at 169.254.169.254 in the namespace, "
                           f"for {tasks * rounds} facts tasks")
    outcome["instance requests at 169.254.169.254"] = metric(requests, "req")
    for kind in units:
        if kind != "ping":
            ratios = [ratio(k, p) for k, p in zip(cpu[kind], cpu["ping"])]
            outcome[f"cpu ratio task {kind}"] = metric(
                median(ratios), "ratio", spread=ratios,
                note=f"CPU of a {kind} task ÷ a ping task, inside the namespace, default endpoint 169.254.169.254")
        outcome[f"cpu task {kind}"] = metric(median(cpu[kind]) * 1000, "ms", spread=[v * 1000 for v in cpu[kind]])
    return outcome
