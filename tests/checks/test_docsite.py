"""The files and folders of this repository that the docsite pages name exist.

Pages name test files, scripts and folders in inline literals (``tests/...``). When one
moves, the page must follow (the architecture page too: it describes the layout).
"""
from __future__ import annotations

import re

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO

RST = REPO / "docs" / "docsite" / "rst"
ROOTS = (".ci/", "bench/", "docs/", "extensions/", "plugins/", "roles/", "scripts/", "tests/", "tools/")
GENERATED = ("tests/output/", "bench/results/")  # written by test and benchmark runs
PAGES = sorted(page.name for page in RST.glob("*.rst"))


def named_paths(text: str) -> set[str]:
    """The repository paths in the page's inline literals and commands (arguments and placeholders left out)."""
    found = set()
    for literal in re.findall(r"``([^`]+)``", text) + re.findall(r"^\s+\$ (.+)$", text, re.M):
        for word in literal.split():
            word = word.rstrip(".,;:)")
            if word.startswith(ROOTS) and not re.search(r"[<>{}*]", word) and not word.startswith(GENERATED):
                found.add(word)
    return found


def test_pages_name_paths():
    assert sum(len(named_paths((RST / page).read_text(encoding="utf-8"))) for page in PAGES) > 20


@pytest.mark.parametrize("page", PAGES)
def test_every_path_a_page_names_exists(page):
    missing = sorted(path for path in named_paths((RST / page).read_text(encoding="utf-8"))
                     if not (REPO / path).exists())
    assert missing == [], f"docs/docsite/rst/{page} names paths that do not exist"
