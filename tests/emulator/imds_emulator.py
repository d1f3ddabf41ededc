# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""MOVED: the IMDS emulator is now the tool ``tools/imds_emulator`` (a package).

This shim stays for one release and then goes. It re-exports the package and runs its
command line, so ``python tests/emulator/imds_emulator.py ...`` and ``from imds_emulator
import Emulator`` (with tests/emulator on sys.path) keep working. Use instead::

    python3 <collection>/tools/imds_emulator --port 8169 --profile linux
    from imds_emulator import Emulator      # with <collection>/tools on sys.path
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "imds_emulator"
NOTICE = ("imds-emulator: note: tests/emulator/imds_emulator.py moved to tools/imds_emulator "
          "(python3 tools/imds_emulator ...); this shim goes in the next release\n")


def _load_package() -> object:
    """Import tools/imds_emulator as the package ``imds_emulator``, whatever sys.path holds."""
    loaded = sys.modules.get("imds_emulator")
    if loaded is not None and getattr(loaded, "__path__", None):
        return loaded
    spec = importlib.util.spec_from_file_location("imds_emulator", _PACKAGE / "__init__.py",
                                                  submodule_search_locations=[str(_PACKAGE)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["imds_emulator"] = module  # imported as imds_emulator, this shim gives way to the package
    spec.loader.exec_module(module)
    return module


_package = _load_package()
globals().update({name: getattr(_package, name) for name in _package.__all__})  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.stderr.write(NOTICE)
    sys.exit(_package.main())  # type: ignore[attr-defined]
