"""Two reliability fixes of the client and its adapter, found by the fault matrix.

- A server that sends its status line and headers a byte at a time held a request for
  as long as it kept sending (each read met the per-read timeout): the timeout now
  holds for the headers too (``within_deadline``), on both transports.
- The rate limit admitted requests 5 per second, but a request admitted on a busy host
  can leave it much later (building an SSL context, waiting for a CPU), so IMDS saw 9
  arrivals within one second from two plays at once. A request now holds its place in
  the window until it is over and counts for one second from its end.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient, ImdsError, RateLimiter
from ansible_collections.imds.azure.plugins.module_utils._http import (
    FetchUrlTransport, HttpResponse, OpenUrlTransport, Transport, TransportError, within_deadline)
from tests.utils.clock import FakeClock


@pytest.fixture
def slow_headers():
    """A server that answers "HTTP/1.1 200 OK" and then one header byte every 0.2 s, for a minute."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    connections = []

    def handle(conn):
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 300:
            if stop.wait(0.2):
                break
            try:
                conn.send(bytes([byte]))
            except OSError:
                break
        conn.close()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _address = server.accept()
            except OSError:
                continue
            connections.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connections
    stop.set()
    server.close()


@pytest.mark.parametrize("transport", [FetchUrlTransport, OpenUrlTransport])
def test_headers_sent_a_byte_at_a_time_meet_the_timeout(slow_headers, transport):
    url, connections = slow_headers
    client = ImdsClient(transport(), endpoint=url, timeout=1.0, retry_timeout=0)
    start = time.monotonic()
    with pytest.raises(ImdsError) as caught:
        client.instance()
    elapsed = time.monotonic() - start
    assert caught.value.kind == "timeout"
    assert "timed out waiting for the status line and headers" in str(caught.value)
    assert elapsed < 2.0, f"{elapsed:.1f} s with a 1 s timeout"
    assert len(connections) == 1  # a timeout is not retried


def test_within_deadline_returns_and_raises_what_the_call_does():
    assert within_deadline(lambda: 42, time.monotonic() + 1) == 42
    with pytest.raises(KeyError):
        within_deadline(lambda: {}["missing"], time.monotonic() + 1)
    start = time.monotonic()
    with pytest.raises(TransportError) as caught:
        within_deadline(lambda: time.sleep(5), time.monotonic() + 0.2)
    assert caught.value.kind == "timeout" and time.monotonic() - start < 1.0


def test_a_request_under_way_keeps_its_place_until_done(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)
    stamps = [limiter.acquire() for dummy in range(5)]
    clock.now += 2.5  # five requests still under way 2.5 s later: no sixth
    other = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)

    def finish_all():  # the five end at 1003.0, while the sixth waits
        for stamp in stamps:
            limiter.done(stamp)

    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock.now += seconds
        if len(waits) == 10:
            finish_all()

    other.sleep = sleep
    sixth = other.acquire()
    assert waits[:10] == [RateLimiter.POLL] * 10  # it looked again and again while they were under way
    assert sixth >= 1003.0 + 1.0 - 1e-6  # then one second after they ended


def test_a_place_held_by_a_dead_process_is_freed_after_hold(tmp_path):
    clock = FakeClock()
    dead = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=3.0)
    for dummy in range(5):
        dead.acquire()  # and never done()
    alive = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=3.0)
    stamp = alive.acquire()
    assert 1003.0 <= stamp <= 1003.0 + RateLimiter.POLL + 1e-6


def test_a_late_arrival_counts_from_when_it_arrived(tmp_path):
    """A is admitted at 0 s but reaches IMDS at 0.95 s; B..E arrive at 0.50-0.53 s.

    Counting admissions would let F in at 1.0 s: six arrivals (B..E, A, F) within 0.5 s
    of each other. Counting each request until it is over makes F wait until 1.5 s.
    """
    clock = FakeClock()
    start = clock.now
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)
    late = limiter.acquire()
    clock.now = start + 0.5
    for dummy in range(4):
        limiter.done(limiter.acquire())
        clock.now += 0.01
    clock.now = start + 0.95
    limiter.done(late)
    clock.now = start + 1.0
    sixth = limiter.acquire()
    assert sixth >= start + 1.5 - 1e-6


