"""One ansible-playbook run, one host per case, each host timed on its own.

The suites beside the fault matrix (odd options, scheduled-events documents, a local
attacker) play many cases in one run as the matrix does: every case is an inventory host
(``ansible_connection=local``) whose variables are ``cases[inventory_hostname]``, and the
``fault_timer`` callback records each host's task (status, seconds, result).

``netns_imds``: the run happens inside a network namespace made for it (``unshare -n``:
only a loopback interface), where the emulator answers on the real IMDS address
``169.254.169.254:80`` and logs every request. Plays with the default endpoint, and
every other spelling of that address, run there and nowhere else.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import PlaybookResult, ansible_env, run_playbook

from .matrix import CALLBACKS

NETNS_REASON = "needs root, unshare and ip to create a network namespace"


def gather_play(options: Iterable[str], *, environment: bool = False) -> str:
    """A play of imds.azure.metadata_facts, one case per host: each option from ``cases[host]`` when it is set."""
    lines = "".join(f'        {name}: "{{{{ case.{name} | default(omit) }}}}"\n' for name in options)
    # one request per gather: these suites are about the first one (the matrix has rows of its own for the second)
    lines += '        load_balancer: "{{ case.load_balancer | default(false) }}"\n' if "load_balancer" not in options else ""
    env = '      environment: "{{ case.env | default({}) }}"\n' if environment else ""
    return ("- name: One case per host\n  hosts: all\n  gather_facts: false\n  strategy: host_pinned\n  tasks:\n"
            f"    - name: Gather\n      imds.azure.metadata_facts:\n{lines}{env}"
            '      vars:\n        case: "{{ cases[inventory_hostname] }}"\n      ignore_errors: true\n')


@dataclass
class HostOutcome:
    """One case's host: its task's status, seconds and result, and the requests its emulator saw."""

    status: str
    seconds: float
    result: dict
    requests: list[dict]
    output: str = field(repr=False, default="")


def play_with_emulators(play: str, cases: Sequence[Any], tmp_path: Path,
                        start: Callable[[Any], tuple[Any, Mapping[str, Any]]]) -> list[HostOutcome]:
    """Start an emulator per case (``start(case)`` gives it and the host's variables), play once, stop them."""
    emulators, hostvars = [], {}
    try:
        for number, case in enumerate(cases):
            emu, variables = start(case)
            emulators.append(emu)
            hostvars[f"h{number:03d}"] = variables
        run, lines, _log = play_hosts(play, hostvars, tmp_path)
        return [HostOutcome(lines[name]["status"], lines[name]["seconds"], lines[name]["result"], emu.requests,
                            run.output) for name, emu in zip(hostvars, emulators)]
    finally:
        for emu in emulators:
            emu.stop()


def can_make_netns() -> bool:
    return (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare") is not None
            and shutil.which("ip") is not None)


def play_hosts(play: str, hostvars: Mapping[str, Mapping[str, Any]], tmp_path: Path, *, forks: int = 8,
               env: Mapping[str, str] | None = None, timeout: float = 900,
               netns_imds: Mapping[str, Any] | None = None) -> tuple[PlaybookResult, dict[str, dict], list[dict]]:
    """Play ``play`` once for every host of ``hostvars``; (the run, {host: timer line}, IMDS log in the namespace).

    ``netns_imds`` (emulator options: ``profile``, ``faults``) runs the play in a new network
    namespace with that emulator on 169.254.169.254:80; its request log is the third item.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    timer = tmp_path / "times.jsonl"
    cfg = f"forks = {forks}\ncallback_plugins = {CALLBACKS}\ncallbacks_enabled = fault_timer\n"
    inventory = "".join(f"{name} ansible_connection=local\n" for name in hostvars)
    env = {"FAULT_TIMER_FILE": str(timer), **(env or {})}
    if netns_imds is None:
        run = run_playbook(play, tmp_path, extra_vars={"cases": dict(hostvars)}, cfg=cfg, inventory=inventory,
                           env=env, timeout=timeout)
        log: list[dict] = []
    else:
        run, log = _in_namespace(play, hostvars, tmp_path, cfg, inventory, env, timeout, netns_imds)
    lines = {}
    if timer.exists():
        for line in map(json.loads, timer.read_text(encoding="utf-8").splitlines()):
            lines[line["host"]] = line
    missing = [name for name in hostvars if name not in lines]
    assert not missing, f"no result for {missing}:\n{run.output[-5000:]}"
    return run, lines, log


def _in_namespace(play: str, hostvars: Mapping[str, Any], tmp_path: Path, cfg: str, inventory: str,
                  env: Mapping[str, str], timeout: float, imds: Mapping[str, Any]) -> tuple[PlaybookResult, list[dict]]:
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    (tmp_path / "playbook.yml").write_text(play, encoding="utf-8")
    (tmp_path / "inventory.ini").write_text(inventory, encoding="utf-8")
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\ninventory = {tmp_path / 'inventory.ini'}\nhost_key_checking = False\n{cfg}",
                      encoding="utf-8")
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"out_dir": str(out_dir), "cases": dict(hostvars)}), encoding="utf-8")
    full_env = ansible_env(tmp_path, {"ANSIBLE_CONFIG": str(config), **env})
    log, port = tmp_path / "imds.jsonl", tmp_path / "imds.port"
    emulator = [sys.executable, str(REPO / "tools" / "imds_emulator"), "--bind", "169.254.169.254", "--port", "80",
                "--profile", imds.get("profile", "linux"), "--log", str(log), "--port-file", str(port),
                "--lifetime", str(int(timeout) + 60)]
    if imds.get("faults"):
        emulator += ["--faults", json.dumps(imds["faults"])]
    playbook = [str(Path(sys.executable).parent / "ansible-playbook"), str(tmp_path / "playbook.yml"),
                "-e", f"@{variables}"]
    script = f"""
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
{shlex.join(emulator)} >{tmp_path / 'imds.out'} 2>&1 &
for _ in $(seq 200); do [ -s {port} ] && break; sleep 0.05; done
status=0
{shlex.join(playbook)} || status=$?
kill %1 2>/dev/null || true
wait
exit $status
"""
    started = time.monotonic()
    proc = subprocess.run(["unshare", "-n", "bash", "-euo", "pipefail", "-c", script], cwd=str(tmp_path),
                          env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
    run = PlaybookResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, out_dir)
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return run, entries
