# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""The HTTP server: reads requests, applies the faults' timing, writes the answers."""
from __future__ import annotations

import select
import socket
import socketserver
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from ._replies import Reply
from ._tables import MAX_REQUEST_BODY

if TYPE_CHECKING:
    from ._emulator import Emulator


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    emulator: Emulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS query); we do not need it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "imds-emulator"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.emulator._track(self.connection, False)

    def __getattr__(self, name: str) -> Any:
        # Every method (GET, POST, DELETE, BREW...) reaches _dispatch, so that IMDS can say 405.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        emu = self.server.emulator
        received = time.monotonic()
        target = urlsplit(self.path)
        path = target.path
        query: dict[str, str] = {}
        for name, value in parse_qsl(target.query, keep_blank_values=True):
            query.setdefault(name, value)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = self._read_body()
        if body is None:
            self._write(Reply.error(413, "Request body too large"))
            return
        try:
            if path == "/_emulator" or path.startswith("/_emulator/"):
                self._write(emu.control(self.command, path, body))
                return
            entry = {"time": received, "method": self.command, "path": path, "query": query,
                     "headers": headers, "status": 0, "client": self.client_address[0]}
            faults, wait, takeover, forced = emu._plan(received)
            if wait and emu._stop.wait(wait):
                self.close_connection = True
                return
            if takeover:
                emu._log(entry)
                if faults.get("hang"):
                    self._hang()
                else:
                    self._reset()
                return
            reply = forced or emu.answer(self.command, path, query, headers, body, faults)
            entry["status"] = reply.status
            entry.update(reply.log)
            emu._log(entry)
            self._write(reply, faults)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    return data
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                if len(data) + size > MAX_REQUEST_BODY:
                    self.close_connection = True
                    return None
                data += self.rfile.read(size)
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        if length > MAX_REQUEST_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply, faults: Mapping[str, Any] | None = None) -> None:
        faults = faults or {}
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        cut = faults.get("reset") == "mid_body" or faults.get("truncate")
        if cut or self.close_connection:
            self.send_header("Connection", "close")
        chunks = iter(()) if self.command == "HEAD" else reply.chunks()
        if not cut and not faults.get("dribble") and reply.length <= 65536:
            # headers and a small body in one segment: no waiting for a delayed ACK
            self._headers_buffer.append(b"\r\n" + b"".join(chunks))
            self.flush_headers()
            return
        self.end_headers()
        limit = reply.length // 2 if cut else None
        self._send_body(chunks, limit, faults.get("dribble"))
        if faults.get("reset") == "mid_body":
            self._reset()
        elif cut:
            self.close_connection = True

    def _send_body(self, chunks: Iterable[bytes], limit: int | None, rate: float | None) -> None:
        stop = self.server.emulator._stop
        sent = 0
        started = time.monotonic()
        for chunk in chunks:
            if limit is not None:
                chunk = chunk[:max(0, limit - sent)]
            while chunk:
                if stop.is_set():
                    self.close_connection = True
                    return
                piece = chunk if rate is None else chunk[:max(1, int(rate * 0.05))]
                self.wfile.write(piece)
                sent += len(piece)
                chunk = chunk[len(piece):]
                if rate is not None:
                    stop.wait(max(0.0, started + sent / rate - time.monotonic()))
            if limit is not None and sent >= limit:
                return

    def _hang(self) -> None:
        """Hold the connection without answering until the client leaves or the server stops."""
        self.close_connection = True
        stop = self.server.emulator._stop
        while not stop.is_set():
            try:
                readable = select.select([self.connection], [], [], 0.1)[0]
                if readable and not self.connection.recv(65536):
                    return
            except (OSError, ValueError):
                return

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


def make_server(host: str, port: int, emulator: "Emulator") -> _Server:
    """A server bound to ``host:port`` (IPv6 when the host has a colon) for ``emulator``."""
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), _Handler)
    server.emulator = emulator
    return server
