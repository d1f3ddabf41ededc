# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The IMDS client: the one place that speaks to the Instance Metadata Service.

It builds requests (the ``Metadata: true`` header, a request id, the api-version),
negotiates the api-version when IMDS refuses one, retries what IMDS says to retry
under one deadline on a monotonic clock, keeps to IMDS's 5 requests per second, and
turns every failure into an ImdsError whose message says what to do.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import typing as t
import uuid
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.api import generate_jittered_backoff

from ansible_collections.imds.azure.plugins.module_utils._http import Transport, TransportError
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_ENDPOINT, DEFAULT_RETRY_TIMEOUT, DEFAULT_TIMEOUT
from ansible_collections.imds.azure.plugins.module_utils._text import printable
from ansible_collections.imds.azure.plugins.module_utils._versions import NEWEST, newest_common

MAX_BODY_BYTES = 4 * 1024 * 1024
RATE_PER_SECOND = 5
MIN_DELAY = 0.25  # seconds added to each jittered back-off delay
ROUNDING = 2e-6  # the rate limit file keeps times to 6 decimals
RETRY_STATUSES = frozenset((410, 429, 500, 502, 503, 504))
TRANSPORT_RETRIES = 2  # a reset or a truncated body may be a blip; a dead endpoint is not
RETRYABLE_TRANSPORT = frozenset(("reset", "truncated"))
ROUTE_HINT = (
    "If this host is an Azure VM whose 169.254.0.0/16 route belongs to another interface "
    "(a Windows failover cluster node, a container bridge, a VPN), apply the "
    "imds.azure.route role so that 169.254.169.254 is reached through the primary NIC."
)


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


