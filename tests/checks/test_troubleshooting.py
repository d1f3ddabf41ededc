"""The troubleshooting page of the docsite quotes every message the collection can give.

The messages are read from the code: every string and f-string in plugins/ (docstrings
and the DOCUMENTATION / EXAMPLES / RETURN blocks aside), and the msg / fail_msg of the
roles' fail and assert tasks. From each, the longest stretch of fixed text (the parts
between placeholders) of at least three words must appear on the page, compared without
case, reStructuredText markup or line breaks. A message added or reworded in the code without
the page fails here, with the file and line to look at.
"""
from __future__ import annotations

import ast
import re

import yaml

from ansible_collections.imds.azure.tests.utils.paths import REPO

RST = REPO / "docs" / "docsite" / "rst"
PAGE = RST / "troubleshooting.rst"
DOC_BLOCKS = {"DOCUMENTATION", "EXAMPLES", "RETURN", "PLUGIN_SOURCES", "DETECTION", "ACTION_PLUGIN"}
MIN_WORDS = 3


def normal(text: str) -> str:
    """Text as read: no roles, emphasis, literal or escape marks, no line breaks; any case."""
    text = re.sub(r":[a-z]+:`([^`<]*?)(?:#[a-z]+)?`", r"\1", text)
    return " ".join(re.sub(r"[`*\\]", "", text).split()).lower()


def key_phrase(fixed_parts: list[str]) -> str:
    """The longest fixed part with at least MIN_WORDS words, trimmed of edge punctuation."""
    best = ""
    for part in fixed_parts:
        part = " ".join(part.split()).strip(" .,:;()'\"`")
        if len(part.split()) >= MIN_WORDS and len(part) > len(best):
            best = part
    return best


def fixed_parts(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant):
        return [node.value]
    parts, current = [], ""
    for value in node.values:
        if isinstance(value, ast.Constant):
            current += str(value.value)
        else:
            parts.append(current)
            current = ""
    parts.append(current)
    return parts


def not_messages(tree: ast.AST) -> set[int]:
    """ids of string nodes that are no messages: docstrings, doc blocks, f-string pieces."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in DOC_BLOCKS for t in node.targets):
            skip.update(id(sub) for sub in ast.walk(node.value))
        elif isinstance(node, ast.JoinedStr):
            skip.update(id(sub) for sub in node.values)
    return skip


def python_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((REPO / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = not_messages(tree)
        for node in ast.walk(tree):
            is_string = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
            if not is_string or id(node) in skip:
                continue
            phrase = key_phrase(fixed_parts(node))
            if phrase:
                found.setdefault(phrase, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def role_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((REPO / "roles").glob("*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for action in ("ansible.builtin.fail", "ansible.builtin.assert", "fail", "assert"):
                args = task.get(action) if isinstance(task, dict) else None
                if not isinstance(args, dict):
                    continue
                for name in ("msg", "fail_msg"):
                    text = args.get(name)
                    if isinstance(text, str):
                        phrase = key_phrase(re.split(r"\{\{.*?\}\}|\{%.*?%\}", text))
                        if phrase:
                            found.setdefault(phrase, f"{path.relative_to(REPO)} ({task.get('name')})")
    return found


def test_the_code_has_messages_to_check():
    messages = python_messages()
    assert len(messages) > 50
    assert "Nothing listens at that address: check the endpoint" in messages
    assert any(phrase.startswith("imds.azure.route supports Linux and Windows") for phrase in role_messages())


def test_every_message_is_on_the_page():
    page = normal(PAGE.read_text(encoding="utf-8"))
    missing = [f"{where}: {phrase}" for phrase, where in {**python_messages(), **role_messages()}.items()
               if normal(phrase) not in page]
    assert missing == [], f"{PAGE.relative_to(REPO)} lacks these messages:\n" + "\n".join(sorted(missing))


def test_the_page_links_resolve():
    """Every :ref: of the page names a label of the docsite; no Markdown link is left over."""
    labels = {label for page in RST.glob("*.rst")
              for label in re.findall(r"^\.\. _([A-Za-z0-9_.-]+):$", page.read_text(encoding="utf-8"), re.M)}
    text = PAGE.read_text(encoding="utf-8")
    targets = [target or label for label, target in re.findall(r":ref:`([^`<]*?)(?:\s*<([^>]+)>)?`", text)]
    assert targets, "the page links to no other section"
    assert [target for target in targets if target.strip() not in labels] == []
    assert not re.search(r"\]\([^)]*\)|`[^`]*<#[^>]*>`_", text), "a Markdown or anchor link"
    assert PAGE.stat().st_size < 60_000, "one page, not a book"
