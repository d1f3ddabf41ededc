"""Network namespaces of the tests' own: the one way the Python tests and benchmarks make them.

Two kinds, both bounded and gone when the run ends:

- ``run_unshared(script)``: a bash script in a new, anonymous namespace (``unshare -n``),
  where only a loopback interface exists (down until the script brings it up). The
  namespace dies with the script.
- ``named(prefix)``: a named namespace (``ip netns add``) for a test that starts several
  processes in it; ``exec()`` runs a command inside; it is deleted on leaving the block.

``serve_imds(...)`` writes the bash lines that put 169.254.169.254 on the namespace's
loopback and start the emulator there on port 80, the real IMDS address, which nothing
outside the namespace can see. Needs root, ``unshare`` and iproute2: ``why_not()`` says
what is missing (a reason to skip), ``skip_unless_possible()`` is that as a pytest mark.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

from .paths import EMULATOR

IMDS_ADDRESS = "169.254.169.254"
UNSHARE_NET = ("unshare", "--net", "--")  # a command prefix: run it in a new, empty namespace


def why_not(*, named: bool = False) -> str | None:
    """Why this machine cannot make network namespaces for tests, or None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        return f"network namespaces need {' and '.join(missing)} (util-linux, iproute2)"
    if named:
        probe = f"imdsprobe{uuid.uuid4().hex[:8]}"
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace here: {made.stderr.strip()}"
        subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=10, check=False)
    return None


def skip_unless_possible(*, named: bool = False) -> t.Any:
    """A pytest mark that skips the test, with the reason, where namespaces cannot be made."""
    import pytest

    reason = why_not(named=named)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def exports(env: t.Mapping[str, str], names: t.Iterable[str] = ()) -> str:
    """A bash ``export`` line for the ANSIBLE_* and PATH variables of ``env`` (and ``names``)."""
    wanted = set(names)
    pairs = [f"{key}={json.dumps(value)}" for key, value in env.items()
             if key.startswith(("ANSIBLE_", "PATH")) or key in wanted]
    return f"export {' '.join(pairs)}" if pairs else ""


def serve_imds(port_file: Path, *, profile: str = "linux", log: Path | None = None, lifetime: float = 120) -> str:
    """Bash lines: 169.254.169.254 on lo, the emulator on it at port 80 in the background, ready."""
    logging = f" --log {log}" if log is not None else ""
    return f"""
ip link set lo up
ip addr add {IMDS_ADDRESS}/32 dev lo
{sys.executable} {EMULATOR} --bind {IMDS_ADDRESS} --port 80 --profile {profile}{logging} \\
  --port-file {port_file} --lifetime {lifetime:g} >/dev/null 2>&1 &
for _ in $(seq 100); do [ -s {port_file} ] && break; sleep 0.05; done
"""


def run_unshared(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a bash script (errexit, pipefail) in a new network namespace; its output is captured."""
    return subprocess.run([*UNSHARE_NET[:-1], "bash", "-euo", "pipefail", "-c", script], capture_output=True,
                          text=True, timeout=timeout, check=False)


class Namespace:
    """A named network namespace (see ``named``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def command(self, *argv: str) -> list[str]:
        """The argv that runs ``argv`` inside the namespace (for Popen)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, *argv: str, timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*argv), capture_output=True, text=True, timeout=timeout, check=check)


@contextlib.contextmanager
def named(prefix: str, *, imds_on_loopback: bool = True) -> t.Iterator[Namespace]:
    """A new named namespace, loopback up (holding 169.254.169.254/32 unless told not to); deleted after."""
    namespace = Namespace(f"{prefix}{os.getpid()}{uuid.uuid4().hex[:4]}")
    subprocess.run(["ip", "netns", "add", namespace.name], capture_output=True, timeout=10, check=True)
    try:
        namespace.exec("ip", "link", "set", "lo", "up", timeout=10)
        if imds_on_loopback:
            namespace.exec("ip", "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo", timeout=10)
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "delete", namespace.name], capture_output=True, timeout=10, check=False)
