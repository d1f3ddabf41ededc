"""The imds.azure.route role: its molecule scenario in network namespaces, and a syntax check.

The scenario (extensions/molecule/route) rebuilds Microsoft's failover-cluster example on
Linux: a "vm" namespace whose 169.254.0.0/16 belongs to a cluster adapter, and an "az"
namespace with the IMDS emulator on 169.254.169.254:80. It proves that the facts module
times out (naming the role) before converge, answers after it, that converge is
idempotent, and that state=absent brings the timeout back. See docs/docsite/rst/route.rst.
"""
from __future__ import annotations

import fcntl
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils import netns
from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

NAMESPACES = ("imdsr-vm", "imdsr-az")
BIN = Path(sys.executable).parent


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _why_not_netns() -> str | None:
    """A reason to skip, or None when this machine can run the scenario."""
    if not (BIN / "molecule").exists():
        return f"molecule is not installed in {BIN}"
    reason = netns.why_not(named=True)
    return f"the route scenario: {reason}" if reason else None


@pytest.mark.netns
@pytest.mark.slow
def test_molecule_route_scenario(tmp_path):
    reason = _why_not_netns()
    if reason:
        pytest.skip(reason)
    env = ansible_env(tmp_path, {"NO_COLOR": "1", "PY_COLORS": "0", "MOLECULE_NO_COLOR": "1", "COLUMNS": "200"})
    # The scenario's namespace names are fixed; two runs at once would tear down each
    # other's namespaces, so runs on one machine take turns.
    with open(Path(tempfile.gettempdir()) / "imds-azure-molecule-route.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        start = time.monotonic()
        proc = subprocess.run([str(BIN / "molecule"), "test", "-s", "route"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        seconds = time.monotonic() - start
        left = [ns for ns in _namespaces() if ns in NAMESPACES]
    output = proc.stdout + proc.stderr
    (tmp_path / "molecule.log").write_text(output)
    assert proc.returncode == 0, f"molecule test -s route failed after {seconds:.0f} s:\n{output[-20000:]}"
    for action in ("syntax", "create", "prepare", "converge", "idempotence", "verify", "destroy"):
        assert re.search(rf"route\W+{action}: Executed: Successful", output), f"{action} did not run:\n{output[-5000:]}"
    # The scenario asserts these itself; here we make sure they ran: the timeout that names
    # the role before converge and after state=absent, and the facts after converge.
    assert output.count("TASK [The request timed out and the message names the role]") == 2, output[-5000:]
    assert "TASK [They are the emulator's linux profile]" in output
    assert left == [], f"destroy left namespaces behind: {left}"
    # prerun: false: nothing was installed into ~/.ansible, the checkout served the play.
    assert "Performing prerun" not in output


def test_role_tasks_pass_syntax_check(tmp_path):
    """Both platforms' task files parse (the Windows ones cannot run here: no Windows host)."""
    try:
        from ansible_collections.ansible.windows.plugins.modules import win_route  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        pytest.skip("ansible.windows.win_route needs ansible.windows 2.7.0 or newer (the ansible package 11+); "
                    "this environment has an older one, as documented in README.md")
    playbook = tmp_path / "syntax.yml"
    playbook.write_text("""
- name: Windows tasks
  hosts: windows
  gather_facts: false
  tasks:
    - name: The route on Windows
      ansible.builtin.import_role:
        name: imds.azure.route
        tasks_from: windows.yml

- name: Linux tasks
  hosts: linux
  gather_facts: false
  tasks:
    - name: The route on Linux
      ansible.builtin.import_role:
        name: imds.azure.route
        tasks_from: linux.yml
""")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[windows]\nwin ansible_connection=psrp\n[linux]\nlin ansible_connection=local\n")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(inventory), str(playbook)],
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "playbook: " in proc.stdout
