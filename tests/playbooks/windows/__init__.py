"""A Windows host for real ansible-playbook runs, without Windows: the stand-in connection plugin.

``connection_plugins/imds_windows_standin.py`` plays a host with a PowerShell shell: it
takes the payload ansible-core builds for ``ansible.windows.win_uri`` and answers as
that module does (see its docstring). Use ``INVENTORY_VARS`` on a host's inventory
line and ``CFG`` in the run's ansible.cfg; ``STANDIN_LOG`` names the file each win_uri
run is logged to (set it in the environment as ``IMDS_STANDIN_LOG``).
"""
from __future__ import annotations

import json
from pathlib import Path

CONNECTION_PLUGINS = Path(__file__).resolve().parent / "connection_plugins"
INVENTORY_VARS = "ansible_connection=imds_windows_standin"
CFG = f"connection_plugins = {CONNECTION_PLUGINS}\n"
STANDIN_LOG = "IMDS_STANDIN_LOG"


def standin_runs(path: Path) -> list[dict]:
    """The win_uri runs the stand-in logged to ``path``, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
