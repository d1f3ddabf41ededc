# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The transport for Windows hosts: each HTTP attempt is one run of ``ansible.windows.win_uri`` on the host.

The IMDS client stays on the controller (versions, retries, deadline, normalizer,
messages); only the attempt travels. What ``win_uri`` does, read from its source
(``win_uri.ps1`` and ``module_utils/WebRequest.psm1`` of ansible.windows 3.3.0, the
same options since its first release, 0.2.0):

- ``url_timeout`` is whole seconds (``[Int32]``) and becomes .NET's
  ``HttpWebRequest.Timeout``, which ends at the status line and headers; the body is
  read with .NET's ``ReadWriteTimeout`` (5 minutes per read, not settable through
  win_uri). So an attempt's timeout is rounded up to the next second, and a body that
  keeps coming slowly is not cut at the deadline (docs/docsite/rst/windows.rst).
- every status in ``status_code`` is a success, any other fails the module *after*
  the body was read, with status, headers and content still in the result;
- response headers come back flattened into the result, ``-`` removed and the name
  snake_cased (``Retry-After`` as ``retry_after``, ``content-length`` as
  ``contentlength``), beside properties of .NET's response (``content_length`` is
  ``-1`` without the header, ``content_type`` and ``content_encoding`` empty);
- the body comes back as text, decoded as UTF-8 with invalid bytes replaced by U+FFFD,
  and read whole, however large (so ``max_bytes`` is enforced here, after the fact);
- a connection failure or timeout fails the module with .NET's message, prefixed with
  ``Unhandled exception occurred when sending web request. Exception:``.
"""

from __future__ import annotations

import math
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._http import HttpResponse, Transport, TransportError

WIN_URI = "ansible.windows.win_uri"
# Every status is a success for win_uri, so that the client decides. A status from 600
# up fails win_uri with the answer still in its result, which response_from() reads.
EVERY_STATUS = list(range(100, 600))
NOT_IN_LIST = "is not in list of valid status codes"
# The response headers the client reads, by their name once win_uri has flattened it
# (without "-" and "_", lower case: both "Content-Type" and "content-type" arrive).
_HEADERS = {name.replace("-", ""): name for name in
            ("content-encoding", "content-length", "content-type", "retry-after", "transfer-encoding")}
# .NET's messages (HttpWebRequest, .NET Framework 4.x) that win_uri passes on.
DOTNET_TIMEOUT = "The operation has timed out"
DOTNET_CONNECT = "Unable to connect to the remote server"
DOTNET_RESOLVE = "The remote name could not be resolved"
DOTNET_CLOSED = "The underlying connection was closed"
_BODY_CALL = 'calling "CopyTo"'  # PowerShell's words for win_uri reading the body into memory


class WinUriError(TransportError):
    """win_uri did not run or gave no answer (refused its options, crashed): a failure of kind ``error``."""

    def __init__(self, message: str) -> None:
        super().__init__("error", message)


class WinUriTransport(Transport):
    """One attempt = one ``ansible.windows.win_uri`` run through ``execute(module, args) -> result``."""

    def __init__(self, execute: t.Callable[[str, dict[str, t.Any]], dict[str, t.Any]]) -> None:
        self._execute = execute

    def request(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                timeout: float, max_bytes: int) -> HttpResponse:
        seconds = url_timeout(timeout)
        result = self._execute(WIN_URI, win_uri_args(method, url, headers, data, seconds))
        return response_from(result, max_bytes, seconds)


def url_timeout(timeout: float) -> int:
    """win_uri takes whole seconds: the attempt's timeout rounded up, at least 1 (0 would be none)."""
    return max(1, math.ceil(timeout))


def win_uri_args(method: str, url: str, headers: dict[str, str], data: bytes | None, seconds: int) -> dict[str, t.Any]:
    """The options of one win_uri run: no proxy, no redirect, the body back whatever the status."""
    args: dict[str, t.Any] = {
        "url": url,
        "method": method,
        "headers": dict(headers),
        "use_proxy": False,
        "follow_redirects": "none",
        "url_timeout": seconds,
        "return_content": True,
        "status_code": EVERY_STATUS,
    }
    if data is not None:
        args["body"] = data.decode("utf-8")  # the client sends JSON (ASCII); win_uri sends a string as UTF-8
    return args


