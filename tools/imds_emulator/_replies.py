# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""HTTP answers: a status, headers and a body (bytes, or chunks of a known length)."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator, Mapping

from ._documents import dump_json
from ._tables import JSON_TYPE, STATUS_ERRORS


class Reply:
    """An HTTP answer: status, headers and a body (bytes, or chunks of a known length)."""

    def __init__(self, status: int, body: bytes = b"", content_type: str | None = JSON_TYPE,
                 headers: Mapping[str, str] | None = None,
                 chunks: Callable[[], Iterator[bytes]] | None = None, length: int | None = None,
                 log: Mapping[str, Any] | None = None):
        self.status = status
        self.log = dict(log or {})  # more fields for the request log entry
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self._chunks = chunks
        self.length = len(body) if chunks is None else int(length or 0)

    def chunks(self) -> Iterator[bytes]:
        if self._chunks is not None:
            return self._chunks()
        return iter((self.body,) if self.body else ())

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> "Reply":
        return cls(status, dump_json(value), JSON_TYPE, headers)

    @classmethod
    def error(cls, status: int, message: str | None = None, headers: Mapping[str, str] | None = None,
              **extra: Any) -> "Reply":
        """``{"error": message}`` plus ``extra`` members; the message defaults by status."""
        return cls.json(status, {"error": message or STATUS_ERRORS.get(status) or _reason(status), **extra},
                        headers)


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]


def padded_json(prefix: bytes, size: int) -> tuple[Callable[[], Iterator[bytes]], int]:
    """Chunks of a JSON object of exactly ``size`` bytes: ``prefix`` plus a padding string."""
    if prefix.startswith(b"{") and prefix.endswith(b"}") and len(prefix) > 2:
        head = prefix[:-1] + b',"padding":"'
    else:
        head = b'{"padding":"'
    tail = b'"}'
    if size < len(head) + len(tail):
        head = b'{"padding":"'
    if size < len(head) + len(tail):
        head, tail = b'"', b'"'
    padding = size - len(head) - len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"x" * 65536
        left = padding
        while left > 0:
            piece = block if left >= len(block) else block[:left]
            left -= len(piece)
            yield piece
        yield tail

    return chunks, size
