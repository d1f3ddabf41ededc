# The community's runner for collection checks (antsibull-nox), configured in
# antsibull-nox.toml: `nox -e lint` (with ansible-core on PATH: source scripts/bootstrap).
# scripts/lint runs the same ruff, yamllint and mypy configurations directly.
from __future__ import annotations

import antsibull_nox
import nox

antsibull_nox.load_antsibull_nox_toml()

if __name__ == "__main__":
    nox.main()
