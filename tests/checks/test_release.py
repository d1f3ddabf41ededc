"""The release as a user gets it: ansible-galaxy build, an offline install, the demo from it.

The tarball is built from a snapshot of the checkout with junk planted in it
(tests/utils/release.py); none of the junk may reach the tarball.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ansible_collections.imds.azure.tests.utils.paths import REPO, collections_path
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env
from ansible_collections.imds.azure.tests.utils.release import BIN, JUNK_NAMES, build, galaxy_version, install, run


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Build the tarball once for this file: (tarball, member names, clean environment)."""
    work = tmp_path_factory.mktemp("release")
    tarball = build(work)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    return tarball, names, work


def test_tarball_holds_the_collection_and_no_junk(release):
    names = set(release[1])
    for needed in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
                   "meta/execution-environment.yml", "plugins/modules/metadata_facts.py",
                   "plugins/module_utils/_client.py", "playbooks/demo.yml", "docs/docsite/rst/facts.rst",
                   "tests/emulator/imds_emulator.py", "changelogs/config.yaml", "tools/imds_emulator/__main__.py",
                   "tools/imds_emulator/_cli.py", "tools/imds_emulator/profiles/linux.json"):
        assert needed in names, f"{needed} is missing from the tarball"
    junk = sorted(n for n in names
                  if JUNK_NAMES & set(Path(n).parts)
                  or n.endswith((".pyc", ".pyo", ".tar.gz"))
                  or n.startswith(("tests/output", "bench/results")))
    assert junk == [], f"the tarball carries junk: {junk}"
    assert not any(n.startswith("/") or ".." in Path(n).parts for n in names)


def test_manifest_names_the_collection(release):
    with tarfile.open(release[0]) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("imds", "azure", galaxy_version())
    assert info["license"] == ["GPL-3.0-or-later"]
    assert info["dependencies"] == {}


