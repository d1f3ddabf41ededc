# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module_utils' compiled code kept on the host between module runs (_bytecode).

Each case runs a fresh interpreter that imports the collection's module_utils from a zip,
as an AnsiballZ payload does, with the temporary folder (and so the private folder) in
the test's own directory.
"""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _bytecode, _ratelimit

PACKAGE = "ansible_collections/imds/azure/plugins/module_utils"
PROBE = "from __future__ import annotations\n\n\ndef value():\n    return {answer!r}\n\n\ndef fail():\n    raise ValueError('probe')\n"
RUN = """
import sys
sys.path.insert(0, sys.argv[1])
meta_path = list(sys.meta_path)
from ansible_collections.imds.azure.plugins.module_utils._bytecode import kept_code
with kept_code(True):
    from ansible_collections.imds.azure.plugins.module_utils import _probe
assert sys.meta_path == meta_path, "the finder stays installed"
print(_probe.value())
if len(sys.argv) > 2:
    _probe.fail()
"""


def payload(where: Path, answer: str) -> Path:
    """A zip laid out as AnsiballZ lays out the collection's module_utils, with a probe module."""
    path = where / "payload.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        parts = PACKAGE.split("/")
        for depth in range(1, len(parts) + 1):
            zf.writestr("/".join(parts[:depth]) + "/__init__.py", "")
        for module in (_bytecode, _ratelimit):
            zf.write(str(module.__file__), f"{PACKAGE}/{Path(str(module.__file__)).name}")
        zf.writestr(f"{PACKAGE}/_probe.py", PROBE.format(answer=answer))
    return path


def run(tmp_path: Path, zip_path: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(TMPDIR=str(tmp_path / "tmp"), **env)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", RUN, str(zip_path), *extra], capture_output=True, text=True,
                          env=environ, check=False, timeout=60)


def kept(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "tmp" / f"imds-azure-{os.geteuid()}"
    return sorted(folder.glob(f"{_bytecode.PREFIX}*")) if folder.is_dir() else []


@pytest.fixture
def first(tmp_path: Path) -> Path:
    """A payload whose probe answers "source", run once: its files are kept."""
    zip_path = payload(tmp_path, "source")
    proc = run(tmp_path, zip_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "source"
    return zip_path


def test_kept_once_then_used(tmp_path: Path, first: Path) -> None:
    entries = kept(tmp_path)
    # the probe alone: _bytecode comes before install(), _ratelimit (the private folder) is imported as usual
    assert len(entries) == 1
    assert entries[0].stat().st_mode & 0o777 == 0o600
    # the kept code runs, not the source: replace the probe's entry with other code
    entries[0].write_bytes(marshal.dumps(compile("def value():\n    return 'kept'\n", "x", "exec")))
    assert run(tmp_path, first).stdout.strip() == "kept"


def test_changed_source_is_compiled_again(tmp_path: Path, first: Path) -> None:
    before = set(kept(tmp_path))
    proc = run(tmp_path, payload(tmp_path, "changed"))
    assert proc.stdout.strip() == "changed"
    assert len(set(kept(tmp_path)) - before) == 1


@pytest.mark.parametrize("spoil", ["mode", "garbage", "symlink", "fifo"])
def test_an_entry_not_ours_alone_or_damaged_is_not_used(tmp_path: Path, first: Path, spoil: str) -> None:
    for entry in kept(tmp_path):
        planted = marshal.dumps(compile("def value():\n    return 'planted'\n", "x", "exec"))
        if spoil == "mode":
            entry.write_bytes(planted)
            entry.chmod(0o644)
        elif spoil == "garbage":
            entry.write_bytes(b"\x00not code")
        elif spoil == "fifo":  # opening a FIFO to read waits for a writer: it must not
            entry.unlink()
            os.mkfifo(entry, 0o600)
        else:
            other = tmp_path / f"other-{entry.name}"
            other.write_bytes(planted)
            other.chmod(0o600)
            entry.unlink()
            entry.symlink_to(other)
    proc = run(tmp_path, first)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "source"


def test_tracebacks_name_this_runs_file(tmp_path: Path, first: Path) -> None:
    moved = tmp_path / "elsewhere.zip"
    first.rename(moved)
    proc = run(tmp_path, moved, "fail")
    assert proc.stdout.strip() == "source"
    assert f"{moved}/{PACKAGE}/_probe.py" in proc.stderr
    assert str(first) not in proc.stderr


def test_nothing_is_kept_without_bytecode_writing(tmp_path: Path) -> None:
    proc = run(tmp_path, payload(tmp_path, "source"), PYTHONDONTWRITEBYTECODE="1")
    assert proc.stdout.strip() == "source"
    assert not kept(tmp_path)


def test_files_not_from_a_zip_are_left_to_python(tmp_path: Path) -> None:
    zip_path = payload(tmp_path, "source")
    tree = tmp_path / "tree"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tree)
    proc = run(tmp_path, tree)
    assert proc.stdout.strip() == "source"
    assert not kept(tmp_path)


def test_a_private_folder_open_to_others_keeps_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "tmp" / f"imds-azure-{os.geteuid()}"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    proc = run(tmp_path, payload(tmp_path, "source"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "source"
    assert not list(folder.iterdir())
