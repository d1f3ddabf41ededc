"""scripts/bootstrap is safe to source, and scripts/demo points its play at the emulator with the switch.

``source scripts/bootstrap`` must leave the caller's shell options as they were (it once
left ``set -euo pipefail`` behind, so the next failing command closed the user's shell),
return a failed status instead of exiting when the set-up fails, and say what it installs
while it installs.
"""
from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.imds.azure.tests.utils.paths import REPO

BOOTSTRAP = REPO / "scripts" / "bootstrap"


def bash(script: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("IMDS_", "ANSIBLE_"))}
    full.update(env)
    return subprocess.run(["bash", "-c", script], cwd=str(REPO), env=full, capture_output=True, text=True,
                          timeout=600, check=False)


def test_sourcing_bootstrap_leaves_the_shell_options_alone():
    done = bash('set +euo pipefail; source scripts/bootstrap; echo "status=$?"; set -o | grep -E "errexit|nounset|pipefail";'
                ' false; echo "after a failing command: still here"; echo "$undefined_variable_is_fine";'
                ' command -v ansible-playbook; echo "ACP=$ANSIBLE_COLLECTIONS_PATH"')
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "status=0" in lines
    options = {line.split()[0]: line.split()[1] for line in lines if line.split()[:1] in (["errexit"], ["nounset"],
                                                                                          ["pipefail"])}
    assert options == {"errexit": "off", "nounset": "off", "pipefail": "off"}, done.stdout
    assert "after a failing command: still here" in lines
    assert str(REPO / ".venv" / "bin" / "ansible-playbook") in lines
    collections = next(line for line in lines if line.startswith("ACP="))[4:]
    assert (REPO / "galaxy.yml").samefile(f"{collections}/ansible_collections/imds/azure/galaxy.yml")
    assert not any(line.startswith("bootstrap:") for line in done.stderr.splitlines()), done.stderr  # all in place


def test_a_failed_setup_returns_instead_of_closing_the_shell(tmp_path):
    """A virtualenv that cannot be made: the step is named, source returns 1, the shell goes on."""
    done = bash('source scripts/bootstrap; echo "status=$?"; set -o | grep -c "errexit.*on" || true',
                IMDS_VENV=str(tmp_path / "venv"), IMDS_PYTHON="/bin/false")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "status=1"
    assert done.stdout.splitlines()[1] == "0"  # errexit still off
    assert f"bootstrap: creating the virtualenv {tmp_path / 'venv'}" in done.stderr
    assert "bootstrap: set-up failed (see above)" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_run_as_a_script_a_failed_setup_exits_1(tmp_path):
    done = subprocess.run([str(BOOTSTRAP)], env={**os.environ, "IMDS_VENV": str(tmp_path / "venv"),
                                                 "IMDS_PYTHON": "/bin/false"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "bootstrap: set-up failed" in done.stderr


def test_demo_gathers_from_the_emulator_through_the_switch():
    """The README's main command: the play has no endpoint of its own, the switch points it at the emulator."""
    done = subprocess.run([str(REPO / "scripts" / "demo"), "windows"], cwd=str(REPO), capture_output=True, text=True,
                          timeout=300, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("IMDS_", "ANSIBLE_"))})
    assert done.returncode == 0, done.stdout + done.stderr
    profile = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "windows.json").read_text())
    assert "-e imds_azure_endpoint=http://127.0.0.1:" in done.stdout
    assert f"vm: {profile['compute']['name']} ({profile['compute']['vmId']})" in done.stdout
    assert "detected: True (" in done.stdout
    assert "endpoint" not in (REPO / "playbooks" / "demo.yml").read_text().split("tasks:", 1)[1]
    answered = int(done.stdout.rsplit("IMDS requests the emulator answered: ", 1)[1].split()[0])
    assert answered == 2, done.stdout  # the instance document and the load balancer metadata
