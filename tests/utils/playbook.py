"""Run real ansible-playbook against this checkout, as a user would.

Every run gets its own ansible.cfg, inventory and temp folders under the test's
tmp_path, a clean environment (no proxy variables unless a test sets them) and the
collections path that holds this checkout as imds.azure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .paths import REPO, collections_path

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")


@dataclass
class PlaybookResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    out_dir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def read_json(self, name: str) -> Any:
        """Read a file that the playbook wrote into out_dir (see the `out_dir` var)."""
        return json.loads((self.out_dir / name).read_text())

    def check(self) -> PlaybookResult:
        assert self.returncode == 0, f"ansible-playbook failed ({self.returncode}):\n{self.output}"
        return self


def ansible_command(name: str) -> str:
    """The path of an ansible command (ansible-playbook, ansible-doc...): the one installed
    beside this Python, else the one on PATH (where ansible-test puts its own)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: neither beside {sys.executable} nor on PATH")
    return found


def ansible_env(tmp_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and not k.startswith("ANSIBLE_")}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if extra:
        env.update(extra)
    return env


def run_playbook(
    playbook: str | Path,
    tmp_path: Path,
    *,
    extra_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cfg: str = "",
    inventory: str = "localhost ansible_connection=local\n",
    args: tuple[str, ...] = (),
    timeout: float = 300,
    command: str = "ansible-playbook",
) -> PlaybookResult:
    """Run a playbook (a path, or YAML text) and return what happened.

    `cfg` is appended to the generated ansible.cfg (write whole sections, e.g.
    "[defaults]\\nfacts_modules = ..."). The playbook gets `out_dir` as an extra var: a
    folder where it may write JSON for the test to read with PlaybookResult.read_json.
    """
    import time

    tmp_path.mkdir(parents=True, exist_ok=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    if isinstance(playbook, str) and "\n" in playbook:
        path = tmp_path / "playbook.yml"
        path.write_text(playbook)
    else:
        path = Path(playbook)
    inv = tmp_path / "inventory.ini"
    inv.write_text(inventory)
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\ninventory = {inv}\nhost_key_checking = False\n{cfg}")
    variables = {"out_dir": str(out_dir), **(extra_vars or {})}
    cmd = [ansible_command(command), str(path), "-e", json.dumps(variables), *args]
    # PWD as a shell sets it for the folder it runs in (subprocess leaves the parent's)
    full_env = ansible_env(tmp_path, {"ANSIBLE_CONFIG": str(config), "PWD": str(tmp_path), **(env or {})})
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, out_dir)


FACTS_PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
        OPTIONS
    - name: Save the facts
      ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out_dir }}/facts.json"
        mode: "0600"
      check_mode: false
      delegate_to: localhost  # the controller's out_dir, also for a host playing Windows
"""


def facts_playbook(options: str = "", tasks: str = "") -> str:
    """A play on every host: imds.azure.metadata_facts from ``{{ endpoint }}``, its facts saved to
    ``facts.json`` in out_dir (read them with PlaybookResult.read_json), then ``tasks``.

    ``options`` are more module options, YAML lines (indent continuation lines by 8 spaces);
    ``tasks`` more tasks, YAML at the tasks' indentation.
    """
    return FACTS_PLAY.replace("OPTIONS", options) + tasks


__all__ = ["REPO", "PlaybookResult", "ansible_command", "ansible_env", "facts_playbook", "run_playbook"]
