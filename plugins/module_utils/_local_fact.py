# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The executable local fact that the imds.azure.local_facts role installs on a host.

``ansible.builtin.setup`` runs every executable ``*.fact`` file in its ``fact_path`` and
puts what the file prints (JSON) under ``ansible_local``. The role installs a small
launcher there and, beside it, a copy of the collection's module_utils: this file, the
IMDS client, the detection and the normalizer, the code ``metadata_facts`` runs. So
``ansible_local['azure']`` holds what ``metadata_facts`` returns as
``ansible_facts['azure_*']``, with the ``azure_`` prefix taken off, and it arrives inside
the ``setup`` call that a play makes anyway, without starting a second module.

A local fact must never break ``setup``: whatever happens, ``main()`` prints one JSON
object and returns 0. A failure is ``{"failed": true, "msg": "..."}``; a success has
``failed: false``, ``from_cache``, ``fetched_at`` and ``warnings`` beside the facts.
Nothing takes longer than ``deadline`` seconds: the client's own bound is set to it, and
a watchdog ends anything else that would outlast it.

An answer (also "not an Azure VM") is kept ``ttl`` seconds in a file of the user's private
folder (the one the rate limiter keeps its window in), so that the plays of a run, or runs
that follow each other, ask IMDS once. A failure is never kept.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._detect import DMI_ASSET_TAG_PATH
from ansible_collections.imds.azure.plugins.module_utils._options import (
    DEFAULT_ENDPOINT, DEFAULT_PROBE_TIMEOUT, MAX_TIMEOUT, OptionError, seconds)

CACHE_FORMAT = 1
MAX_CACHE_BYTES = 4 * 1024 * 1024
MAX_TTL = 7 * 86400.0
FACT_PREFIX = "ansible_azure_"
DEFAULTS: dict[str, t.Any] = {
    "endpoint": DEFAULT_ENDPOINT,
    "api_version": None,
    "timeout": 2.0,
    "deadline": 5.0,
    "probe_timeout": DEFAULT_PROBE_TIMEOUT,
    "ttl": 300.0,
    "include_user_data": False,
    "dmi_path": DMI_ASSET_TAG_PATH,
}


class _Overdue(BaseException):
    """The watchdog fired: the deadline has passed (not an Exception, so nothing swallows it)."""


def failure(message: str) -> dict[str, t.Any]:
    """The JSON of a local fact that could not get the facts."""
    return {"failed": True, "msg": message}


def load_config(path: str) -> dict[str, t.Any]:
    """The options the role wrote (JSON), checked, with the defaults filled in. Raises OptionError."""
    try:
        with open(path, encoding="utf-8") as handle:
            given = json.load(handle)
    except (OSError, ValueError) as exc:
        raise OptionError(f"cannot read the local fact's configuration {path} ({exc}); apply the "
                          "imds.azure.local_facts role again.") from None
    if not isinstance(given, dict):
        raise OptionError(f"the local fact's configuration {path} is not a JSON object; apply the role again.")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise OptionError(f"the local fact's configuration {path} has unknown options {', '.join(unknown)}; "
                          "apply the imds.azure.local_facts role again.")
    config = {**DEFAULTS, **given}
    config["deadline"] = seconds(config["deadline"], "deadline", above_minimum=True, maximum=MAX_TIMEOUT)
    config["timeout"] = seconds(config["timeout"], "timeout", above_minimum=True, maximum=MAX_TIMEOUT)
    config["probe_timeout"] = seconds(config["probe_timeout"], "probe_timeout", above_minimum=True,
                                      maximum=MAX_TIMEOUT)
    config["ttl"] = seconds(config["ttl"], "ttl", maximum=MAX_TTL)
    if not isinstance(config["include_user_data"], bool):
        raise OptionError(f"include_user_data must be true or false, not {config['include_user_data']!r}.")
    if not isinstance(config["dmi_path"], str) or not config["dmi_path"]:
        raise OptionError("dmi_path must be the path of a file.")
    return config


