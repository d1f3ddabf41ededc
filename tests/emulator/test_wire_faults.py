"""The hostile-server switches: how an answer goes on the wire, byte for byte.

``framing``, ``encoding``, ``interim``, ``dribble_head``, ``reason``, ``status_line``,
``raw_headers``, ``reset_after``, ``mute``, ``error_body_size`` and ``only_path`` (the
fault matrix plays them against the collection: tests/playbooks/test_fault_matrix.py),
and the ``ended`` time of every request in the log.
"""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib

import pytest
import requests

from ansible_collections.imds.azure.tests.emulator.test_faults import INSTANCE, raw_exchange


def exchange(emu, timeout: float = 5) -> tuple[bytes, BaseException | None]:
    return raw_exchange(emu, timeout=timeout, close=True)


@pytest.fixture
def plain(emulator):
    """The body a normal emulator sends for INSTANCE."""
    received, _error = exchange(emulator())
    return received.partition(b"\r\n\r\n")[2]


def head_and_body(raw: bytes) -> tuple[list[str], bytes]:
    head, _sep, body = raw.partition(b"\r\n\r\n")
    return head.decode("utf-8", "surrogateescape").split("\r\n"), body


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether it ended with the last (0) chunk."""
    payload = b""
    while data:
        size_line, _sep, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return payload, True
        payload, data = payload + data[:size], data[size + 2:]
    return payload, False


# --- framing ---------------------------------------------------------------------------------------

def test_chunked_framing_carries_the_whole_body(emulator, plain):
    head, body = head_and_body(exchange(emulator(faults={"framing": "chunked"}))[0])
    assert "Transfer-Encoding: chunked" in head and not any(h.startswith("Content-Length") for h in head)
    assert dechunk(body) == (plain, True)


def test_chunked_framing_cut_short_has_no_last_chunk(emulator, plain):
    received, error = exchange(emulator(faults={"framing": "chunked", "truncate": True}))
    payload, complete = dechunk(head_and_body(received)[1])
    assert error is None and not complete and payload == plain[:len(plain) // 2]


def test_close_framing_ends_with_the_connection(emulator, plain):
    received, error = exchange(emulator(faults={"framing": "close"}))
    head, body = head_and_body(received)
    assert error is None and body == plain
    assert "Connection: close" in head and not any(h.startswith(("Content-Length", "Transfer-Encoding")) for h in head)


def test_close_framing_cut_short_looks_complete_on_the_wire(emulator, plain):
    received, error = exchange(emulator(faults={"framing": "close", "truncate": True}))
    assert error is None and head_and_body(received)[1] == plain[:len(plain) // 2]


# --- encodings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("coding, unpack", [("gzip", gzip.decompress), ("deflate", zlib.decompress)])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_encoding_compresses_the_body(emulator, plain, coding, unpack, framing):
    head, body = head_and_body(exchange(emulator(faults={"encoding": coding, "framing": framing}))[0])
    assert f"Content-Encoding: {coding}" in head
    if framing == "chunked":
        body, complete = dechunk(body)
        assert complete
    else:
        assert f"Content-Length: {len(body)}" in head
    assert unpack(body) == plain


# --- the status line and headers ----------------------------------------------------------------------

def test_interim_answers_come_first(emulator, plain):
    emu = emulator(faults={"interim": {"status": 103, "count": 2, "interval": 0.2}})
    started = time.monotonic()
    received, _error = exchange(emu)
    assert time.monotonic() - started >= 0.4
    parts = received.split(b"\r\n\r\n")
    assert parts[0] == parts[1] == b"HTTP/1.1 103 Early Hints\r\nLink: </metadata>; rel=preload"
    assert parts[2].startswith(b"HTTP/1.1 200 OK") and parts[3] == plain


def test_endless_interim_answers_stop_when_the_client_leaves(emulator):
    emu = emulator(faults={"interim": {"status": 102, "count": 10 ** 9}})
    with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
        sock.sendall(f"GET {INSTANCE} HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n\r\n".encode())
        data = b""
        while data.count(b"HTTP/1.1 102 Processing\r\n\r\n") < 50:
            data += sock.recv(65536)
    assert b"200 OK" not in data
    deadline = time.monotonic() + 5
    while "ended" not in emu.requests[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ended" in emu.requests[-1], "the server noticed the client leave"


def test_dribble_head_sends_the_head_slowly_and_the_body_at_once(emulator):
    emu = emulator(faults={"dribble_head": 20})  # 20 bytes per second
    with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
        sock.sendall(f"GET {INSTANCE} HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n\r\n".encode())
        started = time.monotonic()
        first = sock.recv(65536)
        time.sleep(0.5)
        sock.settimeout(0.05)
        more = b""
        stop = time.monotonic() + 0.2  # what arrived in the 0.5 s, and for 0.2 s more at the most
        try:
            while time.monotonic() < stop and (chunk := sock.recv(65536)):  # b"": the server closed
                more += chunk
        except socket.timeout:
            pass
    assert len(first) < 5 and 5 <= len(first + more) <= 5 + 20 * (time.monotonic() - started) + 2
    assert b"\r\n\r\n" not in first + more  # the head of ~170 bytes takes about 8 s


@pytest.mark.parametrize("faults, first_line", [
    ({"status_always": 500, "reason": "Oops\u001b[2J\nok: [web01] forged"}, b"HTTP/1.1 500 Oops\x1b[2J"),
    ({"status_line": "HTTP/1.1 2OO OK"}, b"HTTP/1.1 2OO OK"),
    ({"status_line": "ICY 200 OK"}, b"ICY 200 OK"),
])
def test_status_line_and_reason_are_sent_raw(emulator, faults, first_line):
    received, _error = exchange(emulator(faults=faults))
    assert received.split(b"\r\n", maxsplit=1)[0].split(b"\n", maxsplit=1)[0] == first_line


def test_raw_headers_are_sent_raw_and_may_repeat(emulator):
    emu = emulator(faults={"raw_headers": [["Retry-After", "0"], ["Retry-After", "-5"],
                                           ["X-Note", "a\u001b[31m\r\nX-Forged: 1"]]})
    head, _body = head_and_body(exchange(emu)[0])
    assert head.count("Retry-After: 0") == 1 and "Retry-After: -5" in head
    assert "X-Note: a\x1b[31m" in head and "X-Forged: 1" in head
    assert emu.faults["raw_headers"] == [["Retry-After", "0"], ["Retry-After", "-5"],
                                         ["X-Note", "a\u001b[31m\r\nX-Forged: 1"]]


def test_wire_text_is_bounded():
    from imds_emulator import EmulatorError, check_faults

    assert check_faults({"reason": "x" * (1 << 20)})["reason"] == "x" * (1 << 20)
    with pytest.raises(EmulatorError, match="'status_line' must be at most 1048576 characters, not 1048577"):
        check_faults({"status_line": "x" * ((1 << 20) + 1)})
    with pytest.raises(EmulatorError, match="at most 10000"):
        check_faults({"raw_headers": [["X-A", "1"]] * 10_001})


# --- broken connections -------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", [0, 10, 400])
def test_reset_after_sends_that_many_bytes_then_resets(emulator, budget):
    received, error = exchange(emulator(faults={"reset_after": budget, "framing": "chunked"}))
    assert len(received) == budget and isinstance(error, ConnectionResetError)


def test_mute_never_reads_the_request(emulator):
    emu = emulator(faults={"mute": True})
    with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
        sock.sendall(f"GET {INSTANCE} HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n\r\n".encode())
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        entry = emu.requests[-1]
        assert entry["muted"] is True and entry["path"] == "" and "ended" not in entry
    deadline = time.monotonic() + 5
    while "ended" not in emu.requests[-1] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 0.3 <= emu.requests[-1]["ended"] - entry["time"] < 3, "the server saw the client leave"
    held = threading.Thread(target=raw_exchange, args=(emu,), kwargs={"timeout": 10})
    held.start()
    time.sleep(0.2)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2
    held.join(5)
    assert not held.is_alive()


# --- bodies --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_error_body_size_is_an_error_of_exactly_that_size(emulator, framing):
    faults = {"error_body_size": {"status": 503, "size": 5000}, "framing": framing}
    received, _error = exchange(emulator(faults=faults))
    head, body = head_and_body(received)
    if framing == "chunked":
        body, _complete = dechunk(body)
    assert head[0] == "HTTP/1.1 503 Service Unavailable" and len(body) == 5000
    value = json.loads(body)
    assert value["error"] == "Service unavailable" and set(value) == {"error", "padding"}


# --- scope -------------------------------------------------------------------------------------------------

def test_only_path_limits_the_switches_to_those_paths(client):
    imds = client(faults={"only_path": "/metadata/versions", "status_always": 500,
                          "versions": ["2021-02-01"], "error_wording": "no_list"})
    assert imds.get("/metadata/versions", api_version=None).status_code == 500
    assert imds.get("/metadata/instance", api_version="2021-02-01").status_code == 200
    refused = imds.get("/metadata/instance")  # the region's switches act everywhere
    assert refused.status_code == 400 and "newest-versions" not in refused.json()
    imds.emu.set_faults(only_path=["/metadata/versions", "/metadata/instance"],
                        status_first_n={"status": 503, "count": 1})
    assert imds.get("/metadata/instance/compute/name", format="text").status_code == 200  # not that path
    assert imds.get("/metadata/instance").status_code == 503
    assert imds.get("/metadata/versions", api_version=None).status_code == 200


# --- the log -----------------------------------------------------------------------------------------------

def test_the_log_says_when_each_answer_ended(client):
    imds = client(faults={"hang": True})
    with pytest.raises(requests.exceptions.RequestException):
        imds.get("/metadata/instance", timeout=0.6)
    deadline = time.monotonic() + 5
    while "ended" not in imds.emu.requests[-1] and time.monotonic() < deadline:
        time.sleep(0.02)
    entry = imds.emu.requests[-1]
    assert 0.5 <= entry["ended"] - entry["time"] < 2.5, "the hang ended when the client gave up"
    imds.emu.set_faults(dribble=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.RequestException):
        imds.get("/metadata/instance", timeout=0.6)
    while time.monotonic() - started < 5 and "ended" not in imds.emu.requests[-1]:
        time.sleep(0.02)
    entry = imds.emu.requests[-1]
    assert entry["ended"] - entry["time"] < 2.5, "a dribbled body stops when the client leaves, not at the next byte"
