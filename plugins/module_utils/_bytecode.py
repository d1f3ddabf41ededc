# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The compiled code of the collection's module_utils, kept on the host between module runs.

Ansible sends a module with its module_utils as Python source in a zip (AnsiballZ), and
``zipimport`` keeps no bytecode: every run compiled the collection's files again, the
largest single part of what a ``metadata_facts`` run costs on the host beyond a ``ping``.
``kept_code``, around a module's imports when it runs as a program, serves this collection's
module_utils that come from such a zip from code compiled once and kept in the user's
private folder (the one the rate limiter uses, ``<tmp>/imds-azure-<uid>``, mode 0700,
checked before every use), under a name that is the hash of the source and the interpreter's
bytecode version: a changed file, another collection version or another Python compiles
anew; nothing is trusted that the user does not own alone. Whatever goes wrong (no private
folder, a damaged entry, a full disk), the file is compiled from its source as before.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    import types
    import typing as t

PACKAGE = "ansible_collections.imds.azure.plugins.module_utils."
PREFIX = "bytecode-"  # the entries' names in the private folder (the rate limiter's start with rate-)
_MAX_ENTRY = 1 << 20  # bytes: no module_utils file compiles to anything near this
SWEEP_AGE = 7 * 86400.0  # seconds: when an entry is written, entries older than this are removed


class kept_code:  # pylint: disable=invalid-name  # used as a context manager, like a function
    """Within ``with kept_code(enabled):``, this collection's module_utils that come from a zip
    (AnsiballZ) load through the bytecode kept on the host. The finder is removed on exit:
    nothing else's imports go through it, and ``sys.meta_path`` is left as it was found."""

    def __init__(self, enabled: bool) -> None:
        self.finder = _Finder() if enabled and not sys.dont_write_bytecode else None

    def __enter__(self) -> None:
        if self.finder is not None:
            sys.meta_path.insert(0, self.finder)

    def __exit__(self, *exc_info: t.Any) -> None:
        if self.finder is not None and self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)


class _Finder:
    """Finds what the path finder finds; for a module_utils file of ours in a zip, loads kept code."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._looked = False
        self._busy = False

    def find_spec(self, fullname: str, path: t.Any = None, target: t.Any = None) -> t.Any:
        if self._busy or not fullname.startswith(PACKAGE):
            return None
        import importlib.machinery
        import zipimport

        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or not isinstance(spec.loader, zipimport.zipimporter) or not spec.origin:
            return None  # the other finders decide, as without this one
        folder = self.folder()
        if folder:
            spec.loader = _Loader(spec.loader, folder)
        return spec

    def folder(self) -> str | None:
        if not self._looked:
            self._busy = True  # the private folder's own module is imported the ordinary way
            try:
                from ansible_collections.imds.azure.plugins.module_utils._ratelimit import private_folder

                self._folder = private_folder()
            finally:
                self._busy = False
            self._looked = True
        return self._folder


class _Loader:
    """The zip's loader, with ``exec_module`` running kept code (compiled and kept on a miss)."""

    def __init__(self, loader: t.Any, folder: str) -> None:
        self.loader = loader
        self.folder = folder

    def __getattr__(self, name: str) -> t.Any:  # get_source (tracebacks), get_resource_reader...
        return getattr(self.loader, name)

    def create_module(self, spec: t.Any) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        name, origin = module.__name__, str(getattr(module.__spec__, "origin", None) or module.__file__)
        source = self.loader.get_source(name)
        exec(code_for(source, origin, self.folder), module.__dict__)  # nosec: our own file, compiled or kept


def code_for(source: str, origin: str, folder: str) -> types.CodeType:
    """The code of ``source`` (a file at ``origin``): kept in ``folder`` if it is there, else compiled and kept."""
    import hashlib
    import marshal
    import types
    from importlib.util import MAGIC_NUMBER

    data = source.encode("utf-8")
    key = hashlib.sha256(MAGIC_NUMBER + bytes([sys.flags.optimize]) + data).hexdigest()[:40]
    path = os.path.join(folder, f"{PREFIX}{key}")
    kept = _read_own(path)
    if kept is not None:
        try:
            code = marshal.loads(kept)
        except (EOFError, ValueError, TypeError):
            code = None
        if isinstance(code, types.CodeType):
            import _imp

            fix = getattr(_imp, "_fix_co_filename", None)  # tracebacks name this run's file, as importlib does
            if fix is not None:
                fix(code, origin)
            return code
    code = compile(data, origin, "exec", dont_inherit=True)
    if _write_own(path, marshal.dumps(code)):
        _sweep(folder, keep=path)
    return code


def _read_own(path: str) -> bytes | None:
    """The content of ``path`` if it is a file of this user's alone; None otherwise."""
    try:
        # O_NONBLOCK: a FIFO planted in its place must not hold the module in open()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077
                or info.st_size > _MAX_ENTRY):
            return None
        return os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _write_own(path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` whole or not at all (a private temporary file, then a rename)."""
    partial = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass
        return False
    return True


def _sweep(folder: str, keep: str) -> None:
    """Remove kept code not written for SWEEP_AGE seconds (other versions of the collection, of Python)."""
    import time

    now = time.time()
    try:
        names = [name for name in os.listdir(folder) if name.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            if path != keep and now - os.lstat(path).st_mtime >= SWEEP_AGE:
                os.unlink(path)
        except OSError:
            pass