def gather(config: dict[str, t.Any], transport: t.Any = None, limiter: t.Any = None) -> dict[str, t.Any]:
    """Ask IMDS (or the host's DMI data) now; the local fact's JSON, never an exception but _Overdue.

    The client, the detection and the normalizer are the ones metadata_facts uses; the
    client's bound (``retry_timeout`` plus one ``timeout``) is set to ``deadline``.
    """
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._detect import NotOnAzure, request_on_azure
    from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
    from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, normalize

    if transport is None:
        from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport

        transport = HttpClientTransport()
    timeout = min(config["timeout"], config["deadline"])
    try:
        client = ImdsClient(transport, endpoint=config["endpoint"], api_version=config["api_version"],
                            timeout=timeout, retry_timeout=config["deadline"] - timeout, limiter=limiter)
        detected = request_on_azure(client, lambda first: client.instance(first_timeout=first),
                                    probe_timeout=min(config["probe_timeout"], timeout), dmi_path=config["dmi_path"])
        facts = normalize(detected.response.data, detected.response.api_version,
                          include_user_data=config["include_user_data"])
    except NotOnAzure as exc:
        facts, warnings = {"ansible_azure_detected": False, "ansible_azure_api_version": None}, []
        facts["ansible_azure_detection_reason"] = exc.reason
    except ImdsError as exc:
        return failure(str(exc))
    except ImdsDocumentError as exc:
        return failure(f"IMDS at {client.endpoint} (api-version {client.api_version}) answered with a document "
                       f"that is not an instance document: {exc}")
    else:
        facts["ansible_azure_detection_reason"] = detected.reason
        warnings = [f"IMDS at {detected.response.url}: {w}" for w in detected.response.warnings]
    result = {name[len(FACT_PREFIX):]: value for name, value in facts.items()}
    result.update(failed=False, warnings=warnings,
                  fetched_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return result


# -- the cache: one private file per configuration ------------------------------------------

def cache_file(config: dict[str, t.Any]) -> str | None:
    """The cache file for ``config`` in the user's private folder; None where it cannot be used safely."""
    import hashlib

    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import private_folder

    folder = private_folder()
    if folder is None:
        return None
    key = hashlib.sha256(_cache_key(config).encode("utf-8")).hexdigest()[:16]
    return os.path.join(folder, f"fact-{key}.json")


def _cache_key(config: dict[str, t.Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in ("ttl", "deadline")}, sort_keys=True)


def read_cache(path: str, config: dict[str, t.Any], now: float) -> dict[str, t.Any] | None:
    """The result kept in ``path`` if it is ours alone, for this configuration and younger than ttl."""
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
        kept = json.loads(os.read(fd, MAX_CACHE_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(kept, dict) or kept.get("format") != CACHE_FORMAT or kept.get("key") != _cache_key(config):
        return None
    stored, result = kept.get("stored"), kept.get("result")
    if not isinstance(stored, (int, float)) or not isinstance(result, dict) or result.get("failed") is not False:
        return None
    if not stored - 1.0 <= now < stored + config["ttl"]:  # a clock set back makes an entry look new
        return None
    return result


def write_cache(path: str, config: dict[str, t.Any], result: dict[str, t.Any], now: float) -> None:
    """Keep ``result`` in ``path`` (mode 0600, written aside and renamed); a failure to write is ignored."""
    data = json.dumps({"format": CACHE_FORMAT, "key": _cache_key(config), "stored": now, "result": result})
    aside = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(aside, flags, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.replace(aside, path)
    except OSError:
        try:
            os.unlink(aside)
        except OSError:
            pass


# -- the launcher's entry point -----------------------------------------------------------------

def facts(config: dict[str, t.Any], now: float | None = None, transport: t.Any = None,
          limiter: t.Any = None) -> dict[str, t.Any]:
    """The local fact's JSON for ``config``: from the cache while it is fresh, else from IMDS."""
    now = time.time() if now is None else now
    path = cache_file(config) if config["ttl"] > 0 else None
    if path is not None:
        kept = read_cache(path, config, now)
        if kept is not None:
            return {**kept, "from_cache": True}
    result = gather(config, transport, limiter)
    if path is not None and not result["failed"]:
        write_cache(path, config, result, now)
    return {**result, "from_cache": False} if not result["failed"] else result


def main(config_path: str, write: t.Callable[[str], t.Any] | None = None) -> int:
    """Print the local fact's JSON (always one object) and return 0, whatever happens."""
    import sys

    write = write or sys.stdout.write
    watchdog = None
    try:
        config = load_config(config_path)
        watchdog = _arm_watchdog(config["deadline"] + 0.5)
        result = facts(config)
    except OptionError as exc:
        result = failure(str(exc))
    except ImportError as exc:
        result = failure(f"the Azure local fact cannot load its library ({exc}); apply the imds.azure.local_facts "
                         "role again.")
    except _Overdue:
        result = failure(f"the Azure local fact did not finish within its deadline of "
                         f"{config['deadline']:g} s (plus 0.5 s); it gave up.")
    except Exception as exc:  # pylint: disable=broad-exception-caught  # never break setup
        result = failure(f"the Azure local fact failed unexpectedly ({type(exc).__name__}: {exc}); please report it "
                         "to the imds.azure collection.")
    finally:
        if watchdog is not None:
            watchdog()
    write(json.dumps(result, sort_keys=True))
    return 0


def _arm_watchdog(after: float) -> t.Callable[[], None] | None:
    """Raise _Overdue in this thread after ``after`` seconds (POSIX); return what disarms it."""
    import signal

    if not hasattr(signal, "setitimer"):
        return None

    def fire(_signum: int, _frame: t.Any) -> None:
        raise _Overdue()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, after)

    def disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return disarm