class ImdsError(Exception):
    """Any failure to get an answer from IMDS. The message is for the user."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 api_version: str | None = None, kind: str = "http") -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.api_version = api_version
        self.kind = kind  # "http", "body", or a TransportError kind

    def to_result(self) -> dict[str, t.Any]:
        """The fields a module adds to fail_json beside msg."""
        return {"url": self.url, "status": self.status, "api_version": self.api_version}


class ImdsResponse:
    """What a request produced: the parsed JSON (or text), its status and api-version."""

    __slots__ = ("data", "status", "api_version", "url", "attempts", "warnings")

    def __init__(self, data: t.Any, status: int, api_version: str | None, url: str, attempts: int,
                 warnings: list[str] | None = None) -> None:
        self.warnings = warnings or []
        self.data = data
        self.status = status
        self.api_version = api_version
        self.url = url
        self.attempts = attempts


class RateLimiter:
    """At most ``rate`` requests in any one second, shared by the processes of one user.

    Forks of a play (and two plays at once) each run their own client, so the window
    lives in a small file guarded by flock. Where the file cannot be used the limit
    still holds within this process.

    IMDS counts requests as they arrive, and a request admitted on a busy host can leave
    it much later (urllib builds an SSL context, the process waits for a CPU). So the
    client holds its place while the request is under way (``hold`` > 0) and gives it
    back with ``done()``: the request then counts for one second from its end. A place
    held by a process that died is freed after ``hold`` seconds.
    """

    POLL = 0.05  # seconds between looks at the window while requests under way fill it

    def __init__(self, key: str, rate: int = RATE_PER_SECOND, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep, directory: str | None = None,
                 hold: float = 0.0) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.hold = hold
        self._local: list[tuple[float, float | None]] = []
        self._stamp = 0.0
        name = f"imds-azure-rate-{os.getuid() if hasattr(os, 'getuid') else 0}-{uuid.uuid5(uuid.NAMESPACE_URL, key).hex[:12]}"
        self.path = os.path.join(directory or tempfile.gettempdir(), name)

    def acquire(self) -> float:
        """Wait until one more request fits in the window and record it; return its stamp.

        With ``hold`` > 0 the request keeps its place until ``done(stamp)``, or for at
        most ``hold`` seconds.
        """
        waited = 0.0
        while True:
            wait = self._update(self._admit)
            if wait is None:
                return self._stamp
            if waited >= max(self.hold, 1.0) + 1.0:  # longer than any honest window: the file lies
                return self._update(self._admit_anyway)
            self.sleep(wait)
            waited += wait

    def done(self, stamp: float | None) -> None:
        """The request admitted at ``stamp`` is over: it counts for one second from now."""
        if stamp is None:
            return

        def finish(entries: list[tuple[float, float | None]]) -> tuple[list[tuple[float, float | None]], None]:
            # this request's place: under way, admitted at ``stamp`` (the file keeps 6 decimals)
            mine = next((e for e in entries if e[1] is not None and abs(e[0] - stamp) <= ROUNDING), None)
            kept = [e for e in entries if e is not mine]
            return kept + [(self.clock(), None)], None

        self._update(finish)

    def _update(self, change: t.Callable[[list[tuple[float, float | None]]], tuple[list[tuple[float, float | None]], t.Any]]) -> t.Any:
        """Apply ``change`` to the window (in the shared file, under flock, where possible); return its result."""
        try:
            import fcntl
        except ImportError:  # not POSIX: only this process is limited
            self._local, result = change(self._current(self._local))
            return result
        try:
            # never through a link, and only our own file that nobody else may write: in a
            # shared /tmp another user can create this name first
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            self._local, result = change(self._current(self._local))
            return result
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            os.close(fd)
            self._local, result = change(self._current(self._local))
            return result
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 4096, 0).decode("ascii", "replace")
            entries, result = change(self._parse(raw))
            data = " ".join(f"{x:.6f}" if until is None else f"{x:.6f}:{until:.6f}" for x, until in entries)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data.encode("ascii"), 0)
            return result
        finally:
            os.close(fd)  # closing releases the lock

    def _parse(self, raw: str) -> list[tuple[float, float | None]]:
        """The entries of the file: ``start`` (a request that is over) or ``start:until`` (under way)."""
        entries: list[tuple[float, float | None]] = []
        for word in raw.split():
            start, _colon, until = word.partition(":")
            try:
                entries.append((float(start), float(until) if until else None))
            except ValueError:
                continue
        return self._current(entries)

    def _current(self, entries: list[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
        """The entries that still count: over for less than a second, or under way and not expired."""
        now = self.clock()
        return sorted(((x, until) for x, until in entries  # ignore stale or impossible entries
                       if x <= now + ROUNDING and (now - x < 1.0 if until is None else now < until <= x + 3600)),
                      key=lambda entry: entry[0])

    def _admit(self, entries: list[tuple[float, float | None]]) -> tuple[list[tuple[float, float | None]], float | None]:
        """Admit a request (result None) or say how long to wait before trying again."""
        entries = self._current(entries)
        now = self.clock()
        busy = sorted((now, True) if until is not None else (x, False) for x, until in entries)  # under way: busy now
        if len(busy) >= self.rate:
            blocker, under_way = busy[-self.rate]
            wait = 1.0 - (now - blocker)
            if wait > 1e-6:
                return entries, (self.POLL if under_way else wait)
        self._stamp = now
        return entries + [(now, now + self.hold if self.hold > 0 else None)], None

    def _admit_anyway(self, entries: list[tuple[float, float | None]]) -> tuple[list[tuple[float, float | None]], float]:
        now = self.clock()
        self._stamp = now
        return self._current(entries) + [(now, now + self.hold if self.hold > 0 else None)], now


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a Retry-After header: seconds, or an HTTP date. None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils  # only for the rare HTTP-date form; kept off the module's import path

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_text(body: bytes) -> tuple[str | None, list[str] | None]:
    """The ``error`` text and ``newest-versions`` list of an IMDS error body, if any (printable)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    error = doc.get("error")
    if isinstance(error, dict):  # identity errors: {"error": "invalid_request", ...}
        error = error.get("message")
    text = error if isinstance(error, str) else None
    if isinstance(doc.get("error_description"), str):
        text = f"{text}: {doc['error_description']}" if text else doc["error_description"]
    newest = doc.get("newest-versions")
    versions = [printable(v, 40) for v in newest if isinstance(v, str)] if isinstance(newest, list) else None
    return (printable(text) if text is not None else None), versions


