"""Collect the fault matrix's rows during a test run and print them at the end.

The rows go to the terminal summary (``pytest -rA`` or not), to
``tests/output/fault-matrix.md``, and, when ``IMDS_UPDATE_RELIABILITY_DOC=1``, into the
table between the markers in ``docs/reliability.md``.
"""
from __future__ import annotations

import os
import platform
import re
import time

from tests.utils.paths import REPO

from .matrix import markdown_table

OUTPUT = REPO / "tests" / "output" / "fault-matrix.md"
DOC = REPO / "docs" / "reliability.md"
BEGIN = "<!-- fault-matrix:begin -->"
END = "<!-- fault-matrix:end -->"


class MatrixReport:
    """A pytest plugin object: register it once; add rows; it reports at the end."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.started = time.time()
        self.wall: dict[str, float] = {}

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if r["scenario"] != row["scenario"]] + [row]

    def text(self) -> str:
        failed = sum(1 for row in self.rows if row["result"] != "pass")
        runs = "".join(f"; {name}: {seconds:.0f} s" for name, seconds in self.wall.items())
        header = (f"{len(self.rows)} scenarios, {failed} failed{runs}; "
                  f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
                  f"{time.strftime('%Y-%m-%d', time.gmtime(self.started))}\n\n")
        return header + markdown_table(self.rows)

    def write(self) -> None:
        if not self.rows:
            return
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(self.text(), encoding="utf-8")
        if os.environ.get("IMDS_UPDATE_RELIABILITY_DOC") == "1" and DOC.exists():
            doc = DOC.read_text(encoding="utf-8")
            block = f"{BEGIN}\n{self.text()}{END}"
            doc, count = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, doc, flags=re.S)
            if count:
                DOC.write_text(doc, encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.rows:
            return
        self.write()
        terminalreporter.section("fault matrix")
        terminalreporter.write(self.text())
        terminalreporter.write_line(f"(also in {OUTPUT.relative_to(REPO)})")


def register(config) -> MatrixReport:
    """The session's MatrixReport, registered as a plugin the first time."""
    report = config.pluginmanager.get_plugin("imds-fault-matrix")
    if report is None:
        report = MatrixReport()
        config.pluginmanager.register(report, "imds-fault-matrix")
    return report
