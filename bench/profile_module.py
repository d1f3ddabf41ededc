# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Item 7: where one run of imds.azure.metadata_facts spends its time, on the managed host.

ansible-playbook runs one ping and one metadata_facts task with ANSIBLE_KEEP_REMOTE_FILES=1,
which leaves the two AnsiballZ payloads exactly as Ansible sends them (with ``run.py
--baseline REF``, also the metadata_facts payload of the collection at REF). Then,
alternating: ``python -c pass`` (interpreter start), each payload as Ansible runs it, and
the module from its exploded payload under _profile_driver.py, which times import,
detection, HTTP and normalization, tells the collection's own files from the standard
library they import (-X importtime), and how long compiling the collection's files takes.
Figures are medians over fresh processes.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _lib import BENCH, HOST_UNSET, EmulatorProcess, median, metric, ratio, run_playbook, variants

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
    env = {k: v for k, v in os.environ.items() if k not in HOST_UNSET}
    proc = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or expect not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu, proc.stderr


def marked_imports(stderr: str, marker: str) -> dict[str, Any]:
    """From -X importtime output: the top-level imports between the driver's ``marker`` lines
    (seconds and names), and the self time of the collection's files and of the others."""
    seconds, names, inside = 0.0, [], False
    ours = others = 0.0
    for line in stderr.splitlines():
        if line.startswith(f"BENCH {marker}"):
            inside = line.endswith("start")
        elif inside and line.startswith("import time:") and "|" in line:
            fields = line.split("|")
            name = fields[2][1:]
            if not fields[1].strip().isdigit():
                continue
            own = int(fields[0].split(":")[1]) / 1e6
            if name.strip().startswith("ansible_collections"):
                ours += own
            else:
                others += own
            if not name.startswith(" "):
                seconds += int(fields[1]) / 1e6
                names.append(name)
    return {"seconds": seconds, "names": names, "ours": ours, "others": others}


def keep_payloads(workdir: Path, emulator: EmulatorProcess, variant: Any, index: int) -> tuple[Path, Path, Path]:
    """The ping and metadata_facts payloads of ``variant`` as Ansible sent them, and the exploded facts one."""
    remote = workdir / f"remote-{index}"
    run_playbook(workdir / f"keep-{index}", PLAYBOOK.format(endpoint=emulator.url), collections=variant.collections,
                 env={"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TEMP": str(remote)})
    ping = next(remote.glob("*/AnsiballZ_ping.py"))
    facts = next(remote.glob("*/AnsiballZ_metadata_facts.py"))
    subprocess.run([sys.executable, str(facts), "explode"], capture_output=True, check=True)
    payload = facts.parent / "debug_dir"
    for cache in payload.rglob("__pycache__"):
        shutil.rmtree(cache)
    return ping, facts, payload


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    rounds = 1 if smoke else 15
    found = variants(workdir)
    dmi = workdir / "chassis_asset_tag"
    dmi.write_text(AZURE_ASSET_TAG + "\n", encoding="ascii")
    with EmulatorProcess(workdir) as emulator:
        kept = {variant.label: keep_payloads(workdir, emulator, variant, index) for index, variant in enumerate(found)}
        ping = kept[found[0].label][0]
        commands = {"python -c pass": ([sys.executable, "-c", "pass"], ""),
                    "AnsiballZ_ping.py": ([sys.executable, str(ping)], '"ping": "pong"')}
        for variant in found:
            commands[facts_name(variant.label)] = ([sys.executable, str(kept[variant.label][1])], DETECTED)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        phases: dict[str, dict[str, list[float]]] = {variant.label: {} for variant in found}
        lazy: dict[str, list[str]] = {}
        for _round in range(rounds):
            for name, (cmd, expect) in commands.items():
                seconds, cpu, _stderr = wall(cmd, workdir, expect)
                walls[name].append(seconds)
                cpus[name].append(cpu)
            for variant in found:
                payload = kept[variant.label][2]
                driver = [sys.executable, "-B", "-X", "importtime", str(BENCH / "_profile_driver.py"), str(payload),
                          str(payload / "args"), str(workdir / "phases.json"), str(dmi)]
                stderr = wall(driver, workdir, DETECTED)[2]
                found_phases = json.loads((workdir / "phases.json").read_text(encoding="utf-8"))
                request = marked_imports(stderr, "request")
                imports = marked_imports(stderr, "imports")
                found_phases["imports made by the request"] = request["seconds"]
                found_phases["request"] -= request["seconds"]
                found_phases["imports: the collection's files (compile and run)"] = imports["ours"]
                found_phases["imports: what they import beyond basic"] = imports["others"]
                lazy[variant.label] = request["names"]
                for key, value in found_phases.items():
                    phases[variant.label].setdefault(key, []).append(value)
    metrics = {}
    for name in commands:
        metrics[f"wall {name}"] = metric(median(walls[name]) * 1000, "ms", spread=[v * 1000 for v in walls[name]])
        metrics[f"cpu {name}"] = metric(median(cpus[name]) * 1000, "ms", spread=[v * 1000 for v in cpus[name]],
                                        note="user + system CPU of the process; steadier than wall on a busy machine")
    for variant in found:
        prefix = "" if variant is found[0] else f"{variant.label}: "
        for kind, data in (("wall", walls), ("cpu", cpus)):
            facts_s, ping_s = median(data[facts_name(variant.label)]), median(data["AnsiballZ_ping.py"])
            metrics[f"{prefix}{kind} payload ratio facts/ping"] = metric(
                ratio(facts_s, ping_s), "ratio", note="on the host only: no controller, no connection")
            metrics[f"{prefix}{kind} payload extra facts-ping"] = metric((facts_s - ping_s) * 1000, "ms")
        found_phases = phases[variant.label]
        found_phases["request, its imports excluded"] = found_phases.pop("request")
        for key, values in found_phases.items():
            metrics[f"{prefix}phase {key}"] = metric(median(values) * 1000, "ms", spread=[v * 1000 for v in values])
    return {"params": {"rounds": rounds, "latency_s": 0.003, "variants": [v.label for v in found],
                       "imports made by the request": lazy,
                       "payload_kib": {"ping": ping.stat().st_size // 1024,
                                       **{v.label: kept[v.label][1].stat().st_size // 1024 for v in found}}},
            "metrics": metrics}


def facts_name(label: str) -> str:
    return "AnsiballZ_metadata_facts.py" if label == "this checkout" else f"AnsiballZ_metadata_facts.py ({label})"
