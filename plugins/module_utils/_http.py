# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The transport adapter: one HTTP attempt, whatever carries it.

The IMDS client hands a ``Transport`` one request at a time and gets back an
``HttpResponse`` for any HTTP status, or a ``TransportError`` when there is no usable
answer. Every transport keeps the same promises:

- no proxy, whatever the environment says (IMDS refuses proxied requests, and a proxy
  must never see them);
- no redirect (IMDS never redirects, so a 3xx is an answer the client reports);
- one deadline for the whole attempt: connecting, sending, the status line, the headers
  and the body, however slowly a server dribbles them;
- at most ``max_bytes`` of body, whatever the status, so that a huge error page costs no
  more memory than a normal document.

``HttpClientTransport`` is the standard library's ``http.client``, used by modules on
the host and by the lookup on the controller: plain HTTP to a link-local address needs
neither TLS nor proxy machinery. The action plugins carry attempts to Windows hosts
through ``ansible.windows.win_uri`` (plugins/plugin_utils/_win_uri.py), behind the same
interface.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import typing as t

READ_CHUNK = 64 * 1024
MAX_INTERIM = 8  # 1xx answers (102 Processing, 103 Early Hints) skipped before the final one
_MAX_LINE = 65536
_MAX_HEADERS = 100


class TransportError(Exception):
    """No usable HTTP answer. ``kind`` says why, the message says it in words.

    Kinds: ``timeout``, ``refused``, ``reset``, ``unreachable``, ``truncated``,
    ``too_large``, ``protocol`` (not a valid HTTP answer), ``error`` (anything else).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HttpResponse:
    """A complete answer: status, lower-cased headers, the body as bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Transport:
    """Send one request; return an HttpResponse for any HTTP status, else raise TransportError.

    ``timeout`` is the whole time the attempt may take, in seconds.
    """

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        raise NotImplementedError


class HttpClientTransport(Transport):
    """``http.client`` with one deadline over connect, send, headers and body."""

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        deadline = time.monotonic() + timeout
        host, port, target = _split(url)
        connection = _Connection(host, port, deadline)
        phase = "while connecting"
        try:
            connection.connect()
            phase = "while sending the request"
            connection.request(method, target, body=data, headers=headers)
            phase = "waiting for the status line and headers"
            response = connection.getresponse()
            phase = "while reading the response body"
            body = _read_body(response, max_bytes)
            return HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        except TransportError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # every socket and HTTP failure
            failure = classify_error(exc)
            if failure.kind == "timeout":
                failure = TransportError("timeout", f"timed out {phase}")
            raise failure from None
        finally:
            connection.close()


def _split(url: str) -> tuple[str, int, str]:
    """``http://host:port/path?query`` -> (host, port, "/path?query")."""
    rest = url.partition("://")[2]
    netloc, slash, path = rest.partition("/")
    host, port = netloc, 80
    if netloc.startswith("["):
        host, _bracket, tail = netloc[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif ":" in netloc:
        host, _colon, number = netloc.rpartition(":")
        port = int(number)
    return host, port, slash + path if slash else "/"


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The whole body (any status), or TransportError past ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(READ_CHUNK)
        if not chunk:
            missing = getattr(response, "length", None)  # what Content-Length announced and never came
            if isinstance(missing, int) and missing > 0:
                raise TransportError("truncated", f"the response ended after {size} bytes of the body, "
                                                  f"{missing} fewer than its Content-Length")
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise TransportError("too_large", f"the response body (status {response.status}) is larger than "
                                              f"{max_bytes} bytes")
        chunks.append(chunk)


class _DeadlineSocket(socket.socket):
    """A socket whose every send and receive ends by one deadline (time.monotonic())."""

    deadline = 0.0

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.settimeout(left)

    def recv_into(self, buffer: t.Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(bufsize, flags)

    def sendall(self, data: t.Any, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)

    def send(self, data: t.Any, flags: int = 0) -> int:
        self._arm()
        return super().send(data, flags)


def _resolve(host: str, port: int, deadline: float) -> list[tuple[t.Any, ...]]:
    """getaddrinfo for ``host``: at once for an address, within the deadline for a name."""
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    outcome: list[t.Any] = []

    def run() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, name="imds-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise TransportError("timeout", f"timed out resolving {host}")
    if isinstance(outcome[0], OSError):
        raise TransportError("unreachable", f"cannot resolve {host} ({outcome[0]})")
    return outcome[0]


class _Response(http.client.HTTPResponse):
    """An answer whose interim 1xx responses (102, 103...) are skipped like 100 Continue."""

    def _read_status(self) -> tuple[str, int, str]:
        for _interim in range(MAX_INTERIM + 1):
            version, status, reason = super()._read_status()  # type: ignore[misc]  # private, not in typeshed
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            _skip_headers(self.fp)
        raise TransportError("protocol", f"more than {MAX_INTERIM} interim (1xx) answers before a final one")


def _skip_headers(fp: t.Any) -> None:
    for _count in range(_MAX_HEADERS + 1):
        line = fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise TransportError("protocol", "a header line longer than 64 KiB")
        if line in (b"\r\n", b"\n", b""):
            return
    raise TransportError("protocol", f"more than {_MAX_HEADERS} headers")


class _Connection(http.client.HTTPConnection):
    """HTTPConnection over a _DeadlineSocket. It never reads proxy settings."""

    response_class = _Response

    def __init__(self, host: str, port: int, deadline: float) -> None:
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self.deadline = deadline

    def connect(self) -> None:
        last: OSError | None = None
        for family, kind, proto, _name, address in _resolve(self.host, self.port, self.deadline):
            sock = _DeadlineSocket(family, kind, proto)
            sock.deadline = self.deadline
            try:
                sock._arm()
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            return
        raise last if last is not None else TransportError("unreachable", f"no address for {self.host}")


_UNREACHABLE_ERRNOS = frozenset((51, 65, 101, 113, 10051, 10065))  # ENETUNREACH, EHOSTUNREACH (BSD, Linux, Windows)


def classify_error(exc: BaseException) -> TransportError:
    """Turn a socket or http.client exception into a TransportError."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransportError("timeout", "timed out")
    if isinstance(exc, ConnectionRefusedError):
        return TransportError("refused", "connection refused")
    if isinstance(exc, http.client.RemoteDisconnected):
        return TransportError("reset", "the connection was closed without an answer")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return TransportError("reset", "connection reset by the peer")
    if isinstance(exc, http.client.IncompleteRead):
        return TransportError("truncated", f"the response ended after {len(exc.partial)} bytes of the body"
                                           + (f", {exc.expected} more were announced" if exc.expected else ""))
    if isinstance(exc, (http.client.LineTooLong, http.client.UnknownProtocol, http.client.BadStatusLine,
                        http.client.HTTPException)):
        return TransportError("protocol", f"not a valid HTTP answer ({type(exc).__name__})")
    if isinstance(exc, OSError) and (exc.errno in _UNREACHABLE_ERRNOS):
        return TransportError("unreachable", f"no route to the endpoint ({exc.strerror or exc})")
    if isinstance(exc, OSError):
        return TransportError("error", str(exc.strerror or exc))
    if isinstance(exc, ValueError):  # http.client refuses to send, e.g. a URL with control characters
        return TransportError("error", f"the request could not be sent ({type(exc).__name__})")
    return TransportError("error", type(exc).__name__)
