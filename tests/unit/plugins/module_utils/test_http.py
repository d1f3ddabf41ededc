"""The http.client transport against real sockets on 127.0.0.1 that misbehave in scripted ways."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

import errno
import http.client

from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport, TransportError, classify_error


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


def get(url, timeout=2.0, max_bytes=1 << 20, path="/metadata/instance"):
    return HttpClientTransport().request("GET", url + path, {"Metadata": "true"}, None, timeout, max_bytes)


def raw(data):
    def handler(conn):
        conn.sendall(data)
    return handler


def test_ok_and_headers_sent(server):
    s = server(reply(200, b'{"a": 1}', ["X-Test: yes"]))
    r = get(s.url)
    assert r.status == 200 and r.body == b'{"a": 1}' and r.headers["x-test"] == "yes"
    assert "Metadata: true" in s.requests[0]
    assert "x-forwarded-for" not in s.requests[0].lower() and "proxy" not in s.requests[0].lower()
    assert s.requests[0].startswith("GET /metadata/instance HTTP/1.1\r\n")


def test_error_status_returns_body(server):
    s = server(reply(429, b'{"error": "slow down"}', ["Retry-After: 2"]))
    r = get(s.url)
    assert r.status == 429 and b"slow down" in r.body and r.headers["retry-after"] == "2"


@pytest.mark.parametrize("status", [200, 404, 500])
def test_the_size_cap_holds_for_every_status(server, status):
    """A huge error page is refused like a huge document, and the message names the body."""
    s = server(reply(status, b"x" * 300_000))
    with pytest.raises(TransportError) as exc:
        get(s.url, max_bytes=100_000)
    assert exc.value.kind == "too_large" and "body" in str(exc.value) and str(status) in str(exc.value)


def test_a_huge_chunked_error_body_stops_at_the_cap(server):
    """No Content-Length and an endless chunked 500: reading stops at the cap, not at the end."""
    def endless(conn):
        conn.sendall(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
        for dummy in range(200):  # 13 MB on offer
            conn.sendall(chunk)
    s = server(endless)
    with pytest.raises(TransportError) as exc:
        get(s.url, max_bytes=256 * 1024)
    assert exc.value.kind == "too_large"


def test_redirect_not_followed(server):
    target = server(reply(200, b"{}"))
    s = server(reply(302, b"", [f"Location: {target.url}/elsewhere"]))
    r = get(s.url)
    assert r.status == 302
    assert target.requests == []


def test_proxy_environment_ignored(server, monkeypatch):
    proxy = server(reply(200, b'{"proxy": true}'))
    real = server(reply(200, b'{"proxy": false}'))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.setenv("no_proxy", "")
    assert get(real.url).body == b'{"proxy": false}'
    assert proxy.requests == []


def test_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(TransportError) as exc:
        get(f"http://127.0.0.1:{port}")
    assert exc.value.kind == "refused"


def test_a_host_name_is_resolved(server):
    s = server(reply(200, b"{}"))
    port = s.url.rsplit(":", 1)[1]
    assert get(f"http://localhost:{port}").status == 200


def test_never_answers(server):
    s = server(lambda conn: time.sleep(1.5))
    start = time.monotonic()
    with pytest.raises(TransportError) as exc:
        get(s.url, timeout=0.5)
    assert exc.value.kind == "timeout" and time.monotonic() - start < 1.4


def _dribbler(prefix, filler, pause):
    def dribble(conn):
        conn.sendall(prefix)
        for dummy in range(60):
            conn.sendall(filler)
            time.sleep(pause)
    return dribble


@pytest.mark.parametrize("prefix, filler", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b" "),  # the body, a byte at a time
    (b"HTTP/1.1 200 OK\r\n", b"X-Slow: a\r\n"),  # the headers, a line at a time
    (b"", b"H"),  # the status line itself
    (b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n", b" "),  # an error body
])
def test_one_deadline_holds_however_slowly_the_answer_comes(server, prefix, filler):
    """Each piece arrives well within the timeout, but the whole answer may not take longer than it."""
    s = server(_dribbler(prefix, filler, 0.1))
    start = time.monotonic()
    with pytest.raises(TransportError) as exc:
        get(s.url, timeout=1.0)
    assert exc.value.kind == "timeout"
    assert time.monotonic() - start < 1.5


def test_truncated(server):
    s = server(raw(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"compute": '))
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "truncated" and "ended after" in str(exc.value)


def test_a_chunked_body_cut_short_is_truncated(server):
    s = server(raw(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{"compute": '))
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "truncated"


def test_too_large(server):
    s = server(reply(200, b"x" * 5000))
    with pytest.raises(TransportError) as exc:
        get(s.url, max_bytes=1000)
    assert exc.value.kind == "too_large"


@pytest.mark.parametrize("interim", [b"HTTP/1.1 102 Processing\r\n\r\n",
                                     b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n",
                                     b"HTTP/1.1 100 Continue\r\n\r\n"])
def test_interim_answers_are_not_final(server, interim):
    s = server(raw(interim + interim + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    r = get(s.url)
    assert r.status == 200 and r.body == b"{}"


def test_endless_interim_answers_are_an_error(server):
    s = server(raw(b"HTTP/1.1 103 Early Hints\r\n\r\n" * 50))
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "protocol"


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"HTTP/1.1 abc Nope\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
])
def test_not_http_is_a_protocol_error(server, answer):
    s = server(raw(answer))
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "protocol"


def _rst(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_reset_before_headers(server):
    s = server(_rst)
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "reset"


def test_closed_before_headers(server):
    s = server(lambda conn: None)
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind == "reset"


def test_reset_mid_body(server):
    def mid(conn):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"compute":')
        time.sleep(0.1)
        _rst(conn)
    s = server(mid)
    with pytest.raises(TransportError) as exc:
        get(s.url)
    assert exc.value.kind in ("reset", "truncated")


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
    (socket.timeout("timed out"), "timeout"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "reset"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
    (http.client.RemoteDisconnected("Remote end closed connection without response"), "reset"),
    (http.client.IncompleteRead(b"abc", 10), "truncated"),
    (http.client.LineTooLong("header line"), "protocol"),
    (OSError("something else"), "error"),
])
def test_classify_errors(exc, kind):
    assert classify_error(exc).kind == kind
