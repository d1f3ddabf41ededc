# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IMDS's limit of 5 requests per second per VM, kept by every process of one user.

Forks of a play, two plays at once and the lookup's workers each run their own client,
so the window lives in a small file, guarded by flock, in a private folder of the user
(``<tmp>/imds-azure-<uid>``, mode 0700). The folder and the file are opened so that
nobody else can plant them: never through a symbolic link, only when owned by this user,
writable by nobody else, and (the file) with no other hard link. Where they cannot be
used safely, the limit still holds within this process.

IMDS counts a request when it arrives, and an admitted request may arrive much later on
a busy host. So a request holds its place from admission until it is over
(``done()``), and then counts for one more second from its end. Then no second can ever
see six arrivals: of six requests that arrive within one second, the last one admitted
was admitted while each of the other five was under way or had ended less than a second
before, so it waited. A place held by a process that died is freed after ``hold`` seconds.

Waiting (for the lock or for a place) ends at the caller's deadline with a
``RateLimitTimeout``; nothing waits for ever. Files of endpoints unused for an hour are
removed.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the local fact imports this module in a bare interpreter
    import typing as t

    Entry = t.Tuple[float, float, str]  # (start, until, owner): until 0.0 once the request is over

RATE_PER_SECOND = 5
WINDOW = 1.0
POLL = 0.02  # seconds between looks at a lock or a window that requests under way fill
SWEEP_AGE = 3600.0  # seconds after which another endpoint's unused file is removed
MAX_HOLD = 3660.0  # the longest any request may keep its place (a timeout of an hour, and a minute)
_MAX_FILE = 4096


class RateLimitTimeout(Exception):
    """No place in the window (or no lock on it) before the deadline."""


class RateLimiter:
    """At most ``rate`` requests in any one second to one endpoint, for every process of this user.

    ``key`` names the endpoint (normalized ``http://host:port``); ``directory`` overrides
    the private folder (tests); ``hold`` is the most a request under way keeps its place
    unless ``acquire`` says otherwise.
    """

    def __init__(self, key: str, rate: int = RATE_PER_SECOND, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep, directory: str | None = None,
                 hold: float = 10.0) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.hold = hold
        self.directory = directory
        self.key = key
        self._local: list[Entry] = []
        self._count = 0
        self._owner = f"{os.getpid()}.{id(self) & 0xFFFFFF:x}"
        import hashlib

        self.path = os.path.join(directory or _private_folder_name(),
                                 f"rate-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}")

    def acquire(self, deadline: float, hold: float | None = None) -> str:
        """Wait until one more request fits in the window, record it as under way; return its id.

        The place is held until ``done()``, or ``hold`` seconds at most (the request's
        timeout and a second). Raises RateLimitTimeout when no place can be had before
        ``deadline`` (a clock() value).
        """
        self._count += 1
        ticket = f"{self._owner}.{self._count}"
        keep = min(self.hold if hold is None else hold, MAX_HOLD)
        while True:
            wait = self._update(lambda entries: self._admit(entries, ticket, keep), deadline)
            if wait is None:
                return ticket
            now = self.clock()
            if now + wait > deadline:
                raise RateLimitTimeout(
                    f"no place in IMDS's limit of {self.rate} requests per second before the deadline: other "
                    "processes of this user on this host are calling IMDS at that rate")
            self.sleep(wait)

    def done(self, ticket: str | None, deadline: float | None = None) -> None:
        """The request ``ticket`` is over: from now it counts for one more second."""
        if ticket is None:
            return

        def finish(entries: list[Entry]) -> tuple[list[Entry], None]:
            now = self.clock()
            return [(now, 0.0, owner) if owner == ticket else (start, until, owner)
                    for start, until, owner in entries], None

        try:
            self._update(finish, deadline if deadline is not None else self.clock() + WINDOW)
        except RateLimitTimeout:
            pass  # the place frees itself after ``hold``

    # -- the window ------------------------------------------------------------------------

    def _admit(self, entries: list[Entry], ticket: str, hold: float) -> tuple[list[Entry], float | None]:
        """Admit ``ticket`` (result None) or say how long to wait before looking again."""
        now = self.clock()
        busy = sorted(now + WINDOW if until else start + WINDOW for start, until, _owner in entries)
        if len(busy) >= self.rate:
            free_at = busy[-self.rate]  # the time the rate-th latest place frees
            if free_at > now:
                under_way = any(until for _start, until, _owner in entries)
                return entries, min(free_at - now, POLL) if under_way else free_at - now
        return entries + [(now, now + hold, ticket)], None

    def _current(self, entries: t.Iterable[Entry]) -> list[Entry]:
        """The entries that still count: under way and not expired, or over for less than WINDOW."""
        now = self.clock()
        return [(start, until, owner) for start, until, owner in entries
                if start <= now + 1e-3 and (now < until <= start + MAX_HOLD if until else now - start < WINDOW)]

    def _update(self, change: t.Callable[[list[Entry]], tuple[list[Entry], t.Any]], deadline: float) -> t.Any:
        """Apply ``change`` to the window, in the shared file under its lock where possible."""
        fd = self._open_locked(deadline)
        if fd is None:
            self._local, result = change(self._current(self._local))
            return result
        try:
            entries, result = change(self._current(_parse(os.pread(fd, _MAX_FILE, 0))))
            data = " ".join(f"{start:.6f}:{until:.6f}:{owner}" for start, until, owner in entries).encode("ascii")
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return result
        finally:
            os.close(fd)  # closing releases the lock

    def _open_locked(self, deadline: float) -> int | None:
        """Our window file, open and locked; None where no safe shared file can be had."""
        try:
            import fcntl
        except ImportError:  # not POSIX: only this process is limited
            return None
        if self.directory is None and not _private_folder():
            return None
        while True:
            fd = _open_own(self.path)
            if fd is None:
                return None
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        os.close(fd)
                        return None
                if self.clock() + POLL > deadline:
                    os.close(fd)
                    raise RateLimitTimeout(f"the lock on {self.path} was held by another process until the "
                                           "deadline; if no Ansible run is under way, remove that file")
                self.sleep(POLL)
            if _same_file(fd, self.path):
                if os.fstat(fd).st_size == 0:
                    _sweep(os.path.dirname(self.path))
                return fd
            os.close(fd)  # removed by a sweep while we waited: open the new one


