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


SHELL_LEXERS = ("console", "shell", "bash", "sh", "doscon", "powershell", "ps1con")
COMMANDS = ("$ ", "curl ", "python ", "python3 ", "sudo ", "ansible-playbook ", "ansible-galaxy ", "molecule ",
            "source ", "export ", "cd ", "./scripts/", "scripts/")


def code_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, language or "" for a bare ``::`` block, first line of the content) of each code block."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(".. code-block::") or stripped.startswith(".. code::"):
            language = stripped.split("::", 1)[1].strip()
        elif stripped.endswith("::") and not stripped.startswith(".. ") and not stripped.startswith(":"):
            language = ""
        else:
            continue
        content = next((following.strip() for following in lines[number + 1:]
                        if following.strip() and not following.strip().startswith(":")), "")
        blocks.append((number + 1, language, content))
    return blocks


@pytest.mark.parametrize("page", sorted(page.name for page in RST.glob("*.rst")))
def test_code_blocks_name_their_language(page):
    """The docsite highlights a bare ``::`` block as YAML+Jinja, which fails on shell lines (a CI
    warning once): every block names its language, and commands are console or shell."""
    wrong = [f"line {number}: {language or 'bare ::'}: {content}"
             for number, language, content in code_blocks((RST / page).read_text(encoding="utf-8"))
             if not language or (content.startswith(COMMANDS) and language.lower() not in SHELL_LEXERS)]
    assert wrong == [], f"docs/docsite/rst/{page}"


# docs/examples/drain.yml is being rewritten for issue 17 (its drain_endpoint goes there)
USER_FACING = sorted([REPO / "README.md", *RST.glob("*.rst"), *(REPO / "playbooks").glob("*.yml"),
                      *(REPO / "roles").glob("*/README.md"),
                      *(path for path in (REPO / "docs" / "examples").glob("*.yml") if path.name != "drain.yml")])
OTHER_SWITCHES = re.compile(r"\b(imds_endpoint|drain_endpoint)\b|endpoint: \"\{\{ *imds_azure_endpoint")


@pytest.mark.parametrize("path", USER_FACING, ids=lambda path: str(path.relative_to(REPO)))
def test_one_switch_to_another_endpoint(path):
    """Docs, examples and the demo point plays at an emulator with imds_azure_endpoint alone: no variable
    of their own (imds_endpoint set nothing at all) and no copying the switch into endpoint by hand."""
    found = [f"line {number}: {line.strip()}" for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if OTHER_SWITCHES.search(line)]
    assert found == []
