# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 6: a fleet of inventory hosts, forks 20: metadata_facts ÷ ping, from 10 to 200 hosts.

Every host is this machine over the local connection, pointed at one emulator process. On
Azure each VM has its own IMDS and its own /tmp, where the client keeps the flock file of
its 5-requests-per-second limiter. Here all hosts share one machine, so the play gives
each host its own TMPDIR (environment keyword, for ping too); otherwise the limiter would,
correctly, hold the whole fleet to 5 requests per second, which no real fleet sees. The
emulator log confirms one request per host and task. A task's time runs from its start to
its last host's result. The tasks run ping, facts, facts, ping (drift cancels out), no
warm-up left out: building a module's payload once is noise beside a task on 10+ hosts.
With ``run.py --baseline REF`` each size is also run with the collection at REF, right after.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _lib import (EmulatorProcess, interleaved_tasks, local_inventory, median, metric, ratio, run_playbook,
                  task_seconds, variants)

NAME = "fleet"
TITLE = "fleet, forks 20, local connection: metadata_facts ÷ ping by host count"
GOAL = 1.15
FORKS = 20
SIZES = (10, 50, 200)

PLAYBOOK = """- name: {name}
  hosts: all
  gather_facts: false
  environment:
    TMPDIR: "{tmp}/{{{{ inventory_hostname }}}}"
  tasks:
{tasks}    - name: check
      ansible.builtin.assert:
        that: ansible_facts['azure_detected']
"""


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    sizes = (3,) if smoke else SIZES
    metrics: dict[str, Any] = {}
    growth = []
    found = variants(workdir)
    with EmulatorProcess(workdir) as emulator:
        for hosts in sizes:
            names = [f"vm{n:03d}" for n in range(hosts)]
            for name in names:
                (workdir / "tmp" / name).mkdir(parents=True, exist_ok=True)
            kinds = {"ping": "ansible.builtin.ping:",
                     "facts": f"imds.azure.metadata_facts:\n  endpoint: {emulator.url}"}
            tasks = interleaved_tasks(kinds, 1) + interleaved_tasks(dict(reversed(kinds.items())), 1)
            for variant in found:
                prefix = "" if variant is found[0] else f"{variant.label}: "
                before = len(emulator.imds_requests())
                timings = run_playbook(workdir / f"hosts-{hosts}-{found.index(variant)}",
                                       PLAYBOOK.format(name=NAME, tmp=workdir / "tmp", tasks=tasks),
                                       inventory=local_inventory(names), cfg=f"forks = {FORKS}\n",
                                       collections=variant.collections)
                requests = len([r for r in emulator.imds_requests()[before:] if r["path"] == "/metadata/instance"])
                if requests != hosts * 2:  # two facts tasks per host (the load balancer requests come on top)
                    raise RuntimeError(f"{hosts} hosts made {requests} instance requests, not {hosts * 2}")
                ping = task_seconds(timings, "ping ", skip_first=False)
                facts = task_seconds(timings, "facts ", skip_first=False)
                value = ratio(sum(facts), sum(ping))
                goal = GOAL if hosts == max(sizes) and not prefix else None
                metrics[f"{prefix}ratio_{hosts}_hosts"] = metric(
                    value, "ratio", goal, note="two facts tasks / two ping tasks, ping-facts-facts-ping")
                metrics[f"{prefix}ping_task_{hosts}_hosts"] = metric(median(ping), "s", spread=ping)
                metrics[f"{prefix}facts_task_{hosts}_hosts"] = metric(median(facts), "s", spread=facts)
                metrics[f"{prefix}facts_per_host_{hosts}_hosts"] = metric(median(facts) / hosts * 1000, "ms",
                                                                          note="task time / hosts")
                growth.append({"variant": variant.label, "hosts": hosts, "ping_s": median(ping),
                               "facts_s": median(facts), "ratio": value})
    return {"params": {"sizes": list(sizes), "forks": FORKS, "order": "ping facts facts ping", "latency_s": 0.003,
                       "rate_limiter": "one TMPDIR per host, as on separate VMs",
                       "variants": [v.label for v in found]},
            "growth": growth, "metrics": metrics}
