"""The unmodified-playbook mode: ``python3 tools/imds_emulator --netns -- COMMAND``.

COMMAND runs in a network namespace of its own (``unshare --net``) whose loopback holds
169.254.169.254/32, where the emulator answers on port 80. A play with no endpoint
setting at all then runs as on Azure; nothing can leave the namespace, and it is gone
when COMMAND ends. Needs root, unshare and ip; skipped otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from ansible_collections.imds.azure.tests.utils.paths import EMULATOR
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="--netns needs root, unshare (util-linux) and ip (iproute2) to create a network namespace")

PLAY = """
- name: Gather Azure facts with no endpoint setting at all, as on Azure
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
    - name: Keep them for the test
      ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def netns(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EMULATOR), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


@pytest.mark.netns
@needs_root
def test_an_unmodified_play_gets_the_facts_from_169_254_169_254(tmp_path):
    play, out, log = tmp_path / "site.yml", tmp_path / "facts.json", tmp_path / "imds.jsonl"
    play.write_text(PLAY)
    env = ansible_env(tmp_path)
    assert not any(name.startswith("ANSIBLE_IMDS") or name == "IMDS_AZURE_ENDPOINT" for name in env)
    done = netns("--netns", "--profile", "standard-lb", "--log", str(log), "--",
                 "ansible-playbook", "-i", "localhost,", str(play), "-e", f"out={out}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    facts = json.loads(out.read_text())
    assert facts["azure_name"] == "web-lb-02"
    assert facts["azure_vm_id"] == "8e2d4c6a-1b3f-4e59-9a7c-3d5e1f7b9c24"
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert requests and all(r["headers"]["host"].startswith("169.254.169.254") for r in requests)
    assert "imds-emulator listening" not in done.stdout  # the command's output is the command's alone


@pytest.mark.netns
@needs_root
def test_the_command_sees_only_the_namespace_and_its_status_is_returned(tmp_path):
    script = ("import json, socket, urllib.request\n"
              "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
              "req = urllib.request.Request('http://169.254.169.254/metadata/instance/compute/name"
              "?api-version=2021-02-01&format=text', headers={'Metadata': 'true'})\n"
              "print(opener.open(req, timeout=5).read().decode())\n"
              "import subprocess\n"
              "print(subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True).stdout.count('\\n'))\n"
              "raise SystemExit(3)\n")
    done = netns("--netns", "--profile", "spot", "--", sys.executable, "-c", script)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == ["batch-spot-07", "1"]  # only loopback exists in there


@pytest.mark.netns
@needs_root
def test_it_is_bounded_by_its_timeout():
    started = time.monotonic()
    done = netns("--netns", "--netns-timeout", "1", "--", "sleep", "60", timeout=60)
    assert done.returncode == 124
    assert done.stderr.count("\n") == 1
    assert "did not finish within 1 seconds (--netns-timeout); stopped it" in done.stderr
    assert time.monotonic() - started < 20


@pytest.mark.netns
@needs_root
def test_a_command_that_cannot_run_is_one_line():
    done = netns("--netns", "--", "/nonexistent/command")
    assert done.returncode == 127
    assert done.stderr.startswith("imds-emulator: error: cannot run /nonexistent/command")


def test_without_root_it_says_so(monkeypatch, capsys):
    from imds_emulator import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as exited:
        main(["--netns", "--", "true"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == ("imds-emulator: error: --netns needs root (it creates a network namespace); "
                   "run it as root, e.g. with sudo\n")


def test_netns_needs_a_command(capsys):
    from imds_emulator import main

    with pytest.raises(SystemExit) as exited:
        main(["--netns"])
    assert exited.value.code == 2
    assert "--netns runs a command: put it after --" in capsys.readouterr().err
