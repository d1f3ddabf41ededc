"""Collect the fault matrix's rows during a test run and print them at the end.

The rows go to the terminal summary (``pytest -rA`` or not), to
``tests/output/fault-matrix.md``, and, when ``IMDS_UPDATE_RELIABILITY_DOC=1``, as a
reStructuredText table between the markers of the docsite's reliability page.
"""
from __future__ import annotations

import os
import platform
import re
import time

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.rst import escape, list_table

from .matrix import markdown_table

OUTPUT = REPO / "tests" / "output" / "fault-matrix.md"
DOC = REPO / "docs" / "docsite" / "rst" / "reliability.rst"
BEGIN = ".. fault-matrix:begin"
END = ".. fault-matrix:end"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def rst_table(rows: list[dict]) -> str:
    """The matrix as a reStructuredText list-table, for the reliability page."""
    def bound(value: object) -> str:
        return f"{value:g}" if isinstance(value, (int, float)) else escape(value)

    cells = [[escape(row["scenario"]), escape(row["expected"]), escape(row["observed"]), seconds(row["seconds"]),
              bound(row["bound"]), seconds(row["task"]), str(row["requests"]), escape(row["result"])] for row in rows]
    header = ["scenario", "expected", "observed", "seconds", "bound", "task", "requests", "result"]
    return "\n".join(list_table(header, cells, widths="16 16 36 6 6 6 6 8"))


class MatrixReport:
    """A pytest plugin object: register it once; add rows; it reports at the end."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.started = time.time()
        self.wall: dict[str, float] = {}

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if r["scenario"] != row["scenario"]] + [row]

    def summary(self) -> str:
        expected = sum(1 for row in self.rows if str(row["result"]).startswith("xfail"))
        failed = sum(1 for row in self.rows if row["result"] != "pass") - expected
        known = f", {expected} known to fail (xfail, named in the row)" if expected else ""
        runs = "".join(f"; {name}: {spent:.0f} s" for name, spent in self.wall.items())
        return (f"{len(self.rows)} scenarios, {failed} failed{known}{runs}; "
                f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
                f"{time.strftime('%Y-%m-%d', time.gmtime(self.started))}")

    def text(self) -> str:
        return f"{self.summary()}\n\n{markdown_table(self.rows)}"

    def write(self) -> None:
        if not self.rows:
            return
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(self.text(), encoding="utf-8")
        if os.environ.get("IMDS_UPDATE_RELIABILITY_DOC") == "1" and DOC.exists():
            doc = DOC.read_text(encoding="utf-8")
            block = f"{BEGIN}\n\n{escape(self.summary())}\n\n{rst_table(self.rows)}\n{END}"
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
