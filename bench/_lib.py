# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every benchmark needs: the machine, an emulator process, ansible-playbook with
per-task timings, medians and a result record.

Nothing here talks to anything but 127.0.0.1 (or runs inside a network namespace that
the benchmark creates).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
EMULATOR = REPO / "tools" / "imds_emulator"
CALLBACKS = BENCH / "callback_plugins"
LATENCY = 0.003  # seconds the emulator waits before every answer: a realistic IMDS round trip
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY")
# Left out of the environment of what the benchmarks run, as on a managed host: containers and CI
# often set it, and it turns off the modules' kept bytecode (plugins/module_utils/_bytecode.py).
HOST_UNSET = PROXY_VARS + ("PYTHONDONTWRITEBYTECODE",)

sys.path.insert(0, str(REPO))
try:  # a tree laid out as ansible_collections/imds/azure (ansible-test), or the link on sys.path
    from ansible_collections.imds.azure.tests.utils.paths import collections_path
except ImportError:  # a plain checkout: REPO is on sys.path; then the link makes the rest importable
    from tests.utils.paths import collections_path  # noqa: E402  pylint: disable=wrong-import-position

    sys.path.insert(0, str(collections_path()))


# -- the machine ----------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ansible_core_version() -> str:
    try:
        from ansible.release import __version__  # pylint: disable=import-outside-toplevel
    except ImportError:  # not the project's .venv: ask the ansible command next to this Python
        out = subprocess.run([str(bin_path("ansible")), "--version"], capture_output=True, text=True,
                             check=False).stdout
        first = out.splitlines()[0] if out else ""
        return first.split("core", 1)[1].strip(" ]") if "core" in first else first or "unknown"
    return __version__


