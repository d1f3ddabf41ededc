# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One small HTTP interface over two transports.

Inside a module requests go through ``fetch_url``; inside a controller plugin (the
lookup) through ``open_url``. Both transports share everything else: no proxy (IMDS
rejects proxied requests, and a proxy from the environment must never see them), no
redirects (IMDS never redirects, so a 3xx is an error), a size cap on the body, and a
deadline that holds for the whole response rather than for each read.
"""

from __future__ import annotations

import socket
import threading
import time
import typing as t
import urllib.error

from ansible.module_utils.common.text.converters import to_native

READ_CHUNK = 64 * 1024
# Keys that fetch_url puts in its info dict beside the (lower-cased) response headers.
_INFO_KEYS = frozenset(("body", "msg", "status", "url", "cookies", "cookies_string", "exception"))


class TransportError(Exception):
    """No usable HTTP response: the connection failed, timed out, or the body was bad.

    ``kind`` is one of ``timeout``, ``refused``, ``reset``, ``unreachable``,
    ``truncated``, ``too_large`` or ``error``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HttpResponse:
    """A complete response: status, lower-cased headers, and the body as bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def classify_error(exc: BaseException) -> TransportError:
    """Turn a socket/urllib exception (possibly wrapped) into a TransportError."""
    reason = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else None
    inner = reason if isinstance(reason, BaseException) else exc
    text = to_native(reason if reason is not None else exc)
    if isinstance(inner, (socket.timeout, TimeoutError)) or "timed out" in text:
        return TransportError("timeout", "timed out")
    if isinstance(inner, ConnectionRefusedError) or "refused" in text.lower():
        return TransportError("refused", "connection refused")
    if isinstance(inner, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)) or "reset" in text.lower():
        return TransportError("reset", "connection reset by the peer")
    if "closed" in text.lower() or "RemoteDisconnected" in type(inner).__name__:
        return TransportError("reset", f"connection closed without a response ({text})")
    if (isinstance(inner, OSError) and getattr(inner, "errno", None) in (101, 113, 65, 51)
            or "unreachable" in text.lower() or "no route to host" in text.lower()):
        return TransportError("unreachable", f"no route to the endpoint ({text})")
    return TransportError("error", text or type(inner).__name__)


def read_body(response: t.Any, max_bytes: int, deadline: float) -> bytes:
    """Read a whole body, refusing more than ``max_bytes`` and any read past ``deadline``.

    ``read1`` returns after one socket read, so a server that dribbles a byte at a
    time still meets the deadline (``read(n)`` would wait for all n bytes).
    """
    reader = getattr(response, "read1", None) or response.read
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise TransportError("timeout", "timed out while reading the response body")
            chunk = reader(READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise TransportError("too_large", f"the response body is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except TransportError:
        raise
    except Exception as exc:  # socket errors, http.client.IncompleteRead, ...
        raise classify_error(exc) from None
    body = b"".join(chunks)
    length = _content_length(response)
    if length is not None and len(body) < length:
        raise TransportError("truncated", f"the response ended after {len(body)} of {length} bytes")
    return body


def _content_length(response: t.Any) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _headers(response: t.Any) -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in response.headers.items()}
    except Exception:
        return {}


def within_deadline(call: t.Callable[[], t.Any], deadline: float) -> t.Any:
    """Return ``call()`` (connect, send, read the status line and headers), or time out at ``deadline``.

    The timeout of http.client and urllib holds for each socket operation, so a server
    that sends its headers a byte at a time would hold the call for ever. ``call`` runs
    in a daemon thread that is left behind at the deadline (the process ends it); its
    exceptions are raised here.
    """
    outcome: list[tuple[bool, t.Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to the caller
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="imds-request", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise TransportError("timeout", "timed out waiting for the status line and headers")
    succeeded, value = outcome[0]
    if succeeded:
        return value
    raise value


class Transport:
    """Send one request; return an HttpResponse for any HTTP status, else raise TransportError."""

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        raise NotImplementedError

    @staticmethod
    def _finish(response: t.Any, status: int, timeout: float, max_bytes: int, start: float) -> HttpResponse:
        try:
            body = read_body(response, max_bytes, start + timeout)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        return HttpResponse(status, _headers(response), body)


class _FetchUrlModule:
    """What fetch_url needs of a module, with its failures raised instead of exiting.

    fetch_url reports some connection errors (a reset before the headers, for one)
    through ``module.fail_json``; the client must see them to retry or explain them.
    """

    def __init__(self) -> None:
        # fetch_url reads these from the module's parameters rather than its arguments
        self.params: dict[str, t.Any] = {"follow_redirects": "none", "use_proxy": False, "use_gssapi": False}
        self.tmpdir = None

    def fail_json(self, msg: str = "", **kwargs: t.Any) -> t.NoReturn:
        raise classify_error(OSError(msg))


class FetchUrlTransport(Transport):
    """The transport for modules: ``ansible.module_utils.urls.fetch_url``."""

    def __init__(self) -> None:
        self._module = _FetchUrlModule()

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        from ansible.module_utils.urls import fetch_url  # imported only when a request is made

        start = time.monotonic()
        response, info = within_deadline(
            lambda: fetch_url(self._module, url, data=data, headers=headers, method=method, use_proxy=False,
                              timeout=timeout, force=True, use_gssapi=False, use_netrc=False, decompress=False),
            start + timeout)
        status = int(info.get("status", -1))
        if status == -1 or response is None and "body" not in info:
            raise classify_error(OSError(info.get("msg", "request failed")))
        if 200 <= status < 300 and response is not None:
            return self._finish(response, status, timeout, max_bytes, start)
        body = info.get("body") or b""
        if isinstance(body, str):
            body = body.encode("utf-8", "replace")
        headers_out = {k: v for k, v in info.items() if isinstance(v, str) and k not in _INFO_KEYS}
        return HttpResponse(status, headers_out, body[:max_bytes])


class OpenUrlTransport(Transport):
    """The transport for controller plugins: ``ansible.module_utils.urls.open_url``."""

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        from ansible.module_utils.urls import open_url

        start = time.monotonic()
        try:
            response = within_deadline(
                lambda: open_url(url, data=data, headers=headers, method=method, use_proxy=False,
                                 follow_redirects="none", timeout=timeout, force=True, use_gssapi=False,
                                 use_netrc=False, decompress=False),
                start + timeout)
        except TransportError:
            raise
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            try:
                body = read_body(exc, max_bytes, start + timeout) if exc.fp is not None else b""
            except TransportError:
                body = b""
            return HttpResponse(status, _headers(exc), body)
        except Exception as exc:
            raise classify_error(exc) from None
        return self._finish(response, int(getattr(response, "status", 200)), timeout, max_bytes, start)