def response_from(result: t.Mapping[str, t.Any], max_bytes: int, seconds: int = 0) -> HttpResponse:
    """win_uri's result as the client's HttpResponse; else TransportError (WinUriError when win_uri did not run)."""
    status = result.get("status_code")
    answered = "content" in result and isinstance(status, int) and not isinstance(status, bool)
    message = str(result.get("msg") or "")
    if result.get("failed") is True and not (answered and NOT_IN_LIST in message):
        raise _failure(message, result, seconds)
    if not answered:
        if isinstance(status, str):  # a response header named Status-Code flattened over the real status
            raise TransportError("protocol", "the answer carried a header that win_uri reports in place of the "
                                             "status (status_code)")
        raise WinUriError(f"{WIN_URI} returned no status and content: {_shown(result)}")
    code: int = result["status_code"]  # an int: `answered` says so
    content = result["content"]
    body = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else b""
    if len(body) > max_bytes:
        raise TransportError("too_large", f"the response body (status {code}) is larger than {max_bytes} bytes "
                                          "(win_uri read it whole on the host)")
    headers = _headers(result)
    if 200 <= code < 300 and "\ufffd" in content and headers.get("content-encoding", "identity") in ("", "identity"):
        from ansible_collections.imds.azure.plugins.module_utils._client import BodyError

        raise BodyError("not_utf8", f"win_uri replaced bytes with U+FFFD at character {content.index(chr(0xFFFD))}")
    return HttpResponse(code, headers, body)


def _headers(result: t.Mapping[str, t.Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in result.items():
        name = _HEADERS.get(key.replace("_", "").lower()) if isinstance(key, str) else None
        if name is None or value is None or value == "" or (name == "content-length" and value == -1):
            continue
        headers[name] = str(value).strip().lower() if name in ("content-encoding", "transfer-encoding") else str(value)
    return headers


def _failure(message: str, result: t.Mapping[str, t.Any], seconds: int) -> TransportError:
    """A failed win_uri run as TransportError (the request failed) or WinUriError (win_uri did not run)."""
    detail = message.partition("Exception: ")[2] if message.startswith("Unhandled exception") else ""
    if not detail:
        stderr = str(result.get("module_stderr") or "").strip()
        return WinUriError(f"{WIN_URI} failed: {message or _shown(result)}" + (f" (stderr: {stderr})" if stderr else ""))
    reason = _inner(detail)
    if DOTNET_TIMEOUT in detail:
        return TransportError("timeout", f"timed out after win_uri's url_timeout of {seconds} s ({reason})")
    if DOTNET_CONNECT in detail:
        return TransportError("unreachable", f"could not connect: nothing listens there, or there is no route to it "
                                             f"(win_uri does not say which) ({reason})")
    if DOTNET_RESOLVE in detail:
        return TransportError("unreachable", f"the endpoint's name could not be resolved ({reason})")
    if "protocol violation" in detail:
        return TransportError("protocol", f"not a valid HTTP answer ({reason})")
    if _BODY_CALL in detail:
        if "forcibly closed" in detail:
            return TransportError("reset", f"connection reset while win_uri read the body ({reason})")
        if "closed" in detail:
            return TransportError("truncated", f"the response was cut short: the connection closed while win_uri read "
                                               f"the body ({reason})")
    if DOTNET_CLOSED in detail or "forcibly closed" in detail:
        return TransportError("reset", f"connection reset or closed before the answer ({reason})")
    return TransportError("error", f"win_uri: {reason}")


def _inner(detail: str) -> str:
    """.NET's own message, without PowerShell's 'Exception calling "X" with "N" argument(s): "..."' wrapper."""
    head, separator, rest = detail.strip().partition('argument(s): "')
    if separator and head.startswith("Exception calling") and rest.endswith('"'):
        return rest[:-1]
    return detail.strip()


def _shown(result: t.Mapping[str, t.Any]) -> str:
    keys = ", ".join(sorted(str(key) for key in result)[:12])
    return f"a result with {keys or 'nothing'}"
