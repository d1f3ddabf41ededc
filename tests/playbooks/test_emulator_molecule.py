"""The molecule scenario of the emulator page, as a user runs it in CI: ``molecule test``.

As the page says: the collection's tarball (built here with ``ansible-galaxy collection
build``) is installed with ``ansible-galaxy collection install --offline`` into a clean
collections path, which ANSIBLE_COLLECTIONS_PATH names alone; a small role of the user's
gathers the facts and uses the lookup, with no endpoint setting of its own; the scenario's
files are the page's, copied as they are (the role ``imds.azure.emulator`` starts the
emulator in create.yml, prepare.yml sets a fault, destroy.yml stops it); ``molecule test``
runs with the default driver and ``prerun: false``, so nothing lands in ``~/.ansible``.
The emulator of the scenario listens on 127.0.0.1:8169, so runs of this test take turns.
"""
from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env
from ansible_collections.imds.azure.tests.utils.release import BIN, build, install, run

PAGE = REPO / "docs" / "docsite" / "rst" / "emulator.rst"
FILES = ("molecule.yml", "create.yml", "prepare.yml", "converge.yml", "verify.yml", "destroy.yml")
MOLECULE = BIN / "molecule"
PROFILE = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "standard-lb.json").read_text())

# The user's role: facts from the module, a value from the lookup, no endpoint anywhere.
ROLE_TASKS = """---
- name: Gather Azure facts
  imds.azure.metadata_facts:

- name: Write what this VM is
  ansible.builtin.copy:
    content: |
      name={{ ansible_facts['azure_name'] }}
      vm_id={{ lookup('imds.azure.metadata', 'compute/vmId') }}
      location={{ lookup('imds.azure.metadata', 'compute/location', source='live') }}
    dest: "{{ lookup('ansible.builtin.env', 'MY_ROLE_REPORT') }}"
    mode: "0600"
"""
ROLE_META = """---
galaxy_info:
  role_name: my_role
  namespace: example
  author: tests
  description: Writes what the Azure VM is
  license: MIT
  min_ansible_version: '2.17'
  platforms:
    - name: GenericLinux
      versions: [all]
dependencies: []
"""


def scenario_files() -> dict[str, str]:
    """The YAML blocks of the page's molecule section, by file name, as a user copies them."""
    section = PAGE.read_text(encoding="utf-8").split("A molecule scenario to copy\n", 1)[1].split("\nHow it is checked\n")[0]
    files = {}
    for name in FILES:
        # the paragraph that begins with the file's name, then its code block
        block = section.split(f"\n``{name}``", 1)[1].split(".. code-block:: yaml\n\n", 1)[1]
        lines = []
        for line in block.splitlines():
            if line.strip() and not line.startswith("    "):
                break
            lines.append(line[4:])
        files[name] = "\n".join(lines).strip() + "\n"
    return files


def test_the_page_gives_every_file_the_scenario_needs():
    files = scenario_files()
    assert "prerun: false" in files["molecule.yml"] and "managed: false" in files["molecule.yml"]
    assert "imds_azure_endpoint: http://127.0.0.1:8169" in files["molecule.yml"]
    assert "imds.azure.emulator" in files["create.yml"] and "imds_azure_emulator_state: stopped" in files["destroy.yml"]
    assert "endpoint" not in files["verify.yml"] + files["converge.yml"]  # the switch alone


@pytest.mark.slow
@pytest.mark.skipif(not MOLECULE.exists(), reason=f"molecule is not installed in {BIN}")
def test_the_documented_scenario_passes_molecule_test_from_the_tarball(tmp_path):
    tarball = build(tmp_path / "release")
    collections = tmp_path / "collections"
    home = tmp_path / "home"
    home.mkdir()
    env = ansible_env(tmp_path, {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                                 "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "HOME": str(home),
                                 "MY_ROLE_REPORT": str(tmp_path / "report.txt"), "MOLECULE_NO_LOG": "false",
                                 "NO_COLOR": "1", "PY_COLORS": "0"})
    installed = install(tarball, collections, env)
    listing = run([str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"], env, tmp_path)
    assert {path: found["imds.azure"] for path, found in json.loads(listing.stdout).items() if "imds.azure" in found} \
        == {str(collections / "ansible_collections"): {"version": json.loads(
            (installed / "MANIFEST.json").read_text())["collection_info"]["version"]}}

    role = tmp_path / "roles" / "my_role"
    for name, text in {"tasks/main.yml": ROLE_TASKS, "meta/main.yml": ROLE_META}.items():
        (role / name).parent.mkdir(parents=True, exist_ok=True)
        (role / name).write_text(text)
    scenario = role / "molecule" / "default"
    scenario.mkdir(parents=True)
    for name, text in scenario_files().items():
        (scenario / name).write_text(text)

    with open(Path(tempfile.gettempdir()) / "imds-azure-molecule-8169.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run([str(MOLECULE), "test"], cwd=str(role), env=env, capture_output=True, text=True,
                              timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for step in ("create", "prepare", "converge", "idempotence", "verify", "destroy"):
        assert f"[default > {step}] Executed: Successful" in output, (step, output[-3000:])
    compute = PROFILE["compute"]
    assert (tmp_path / "report.txt").read_text() == (
        f"name={compute['name']}\nvm_id={compute['vmId']}\nlocation={compute['location']}\n")
    assert "TASK [Make the emulator answer 503 to the next request]" in output
    # Nothing installed into ~/.ansible (molecule's prerun would; molecule makes these folders empty), nothing
    # left running; the collection that ran is the installed one.
    assert "Performing prerun" not in output
    assert [path for folder in ("collections", "roles") for path in (home / ".ansible" / folder).rglob("*")] == []
    assert not (home / ".cache" / "ansible-compat").exists()
    stopped = subprocess.run(["curl", "-s", "-m", "2", "http://127.0.0.1:8169/_emulator/fleet"], capture_output=True,
                             check=False) if shutil.which("curl") else None
    assert stopped is None or stopped.returncode != 0, "the emulator still answers after destroy"
    assert str(REPO) not in output
