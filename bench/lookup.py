# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 5: a template with 100 imds.azure.metadata lookups ÷ the same template with 1; the first live call.

The template is rendered by an ansible.builtin.template task on localhost (the controller,
so the live source is allowed). Live source: each measurement is its own ansible-playbook
run, because the lookup keeps the fetched document for the rest of a run; the emulator's
log gives the IMDS requests of each run (goal: 1, however many lookups). Fact source: one
run gathers imds.azure.metadata_facts once, then alternates the two templates. Ratios are
of medians of the template task's time. The first live call is the template task with one
lookup less the same template with none (each the first task of a fresh run, alternating):
importing the client on the controller, one request, and walking the document.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import EmulatorProcess, interleaved_tasks, median, metric, ratio, run_playbook, task_seconds

NAME = "lookup"
TITLE = "template with 100 imds.azure.metadata lookups ÷ 1 lookup, live and facts sources"
GOAL_RATIO = 1.5
PATHS = ("compute/vmId", "compute/name", "compute/location", "compute/vmSize", "compute/zone",
         "compute/resourceGroupName", "compute/subscriptionId", "compute/osType",
         "network/interface/0/macAddress", "network/interface/0/ipv4/ipAddress/0/privateIpAddress")

PLAYBOOK = """- name: {name}
  hosts: localhost
  gather_facts: false
  vars:
    imds_azure_endpoint: {endpoint}
    imds_azure_lookup_source: {source}
  tasks:
{tasks}"""
GATHER = "imds.azure.metadata_facts:\n  endpoint: {endpoint}"


def template(lookups: int) -> str:
    lines = [f"{PATHS[i % len(PATHS)]} = {{{{ lookup('imds.azure.metadata', '{PATHS[i % len(PATHS)]}') }}}}"
             for i in range(lookups)]
    return "# rendered by the imds.azure lookup benchmark\n" + "\n".join(lines) + "\n"


def render_task(workdir: Path, lookups: int) -> str:
    return (f"ansible.builtin.template:\n  src: {workdir / f'lookups-{lookups}.j2'}\n"
            f"  dest: {workdir / f'rendered-{lookups}.txt'}\n  mode: '0600'")


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    runs = 1 if smoke else 6
    for lookups in (0, 1, 100):
        (workdir / f"lookups-{lookups}.j2").write_text(template(lookups), encoding="utf-8")
    live: dict[int, list[float]] = {0: [], 1: [], 100: []}
    requests: dict[int, list[int]] = {0: [], 1: [], 100: []}
    with EmulatorProcess(workdir) as emulator:
        for index in range(runs):
            for lookups in (0, 1, 100) if index % 2 == 0 else (100, 1, 0):
                before = len(emulator.imds_requests())
                playbook = PLAYBOOK.format(name=NAME, endpoint=emulator.url, source="live",
                                           tasks=interleaved_tasks({"render": render_task(workdir, lookups)}, 1))
                timings = run_playbook(workdir / f"live-{lookups}-{index}", playbook)
                live[lookups] += task_seconds(timings, "render ", skip_first=False)
                requests[lookups].append(len(emulator.imds_requests()) - before)
        rendered = (workdir / "rendered-100.txt").read_text(encoding="utf-8")
        if "vmId = " not in rendered or "{{" in rendered:
            raise RuntimeError(f"the template was not rendered: {rendered[:300]}")
        kinds = {"gather": GATHER.format(endpoint=emulator.url)}
        before = len(emulator.imds_requests())
        playbook = PLAYBOOK.format(name=NAME, endpoint=emulator.url, source="facts",
                                   tasks=interleaved_tasks(kinds, 1) + interleaved_tasks(
                                       {"one": render_task(workdir, 1), "hundred": render_task(workdir, 100)},
                                       runs + 1))
        timings = run_playbook(workdir / "facts", playbook)
        facts_requests = len(emulator.imds_requests()) - before
    facts = {1: task_seconds(timings, "one "), 100: task_seconds(timings, "hundred ")}
    return {
        "params": {"runs": runs, "latency_s": 0.003, "paths": list(PATHS)},
        "metrics": {
            "live_requests_100": metric(median(requests[100]), "req", 1, requests[100],
                                        "IMDS requests per run of the 100-lookup template", exact=True),
            "live_requests_1": metric(median(requests[1]), "req", spread=requests[1]),
            "live_ratio_100_1": metric(ratio(median(live[100]), median(live[1])), "ratio", GOAL_RATIO,
                                       note="template task, 100 lookups ÷ 1 lookup, each a fresh run"),
            "live_task_0": metric(median(live[0]), "s", spread=live[0], note="the same template without lookups"),
            "live_task_1": metric(median(live[1]), "s", spread=live[1]),
            "first_live_call": metric((median(live[1]) - median(live[0])) * 1000, "ms",
                                      note="template task with 1 lookup - without, each the first task of a fresh run"),
            "first_live_call_ratio": metric(ratio(median(live[1]), median(live[0])), "ratio",
                                            note="template task with 1 lookup ÷ without"),
            "live_task_100": metric(median(live[100]), "s", spread=live[100]),
            "facts_requests": metric(facts_requests, "req", 2, note="the gather's two requests (instance, load "
                                     "balancer); lookups make none", exact=True),
            "facts_ratio_100_1": metric(ratio(median(facts[100]), median(facts[1])), "ratio", GOAL_RATIO),
            "facts_task_1": metric(median(facts[1]), "s", spread=facts[1]),
            "facts_task_100": metric(median(facts[100]), "s", spread=facts[100]),
        },
    }
