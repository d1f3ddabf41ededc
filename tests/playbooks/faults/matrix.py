"""Run many fault scenarios in one ansible-playbook run and report each one on its own.

A scenario is one misbehaving IMDS (an emulator with fault switches, or a port where
nothing listens), the module options to meet it with, and what the user must see: the
right facts, or a failure whose message names the cause, within a time bound.

Every scenario gets its own inventory host (all ``ansible_connection=local``) and its
own emulator, so that one ansible-playbook run with several forks plays them all; the
``fault_timer`` callback (callback_plugins/) times each host separately, from the moment
its worker starts to the moment its result arrives. ansible-playbook starts once
instead of once per scenario, which is most of the cost of a run.
"""
from __future__ import annotations

import json
import os
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import PlaybookResult, run_playbook

CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
PROFILES = REPO / "tools" / "imds_emulator" / "profiles"

PLAYBOOK = """
- name: Fault matrix, one scenario per host
  hosts: all
  gather_facts: false
  strategy: host_pinned
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ scenarios[inventory_hostname].endpoint }}"
        timeout: "{{ scenarios[inventory_hostname].timeout | default(omit) }}"
        retry_timeout: "{{ scenarios[inventory_hostname].retry_timeout | default(omit) }}"
        api_version: "{{ scenarios[inventory_hostname].api_version | default(omit) }}"
        include_user_data: "{{ scenarios[inventory_hostname].include_user_data | default(omit) }}"
        load_balancer: "{{ scenarios[inventory_hostname].load_balancer | default(omit) }}"
      environment: "{{ scenarios[inventory_hostname].env | default({}) | combine({'FAULT_HOST': inventory_hostname}) }}"
      ignore_errors: true
"""

# The module's interpreter: the test's Python, timed. It appends "host start end" (wall
# clock, ns) to $FAULT_MODULE_TIMES, so that each module process has its own time apart
# from what Ansible spends around it (forking a worker, templating, building AnsiballZ).
TIMED_PYTHON = """#!/bin/sh
start=$(date +%s%N)
"{python}" "$@"
rc=$?
end=$(date +%s%N)
printf '%s %s %s\\n' "$FAULT_HOST" "$start" "$end" >>"$FAULT_MODULE_TIMES"
exit $rc
"""


def profile_document(name: str = "linux") -> dict:
    """The instance document an emulator serves for a profile (emulator-only keys removed)."""
    document = json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))
    return {key: value for key, value in document.items() if not key.startswith("_")}


_HELD: list[socket.socket] = []  # bound, never listening: kept for the test process's life


def closed_port() -> int:
    """A loopback port where nothing listens: bound and kept, never listening, so that a connection is
    refused and no emulator started later can be given the same port (a released one could be)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return sock.getsockname()[1]


class Trap:
    """A TCP listener that records every connection and every byte sent to it.

    It stands for a proxy from the environment or the target of a redirect: anything
    that reaches it is a request that must never have been made. It answers 502 so a
    client that did come would not wait.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.contacts: list[dict] = []
        trap = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = self.request.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass
                trap.contacts.append({"time": time.monotonic(), "client": self.client_address[0],
                                      "data": data.decode("latin-1")})

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, 0), Handler)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SlowHeaders:
    """A server that answers every request with a status line and then one header byte a second.

    The emulator's ``dribble`` slows the body; this slows what comes before it, which a
    per-read timeout never ends. It logs requests as the emulator does (time, method,
    path, lower-cased headers).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []
        self._stop = threading.Event()
        slow = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                received = time.monotonic()
                request_line = self.rfile.readline(8192).decode("latin-1").split()
                headers = {}
                for line in iter(lambda: self.rfile.readline(8192), b""):
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _colon, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                target = request_line[1] if len(request_line) > 1 else ""
                slow.requests.append({"time": received, "method": request_line[0] if request_line else "",
                                      "path": target.split("?")[0], "headers": headers, "status": 200})
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 3600:
                    if slow._stop.wait(1.0):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Stage:
    """What one scenario runs against; handed to the scenario's callables."""

    emulator: Any = None  # imds_emulator.Emulator or SlowHeaders, None for a closed port
    trap: Trap | None = None
    endpoint: str = ""

    @property
    def requests(self) -> list[dict]:
        """The IMDS requests the emulator saw (control requests left out)."""
        if self.emulator is None:
            return []
        return [r for r in self.emulator.requests if not r["path"].startswith("/_emulator")]


