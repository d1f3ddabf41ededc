# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 7: where one run of imds.azure.metadata_facts spends its time, on the managed host.

ansible-playbook runs one ping and one metadata_facts task with ANSIBLE_KEEP_REMOTE_FILES=1,
which leaves the two AnsiballZ payloads exactly as Ansible sends them. Then, alternating:
``python -c pass`` (interpreter start), each payload as Ansible runs it, and the module from
its exploded payload under _profile_driver.py, which times import, detection, HTTP and
normalization. Figures are medians over fresh processes.
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _lib import BENCH, EmulatorProcess, median, metric, ratio, run_playbook

NAME = "profile_module"
TITLE = "one metadata_facts run on the host: import, detection, HTTP, normalization"
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
DETECTED = '"ansible_azure_detected": true'

PLAYBOOK = """- name: keep the payloads
  hosts: localhost
  gather_facts: false
  tasks:
    - name: ping
      ansible.builtin.ping:
    - name: facts
      imds.azure.metadata_facts:
        endpoint: {endpoint}
"""


def wall(cmd: list[str], cwd: Path, expect: str = "") -> tuple[float, float, str]:
    """Wall and CPU (user + system) seconds of the command, and its stderr; its output must contain ``expect``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or expect not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu, proc.stderr


def request_imports(stderr: str) -> tuple[float, list[str]]:
    """Seconds and names of the top-level imports between the driver's request markers."""
    seconds, names, inside = 0.0, [], False
    for line in stderr.splitlines():
        if line.startswith("BENCH request"):
            inside = line.endswith("start")
        elif inside and line.startswith("import time:") and "|" in line:
            fields = line.split("|")
            name = fields[2][1:]
            if fields[1].strip().isdigit() and not name.startswith(" "):
                seconds += int(fields[1]) / 1e6
                names.append(name)
    return seconds, names


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    rounds = 1 if smoke else 15
    with EmulatorProcess(workdir) as emulator:
        remote = workdir / "remote"
        run_playbook(workdir / "keep", PLAYBOOK.format(endpoint=emulator.url),
                     env={"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TEMP": str(remote)})
        ping = next(remote.glob("*/AnsiballZ_ping.py"))
        facts = next(remote.glob("*/AnsiballZ_metadata_facts.py"))
        subprocess.run([sys.executable, str(facts), "explode"], capture_output=True, check=True)
        payload = facts.parent / "debug_dir"
        for cache in payload.rglob("__pycache__"):
            shutil.rmtree(cache)
        dmi = workdir / "chassis_asset_tag"
        dmi.write_text(AZURE_ASSET_TAG + "\n", encoding="ascii")
        driver = [sys.executable, "-B", "-X", "importtime", str(BENCH / "_profile_driver.py"), str(payload),
                  str(payload / "args"), str(workdir / "phases.json"), str(dmi)]
        commands = {"python -c pass": ([sys.executable, "-c", "pass"], ""),
                    "AnsiballZ_ping.py": ([sys.executable, str(ping)], '"ping": "pong"'),
                    "AnsiballZ_metadata_facts.py": ([sys.executable, str(facts)], DETECTED)}
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        phases: dict[str, list[float]] = {}
        lazy: list[str] = []
        for _round in range(rounds):
            for name, (cmd, expect) in commands.items():
                seconds, cpu, _stderr = wall(cmd, workdir, expect)
                walls[name].append(seconds)
                cpus[name].append(cpu)
            stderr = wall(driver, workdir, DETECTED)[2]
            found = json.loads((workdir / "phases.json").read_text(encoding="utf-8"))
            found["imports made by the request"], lazy = request_imports(stderr)
            found["request"] -= found["imports made by the request"]
            for key, value in found.items():
                phases.setdefault(key, []).append(value)
    metrics = {}
    for name in commands:
        metrics[f"wall {name}"] = metric(median(walls[name]) * 1000, "ms", spread=[v * 1000 for v in walls[name]])
        metrics[f"cpu {name}"] = metric(median(cpus[name]) * 1000, "ms", spread=[v * 1000 for v in cpus[name]],
                                        note="user + system CPU of the process; steadier than wall on a busy machine")
    for kind, data in (("wall", walls), ("cpu", cpus)):
        facts_s, ping_s = median(data["AnsiballZ_metadata_facts.py"]), median(data["AnsiballZ_ping.py"])
        metrics[f"{kind} payload ratio facts/ping"] = metric(ratio(facts_s, ping_s), "ratio",
                                                             note="on the host only: no controller, no connection")
        metrics[f"{kind} payload extra facts-ping"] = metric((facts_s - ping_s) * 1000, "ms")
    phases["request, its imports excluded"] = phases.pop("request")
    for key, values in phases.items():
        metrics[f"phase {key}"] = metric(median(values) * 1000, "ms", spread=[v * 1000 for v in values])
    return {"params": {"rounds": rounds, "latency_s": 0.003, "imports made by the request": lazy,
                       "payload_kib": {"ping": ping.stat().st_size // 1024, "facts": facts.stat().st_size // 1024}},
            "metrics": metrics}
