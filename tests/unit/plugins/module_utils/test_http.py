"""Both transports against real sockets on 127.0.0.1 that misbehave in scripted ways."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from ansible_collections.imds.azure.plugins.module_utils._http import (
    FetchUrlTransport, OpenUrlTransport, TransportError, classify_error)

TRANSPORTS = [FetchUrlTransport, OpenUrlTransport]


class RawServer:
    """Accepts connections and runs `handler(conn)` for each, in a thread."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.handler = handler
        self.requests = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self):
        while not self.stopping:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.decode("latin-1"))
                try:
                    self.handler(conn)
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def server():
    servers = []

    def make(handler):
        s = RawServer(handler)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def reply(status=200, body=b"{}", headers=()):
    def handler(conn):
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return handler


def get(transport_cls, url, timeout=2.0, max_bytes=1 << 20):
    return transport_cls().request("GET", url + "/metadata/instance", {"Metadata": "true"}, None, timeout, max_bytes)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ok_and_headers_sent(server, transport):
    s = server(reply(200, b'{"a": 1}', ["X-Test: yes"]))
    r = get(transport, s.url)
    assert r.status == 200 and r.body == b'{"a": 1}' and r.headers["x-test"] == "yes"
    assert "Metadata: true" in s.requests[0]
    assert "x-forwarded-for" not in s.requests[0].lower()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_error_status_returns_body(server, transport):
    s = server(reply(429, b'{"error": "slow down"}', ["Retry-After: 2"]))
    r = get(transport, s.url)
    assert r.status == 429 and b"slow down" in r.body and r.headers["retry-after"] == "2"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirect_not_followed(server, transport):
    target = server(reply(200, b"{}"))
    s = server(reply(302, b"", [f"Location: {target.url}/elsewhere"]))
    r = get(transport, s.url)
    assert r.status == 302
    assert target.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_environment_ignored(server, transport, monkeypatch):
    proxy = server(reply(200, b'{"proxy": true}'))
    real = server(reply(200, b'{"proxy": false}'))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.setenv("no_proxy", "")
    assert get(transport, real.url).body == b'{"proxy": false}'
    assert proxy.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused(transport):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(TransportError) as exc:
        get(transport, f"http://127.0.0.1:{port}")
    assert exc.value.kind == "refused"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_never_answers(server, transport):
    s = server(lambda conn: time.sleep(1.5))
    start = time.monotonic()
    with pytest.raises(TransportError) as exc:
        get(transport, s.url, timeout=0.5)
    assert exc.value.kind == "timeout" and time.monotonic() - start < 1.4


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dribble_meets_deadline(server, transport):
    def dribble(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for dummy in range(100):
            conn.sendall(b" ")
            time.sleep(0.1)
    s = server(dribble)
    start = time.monotonic()
    with pytest.raises(TransportError) as exc:
        get(transport, s.url, timeout=1.0)
    assert exc.value.kind == "timeout"
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_truncated(server, transport):
    def truncated(conn):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"compute": ')
    s = server(truncated)
    with pytest.raises(TransportError) as exc:
        get(transport, s.url)
    assert exc.value.kind == "truncated"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_large(server, transport):
    s = server(reply(200, b"x" * 5000))
    with pytest.raises(TransportError) as exc:
        get(transport, s.url, max_bytes=1000)
    assert exc.value.kind == "too_large"


def _rst(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reset_before_headers(server, transport):
    s = server(_rst)
    with pytest.raises(TransportError) as exc:
        get(transport, s.url)
    assert exc.value.kind == "reset"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reset_mid_body(server, transport):
    def mid(conn):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"compute":')
        time.sleep(0.1)
        _rst(conn)
    s = server(mid)
    with pytest.raises(TransportError) as exc:
        get(transport, s.url)
    assert exc.value.kind in ("reset", "truncated")


@pytest.mark.parametrize("exc, kind", [
    (OSError("Request failed: <urlopen error [Errno 101] Network is unreachable>"), "unreachable"),
    (OSError("Request failed: <urlopen error [Errno 113] No route to host>"), "unreachable"),
    (OSError("Request failed: <urlopen error timed out>"), "timeout"),
    (OSError("Connection failure: [Errno 104] Connection reset by peer"), "reset"),
    (OSError("Request failed: <urlopen error [Errno 111] Connection refused>"), "refused"),
    (OSError("Connection failure: Remote end closed connection without response"), "reset"),
    (OSError("something else"), "error"),
])
def test_classify_fetch_url_messages(exc, kind):
    """fetch_url reports failures as text; the kinds the client acts on must survive that."""
    assert classify_error(exc).kind == kind
