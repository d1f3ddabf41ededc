# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 4: off Azure, metadata_facts ÷ ping, with the default endpoint.

ansible-playbook runs inside a new network namespace (``unshare -n``, as root): no
interface is up and there is no route, so nothing can reach 169.254.169.254. The module
keeps its default endpoint. Tasks alternate ping; metadata_facts with dmi_path naming a
file that says "not Azure" (the goal: no network wait at all); and metadata_facts with a
dmi_path that does not exist, which makes the module probe the endpoint (here the connect
fails at once with "network unreachable"; on a network that drops packets it would wait
up to its one-second probe timeout).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import interleaved_tasks, median, metric, ratio, run_playbook, task_seconds

from ansible_collections.imds.azure.tests.utils import netns  # _lib put the checkout on sys.path

NAME = "off_azure"
TITLE = "off Azure (netns, no route): metadata_facts ÷ ping, default endpoint"
GOAL = 1.10

PLAYBOOK = """- name: {name}
  hosts: localhost
  gather_facts: false
  tasks:
{tasks}    - name: check nothing was found
      ansible.builtin.assert:
        that: not ansible_facts['azure_detected']
"""


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    reason = netns.why_not()
    if reason:
        return {"skipped": reason}
    pairs, runs = (1, 1) if smoke else (12, 3)
    not_azure = workdir / "chassis_asset_tag"
    not_azure.write_text("Default string\n", encoding="ascii")
    kinds = {"ping": "ansible.builtin.ping:",
             "dmi": f"imds.azure.metadata_facts:\n  dmi_path: {not_azure}",
             "probe": f"imds.azure.metadata_facts:\n  dmi_path: {workdir / 'missing'}"}
    playbook = PLAYBOOK.format(name=NAME, tasks=interleaved_tasks(kinds, pairs + 1))
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    ratios: dict[str, list[float]] = {"dmi": [], "probe": []}
    for index in range(runs):
        timings = run_playbook(workdir / f"run-{index}", playbook, prefix=netns.UNSHARE_NET)
        found = {kind: task_seconds(timings, f"{kind} ") for kind in kinds}
        for kind, values in found.items():
            samples[kind] += values
        for kind in ratios:
            ratios[kind].append(ratio(median(found[kind]), median(found["ping"])))
    return {
        "params": {"pairs_per_run": pairs, "runs": runs, "namespace": "unshare --net (no interface up, no route)",
                   "endpoint": "default (http://169.254.169.254)"},
        "metrics": {
            "ratio_dmi_not_azure": metric(median(ratios["dmi"]), "ratio", GOAL, ratios["dmi"],
                                          "DMI says not Azure: no request at all"),
            "ratio_no_dmi_probe": metric(median(ratios["probe"]), "ratio", spread=ratios["probe"],
                                         note="no DMI file: one connect attempt, refused at once by the routing table"),
            "ping_task": metric(median(samples["ping"]), "s", spread=samples["ping"]),
            "facts_task_dmi": metric(median(samples["dmi"]), "s", spread=samples["dmi"]),
            "facts_task_probe": metric(median(samples["probe"]), "s", spread=samples["probe"]),
        },
    }
