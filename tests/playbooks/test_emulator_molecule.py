"""The molecule scenario of the emulator page runs as a user copies it: ``molecule test``.

The scenario files are read from docs/docsite/rst/emulator.rst, so the page cannot drift
from what works. The role under test asks the emulator through ``imds_azure_endpoint``
explicitly (``endpoint:``), so this test never depends on how the collection's default
endpoint is chosen.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

PAGE = REPO / "docs" / "docsite" / "rst" / "emulator.rst"
FILES = ("molecule.yml", "create.yml", "converge.yml", "verify.yml", "destroy.yml")
MOLECULE = Path(sys.executable).parent / "molecule"

ROLE_TASKS = """---
- name: Gather Azure facts
  imds.azure.metadata_facts:
    endpoint: "{{ imds_azure_endpoint }}"
- name: Write the VM name where verify can check it
  ansible.builtin.copy:
    content: "{{ ansible_facts['azure_name'] }}\\n"
    dest: "{{ lookup('ansible.builtin.env', 'MOLECULE_EPHEMERAL_DIRECTORY') }}/vm-name"
    mode: "0600"
"""


def scenario_files() -> dict[str, str]:
    """The YAML blocks of the page's molecule section, by file name."""
    section = PAGE.read_text(encoding="utf-8").split("A molecule scenario to copy", 1)[1]
    files = {}
    for name in FILES:
        block = section.split(f"``{name}``:", 1)[1].split(".. code-block:: yaml\n\n", 1)[1]
        lines = []
        for line in block.splitlines():
            if line.strip() and not line.startswith("    "):
                break
            lines.append(line[4:])
        files[name] = "\n".join(lines).strip() + "\n"
    return files


@pytest.mark.slow
@pytest.mark.skipif(not MOLECULE.exists() and shutil.which("molecule") is None, reason="molecule is not installed")
def test_the_documented_scenario_passes_molecule_test(tmp_path):
    files = scenario_files()
    assert "managed: false" in files["molecule.yml"] and "imds.azure.emulator" in files["create.yml"]
    role = tmp_path / "roles" / "my_role"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "meta").mkdir()
    (role / "meta" / "main.yml").write_text(
        "---\ngalaxy_info:\n  role_name: my_role\n  namespace: example\n  author: tests\n  description: test\n"
        "  license: MIT\n  min_ansible_version: '2.17'\n  platforms:\n    - name: GenericLinux\n"
        "      versions: [all]\ndependencies: []\n")
    scenario = role / "molecule" / "default"
    scenario.mkdir(parents=True)
    for name, text in files.items():
        if name == "verify.yml":  # the same check, through the endpoint the inventory names
            text = text.replace("imds.azure.metadata_facts:\n",
                                "imds.azure.metadata_facts:\n            endpoint: \"{{ imds_azure_endpoint }}\"\n")
            assert "endpoint:" in text
        (scenario / name).write_text(text)
    env = ansible_env(tmp_path, {"ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "MOLECULE_NO_LOG": "false",
                                 "HOME": str(tmp_path), "NO_COLOR": "1", "PY_COLORS": "0"})
    command = str(MOLECULE) if MOLECULE.exists() else "molecule"
    done = subprocess.run([command, "test"], cwd=str(role), env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"[default > {step}] Executed: Successful" in output, (step, output[-3000:])
    assert "failed=0" in output and not (tmp_path / ".cache" / "imds-azure-emulator").exists()
