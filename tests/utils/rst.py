"""reStructuredText for the docsite pages that code writes (scripts/facts-docs, the fault matrix)."""
from __future__ import annotations

import re
import typing as t

_SPECIAL = re.compile(r"([\\`*|])|(_)(?=\W|$)")


def escape(value: object, limit: int = 0) -> str:
    """Plain text on one line, with what reStructuredText would read as markup escaped; cut at ``limit``."""
    text = str(value).replace("\n", " ")
    if limit and len(text) > limit:
        text = text[:limit - 1] + "…"
    return _SPECIAL.sub(lambda match: "\\" + (match.group(1) or match.group(2)), text)


def literal(value: str) -> str:
    """``value`` as inline literal text."""
    return f"``{value}``"


def list_table(header: t.Sequence[str], rows: t.Iterable[t.Sequence[str]], widths: str = "") -> list[str]:
    """A ``list-table`` directive, one line per cell (cells are reStructuredText already), then a blank line."""
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        for index, cell in enumerate(row):
            lines.append(f"{'   * -' if index == 0 else '     -'} {cell}".rstrip())
    return lines + [""]