def machine() -> dict[str, Any]:
    """nproc, CPU model, load, Python and ansible-core versions: printed with every result."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": usable,
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible_core": _ansible_core_version(),
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def bin_path(name: str) -> Path:
    """A console script of the Python running the benchmarks (the project's .venv)."""
    return Path(sys.executable).parent / name


# -- statistics -----------------------------------------------------------------------

def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def metric(value: float | int, unit: str, goal: float | None = None, spread: Iterable[float] = (),
           note: str = "", exact: bool = False) -> dict[str, Any]:
    """One figure. ``goal`` is an upper bound, or with ``exact`` the value every sample must have."""
    values = sorted(spread)
    out: dict[str, Any] = {"value": value, "unit": unit}
    if values:
        out["min"], out["max"], out["n"] = values[0], values[-1], len(values)
    if goal is not None:
        out["goal"] = f"== {goal:g}" if exact else f"<= {goal:g}"
        out["met"] = all(v == goal for v in values or [value]) if exact else value <= goal
    if note:
        out["note"] = note
    return out


# -- the emulator ---------------------------------------------------------------------

class EmulatorProcess:
    """tools/imds_emulator as a separate process on 127.0.0.1, self-stopping."""

    def __init__(self, workdir: Path, name: str = "emulator", latency: float = LATENCY,
                 faults: Mapping[str, Any] | None = None, profile: str = "linux", lifetime: float = 3600) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "requests.jsonl"
        port_file = self.dir / "port"
        cmd = [sys.executable, str(EMULATOR), "--bind", "127.0.0.1", "--port", "0", "--profile", profile,
               "--latency", str(latency), "--log", str(self.log), "--port-file", str(port_file),
               "--lifetime", str(lifetime)]
        if faults:
            cmd += ["--faults", json.dumps(dict(faults))]
        with open(self.dir / "stdout.txt", "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start: {(self.dir / 'stdout.txt').read_text()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def imds_requests(self) -> list[dict[str, Any]]:
        """Every IMDS request logged so far (control requests are not logged)."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [entry for entry in map(json.loads, filter(None, lines)) if entry["path"].startswith("/metadata/")]

    def control(self, method: str, path: str) -> Any:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(urllib.request.Request(f"{self.url}{path}", method=method), timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


# -- ansible-playbook -----------------------------------------------------------------

# -- what is measured: this checkout, and a baseline built from a git ref -----------------

BASELINES: list[str] = []  # set by run.py --baseline REF (repeatable)


class Variant(NamedTuple):
    """A copy of the collection to measure: ``label`` and its ``collections`` path."""

    label: str
    collections: Path


def collection_at(ref: str, workdir: Path) -> Path:
    """A collections path holding the collection as it is at git ``ref`` (git archive, no work tree)."""
    base = workdir / f"baseline-{ref.replace('/', '_')}"
    target = base / "ansible_collections" / "imds" / "azure"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], capture_output=True,
                                 check=True).stdout
        archive_path = base / "collection.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(target, filter="data")
        archive_path.unlink()
    return base


def variants(workdir: Path) -> list[Variant]:
    """This checkout, then (with run.py --baseline REF) the collection at each REF: measured alternately."""
    return [Variant("this checkout", collections_path())] + [
        Variant(f"baseline {ref}", collection_at(ref, workdir)) for ref in BASELINES]


# -- CPU of a process tree --------------------------------------------------------------

def run_measured(cmd: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 600) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; return the process, its wall seconds and the user + system CPU seconds of its
    whole process tree (every descendant that was waited for, as rusage counts them)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(cwd) if cwd else None, env=dict(env) if env is not None else None,
                          capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


# -- a network namespace with IMDS's own address ------------------------------------------

@contextlib.contextmanager
def imds_namespace(workdir: Path, profile: str = "linux", latency: float = LATENCY,
                   lifetime: float = 900) -> Iterator[tuple[tuple[str, ...], Path]]:
    """A network namespace of our own whose loopback holds 169.254.169.254, with the emulator
    listening there on port 80; yields the command prefix that runs a program inside it and
    the emulator's request log (JSON lines).

    Nothing in the namespace can reach any other network. The emulator stops by itself after
    ``lifetime`` seconds; the namespace and everything in it are removed on exit. Needs root
    and iproute2 (raises RuntimeError otherwise).
    """
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise RuntimeError("needs root and iproute2 (ip) to create a network namespace")
    name = f"imdsbench{os.getpid()}"
    ip = ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)
    server = None
    try:
        subprocess.run([*ip, "ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)
        subprocess.run([*ip, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True,
                       capture_output=True, timeout=10)
        folder = workdir / f"{name}-emulator"
        folder.mkdir(parents=True, exist_ok=True)
        port_file = folder / "port"
        with open(folder / "stdout.txt", "wb") as out:
            server = subprocess.Popen(  # pylint: disable=consider-using-with
                [*ip, sys.executable, str(EMULATOR), "--bind", "169.254.169.254", "--port", "80", "--profile", profile,
                 "--latency", str(latency), "--port-file", str(port_file), "--log", str(folder / "requests.jsonl"),
                 "--lifetime", str(lifetime)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start in the namespace: {(folder / 'stdout.txt').read_text()}")
            time.sleep(0.02)
        yield tuple(ip), folder / "requests.jsonl"
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10, check=False)


def ansible_env(run_dir: Path, extra: Mapping[str, str] | None = None, collections: Path | None = None) -> dict[str, str]:
    """A clean environment: no proxies, no ANSIBLE_* from the caller, this checkout (or
    ``collections``) as imds.azure."""
    env = {k: v for k, v in os.environ.items() if k not in HOST_UNSET and not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({
        "ANSIBLE_CONFIG": str(run_dir / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections or collections_path()),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
        "BENCH_TIMER_OUT": str(run_dir / "timings.json"),
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp-local"),
        "ANSIBLE_REMOTE_TEMP": str(run_dir / "tmp-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    })
    env.update(extra or {})
    return env


def _prepare(run_dir: Path, inventory: str, cfg: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "inventory.ini").write_text(inventory, encoding="utf-8")
    (run_dir / "ansible.cfg").write_text(
        f"[defaults]\ninventory = {run_dir / 'inventory.ini'}\nhost_key_checking = False\n{cfg}", encoding="utf-8")


def _checked(proc: subprocess.CompletedProcess, run_dir: Path, what: str) -> None:
    (run_dir / "output.txt").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"{what} failed ({proc.returncode}) in {run_dir}:\n{tail}")


def run_playbook(run_dir: Path, playbook: str, *, inventory: str = "localhost ansible_connection=local\n",
                 cfg: str = "", env: Mapping[str, str] | None = None, prefix: tuple[str, ...] = (),
                 timeout: float = 600, collections: Path | None = None) -> dict[str, Any]:
    """Run ansible-playbook (optionally under ``prefix``, e.g. unshare -n); return the timings.

    The result holds ``wall_seconds`` and ``cpu_seconds`` (the whole command and every process
    it started) and ``tasks``: for every task its play, name, action and ``seconds`` from the
    moment the task started to its last host result.
    """
    _prepare(run_dir, inventory, cfg)
    (run_dir / "playbook.yml").write_text(playbook, encoding="utf-8")
    cmd = [*prefix, str(bin_path("ansible-playbook")), str(run_dir / "playbook.yml")]
    proc, wall, cpu = run_measured(cmd, env=ansible_env(run_dir, env, collections), cwd=run_dir, timeout=timeout)
    _checked(proc, run_dir, "ansible-playbook")
    timings = json.loads((run_dir / "timings.json").read_text(encoding="utf-8"))
    return {"wall_seconds": wall, "cpu_seconds": cpu, **timings}


def run_adhoc(run_dir: Path, module: str, args: str = "", *, expect: str = "", prefix: tuple[str, ...] = (),
              collections: Path | None = None, timeout: float = 300) -> tuple[float, float]:
    """``ansible localhost -m MODULE -a ARGS`` (local connection); its wall and whole-tree CPU seconds."""
    _prepare(run_dir, "localhost ansible_connection=local\n", "")
    cmd = [*prefix, str(bin_path("ansible")), "localhost", "-m", module, *(["-a", args] if args else [])]
    env = ansible_env(run_dir, None, collections)
    del env["ANSIBLE_CALLBACKS_ENABLED"]  # ad hoc commands load no callback plugin by default
    proc, wall, cpu = run_measured(cmd, env=env, cwd=run_dir, timeout=timeout)
    _checked(proc, run_dir, f"ansible -m {module}")
    if expect not in proc.stdout:
        raise RuntimeError(f"ansible -m {module} did not print {expect!r}: {proc.stdout[-2000:]}")
    return wall, cpu


def task_seconds(timings: Mapping[str, Any], prefix: str, skip_first: bool = True) -> list[float]:
    """The times of the tasks whose name starts with ``prefix`` (the first left out as warm-up:
    it pays for building the module's AnsiballZ payload once per ansible-playbook run)."""
    times = [t["seconds"] for t in timings["tasks"] if t["name"].startswith(prefix) and t["seconds"] is not None]
    return times[1:] if skip_first and len(times) > 1 else times


def interleaved_tasks(kinds: Mapping[str, str], pairs: int) -> str:
    """YAML for ``pairs`` rounds of tasks, one of each kind per round, named ``<kind> <round>``."""
    lines = []
    for index in range(pairs):
        for kind, body in kinds.items():
            lines.append(f"    - name: {kind} {index}\n" + "".join(f"      {line}\n" for line in body.splitlines()))
    return "".join(lines)


def local_inventory(names: Iterable[str], **variables: str) -> str:
    extra = "".join(f" {key}={value}" for key, value in variables.items())
    return "".join(f"{name} ansible_connection=local{extra}\n" for name in names)