def test_offline_install_and_demo_from_the_installed_collection(release, emulator, tmp_path):
    tarball = release[0]
    fresh = tmp_path / "collections"
    env = ansible_env(tmp_path, {"ANSIBLE_COLLECTIONS_PATH": str(fresh),
                                 "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"})
    installed = install(tarball, fresh, env)
    assert (installed / "MANIFEST.json").is_file()
    assert not installed.is_symlink()
    listing = run([str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"], env, tmp_path)
    found = {path: found for path, found in json.loads(listing.stdout).items() if "imds.azure" in found}
    assert found == {str(fresh / "ansible_collections"): {"imds.azure": {"version": galaxy_version()}}}
    verified = run([str(BIN / "ansible-galaxy"), "collection", "verify", "--offline", "imds.azure"], env, tmp_path)
    assert "Successfully verified that checksums for 'imds.azure:" in verified.stdout

    emu = emulator(profile="windows")
    # The demo playbook, addressed by its FQCN: ansible-playbook finds it in the installed collection.
    demo = run([str(BIN / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local", "imds.azure.demo",
                "-e", json.dumps({"imds_azure_endpoint": emu.url})], env, tmp_path)
    vm = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "windows.json").read_text())["compute"]
    assert f"vm: {vm['name']} ({vm['vmId']})" in demo.stdout
    assert "detected: True" in demo.stdout
    assert "failed=0" in demo.stdout
    assert [r["path"] for r in emu.requests if r["path"].startswith("/metadata/")] == ["/metadata/instance", "/metadata/loadbalancer"]
    # The module that ran came from the installed copy, not from this checkout.
    assert f"Using module file {installed}/plugins/modules/metadata_facts.py" in demo.stdout
    assert str(REPO / "plugins") not in demo.stdout
    assert str(collections_path()) not in demo.stdout


def test_execution_environment_metadata_declares_nothing_to_install():
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta == {"version": 1, "dependencies": {}}


def test_ansible_builder_introspect_finds_no_requirements(release, tmp_path):
    """ansible-builder reads meta/execution-environment.yml of the installed collection.

    A decoy requirements.txt and bindep.txt beside it would be picked up if the metadata
    file were missing or unreadable; a second collection that declares requirements shows
    that introspect reads this collections folder at all.
    """
    builder = shutil.which("ansible-builder", path=str(BIN)) or shutil.which("ansible-builder")
    if builder is None:
        pytest.skip("ansible-builder is not installed (scripts/bootstrap installs it from tests/requirements.txt)")
    tarball = release[0]
    folder = tmp_path / "ee"
    env = ansible_env(tmp_path, {"ANSIBLE_COLLECTIONS_PATH": str(folder)})
    ours = install(tarball, folder, env)
    (ours / "requirements.txt").write_text("decoy-python-package\n")
    (ours / "bindep.txt").write_text("decoy-system-package [platform:dpkg]\n")
    other = folder / "ansible_collections" / "other" / "needy"
    (other / "meta").mkdir(parents=True)
    (other / "galaxy.yml").write_text("namespace: other\nname: needy\nversion: 1.0.0\n")
    (other / "meta" / "execution-environment.yml").write_text(
        "version: 1\ndependencies:\n  python: requirements.txt\n  system: bindep.txt\n")
    (other / "requirements.txt").write_text("needed-python-package>=1\n")
    (other / "bindep.txt").write_text("needed-system-package [platform:dpkg]\n")
    proc = run([builder, "introspect", str(folder)], env, tmp_path)
    found = yaml.safe_load(proc.stdout.split("---", 1)[1])
    assert found == {
        "python": ["needed-python-package>=1  # from collection other.needy"],
        "system": ["needed-system-package [platform:dpkg]  # from collection other.needy"],
    }


def start_and_ask(command: list[str], env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """Start the emulator with ``command`` (plus a port file and a lifetime), ask it for the VM's name, stop it."""
    port_file = cwd / "port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen([*command, "--port-file", str(port_file), "--lifetime", "30"], env=env, cwd=str(cwd),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port_file.read_text().strip()}/metadata/instance/compute/name"
            "?api-version=2021-02-01&format=text", headers={"Metadata": "true"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as answer:
            assert answer.read().decode() == "web-linux-01"
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out, err


def documented_command() -> list[str]:
    """The one command of the emulator page, as a user copies it (``python3 <collection>/tools/...``)."""
    page = (REPO / "docs" / "docsite" / "rst" / "emulator.rst").read_text(encoding="utf-8")
    section = page.split("The one command\n---------------", 1)[1]
    line = next(line.strip() for line in section.splitlines() if "<collection>/tools/imds_emulator" in line)
    return line.removeprefix("$ ").split()


def test_the_emulator_starts_from_the_installed_collection(release, tmp_path):
    """The one documented command, from the tree ansible-galaxy installed; and the old path's shim."""
    tarball = release[0]
    fresh = tmp_path / "collections"
    env = ansible_env(tmp_path, {"ANSIBLE_COLLECTIONS_PATH": str(fresh)})
    installed = install(tarball, fresh, env)
    tool = installed / "tools" / "imds_emulator"
    listed = run([sys.executable, str(tool), "--list-profiles"], env, tmp_path)
    assert "linux" in listed.stdout.split() and "standard-lb" in listed.stdout.split()
    command = documented_command()
    assert command[:2] == ["python3", "<collection>/tools/imds_emulator"] and "--port" in command, command
    command[command.index("--port") + 1] = "0"  # the page's 8169 may be taken here: any free port
    out, _err = start_and_ask([sys.executable, str(tool), *command[2:]], env, tmp_path)
    assert out.startswith("imds-emulator listening on http://127.0.0.1:")

    # The old path, for one release: it still starts the emulator, and says where it went.
    out, err = start_and_ask([sys.executable, str(installed / "tests" / "emulator" / "imds_emulator.py"),
                              "--port", "0", "--profile", "linux"], env, tmp_path)
    assert out.startswith("imds-emulator listening on http://127.0.0.1:")
    assert ("imds-emulator: note: tests/emulator/imds_emulator.py moved to tools/imds_emulator "
            "(python3 tools/imds_emulator ...); this shim goes in the next release") in err
