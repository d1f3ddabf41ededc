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
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from ._faults import WIRE_SWITCHES
from ._replies import Reply
from ._tables import MAX_REQUEST_BODY

# poll() flags that say the client closed its end or the connection broke (POLLRDHUP: Linux)
_GONE = getattr(select, "POLLRDHUP", 0) | getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0)

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

    def handle(self) -> None:
        emu = self.server.emulator
        if emu._muted():
            # accept, and never read a byte, until the client leaves or the emulator stops
            entry = {"time": time.monotonic(), "method": "", "path": "", "query": {}, "headers": {}, "status": 0,
                     "client": self.client_address[0], "muted": True}
            emu._log(entry)
            self.close_connection = True
            while not self._pause(0.1):
                pass
            entry["ended"] = time.monotonic()
            return
        super().handle()

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
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
            return
        try:
            faults, wait, takeover, forced = emu._plan_for(path, received)
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
            if WIRE_SWITCHES.intersection(faults):
                self._write_wire(reply, faults)
            else:
                self._write(reply, faults)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        finally:
            # when the answer was over, or the client left: what a client's deadline shows
            entry["ended"] = time.monotonic()

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
                if rate is not None and self._pause(started + sent / rate - time.monotonic()):
                    self.close_connection = True
                    return
            if limit is not None and sent >= limit:
                return

    # -- a hostile server: how the answer goes on the wire -------------------------------------

    def _write_wire(self, reply: Reply, faults: Mapping[str, Any]) -> None:
        """Send ``reply`` as the wire switches say: interim answers first, any status line, reason
        and raw headers, the head and the body each at their own pace, the body framed by
        Content-Length, chunks or the connection's end, compressed, cut short or reset."""
        self.close_connection = True  # a hostile answer is the last one on its connection
        wire = _Wire(self, faults.get("reset_after"))
        head_rate = faults.get("dribble_head")
        interim = faults.get("interim")
        if interim:
            phrase = self.responses.get(interim["status"], ("Interim",))[0]
            extra = "Link: </metadata>; rel=preload\r\n" if interim["status"] == 103 else ""
            for _count in range(interim["count"]):
                if interim["interval"] and self._pause(interim["interval"]):
                    return
                if not wire.send(f"HTTP/1.1 {interim['status']} {phrase}\r\n{extra}\r\n".encode("latin-1"),
                                 head_rate):
                    return
        body: Iterable[bytes] = iter(()) if self.command == "HEAD" else reply.chunks()
        length = reply.length
        coding = faults.get("encoding") if self.command != "HEAD" else None
        if coding:
            packed = _compress(body, coding)
            body, length = iter((packed,) if packed else ()), len(packed)
        framing = faults.get("framing", "length")
        reason = faults.get("reason", self.responses.get(reply.status, ("",))[0])
        lines = [faults.get("status_line", f"HTTP/1.1 {reply.status} {reason}"),
                 f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        if reply.content_type:
            lines.append(f"Content-Type: {reply.content_type}")
        if framing == "length":
            lines.append(f"Content-Length: {length}")
        elif framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        if coding:
            lines.append(f"Content-Encoding: {coding}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
        lines.extend(f"{name}: {value}" for name, value in faults.get("raw_headers", ()))
        lines.append("Connection: close")
        if not wire.send(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"), head_rate):
            return
        cut = faults.get("truncate") or faults.get("reset") == "mid_body"
        limit = length // 2 if cut else None
        rate = faults.get("dribble")
        sent = 0
        for chunk in body:
            if limit is not None:
                chunk = chunk[:max(0, limit - sent)]
            if not chunk:
                break
            sent += len(chunk)
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if framing == "chunked" else chunk
            if not wire.send(framed, rate):
                return
        if faults.get("reset") == "mid_body":
            self._reset()
        elif framing == "chunked" and not cut:
            wire.send(b"0\r\n\r\n", rate)

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True (stop sending) as soon as the emulator stops or the client leaves."""
        stop = self.server.emulator._stop
        end = time.monotonic() + max(0.0, seconds)
        try:
            poller = select.poll()
            poller.register(self.connection, _GONE)
        except (AttributeError, OSError, ValueError):  # no poll() (Windows): only the emulator's stop
            return stop.wait(max(0.0, end - time.monotonic()))
        while True:
            if stop.is_set():
                return True
            try:
                if poller.poll(max(0, min(100, int((end - time.monotonic()) * 1000)))):
                    return True
            except (OSError, ValueError):
                return True
            if time.monotonic() >= end:
                return stop.is_set()

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


class _Wire:
    """Writes a hostile answer, each piece at its own pace, and resets after ``budget`` bytes."""

    def __init__(self, handler: _Handler, budget: int | None) -> None:
        self.handler = handler
        self.budget = budget
        self.sent = 0

    def send(self, data: bytes, rate: float | None) -> bool:
        """Send ``data`` (at ``rate`` bytes per second); False when the answer must stop here."""
        cut = self.budget is not None and self.sent + len(data) >= self.budget
        if cut:
            data = data[:max(0, self.budget - self.sent)]  # type: ignore[operator]
        started, done = time.monotonic(), 0
        while done < len(data):
            piece = data[done:] if rate is None else data[done:done + max(1, int(rate * 0.05))]
            self.handler.wfile.write(piece)
            done += len(piece)
            if rate is not None and self.handler._pause(started + done / rate - time.monotonic()):
                return False
        self.sent += done
        if cut:
            self.handler._reset()
            return False
        return True


def _compress(chunks: Iterable[bytes], coding: str) -> bytes:
    """The whole body gzip- or deflate- (zlib) compressed, read chunk by chunk."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31 if coding == "gzip" else 15)
    parts = [packer.compress(chunk) for chunk in chunks]
    parts.append(packer.flush())
    return b"".join(parts)


def make_server(host: str, port: int, emulator: "Emulator") -> _Server:
    """A server bound to ``host:port`` (IPv6 when the host has a colon) for ``emulator``."""
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), _Handler)
    server.emulator = emulator
    return server
