# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The executable local fact that the imds.azure.local_facts role installs on a host.

``ansible.builtin.setup`` runs every executable ``*.fact`` file in its ``fact_path`` and
puts what the file prints (JSON) under ``ansible_local``. The role installs a small
launcher there, which holds the options and calls ``main()``, and beside it a copy of the
collection's module_utils: this file, the IMDS client, the detection and the normalizer,
the code ``metadata_facts`` runs. So ``ansible_local['azure']`` holds what
``metadata_facts`` returns as ``ansible_facts['azure_*']``, with the ``azure_`` prefix
taken off, and it arrives inside the ``setup`` call that a play makes anyway, without
starting a second module.

A local fact must never break ``setup``: whatever happens, ``main()`` prints one JSON
object and returns 0. A failure is ``{"failed": true, "msg": "..."}``; a success has
``failed: false``, ``from_cache``, ``fetched_at`` and ``warnings`` beside the facts.
Nothing takes longer than ``deadline`` seconds: the client's own bound is set to it, and
a watchdog ends anything else that would outlast it.

An answer (also "not an Azure VM") is kept ``ttl`` seconds in a file of the user's private
folder (``$TMPDIR`` or ``/tmp``, ``imds-azure-<uid>``, the rate limiter's), so that the
plays of a run, or runs that follow each other, ask IMDS once. A failure is never kept.
Serving a kept answer imports nothing but this file and the private folder's checks: it
reads the file and prints the JSON it holds, so that the fact costs ``setup`` little more
than starting an interpreter.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: a kept answer is served without importing typing
    import typing as t

CACHE_MAGIC = b"imds.azure local fact 1\n"
MAX_CACHE_BYTES = 4 * 1024 * 1024
MAX_TTL = 7 * 86400.0
SWEEP_AGE = 86400.0  # kept answers of other configurations older than this are removed
FACT_PREFIX = "ansible_azure_"
OPTIONS = ("endpoint", "api_version", "timeout", "deadline", "probe_timeout", "ttl", "include_user_data", "dmi_path")


def defaults() -> dict[str, t.Any]:
    """The options as the role's defaults set them (for callers other than the launcher)."""
    from ansible_collections.imds.azure.plugins.module_utils._detect import DMI_ASSET_TAG_PATH
    from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_ENDPOINT, DEFAULT_PROBE_TIMEOUT

    return {"endpoint": DEFAULT_ENDPOINT, "api_version": None, "timeout": 2.0, "deadline": 5.0,
            "probe_timeout": DEFAULT_PROBE_TIMEOUT, "ttl": 300.0, "include_user_data": False,
            "dmi_path": DMI_ASSET_TAG_PATH}


class _Overdue(BaseException):
    """The watchdog fired: the deadline has passed (not an Exception, so nothing swallows it)."""


def failure(message: str) -> dict[str, t.Any]:
    """The local fact of a host whose facts could not be had."""
    return {"failed": True, "msg": message}


def check(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The options, checked (numbers as floats). Raises OptionError with a message that says what to write."""
    from ansible_collections.imds.azure.plugins.module_utils._options import MAX_TIMEOUT, OptionError, seconds

    if not isinstance(config, dict):
        raise OptionError("the local fact's options are not a mapping; apply the imds.azure.local_facts role again.")
    unknown, missing = sorted(set(config) - set(OPTIONS)), [name for name in OPTIONS if name not in config]
    if unknown or missing:
        raise OptionError(f"the local fact's options do not match this library (unknown: {', '.join(unknown) or '-'}; "
                          f"missing: {', '.join(missing) or '-'}); apply the imds.azure.local_facts role again.")
    checked = dict(config)
    for name in ("deadline", "timeout", "probe_timeout"):
        checked[name] = seconds(config[name], name, above_minimum=True, maximum=MAX_TIMEOUT)
    checked["ttl"] = seconds(config["ttl"], "ttl", maximum=MAX_TTL)
    if not isinstance(config["include_user_data"], bool):
        raise OptionError(f"include_user_data must be true or false, not {config['include_user_data']!r}.")
    if not isinstance(config["dmi_path"], str) or not config["dmi_path"]:
        raise OptionError("dmi_path must be the path of a file.")
    return checked


def gather(config: dict[str, t.Any], transport: t.Any = None, limiter: t.Any = None) -> dict[str, t.Any]:
    """Ask IMDS (or the host's DMI data) now; the local fact (never an exception but _Overdue).

    The gather is the one ``metadata_facts`` makes (``_gather.run()``: the same client,
    detection, load balancer request and normalizer); its bound (``retry_timeout`` plus one
    ``timeout``) is set to ``deadline``.
    """
    from ansible_collections.imds.azure.plugins.module_utils._gather import run

    if transport is None:
        from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport

        transport = HttpClientTransport()
    timeout = min(config["timeout"], config["deadline"])
    params = {"endpoint": config["endpoint"], "api_version": config["api_version"], "timeout": timeout,
              "retry_timeout": config["deadline"] - timeout, "probe_timeout": min(config["probe_timeout"], timeout),
              "dmi_path": config["dmi_path"], "include_user_data": config["include_user_data"],
              "load_balancer": True, "filter": ["*"], "require_azure": False}
    answer = run(params, transport, limiter=limiter)
    if answer.get("failed"):
        return failure(str(answer.get("msg")))
    result = {name[len(FACT_PREFIX):]: value for name, value in answer["ansible_facts"].items()}
    result.update(failed=False, warnings=answer.get("warnings", []),
                  fetched_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return result


# -- the cache: one private file per configuration ------------------------------------------

def _key(config: dict[str, t.Any]) -> bytes:
    """What an answer depends on, as one line of text (ttl and deadline do not change the answer)."""
    return repr(sorted((k, v) for k, v in config.items() if k not in ("ttl", "deadline"))).encode("utf-8", "replace")


def cache_file(config: dict[str, t.Any]) -> str | None:
    """The file that keeps answers for ``config``; None where the private folder cannot be used safely."""
    import zlib

    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import private_folder

    folder = private_folder(os.environ.get("TMPDIR") or "/tmp")
    if folder is None:
        return None
    return os.path.join(folder, f"fact-{zlib.crc32(_key(config)):08x}.json")


def read_cache(path: str, config: dict[str, t.Any], now: float) -> str | None:
    """The JSON text kept in ``path`` if the file is ours alone, for ``config`` and younger than ttl."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1
                or info.st_mode & 0o077 or info.st_size > MAX_CACHE_BYTES):
            return None
        raw = os.read(fd, MAX_CACHE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    magic, stored, key, body = (raw.split(b"\n", 3) + [b"", b"", b""])[:4]
    if magic + b"\n" != CACHE_MAGIC or key != _key(config) or not body.startswith(b"{\"") or not body.endswith(b"}"):
        return None
    try:
        stored_at, ttl = float(stored), float(config["ttl"])
    except (TypeError, ValueError):
        return None
    if not stored_at - 1.0 <= now < stored_at + ttl:  # a clock set back makes an entry look new
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def write_cache(path: str, config: dict[str, t.Any], text: str, now: float) -> None:
    """Keep ``text`` in ``path`` (mode 0600, written aside and renamed); a failure to write is ignored."""
    _sweep(os.path.dirname(path), os.path.basename(path), now)
    aside = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(aside, flags, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(CACHE_MAGIC + repr(now).encode("ascii") + b"\n" + _key(config) + b"\n" + text.encode("utf-8"))
        os.replace(aside, path)
    except OSError:
        try:
            os.unlink(aside)
        except OSError:
            pass


def _sweep(folder: str, keep: str, now: float) -> None:
    """Remove kept answers of other configurations (and files left aside) unused for SWEEP_AGE."""
    try:
        names = [name for name in os.listdir(folder) if name.startswith("fact-") and name != keep]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            if now - os.lstat(path).st_mtime >= SWEEP_AGE:
                os.unlink(path)
        except OSError:
            pass


# -- the launcher's entry point -----------------------------------------------------------------

def _flagged(text: str, cached: bool) -> str:
    """The kept JSON object with ``from_cache`` added (the text holds one object with other keys)."""
    return ('{"from_cache": true, ' if cached else '{"from_cache": false, ') + text[1:]


def facts_text(config: dict[str, t.Any], now: float | None = None, transport: t.Any = None,
               limiter: t.Any = None) -> str:
    """The local fact's JSON text: from the cache while it is fresh (no options are checked, no
    JSON parsed: the entry was written for exactly these options), else from IMDS."""
    now = time.time() if now is None else now
    try:
        path = cache_file(config) if isinstance(config, dict) and float(config.get("ttl") or 0) > 0 else None
    except (TypeError, ValueError):
        path = None
    if path is not None:
        kept = read_cache(path, config, now)
        if kept is not None:
            return _flagged(kept, True)
    import json

    checked = check(config)
    disarm = _arm_watchdog(checked["deadline"] + 0.5)
    try:
        result = gather(checked, transport, limiter)
    finally:
        disarm()
    text = json.dumps(result, sort_keys=True)
    if result["failed"]:
        return text
    if path is not None:
        write_cache(path, config, text, now)
    return _flagged(text, False)


def facts(config: dict[str, t.Any], now: float | None = None, transport: t.Any = None,
          limiter: t.Any = None) -> dict[str, t.Any]:
    """facts_text(), parsed."""
    import json

    return json.loads(facts_text(config, now, transport, limiter))


def main(config: dict[str, t.Any], write: t.Callable[[str], t.Any] | None = None) -> int:
    """Print the local fact's JSON (always one object) and return 0, whatever happens."""
    import sys

    write = write or sys.stdout.write
    try:
        text = facts_text(config)
    except BaseException as exc:  # pylint: disable=broad-exception-caught  # never break setup
        text = _failure_text(config, exc)
    write(text)
    return 0


def _failure_text(config: dict[str, t.Any], exc: BaseException) -> str:
    import json

    if isinstance(exc, ImportError):
        message = f"the Azure local fact cannot load its library ({exc}); apply the imds.azure.local_facts role again."
    elif isinstance(exc, _Overdue):
        message = (f"the Azure local fact did not finish within its deadline of {config.get('deadline')} s "
                   "(plus 0.5 s); it gave up.")
    elif type(exc).__name__ == "OptionError":  # not imported here: the library may be what failed
        message = str(exc)
    else:
        message = (f"the Azure local fact failed unexpectedly ({type(exc).__name__}: {exc}); please report it to "
                   "the imds.azure collection.")
    return json.dumps(failure(message))


def _arm_watchdog(after: float) -> t.Callable[[], None]:
    """Raise _Overdue in this thread after ``after`` seconds (POSIX); return what disarms it."""
    import signal

    if not hasattr(signal, "setitimer"):
        return lambda: None

    def fire(_signum: int, _frame: t.Any) -> None:
        raise _Overdue()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, after)

    def disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return disarm
