"""ansible-pull, the way cloud-init configures a VM: the VM pulls a git repository and runs
local.yml against itself with the local connection.

The repository (a local git repo the test creates) holds a playbook that gathers the
Azure facts and reads IMDS through the lookup's live source, which is right here because
the host is the controller. The endpoint comes in as the extra var imds_azure_endpoint,
which the lookup reads and the play passes on to the module through module_defaults.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

LOCAL_YML = """\
- name: Configure this VM from its own metadata
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_azure_endpoint }}"
  tasks:
    - name: Gather the Azure facts
      imds.azure.metadata_facts:

    - name: Write what the facts and the live lookup say
      ansible.builtin.copy:
        content: >-
          {{ {'facts_vm_id': ansible_facts['azure_vm_id'],
              'facts_tags': ansible_facts['azure_tags'],
              'live_vm_id': lookup('imds.azure.metadata', 'compute/vmId', source='live'),
              'live_name_and_location': query('imds.azure.metadata', 'compute/name', 'compute/location', source='live'),
              'live_mac_text': lookup('imds.azure.metadata', 'network/interface/0/macAddress', source='live', format='text'),
              'auto_vm_size': lookup('imds.azure.metadata', 'compute/vmSize')} | to_json }}
        dest: "{{ out_dir }}/pulled.json"
        mode: "0600"
"""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=imds test", "-c", "user.email=imds@example.invalid",
                           "-c", "init.defaultBranch=main", *args],
                          cwd=str(cwd), capture_output=True, text=True, check=True).stdout


def pull(repo: Path, checkout: Path, tmp_path: Path, extra_vars: dict, *more: str) -> subprocess.CompletedProcess:
    env = ansible_env(tmp_path)
    cmd = [str(Path(sys.executable).parent / "ansible-pull"), "-U", str(repo), "-d", str(checkout),
           "-i", "localhost,", "-e", json.dumps(extra_vars), *more]
    return subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180, check=False)


def test_ansible_pull_uses_facts_and_live_lookup(emulator, tmp_path):
    emu = emulator(profile="linux")
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "local.yml").write_text(LOCAL_YML)
    git("add", "local.yml", cwd=repo)
    git("commit", "-q", "-m", "site", cwd=repo)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    extra = {"imds_azure_endpoint": emu.url, "out_dir": str(out_dir)}

    proc = pull(repo, tmp_path / "checkout", tmp_path, extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "checkout" / "local.yml").read_text() == LOCAL_YML
    compute = emu.document["compute"]
    answer = json.loads((out_dir / "pulled.json").read_text())
    assert answer == {
        "facts_vm_id": compute["vmId"],
        "facts_tags": {tag["name"]: tag["value"] for tag in compute["tagsList"]},
        "live_vm_id": compute["vmId"],
        "live_name_and_location": [compute["name"], compute["location"]],
        "live_mac_text": emu.document["network"]["interface"][0]["macAddress"],
        "auto_vm_size": compute["vmSize"],
    }
    imds = [r for r in emu.requests if r["path"].startswith("/metadata/")]
    # the module's two requests, and one live document that answers every later lookup of the run
    assert [r["path"] for r in imds] == ["/metadata/instance", "/metadata/loadbalancer", "/metadata/instance"]
    assert all(r["headers"].get("metadata") == "true" for r in imds)

    # The cron form: --only-if-changed with nothing new in the repository runs nothing.
    emu.clear_log()
    again = pull(repo, tmp_path / "checkout", tmp_path, extra, "--only-if-changed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Repository has not changed, quitting" in again.stdout
    assert emu.requests == []