class Answering(Transport):
    def __init__(self, clock):
        self.clock = clock
        self.sent = []

    def request(self, method, url, headers, data, timeout, max_bytes):
        self.sent.append(self.clock.now)
        self.clock.now += 0.3  # the request takes 0.3 s
        return HttpResponse(200, {}, b'{"compute": {}}')


def test_the_client_gives_its_place_back_when_a_request_is_over(tmp_path):
    clock = FakeClock()
    transport = Answering(clock)
    client = ImdsClient(transport, endpoint="http://127.0.0.1:9", clock=clock, sleep=clock.sleep,
                        limiter=RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0))
    for dummy in range(3):
        client.instance()
    with open(client.limiter.path, encoding="ascii") as handle:
        entries = handle.read().split()
    assert len(entries) == 3 and not any(":" in entry for entry in entries)  # none left under way
    assert [float(e) for e in entries] == pytest.approx([s + 0.3 for s in transport.sent])  # counted from their end


# -- the window file lives in a shared /tmp: never follow a link, never trust another's file

def test_the_window_file_is_never_opened_through_a_link(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)
    precious = tmp_path / "precious"
    precious.write_text("a file the attacker wants truncated\n")
    (tmp_path / limiter.path.rsplit("/", 1)[1]).symlink_to(precious)
    for dummy in range(7):
        limiter.done(limiter.acquire())
    assert precious.read_text() == "a file the attacker wants truncated\n"
    assert clock.sleeps and clock.sleeps[0] > 0.9  # the sixth waited: limited in this process instead


def test_a_window_file_others_may_write_is_ignored(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)
    with open(limiter.path, "w", encoding="ascii") as handle:
        handle.write(" ".join(f"{clock.now:.6f}:{clock.now + 3000:.6f}" for dummy in range(5)))
    import os

    os.chmod(limiter.path, 0o666)
    stamp = limiter.acquire()
    assert stamp == clock.now and clock.sleeps == []  # its five "requests under way" did not count


def test_lies_in_our_own_window_file_cost_a_bounded_wait(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter("k", clock=clock, sleep=clock.sleep, directory=str(tmp_path), hold=6.0)
    with open(limiter.path, "w", encoding="ascii") as handle:  # five requests "under way" for 50 minutes
        handle.write(" ".join(f"{clock.now:.6f}:{clock.now + 3000:.6f}" for dummy in range(5)))
    start = clock.now
    stamp = limiter.acquire()
    assert stamp - start <= 6.0 + 1.0 + RateLimiter.POLL + 1e-6


def test_json_nested_too_deep_is_an_imds_error_not_a_crash():
    class Deep(Transport):
        def request(self, method, url, headers, data, timeout, max_bytes):
            return HttpResponse(200, {}, b'{"compute": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")

    client = ImdsClient(Deep(), endpoint="http://127.0.0.1:9", retry_timeout=0)
    with pytest.raises(ImdsError) as caught:
        client.instance()
    assert caught.value.kind == "body" and "nested deeper than Python can read" in str(caught.value)


def test_a_retry_after_beyond_the_deadline_is_named_in_the_message():
    class Throttled(Transport):
        def request(self, method, url, headers, data, timeout, max_bytes):
            return HttpResponse(429, {"retry-after": "30"}, b'{"error": "Too many requests"}')

    client = ImdsClient(Throttled(), endpoint="http://127.0.0.1:9", retry_timeout=10)
    start = time.monotonic()
    with pytest.raises(ImdsError) as caught:
        client.instance()
    assert time.monotonic() - start < 1.0  # no point waiting 10 s for an answer due in 30
    message = str(caught.value)
    assert "asked to retry after 30 s (Retry-After), more than is left of retry_timeout (10 s)" in message
    assert "gave up after 1 attempt without waiting" in message and "in 10 s" not in message