def _parse(raw: bytes) -> list[Entry]:
    entries: list[Entry] = []
    for word in raw.decode("ascii", "replace").split():
        parts = word.split(":")
        if len(parts) != 3:
            continue
        try:
            start, until = float(parts[0]), float(parts[1])
        except ValueError:
            continue
        if math.isfinite(start) and math.isfinite(until):
            entries.append((start, until, parts[2]))
    return entries


def _private_folder_name(base: str | None = None) -> str:
    """``<base>/imds-azure-<uid>``; ``base`` defaults to the temporary folder (tempfile.gettempdir())."""
    if base is None:
        import tempfile

        base = tempfile.gettempdir()
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    return os.path.join(base, f"imds-azure-{uid}")


def private_folder(base: str | None = None) -> str | None:
    """The user's private folder in ``base`` (made if missing), or None where it cannot be used safely.

    Other files of the collection that must be the user's alone (the local fact's cache)
    live there too, under names that do not start with ``rate-``.
    """
    return _private_folder_name(base) if _private_folder(base) else None


def _private_folder(base: str | None = None) -> bool:
    """Make sure the private folder exists and is ours alone; False if it cannot be."""
    path = _private_folder_name(base)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077)


def _open_own(path: str) -> int | None:
    """Open (creating) ``path`` for reading and writing, only if it is a file of ours alone."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:
        return None
    info = os.fstat(fd)
    if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1
            or info.st_mode & 0o077):
        os.close(fd)
        return None
    return fd


def _same_file(fd: int, path: str) -> bool:
    try:
        on_disk = os.lstat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _sweep(folder: str) -> None:
    """Remove other endpoints' window files unused for SWEEP_AGE seconds (each under its lock)."""
    import fcntl

    now = time.time()
    try:
        names = [name for name in os.listdir(folder) if name.startswith("rate-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            if now - os.lstat(path).st_mtime < SWEEP_AGE:
                continue
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path) and now - os.fstat(fd).st_mtime >= SWEEP_AGE:
                os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)