@dataclass(frozen=True)
class Scenario:
    """One row of the fault matrix.

    ``faults`` are emulator fault switches (or a callable of the Stage, for switches that
    need the trap's URL); ``options`` are module options besides the endpoint; ``env``
    is the task environment (``{trap}`` in a value becomes the trap's URL). A scenario
    with ``hosts`` > 1 plays that many hosts against one emulator at once. ``ok`` says
    whether facts are expected; ``words`` must all appear in the failure message (or,
    for ``ok`` scenarios, in the warnings). ``check`` makes further assertions on the
    Outcome (the emulator's log, the trap).
    """

    name: str
    expected: str
    bound: float
    ok: bool
    faults: Mapping[str, Any] | Callable[[Stage], Mapping[str, Any]] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    hosts: int = 1
    profile: str = "linux"
    endpoint: str = "emulator"  # or "closed" (a port where nothing listens) or "slow_headers" (SlowHeaders)
    trap: bool = False
    vm_id: str | None = None  # the vmId the facts must show; None: the profile's
    check: Callable[[Outcome], None] | None = None

    def __str__(self) -> str:
        return self.name


@dataclass
class HostResult:
    """One host's task: ``seconds`` from worker start to result, and when its module process ran."""

    host: str
    status: str
    seconds: float
    start: float
    end: float
    result: dict
    module_start: float | None = None  # wall clock (time.time()), from the timed interpreter
    module_end: float | None = None

    @property
    def module_seconds(self) -> float | None:
        if self.module_start is None or self.module_end is None:
            return None
        return self.module_end - self.module_start

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    @property
    def facts(self) -> dict:
        """The facts as a play reads them: ansible_facts['azure_...']."""
        facts = self.result.get("ansible_facts") or {}
        return {name[len("ansible_"):] if name.startswith("ansible_") else name: value
                for name, value in facts.items()}

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in self.result.get("warnings") or []]


@dataclass
class Outcome:
    scenario: Scenario
    stage: Stage
    hosts: list[HostResult]
    run: PlaybookResult
    wall_offset: float = 0.0  # time.time() - time.monotonic() while the play ran

    @property
    def seconds(self) -> float:
        """The task time of the slowest host of the scenario."""
        return max(h.seconds for h in self.hosts)

    @property
    def module_seconds(self) -> float:
        """The module process time of the slowest host of the scenario."""
        return max(h.module_seconds or 0.0 for h in self.hosts)

    @property
    def client_seconds(self) -> float | None:
        """From the first request IMDS saw to the end of the last module process.

        This is the client's own time (retries, back-off, deadlines), without the start-up
        of Ansible and Python around it; None when no request reached the emulator.
        """
        if not self.requests or any(h.module_end is None for h in self.hosts):
            return None
        first = self.requests[0]["time"] + self.wall_offset
        return max(h.module_end for h in self.hosts) - first

    @property
    def requests(self) -> list[dict]:
        return self.stage.requests

    def observed(self) -> str:
        """What the user saw, in one line for the table."""
        first = self.hosts[0]
        if first.status == "ok" and all(h.status == "ok" for h in self.hosts):
            facts = first.facts
            text = f"facts, vm_id {facts.get('azure_vm_id')}, api-version {facts.get('azure_api_version')}"
            if len(self.hosts) > 1:
                text = f"{len(self.hosts)} hosts: " + text
            if first.warnings:
                text += f"; warning: {first.warnings[0]}"
            return text
        failed = [h for h in self.hosts if h.status != "ok"]
        return f"{failed[0].status}: {failed[0].msg}"


def emulator_class():
    """The emulator, with time-based faults counted from the first request rather than from start.

    ``status_for_seconds`` counts from the moment the faults are set; a play reaches
    IMDS only after ansible-playbook has started and forked its workers (seconds on a
    busy runner), so "410 for the first 5 s" must start with the first request.
    """
    from imds_emulator import Emulator  # tools/imds_emulator, on sys.path via tests/conftest.py

    class FirstRequestClock(Emulator):
        def _plan(self, now):
            with self._lock:
                if self._counters.count == 0:
                    self._counters.set_at = now
            return super()._plan(now)

    return FirstRequestClock


