# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The live source of the lookup: IMDS asked from the controller, at most once per run.

Ansible renders templates in worker processes that it forks for every task and host,
so a cache held in one process would be gone by the next task. The instance document
is therefore kept in two places:

- in this process, for the other terms and lookups of the same task;
- in a file in the run's own local temp folder (ansible-core creates one per
  ``ansible-playbook`` run, mode 0700, and removes it at the end), shared by every
  fork of the run. A lock around "read, else fetch and write" makes forks that miss
  at the same moment wait for the one that fetches instead of asking IMDS too.

Entries are keyed by endpoint and requested api-version and expire after a TTL. The
cached document never holds ``userData`` (it may hold secrets): its value is replaced
by a placeholder, and a term that needs it asks IMDS for it, uncached. A failure
(IMDS not reachable, the controller not on Azure) is cached like an answer, so that a
template with a hundred lookups and a ``default`` does not wait a hundred times.
Tokens, attested documents, load balancer data and version lists are never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._detect import DMI_ASSET_TAG_PATH, NotOnAzure, request_on_azure
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, check_tree
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_PROBE_TIMEOUT

CACHE_FORMAT = 1

_MEMORY: dict[str, dict[str, t.Any]] = {}


class LiveSettings(t.NamedTuple):
    endpoint: str
    api_version: str | None
    timeout: float
    retry_timeout: float


class InstanceEntry(t.NamedTuple):
    """The live instance document (userData replaced by None) and the api-version that answered."""

    document: dict[str, t.Any]
    api_version: str
    user_data: bool  # the document had compute.userData; its value was not kept
    warnings: list[str]


def redact_user_data(document: dict[str, t.Any]) -> tuple[dict[str, t.Any], bool]:
    """Return the document with compute.userData's value replaced by None, and whether it had one."""
    compute = document.get("compute")
    if not isinstance(compute, dict) or "userData" not in compute:
        return document, False
    return {**document, "compute": {**compute, "userData": None}}, True


def fetch_instance(client: ImdsClient, probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
                   dmi_path: str = DMI_ASSET_TAG_PATH) -> dict[str, t.Any]:
    """Fetch /metadata/instance once; return a cache entry (an answer or an error, never raises)."""
    try:
        response = request_on_azure(client, lambda first: client.instance(first_timeout=first),
                                    probe_timeout=probe_timeout, dmi_path=dmi_path).response
    except NotOnAzure as exc:
        return {"error": {"message": exc.reason, "hint": exc.hint, "not_azure": True}}
    except ImdsError as exc:
        return {"error": {"message": str(exc), "hint": "", "not_azure": False, "status": exc.status,
                          "kind": exc.kind, "api_version": exc.api_version}}
    document = response.data
    problem = None
    if not isinstance(document, dict) or not ("compute" in document or "network" in document):
        problem = "no compute or network object"
    else:
        try:
            check_tree(document)  # nesting Ansible cannot show or cache, NaN...: the normalizer's rule
        except ImdsDocumentError as exc:
            problem = str(exc)
    if problem:
        return {"error": {"message": f"IMDS at {client.endpoint} (api-version {response.api_version}) answered "
                                     "/metadata/instance with something that is not an instance document "
                                     f"({problem}).", "hint": "", "not_azure": False}}
    redacted, had_user_data = redact_user_data(document)
    return {"document": redacted, "api_version": response.api_version, "user_data": had_user_data,
            "warnings": list(response.warnings)}


def entry_result(entry: dict[str, t.Any]) -> InstanceEntry:
    """Turn a cache entry into an InstanceEntry, or raise what it recorded."""
    error = entry.get("error")
    if isinstance(error, dict):
        if error.get("not_azure"):
            raise NotOnAzure(str(error.get("message")), str(error.get("hint") or ""))
        raise ImdsError(str(error.get("message")), status=error.get("status"),
                        api_version=error.get("api_version"), kind=str(error.get("kind") or "http"))
    return InstanceEntry(entry["document"], entry["api_version"], bool(entry.get("user_data")),
                         list(entry.get("warnings") or []))


class InstanceCache:
    """The live instance document of one run, shared by its processes (see the module doc).

    ``directory`` is the run's private temp folder (None: this process only); ``ttl``
    in seconds (0: no cache, every call fetches); ``lock_wait`` bounds how long a
    process waits for another that is fetching, after which it fetches itself.
    """

    def __init__(self, directory: str | None, ttl: float, lock_wait: float,
                 clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.directory = directory
        self.ttl = float(ttl)
        self.lock_wait = float(lock_wait)
        self.clock = clock
        self.sleep = sleep

    def name(self, settings: LiveSettings) -> str:
        key = f"{settings.endpoint.rstrip('/')}\n{settings.api_version or ''}"
        return f"imds-azure-instance-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"

    def get(self, settings: LiveSettings, fetch: t.Callable[[], dict[str, t.Any]]) -> InstanceEntry:
        """The document for ``settings``: from this process, the run's file, or ``fetch()``."""
        if self.ttl <= 0:
            return entry_result(fetch())
        name = self.name(settings)
        memory_key = f"{self.directory or ''}/{name}"
        entry = self._fresh(_MEMORY.get(memory_key), settings)
        if entry is None and self.directory is not None:
            path = os.path.join(self.directory, f"{name}.json")
            with self._locked(os.path.join(self.directory, f"{name}.lock")):
                entry = self._fresh(self._read(path), settings)
                if entry is None:
                    entry = self._stamp(fetch(), settings)
                    self._write(path, entry)
        elif entry is None:
            entry = self._stamp(fetch(), settings)
        _MEMORY[memory_key] = entry
        return entry_result(entry)

    # -- internals ----------------------------------------------------------------------

    def _stamp(self, entry: dict[str, t.Any], settings: LiveSettings) -> dict[str, t.Any]:
        return {**entry, "format": CACHE_FORMAT, "endpoint": settings.endpoint.rstrip("/"),
                "requested": settings.api_version, "fetched_at": self.clock()}

    def _fresh(self, entry: t.Any, settings: LiveSettings) -> dict[str, t.Any] | None:
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            return None
        if entry.get("endpoint") != settings.endpoint.rstrip("/") or entry.get("requested") != settings.api_version:
            return None
        fetched = entry.get("fetched_at")
        if not isinstance(fetched, (int, float)) or isinstance(fetched, bool):
            return None
        if not 0 <= self.clock() - fetched < self.ttl:
            return None
        if not isinstance(entry.get("error"), dict) and not (
                isinstance(entry.get("document"), dict) and isinstance(entry.get("api_version"), str)):
            return None
        return entry

    @staticmethod
    def _read(path: str) -> t.Any:
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write(path: str, entry: dict[str, t.Any]) -> None:
        """Write atomically, mode 0600; a cache that cannot be written only costs requests."""
        directory = os.path.dirname(path)
        try:
            fd, temp = tempfile.mkstemp(prefix=".imds-azure-", dir=directory)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(temp)

    @contextlib.contextmanager
    def _locked(self, path: str) -> t.Iterator[bool]:
        """Hold an exclusive flock on ``path`` for at most lock_wait of waiting; yield whether held."""
        try:
            import fcntl
        except ImportError:  # not POSIX: forks may each fetch once
            yield False
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield False
            return
        try:
            deadline = self.clock() + self.lock_wait
            held = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if self.clock() >= deadline:
                        break
                    self.sleep(0.02)
                except OSError:
                    break
            yield held
        finally:
            os.close(fd)  # closing releases the lock


def clear_memory() -> None:
    """Forget the documents held in this process (tests)."""
    _MEMORY.clear()
