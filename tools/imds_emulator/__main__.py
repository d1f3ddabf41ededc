# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python3 <collection>/tools/imds_emulator --port 8169 --profile linux``: see docs/docsite/rst/emulator.rst.

Run by path (a folder with ``__main__.py``), from a checkout or an installed collection,
or as ``python3 -m imds_emulator`` with ``tools/`` on ``sys.path``.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imds_emulator._cli import main  # noqa: E402  pylint: disable=wrong-import-position

if __name__ == "__main__":
    sys.exit(main())