def run_matrix(scenarios: list[Scenario], tmp_path: Path, forks: int = 8,
               extra_env: Mapping[str, str] | None = None, windows: bool = False,
               hostvars_for: Callable[[Scenario, Stage], Mapping[str, Any]] | None = None) -> dict[str, Outcome]:
    """Start every scenario's stage, play them all in one ansible-playbook run, stop the stages.

    ``windows``: every host is a Windows host played by the stand-in connection
    (tests/playbooks/windows), so the action plugin runs the client here and each
    attempt goes through win_uri; a host's client time then ends when its result
    arrives (there is no module process to time). ``hostvars_for`` adds variables.
    """
    stages: dict[str, Stage] = {}
    hostvars: dict[str, dict] = {}
    hostnames: dict[str, list[str]] = {}
    try:
        for number, scenario in enumerate(scenarios):
            stage = Stage()
            stages[scenario.name] = stage
            if scenario.trap:
                stage.trap = Trap("127.0.0.2")
            if scenario.endpoint == "closed":
                stage.endpoint = f"http://127.0.0.1:{closed_port()}"
            elif scenario.endpoint == "slow_headers":
                stage.emulator = SlowHeaders()
                stage.endpoint = stage.emulator.url
            else:
                faults = scenario.faults(stage) if callable(scenario.faults) else scenario.faults
                stage.emulator = emulator_class()(host="127.0.0.1", port=0, profile=scenario.profile,
                                                  faults=faults).start()
                stage.endpoint = stage.emulator.url
            trap_url = stage.trap.url if stage.trap else ""
            variables: dict[str, Any] = {"endpoint": stage.endpoint, **scenario.options,
                                         **(hostvars_for(scenario, stage) if hostvars_for else {})}
            if scenario.env:
                variables["env"] = {k: v.replace("{trap}", trap_url) for k, v in scenario.env.items()}
            names = [f"s{number:02d}_{index}" for index in range(scenario.hosts)]
            hostnames[scenario.name] = names
            for name in names:
                hostvars[name] = variables
        from ansible_collections.imds.azure.tests.playbooks.windows import CFG, INVENTORY_VARS, STANDIN_LOG

        connection = INVENTORY_VARS if windows else "ansible_connection=local"
        inventory = "".join(f"{name} {connection}\n" for name in hostvars)
        timer = tmp_path / "times.jsonl"
        module_times = tmp_path / "module-times.txt"
        python = tmp_path / "timed-python"
        python.write_text(TIMED_PYTHON.format(python=sys.executable), encoding="utf-8")
        os.chmod(python, 0o755)
        cfg = (f"forks = {forks}\ncallback_plugins = {CALLBACKS}\ncallbacks_enabled = fault_timer\n"
               "internal_poll_interval = 0.001\n" + (CFG if windows else ""))
        wall_offset = time.time() - time.monotonic()
        env = {"FAULT_TIMER_FILE": str(timer), "FAULT_MODULE_TIMES": str(module_times),
               "ANSIBLE_PYTHON_INTERPRETER": str(python), STANDIN_LOG: str(tmp_path / "standin.jsonl"),
               **(extra_env or {})}
        run = run_playbook(PLAYBOOK, tmp_path, extra_vars={"scenarios": hostvars}, inventory=inventory,
                           cfg=cfg, timeout=600, env=env)
        lines = [json.loads(line) for line in timer.read_text(encoding="utf-8").splitlines()] if timer.exists() else []
        by_host = {line["host"]: HostResult(line["host"], line["status"], line["seconds"], line["start"],
                                            line["end"], line["result"])
                   for line in lines if line["task"] == "Gather"}
        if windows:  # the client ran in the worker: its time ends with the host's result
            for result in by_host.values():
                result.module_start = result.start + wall_offset
                result.module_end = result.end + wall_offset
        elif module_times.exists():
            for line in module_times.read_text(encoding="utf-8").splitlines():
                host, start, end = line.split()
                if host in by_host:
                    by_host[host].module_start = int(start) / 1e9
                    by_host[host].module_end = int(end) / 1e9
        outcomes = {}
        for scenario in scenarios:
            missing = [name for name in hostnames[scenario.name] if name not in by_host]
            assert not missing, f"no result for {missing}:\n{run.output}"
            outcomes[scenario.name] = Outcome(scenario, stages[scenario.name],
                                              [by_host[name] for name in hostnames[scenario.name]], run, wall_offset)
        return outcomes
    finally:
        for stage in stages.values():
            if stage.emulator is not None:
                stage.emulator.stop()
            if stage.trap is not None:
                stage.trap.stop()


def markdown_table(rows: list[dict]) -> str:
    """The matrix as a Markdown table: scenario, expected, observed, seconds (module, task), bound."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def bound(value: object) -> str:
        return f"{value:g}" if isinstance(value, (int, float)) else cell(value)

    lines = ["| scenario | expected | observed | seconds | bound | task | requests | result |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {cell(row['scenario'])} | {cell(row['expected'])} | {cell(row['observed'])} | "
                     f"{seconds(row['seconds'])} | {bound(row['bound'])} | {seconds(row['task'])} | {row['requests']} | "
                     f"{row['result']} |")
    return "\n".join(lines) + "\n"
