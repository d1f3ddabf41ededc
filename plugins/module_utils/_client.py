# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The IMDS client: the one place that speaks to the Instance Metadata Service.

It builds each request (the ``Metadata: true`` header, a fresh request id, the
api-version), negotiates the api-version when IMDS refuses one, retries what IMDS says
to retry, keeps to IMDS's 5 requests per second, and turns every failure into an
``ImdsError`` whose one-line message says what to do. One logical call never takes
longer than ``retry_timeout`` plus one request's timeout, whatever the server does:
negotiation, waits for the rate limit and back-off all count.

What only an error needs (the messages, the back-off's randomness, HTTP-date parsing)
is imported when an error happens, so that a gather that succeeds compiles none of it.
"""

from __future__ import annotations

import json
import math
import os
import time
import typing as t
from urllib.parse import urlencode

from ansible_collections.imds.azure.plugins.module_utils import _options
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._http import Transport, TransportError
from ansible_collections.imds.azure.plugins.module_utils._versions import NEWEST, newest_common

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64  # an instance document is 8 levels deep
MIN_DELAY = 0.25  # seconds, the floor of every back-off delay
BACKOFF_CAP = 8.0
TRANSPORT_RETRIES = 2  # a reset or a cut-short body may be a blip; a dead endpoint is not


class RetryPolicy(t.NamedTuple):
    """What one call retries: statuses, transport failure kinds, and how many of those."""

    statuses: frozenset[int]
    transport: frozenset[str]
    transport_retries: int


RETRY = RetryPolicy(frozenset((410, 429, 500, 502, 503, 504)), frozenset(("reset", "truncated")), TRANSPORT_RETRIES)
# Managed identity tokens: Microsoft says a 404 ("IMDS endpoint is updating") and a timeout
# are to be retried with exponential back-off, like 410, 429 and 5xx.
TOKEN_RETRY = RetryPolicy(RETRY.statuses | {404}, RETRY.transport | {"timeout"}, 1000)


class ImdsResponse:
    """What a call produced: the parsed JSON (or text), its status and api-version."""

    __slots__ = ("data", "status", "api_version", "url", "attempts", "warnings")

    def __init__(self, data: t.Any, status: int, api_version: str | None, url: str, attempts: int,
                 warnings: list[str] | None = None) -> None:
        self.data = data
        self.status = status
        self.api_version = api_version
        self.url = url
        self.attempts = attempts
        self.warnings = warnings or []


class BodyError(Exception):
    """A 2xx answer whose body cannot be used; ``code`` names the problem for _messages."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


class ImdsClient:
    """Calls to one IMDS endpoint through one transport.

    ``known_versions``: the api-versions, oldest first, of an API versioned apart from the
    instance metadata (scheduled events); the client then asks for the newest of them and
    negotiates only among them. ``limiter``: the rate limiter (by default one shared by the
    user's processes through a file, created at the first request).
    """

    def __init__(self, transport: Transport, endpoint: str = _options.DEFAULT_ENDPOINT, api_version: str | None = None,
                 timeout: float = _options.DEFAULT_TIMEOUT, retry_timeout: float = _options.DEFAULT_RETRY_TIMEOUT,
                 limiter: t.Any = None, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep,
                 known_versions: t.Sequence[str] | None = None) -> None:
        try:
            self.endpoint = _options.endpoint(endpoint)
            pinned = _options.api_version(api_version)
            self.timeout = _options.seconds(timeout, "timeout", above_minimum=True, maximum=_options.MAX_TIMEOUT)
            self.retry_timeout = _options.seconds(retry_timeout, "retry_timeout")
        except _options.OptionError as exc:
            raise ImdsError(str(exc), kind="config") from None
        self.pinned = pinned is not None
        self.known_versions = tuple(known_versions) if known_versions else None
        self.api_version = pinned or (self.known_versions[-1] if self.known_versions else NEWEST)
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self._limiter = limiter
        self.answered = False  # IMDS has answered this client (any status): the route to it works

    @property
    def is_default_endpoint(self) -> bool:
        return _options.is_default_endpoint(self.endpoint)

    @property
    def limiter(self) -> t.Any:
        """The rate limiter, made at the first request (its module is not needed before)."""
        if self._limiter is None:
            from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimiter

            # one window per VM's IMDS, however the play spells its address
            key = _options.DEFAULT_ENDPOINT if self.is_default_endpoint else self.endpoint
            self._limiter = RateLimiter(key, clock=self.clock, sleep=self.sleep)
        return self._limiter

    # -- calls ------------------------------------------------------------------------------

    def instance(self, path: str = "", fmt: str = "json", first_timeout: float | None = None) -> ImdsResponse:
        """GET /metadata/instance[/path]; ``fmt="text"`` asks IMDS for ``format=text``."""
        below = path.strip("/")
        return self.get(f"/metadata/instance{'/' + below if below else ''}",
                        {"format": "text"} if fmt == "text" else None, fmt=fmt, first_timeout=first_timeout)

    def get(self, path: str, params: dict[str, str] | None = None, *, fmt: str = "json", versioned: bool = True,
            first_timeout: float | None = None, policy: RetryPolicy = RETRY,
            until: float | None = None) -> ImdsResponse:
        return self.call("GET", path, params, fmt=fmt, versioned=versioned, first_timeout=first_timeout,
                         policy=policy, until=until)

    def post(self, path: str, payload: t.Any, *, fmt: str = "text") -> ImdsResponse:
        """POST ``payload`` as JSON (scheduled events answer an approval with an empty body)."""
        return self.call("POST", path, data=json.dumps(payload).encode("utf-8"), fmt=fmt)

    def call(self, method: str, path: str, params: dict[str, str] | None = None, *, data: bytes | None = None,
             fmt: str = "json", versioned: bool = True, first_timeout: float | None = None,
             policy: RetryPolicy = RETRY, until: float | None = None) -> ImdsResponse:
        """One logical request: attempts, negotiation and back-off under one deadline. Raises ImdsError.

        No attempt starts after ``retry_timeout``; none ends after ``retry_timeout`` plus the
        longest attempt timeout (``timeout``, or ``first_timeout`` for the first attempt).
        ``until`` (on the client's clock) brings that deadline forward, so that a call made
        after another shares the first one's: no retry starts after ``until``, no attempt
        ends after ``until`` plus its timeout.
        """
        started = self.clock()
        retry_until = started + self.retry_timeout if until is None else min(until, started + self.retry_timeout)
        give_up_at = retry_until + max(self.timeout, first_timeout or 0.0)
        version = self.api_version if versioned else None
        backoff = _Backoff()
        attempts = transport_failures = 0
        negotiated = False
        while True:
            attempts += 1
            url = self._url(path, params, version)
            timeout = first_timeout if first_timeout and attempts == 1 else self.timeout
            try:
                response = self._send(method, url, data, timeout, give_up_at)
                self.answered = True
                if 200 <= response.status < 300:
                    value, duplicates = _parse(response, fmt)
                    warnings = [_duplicates_warning(url, duplicates)] if duplicates else []
                    return ImdsResponse(value, response.status, version, url, attempts, warnings)
            except TransportError as exc:
                transport_failures += 1
                if exc.kind in policy.transport and transport_failures <= policy.transport_retries:
                    delay = min(backoff.next(), retry_until - self.clock())
                    if delay > 0:
                        self.sleep(delay)
                        continue
                raise self._failure("transport", exc, url, version, attempts) from None
            except BodyError as exc:
                raise self._failure("body", exc, url, version, attempts) from None
            status = response.status
            text, offered = _error_text(response)
            if (status == 400 and versioned and not negotiated and not self.pinned
                    and (offered or (text is not None and "api-version" in text))):
                negotiated = True
                better = self._newest_served(offered, give_up_at)
                if better and better != version:
                    version = self.api_version = better  # later calls of this client start with it
                    continue
            if status in policy.statuses:
                asked = retry_after_seconds(response.headers.get("retry-after"))
                remaining = retry_until - self.clock()
                if remaining > 0 and (asked is None or asked <= remaining):
                    # Retry-After may lengthen the back-off, never shorten it below its floor
                    self.sleep(min(max(backoff.next(), asked or 0.0), remaining))
                    continue
                raise self._failure("gave_up", response, url, version, attempts, text=text, offered=offered,
                                    retry_after=asked if remaining > 0 else None)
            raise self._failure("status", response, url, version, attempts, text=text, offered=offered)

    # -- internals --------------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, str] | None, version: str | None) -> str:
        query = dict(params or {})
        if version:
            query["api-version"] = version
        return f"{self.endpoint}{path}" + (f"?{urlencode(query)}" if query else "")

    def _send(self, method: str, url: str, data: bytes | None, timeout: float, give_up_at: float) -> t.Any:
        """One attempt through the rate limit, cut to what is left before ``give_up_at``."""
        from_limiter = _rate_limit_errors()
        try:
            ticket = self.limiter.acquire(give_up_at, hold=timeout + 1.0)
        except from_limiter as exc:
            raise TransportError("rate_limit", str(exc)) from None
        try:
            left = min(timeout, give_up_at - self.clock())
            if left <= 0:
                raise TransportError("timeout", "timed out: no time was left within retry_timeout and timeout")
            headers = {"Metadata": "true", "x-ms-client-request-id": _request_id()}
            if data is not None:
                headers["Content-Type"] = "application/json"
            return self.transport.request(method, url, headers, data, left, MAX_BODY_BYTES)
        finally:
            self.limiter.done(ticket)

    def _newest_served(self, offered: list[str] | None, give_up_at: float) -> str | None:
        """The newest api-version both sides know: from the 400's list, else from /metadata/versions."""
        if offered:
            if self.known_versions is None:
                return newest_common(offered)
            return max((v for v in offered if v in self.known_versions), default=None)
        if self.known_versions is not None:  # /metadata/versions lists instance versions only
            return None
        try:
            response = self._send("GET", f"{self.endpoint}/metadata/versions", None, self.timeout, give_up_at)
            listed = json.loads(response.body.decode("utf-8")).get("apiVersions") if response.status == 200 else None
        except (TransportError, ValueError, AttributeError, RecursionError):
            return None
        return newest_common(v for v in listed if isinstance(v, str)) if isinstance(listed, list) else None

    def _failure(self, what: str, cause: t.Any, url: str, version: str | None, attempts: int,
                 **details: t.Any) -> ImdsError:
        from ansible_collections.imds.azure.plugins.module_utils import _messages

        return _messages.failure(self, what, cause, url, version, attempts, **details)


class _Backoff:
    """Full-jitter exponential back-off with a floor: MIN_DELAY + uniform(0, min(cap, 2**n))."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> float:
        import random

        self.count += 1
        return MIN_DELAY + random.uniform(0.0, min(BACKOFF_CAP, 2.0 ** min(self.count - 1, 16)))


def _duplicates_warning(url: str, keys: list[str], shown: int = 5) -> str:
    """One warning for every key sent twice, however many: at most ``shown`` of them, escaped and shortened."""
    from ansible_collections.imds.azure.plugins.module_utils._text import printable

    names = ", ".join(f"'{printable(key, 60)}'" for key in keys[:shown])
    if len(keys) == 1:
        return f"IMDS at {url} named the key {names} twice in one object; the last value was used."
    more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
    return f"IMDS at {url} named the keys {names}{more} twice in one object each; the last values were used."


def _rate_limit_errors() -> type[Exception]:
    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimitTimeout

    return RateLimitTimeout


def _request_id() -> str:
    """A random (version 4) UUID for x-ms-client-request-id, without importing uuid."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds (a number, or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (OverflowError, OSError, ValueError):
        return None


def _error_text(response: t.Any) -> tuple[str | None, list[str] | None]:
    """The ``error`` text and the ``newest-versions`` list of an IMDS error body, if it has them."""
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None, None
    try:
        doc = _loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, BodyError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    error = doc.get("error")
    if isinstance(error, dict):  # identity errors: {"error": {"message": ...}} or {"error": "invalid_request", ...}
        error = error.get("message")
    text = error if isinstance(error, str) else None
    if isinstance(doc.get("error_description"), str):
        text = f"{text}: {doc['error_description']}" if text else doc["error_description"]
    newest = doc.get("newest-versions")
    versions = [v for v in newest if isinstance(v, str)] if isinstance(newest, list) else None
    return text, versions


def _parse(response: t.Any, fmt: str) -> tuple[t.Any, list[str]]:
    """The body of a 2xx answer as text or JSON, and the keys that came twice in one object.

    Raises BodyError, or TransportError for a body cut short.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise BodyError("encoded", encoding)
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("not_utf8", f"{exc.reason} at byte {exc.start}") from None
    if fmt == "text":
        return text, []
    duplicates: list[str] = []
    try:
        value = _loads(text, duplicates)
    except ValueError as exc:
        # a body framed by Content-Length or chunks arrived whole (the transport checks); one
        # delimited by the connection's end may have been cut short on the way
        framed = "content-length" in response.headers or "chunked" in response.headers.get("transfer-encoding", "")
        if not framed and _cut_short(text):
            raise TransportError("truncated", f"the answer ended after {len(response.body)} bytes, in the "
                                              "middle of its JSON document") from None
        raise BodyError("not_json", f"{exc}|{text[:60]}") from None
    return value, list(dict.fromkeys(duplicates))


def _loads(text: str, duplicates: list[str] | None = None) -> t.Any:
    """Strict JSON: no NaN or Infinity, no number that overflows, at most MAX_JSON_DEPTH deep."""
    seen = duplicates if duplicates is not None else []
    try:
        value = json.loads(text, object_pairs_hook=lambda pairs: _last_wins(pairs, seen),
                           parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise BodyError("too_deep", str(MAX_JSON_DEPTH)) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise BodyError("too_deep", str(MAX_JSON_DEPTH))
    return value


def _no_constant(name: str) -> t.NoReturn:
    raise BodyError("not_standard", name)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyError("not_standard", text[:40])
    return value


def _deeper_than(value: t.Any, limit: int) -> bool:
    """Whether ``value`` nests objects and lists more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: t.Iterable[t.Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _cut_short(text: str) -> bool:
    """Whether ``text`` stops inside an unfinished JSON object, list or string (a cut-short body)."""
    depth = 0
    in_string = escaped = False
    started = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            started = True
        elif char in "]}":
            depth -= 1
            if depth < 0:
                return False
    return started and (depth > 0 or in_string)


def _last_wins(pairs: list[tuple[str, t.Any]], duplicates: list[str]) -> dict[str, t.Any]:
    """Build a JSON object as json.loads does (the last value wins), noting repeated keys."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicates.extend(pair[0] for pair in pairs if pair[0] in seen or seen.add(pair[0]))  # type: ignore[func-returns-value]
    return result
