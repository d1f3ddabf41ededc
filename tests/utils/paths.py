"""Where the checkout is, and a collections path that contains it as imds.azure.

Ansible finds a collection only under ``<path>/ansible_collections/<namespace>/<name>``.
A checkout can live anywhere, so we keep a link to it in a cache folder outside the
tree (a link inside the tree would make tools that walk it loop). Run as a script, it
prints the collections path, for shell scripts.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMULATOR = REPO / "tools" / "imds_emulator"
"""The emulator, a folder runnable by path (``python3 EMULATOR ...``); its parent goes on sys.path."""
FIXTURES = REPO / "tests" / "fixtures"  # real-imds/ (documents others published), documents/ (ours)


def collections_path() -> Path:
    """Return a collections path whose imds/azure is this checkout, creating the link.

    A tree laid out for ansible-test (scripts/ansible-test) is one already.
    """
    if REPO.parts[-3:] == ("ansible_collections", "imds", "azure"):
        return REPO.parents[2]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    base = cache / "imds-azure" / digest
    link = base / "ansible_collections" / "imds" / "azure"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == REPO):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(REPO, target_is_directory=True)
    return base


if __name__ == "__main__":
    sys.stdout.write(f"{collections_path()}\n")
