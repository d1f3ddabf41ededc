"""The release as a user gets it: a tarball built by ansible-galaxy from a snapshot of the checkout.

The tarball is built from a snapshot (a build from the live tree races with edits: a file
changed between hashing and archiving fails the install's checksum). The snapshot holds
every file git does not ignore, plus junk where the tools that run here leave it (pytest,
hypothesis, ansible-test, molecule, the venv), under the names the real checkout has and
the names those tools use in sub-folders.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

BIN = Path(sys.executable).parent

# Folders and files a build must leave out, wherever they are in the tree.
JUNK_DIRS = (
    ".venv", ".git", ".cache", ".ansible", ".pytest_cache", ".hypothesis", ".mypy_cache",
    ".ruff_cache", ".tox", "__pycache__", "tests/output", "bench/results",
    "tests/unit/plugins/module_utils/__pycache__", "tests/integration/.hypothesis",
    "tests/.pytest_cache", "tests/unit/.pytest_cache", "tests/emulator/__pycache__", "tools/imds_emulator/__pycache__",
    "extensions/molecule/route/.cache", "extensions/molecule/route/.ansible", "roles/route/.ansible",
)
JUNK_FILES = (
    "plugins/modules/metadata_facts.pyc", "imds-azure-0.9.0.tar.gz", ".coverage",
)
JUNK_NAMES = {
    ".venv", ".git", ".cache", ".ansible", ".pytest_cache", ".hypothesis", ".mypy_cache",
    ".ruff_cache", ".tox", "__pycache__", ".coverage",
}


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
    return proc


def snapshot(dest: Path) -> Path:
    """Copy the checkout's files (tracked and untracked, not ignored) and plant junk."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=str(REPO),
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a file listed but deleted meanwhile by a colleague is skipped
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    ignored = subprocess.run(["git", "ls-files", "-o", "--ignored", "--exclude-standard", "--directory"],
                             cwd=str(REPO), capture_output=True, text=True, check=True).stdout.split()
    for name in [*JUNK_DIRS, *(n.rstrip("/") for n in ignored if n.endswith("/"))]:
        (dest / name).mkdir(parents=True, exist_ok=True)
        (dest / name / "junk.txt").write_text("left by a tool\n")
    for name in JUNK_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text("left by a tool\n")
    return dest


def galaxy_version() -> str:
    for line in (REPO / "galaxy.yml").read_text().splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise AssertionError("galaxy.yml has no version")


def build(work: Path) -> Path:
    """Build the collection's tarball from a snapshot of the checkout, in ``work``; return its path."""
    source = snapshot(work / "ansible_collections" / "imds" / "azure")
    env = ansible_env(work, {"ANSIBLE_COLLECTIONS_PATH": str(work / "empty")})
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(source), "--output-path", str(work / "dist")],
        env, work)
    tarballs = list((work / "dist").glob("*.tar.gz"))
    assert [t.name for t in tarballs] == [f"imds-azure-{galaxy_version()}.tar.gz"]
    return tarballs[0]


def install(tarball: Path, collections: Path, env: dict[str, str]) -> Path:
    """``ansible-galaxy collection install --offline -p COLLECTIONS TARBALL``; return the installed tree."""
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections), str(tarball)],
        env, tarball.parent)
    return collections / "ansible_collections" / "imds" / "azure"
