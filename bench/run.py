# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the imds.azure benchmarks; print the figures and write them as JSON.

    source scripts/bootstrap
    python bench/run.py                      # every benchmark (about 15 minutes on 2 cores)
    python bench/run.py module_vs_ping fleet # some of them
    python bench/run.py --smoke              # tiny repeat counts: checks the benchmarks work, no figures
    python bench/run.py --baseline main module_vs_ping   # also measure the collection at a git ref, alternately

Results go to bench/results/<benchmark>.json (or --out DIR); docs/docsite/rst/performance.rst explains them.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _lib  # noqa: E402  pylint: disable=wrong-import-position
from _lib import BENCH, machine  # noqa: E402  pylint: disable=wrong-import-position

BENCHMARKS = ("requests_per_gather", "module_vs_ping", "gather_facts", "off_azure", "lookup", "fleet",
              "profile_module")


def run_one(name: str, smoke: bool, out_dir: Path) -> dict[str, Any]:
    module = importlib.import_module(name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"imds-bench-{name}-") as tmp:
        try:
            outcome = module.run(Path(tmp), smoke)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            outcome = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result = {"benchmark": name, "title": module.TITLE, "smoke": smoke, "machine": machine(),
              "baselines": _lib.BASELINES,
              "seconds": round(time.monotonic() - started, 1), **outcome}
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def show(result: dict[str, Any]) -> None:
    mach = result["machine"]
    print(f"\n== {result['benchmark']}: {result['title']} ({result['seconds']} s)")
    print(f"   {mach['nproc']} x {mach['cpu_model']}, Python {mach['python']}, ansible-core {mach['ansible_core']}, "
          f"load {mach['loadavg_1m']:.2f}")
    if "error" in result:
        print(f"   ERROR {result['error']}")
    if "skipped" in result:
        print(f"   SKIPPED {result['skipped']}")
    for key, value in result.get("metrics", {}).items():
        spread = f"  [{value['min']:.4g} .. {value['max']:.4g}, n={value['n']}]" if "n" in value else ""
        goal = f"  goal {value['goal']}: {'met' if value['met'] else 'MISSED'}" if "goal" in value else ""
        number = f"{value['value']:.4g}" if isinstance(value["value"], float) else str(value["value"])
        print(f"   {key:<34} {number:>9} {value['unit']:<6}{spread}{goal}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--smoke", action="store_true", help="tiny repeat counts, for CI")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="folder for the JSON results")
    parser.add_argument("--baseline", metavar="REF", action="append", default=[],
                        help="a git ref (commit, branch, tag) whose collection the benchmarks that compare "
                             "(module_vs_ping, profile_module, fleet) also measure, alternating with this "
                             "checkout; may be given more than once")
    args = parser.parse_args(argv)
    _lib.BASELINES = args.baseline
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in args.names or BENCHMARKS:
        result = run_one(name, args.smoke, args.out)
        show(result)
        failed += "error" in result
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