class ImdsClient:
    """Requests to one IMDS endpoint through one transport."""

    def __init__(self, transport: Transport, endpoint: str = DEFAULT_ENDPOINT, api_version: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
                 limiter: RateLimiter | None = None, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep,
                 backoff: t.Callable[[], t.Iterator[float]] | None = None,
                 known_versions: t.Sequence[str] | None = None) -> None:
        """``known_versions``: the api-versions, oldest first, of an API versioned apart from
        the instance metadata (scheduled events). The client then asks for the newest of
        them by default and negotiates only among them; by default it uses KNOWN_VERSIONS.
        """
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImdsError(f"The endpoint {endpoint!r} is not an http:// URL with a host; "
                            f"use the default {DEFAULT_ENDPOINT} or the URL of an IMDS emulator.",
                            url=endpoint, kind="config")
        if timeout <= 0 or retry_timeout < 0:
            raise ImdsError("timeout must be greater than 0 and retry_timeout at least 0 seconds.",
                            url=endpoint, kind="config")
        self.endpoint = endpoint.rstrip("/")
        self.pinned = api_version is not None
        self.known_versions = tuple(known_versions) if known_versions else None
        self.api_version = api_version or (self.known_versions[-1] if self.known_versions else NEWEST)
        self.timeout = float(timeout)
        self.retry_timeout = float(retry_timeout)
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        # a request holds its place in the window until it is over, at most its timeout
        self.limiter = limiter or RateLimiter(self.endpoint, clock=clock, sleep=sleep, hold=self.timeout + 1.0)
        self.backoff = backoff or (lambda: generate_jittered_backoff(retries=1000, delay_base=1, delay_threshold=8))
        self.requests_sent = 0

    @property
    def is_default_endpoint(self) -> bool:
        return self.endpoint == DEFAULT_ENDPOINT

    # -- public calls -------------------------------------------------------------------

    def instance(self, path: str = "", fmt: str = "json", first_timeout: float | None = None) -> ImdsResponse:
        """GET /metadata/instance[/path]; negotiates the api-version when IMDS refuses it."""
        params = {"format": "text"} if fmt == "text" else {}
        return self.get(f"/metadata/instance{'/' + path.strip('/') if path.strip('/') else ''}",
                        params, fmt=fmt, first_timeout=first_timeout)

    def get(self, path: str, params: dict[str, str] | None = None, *, fmt: str = "json",
            versioned: bool = True, first_timeout: float | None = None) -> ImdsResponse:
        return self.call("GET", path, params, fmt=fmt, versioned=versioned, first_timeout=first_timeout)

    def post(self, path: str, payload: t.Any, params: dict[str, str] | None = None) -> ImdsResponse:
        return self.call("POST", path, params, data=json.dumps(payload).encode("utf-8"))

    def call(self, method: str, path: str, params: dict[str, str] | None = None, *, data: bytes | None = None,
             fmt: str = "json", versioned: bool = True, first_timeout: float | None = None) -> ImdsResponse:
        """One logical request: retries, version negotiation, parsing. Raises ImdsError."""
        deadline = self.clock() + self.retry_timeout
        version = self.api_version if versioned else None
        negotiated = False
        attempts = 0
        transport_failures = 0
        backoff = self.backoff()
        while True:
            url = self._url(path, params, version)
            attempts += 1
            timeout = first_timeout if (first_timeout and attempts == 1) else self.timeout
            try:
                response = self._send(method, url, data, timeout)
            except TransportError as exc:
                transport_failures += 1
                if exc.kind in RETRYABLE_TRANSPORT and transport_failures <= TRANSPORT_RETRIES:
                    delay = MIN_DELAY + float(next(backoff, 1))
                    if self.clock() + delay < deadline:
                        self.sleep(delay)
                        continue
                raise self._transport_error(exc, url, version, attempts) from None
            status = response.status
            if 200 <= status < 300:
                data, warnings = self._parse(response.body, fmt, url, version)
                return ImdsResponse(data, status, version, url, attempts, warnings)
            text, offered = _error_text(response.body)
            if status == 400 and versioned and not negotiated and not self.pinned and self._version_refused(text, offered):
                better = self._newest_known(offered) if offered else self._supported_versions()
                if better and better != version:
                    version = better
                    self.api_version = better  # later calls of this client start with it
                    negotiated = True
                    continue
            if status in RETRY_STATUSES:
                remaining = deadline - self.clock()
                delay = retry_after_seconds(response.headers.get("retry-after"))
                asked = delay if delay is not None and delay > remaining else None
                if delay is None:  # full jitter, with a floor so that retries never spin
                    delay = min(MIN_DELAY + float(next(backoff, 8)), remaining)
                if 0 < remaining and delay <= remaining:
                    self.sleep(delay)
                    continue
                raise self._status_error(status, text, url, version, attempts, gave_up=True, offered=offered,
                                         retry_after=asked)
            raise self._status_error(status, text, url, version, attempts, offered=offered)

    # -- internals ----------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, str] | None, version: str | None) -> str:
        query = dict(params or {})
        if version:
            query["api-version"] = version
        return f"{self.endpoint}{path}" + (f"?{urlencode(query)}" if query else "")

    def _send(self, method: str, url: str, data: bytes | None, timeout: float):
        stamp = self.limiter.acquire()
        self.requests_sent += 1
        headers = {"Metadata": "true", "x-ms-client-request-id": str(uuid.uuid4())}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            return self.transport.request(method, url, headers, data, timeout, MAX_BODY_BYTES)
        finally:
            self.limiter.done(stamp)

    def _newest_known(self, offered: t.Iterable[str]) -> str | None:
        """The newest of ``offered`` that this client knows."""
        if self.known_versions is None:
            return newest_common(offered)
        return max((v for v in offered if v in self.known_versions), default=None)

    def _supported_versions(self) -> str | None:
        """Ask /metadata/versions (it needs no api-version) for the versions IMDS serves."""
        if self.known_versions is not None:  # it lists instance versions only
            return None
        try:
            response = self._send("GET", f"{self.endpoint}/metadata/versions", None, self.timeout)
        except TransportError:
            return None
        if response.status != 200:
            return None
        try:
            doc = json.loads(response.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        versions = doc.get("apiVersions") if isinstance(doc, dict) else None
        return newest_common(v for v in versions if isinstance(v, str)) if isinstance(versions, list) else None

    @staticmethod
    def _version_refused(text: str | None, offered: list[str] | None) -> bool:
        return bool(offered) or (text is not None and "api-version" in text)

    @staticmethod
    def _parse(body: bytes, fmt: str, url: str, version: str | None) -> tuple[t.Any, list[str]]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImdsError(f"IMDS at {url} (api-version {version}) answered with a body that is not UTF-8 "
                            f"({exc.reason} at byte {exc.start}). Something other than IMDS answered, or the "
                            "response was damaged on the way.", url=url, status=200, api_version=version,
                            kind="body") from None
        if fmt == "text":
            return text, []
        duplicates: list[str] = []
        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: _last_wins(pairs, duplicates))
        except RecursionError:
            raise ImdsError(f"IMDS at {url} (api-version {version}) answered with JSON nested deeper than Python "
                            "can read; an instance document is a few levels deep. Something other than IMDS "
                            "answered.", url=url, status=200, api_version=version, kind="body") from None
        except ValueError as exc:
            snippet = text[:60].replace("\n", " ")
            raise ImdsError(f"IMDS at {url} (api-version {version}) answered with a body that is not JSON "
                            f"({exc}); it starts with {snippet!r}. A captive portal or proxy may have "
                            "answered instead of IMDS.", url=url, status=200, api_version=version,
                            kind="body") from None
        warnings = [f"IMDS at {url} named the key {key!r} twice in one object; the last value was used."
                    for key in dict.fromkeys(duplicates)]
        return data, warnings

    def _transport_error(self, exc: TransportError, url: str, version: str | None, attempts: int) -> ImdsError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = f"Could not get {url} (api-version {version}): {exc}{tries}."
        if exc.kind in ("timeout", "unreachable") and self.is_default_endpoint:
            message += " " + ROUTE_HINT
        elif exc.kind == "refused":
            message += " Nothing listens at that address: check the endpoint."
        elif exc.kind == "too_large":
            message += " IMDS documents are a few kilobytes; something else answered."
        return ImdsError(message, url=url, api_version=version, kind=exc.kind)

    def _status_error(self, status: int, text: str | None, url: str, version: str | None, attempts: int,
                      gave_up: bool = False, offered: list[str] | None = None,
                      retry_after: float | None = None) -> ImdsError:
        detail = f": {text}" if text else ""
        message = f"IMDS answered {status} for {url} (api-version {version}){detail}."
        if gave_up:
            waited = f"{self.retry_timeout:g}"
            spent = f"in {waited} s"
            if retry_after is not None:  # we did not wait: IMDS asked for longer than we had left
                message += (f" It asked to retry after {retry_after:g} s (Retry-After), more than is left of "
                            f"retry_timeout ({waited} s).")
                spent = "without waiting"
            if status == 410:
                message += (f" The metadata service is not ready yet; gave up after {_attempts(attempts)} {spent}. "
                            "Raise retry_timeout (Microsoft says IMDS can take up to 70 s after boot).")
            elif status == 429:
                message += (f" IMDS is throttling this VM (5 requests per second); gave up after "
                            f"{_attempts(attempts)} {spent}. Something else on the VM may be calling IMDS in a loop.")
            else:
                message += f" Gave up after {_attempts(attempts)} {spent}; IMDS may be degraded, try again later."
        elif status == 400 and (offered or (text and "api-version" in text)):
            if self.pinned:
                message += (f" The pinned api_version {version} is not served here"
                            + (f" (IMDS offers {', '.join(offered)})" if offered else "")
                            + "; pin one of those or leave api_version unset to negotiate.")
            else:
                message += " No api-version known to this collection is served here."
        elif status == 400:
            message += " The request was refused as malformed."
        elif status == 404:
            message += " That path does not exist in IMDS (paths are case-sensitive)."
        elif 300 <= status < 400:
            message += " IMDS never redirects; something between this host and IMDS did, and the redirect was not followed."
        elif status in (401, 403):
            message += " The request was not allowed."
        return ImdsError(message, url=url, status=status, api_version=version)


def _last_wins(pairs: list[tuple[str, t.Any]], duplicates: list[str]) -> dict[str, t.Any]:
    """Build a JSON object as json.loads does (the last value wins), noting repeated keys."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicates.extend(pair[0] for pair in pairs if pair[0] in seen or seen.add(pair[0]))
    return result
