"""Every fault switch makes the emulator misbehave as documented, and never hangs stop()."""
from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time

import pytest
import requests

from imds_emulator import Emulator, EmulatorError, FAULT_NAMES, VERSION_ERROR_NEW

from ansible_collections.imds.azure.tests.utils.paths import FIXTURES

REAL = FIXTURES / "real-imds"
INSTANCE = "/metadata/instance?api-version=2021-02-01"


def raw_exchange(emu: Emulator, path: str = INSTANCE, timeout: float = 5,
                 close: bool = False) -> tuple[bytes, BaseException | None]:
    """Send one request on a bare socket; return every byte received and how the stream ended.

    ``close`` asks the server to close after its answer (a normal answer keeps the connection open).
    """
    received = b""
    with socket.create_connection((emu.host, emu.port), timeout=timeout) as sock:
        connection = "Connection: close\r\n" if close else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n{connection}\r\n".encode())
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return received, None
                received += data
        except OSError as exc:
            return received, exc


def split_response(raw: bytes) -> tuple[int, dict, bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def statuses(imds, count: int, path: str = "/metadata/instance") -> list[int]:
    return [imds.get(path).status_code for attempt in range(count)]


# --- error statuses ------------------------------------------------------------------------------

def test_status_for_seconds_then_normal(client):
    imds = client(faults={"status_for_seconds": {"status": 410, "seconds": 0.4}})
    reply = imds.get("/metadata/instance")
    assert reply.status_code == 410
    assert reply.json() == {"error": "Gone"}
    time.sleep(0.45)
    assert statuses(imds, 2) == [200, 200]
    imds.emu.set_faults(status_for_seconds={"status": 503, "seconds": 5})  # the clock restarts
    assert imds.get("/metadata/instance").status_code == 503


def test_status_for_seconds_from_the_first_request(client):
    imds = client(faults={"status_for_seconds": {"status": 410, "seconds": 0.3, "from": "first_request"}})
    assert imds.emu.faults["status_for_seconds"] == {"status": 410, "seconds": 0.3, "from": "first_request"}
    time.sleep(0.35)  # a slow client: counted from the faults, the window would be over
    assert statuses(imds, 2) == [410, 410]
    time.sleep(0.35)
    assert imds.get("/metadata/instance").status_code == 200
    imds.emu.set_faults(status_for_seconds={"status": 410, "seconds": 0.3})
    time.sleep(0.35)
    assert imds.get("/metadata/instance").status_code == 200


def test_status_first_n_then_normal(client):
    imds = client(faults={"status_first_n": {"status": 500, "count": 3}})
    assert statuses(imds, 5) == [500, 500, 500, 200, 200]
    assert imds.get("/metadata/instance").status_code == 200
    imds.emu.set_faults(status_first_n={"status": 429, "count": 1})  # counting starts again
    assert statuses(imds, 2) == [429, 200]


def test_status_always_answers_with_a_json_error(client):
    imds = client(faults={"status_always": 503})
    for path in ("/metadata/instance", "/metadata/versions", "/metadata/nothing"):
        reply = imds.get(path)
        assert reply.status_code == 503
        assert reply.json() == {"error": "Service unavailable"}
    assert imds.get("/metadata/instance", metadata=False).status_code == 503  # faults come first


def test_every_kth_request_fails(client):
    imds = client(faults={"every_kth": {"k": 3, "status": 500}})
    assert statuses(imds, 7) == [200, 200, 500, 200, 200, 500, 200]


def test_rate_limit_in_a_sliding_second(client):
    imds = client()
    assert set(statuses(imds, 20)) == {200}  # IMDS's own 5/s limit is off by default
    imds.emu.set_faults(rate_limit={"per_second": 5, "retry_after": 1})
    replies = [imds.get("/metadata/instance") for attempt in range(7)]
    assert [r.status_code for r in replies] == [200] * 5 + [429] * 2
    assert replies[5].headers["Retry-After"] == "1"
    assert replies[5].json() == {"error": "Too many requests"}
    time.sleep(1.05)
    assert imds.get("/metadata/instance").status_code == 200
    imds.emu.set_faults(rate_limit={"per_second": 1, "retry_after": None})
    assert statuses(imds, 2) == [200, 429]
    assert "Retry-After" not in imds.get("/metadata/instance").headers


# --- timing ----------------------------------------------------------------------------------------

def test_delay_and_latency_add_time(client):
    imds = client(latency=0.1, faults={"delay": 0.2})
    started = time.monotonic()
    assert imds.get("/metadata/instance").status_code == 200
    assert time.monotonic() - started >= 0.3
    imds.emu.set_faults()
    started = time.monotonic()
    imds.get("/metadata/instance")
    assert 0.1 <= time.monotonic() - started < 0.3


def test_hang_never_answers_and_does_not_block_stop(client):
    imds = client(faults={"hang": True})
    with pytest.raises(requests.exceptions.ReadTimeout):
        imds.get("/metadata/instance", timeout=0.3)
    assert imds.emu.requests[-1]["status"] == 0  # read and logged, never answered
    held = []
    thread = threading.Thread(target=lambda: held.append(raw_exchange(imds.emu, timeout=10)))
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    imds.emu.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert held and held[0][0] == b""  # closed without a byte of answer


def test_dribble_sends_the_body_slowly(client):
    imds = client(faults={"dribble": 3000})
    started = time.monotonic()
    reply = imds.get("/metadata/instance")
    elapsed = time.monotonic() - started
    size = len(reply.content)
    assert reply.status_code == 200 and size > 3000
    assert elapsed >= 0.9 * size / 3000
    assert reply.json()["compute"]["name"] == "web-linux-01"


# --- broken connections and bodies ---------------------------------------------------------------------

def test_reset_before_headers(client):
    imds = client(faults={"reset": "before_headers"})
    received, error = raw_exchange(imds.emu)
    assert received == b""
    assert isinstance(error, ConnectionResetError)
    with pytest.raises(requests.exceptions.ConnectionError):
        imds.get("/metadata/instance")


def test_reset_mid_body(client):
    imds = client(faults={"reset": "mid_body"})
    received, error = raw_exchange(imds.emu)
    status, headers, body = split_response(received)
    assert status == 200
    assert 0 < len(body) < int(headers["content-length"])
    assert isinstance(error, ConnectionResetError)


def test_truncate_sends_half_the_body_then_closes(client):
    imds = client(faults={"truncate": True})
    received, error = raw_exchange(imds.emu)
    status, headers, body = split_response(received)
    assert error is None  # an orderly close (FIN), not a reset
    assert (status, len(body)) == (200, int(headers["content-length"]) // 2)
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    connection = http.client.HTTPConnection(imds.emu.host, imds.emu.port, timeout=5)
    connection.request("GET", INSTANCE, headers={"Metadata": "true"})
    with pytest.raises(http.client.IncompleteRead):
        connection.getresponse().read()
    connection.close()


def test_html_captive_portal(client):
    reply = client(faults={"html": True}).get("/metadata/instance")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("fault, status, content_type, expected", [
    ({"text": "[1, 2, 3]"}, 200, "application/json", b"[1, 2, 3]"),
    ({"text": '"just a string"', "status": 200}, 200, "application/json", b'"just a string"'),
    ({"text": '{"compute": "a string", "compute": {"vmId": "dup"}}'}, 200, "application/json",
     b'{"compute": "a string", "compute": {"vmId": "dup"}}'),
    ({"base64": base64.b64encode(b'{"compute": {"name": "\xff\xfe"}}').decode()}, 200, "application/json",
     b'{"compute": {"name": "\xff\xfe"}}'),
    ({"text": "oops", "status": 502, "content_type": "text/plain"}, 502, "text/plain", b"oops"),
    ({"text": ""}, 200, "application/json", b""),
])
def test_body_serves_exactly_these_bytes(client, fault, status, content_type, expected):
    reply = client(faults={"body": fault}).get("/metadata/instance")
    assert (reply.status_code, reply.headers["Content-Type"], reply.content) == (status, content_type, expected)


@pytest.mark.parametrize("size", [2, 9, 100, 5000])
def test_body_size_small_bodies_are_exact_json(client, size):
    reply = client(faults={"body_size": size}).get("/metadata/instance")
    assert len(reply.content) == size
    json.loads(reply.content)


def test_body_size_50_mib_is_streamed(client):
    size = 50 * 1024 * 1024
    imds = client(faults={"body_size": size})
    reply = imds.session.get(imds.emu.url + INSTANCE, headers={"Metadata": "true"}, stream=True, timeout=30)
    assert int(reply.headers["Content-Length"]) == size
    received = bytearray()
    for chunk in reply.iter_content(1 << 20):
        received += chunk
    assert len(received) == size
    document = json.loads(bytes(received))
    assert document["compute"]["name"] == "web-linux-01"
    assert len(document["padding"]) > size - 10000


def test_redirect(client):
    imds = client(faults={"redirect": {"status": 302, "location": "http://127.0.0.1:1/elsewhere"}})
    reply = imds.session.get(imds.emu.url + INSTANCE, headers={"Metadata": "true"}, allow_redirects=False)
    assert reply.status_code == 302
    assert reply.headers["Location"] == "http://127.0.0.1:1/elsewhere"


# --- versions and wording --------------------------------------------------------------------------------

def test_versions_of_a_region(client):
    region = ["2017-04-02", "2017-08-01", "2017-12-01", "2018-02-01"]
    imds = client(faults={"versions": region})
    assert imds.get("/metadata/versions", api_version=None).json() == {"apiVersions": region}
    assert imds.get("/metadata/instance", api_version="2018-02-01").status_code == 200
    reply = imds.get("/metadata/instance", api_version="2019-06-01")
    assert reply.status_code == 400
    assert reply.json() == {"error": VERSION_ERROR_NEW, "newest-versions": ["2018-02-01", "2017-12-01", "2017-08-01"]}
    assert imds.get("/metadata/attested/document", api_version="2018-02-01").json()["newest-versions"] == []
    assert imds.get("/metadata/scheduledevents", api_version="2019-08-01").status_code == 200


def test_a_region_may_serve_an_undocumented_version(client):
    imds = client(faults={"versions": ["2019-07-15", "2019-08-01", "2019-08-15"]})
    assert imds.get("/metadata/instance", api_version="2019-07-15").json()["compute"]["tagsList"]
    assert imds.get("/metadata/instance").json()["newest-versions"] == ["2019-08-15", "2019-08-01", "2019-07-15"]


def test_error_wording(client):
    imds = client(faults={"error_wording": "old", "versions": ["2019-07-15", "2019-08-01", "2019-08-15"]})
    fixture = REAL / "ohai__error_400_newest-versions_2019-08-15_code400.json"
    assert imds.get("/metadata/instance", api_version=None).json() == json.loads(fixture.read_text())
    imds.emu.set_faults(error_wording="no_list")
    assert imds.get("/metadata/instance", api_version=None).json() == {"error": VERSION_ERROR_NEW}
    imds.emu.set_faults(error_wording="new")
    assert imds.get("/metadata/instance", api_version=None).json()["error"] == VERSION_ERROR_NEW


# --- the switches themselves ------------------------------------------------------------------------------

@pytest.mark.parametrize("faults, message", [
    ({"nope": 1}, "unknown fault 'nope'"),
    ({"status_always": "503"}, "must be an HTTP status"),
    ({"status_always": 99}, "must be an HTTP status"),
    ({"status_first_n": {"status": 500}}, "needs count"),
    ({"status_for_seconds": {"status": 410, "seconds": 1, "from": "boot"}}, "'set' or 'first_request'"),
    ({"every_kth": {"k": 0, "status": 500}}, "k must be an integer >= 1"),
    ({"rate_limit": {"per_second": 5, "burst": 2}}, "unknown keys burst"),
    ({"delay": -1}, "non-negative number"),
    ({"dribble": 0}, "positive number"),
    ({"hang": "yes"}, "true or false"),
    ({"reset": "sometimes"}, "'before_headers' or 'mid_body'"),
    ({"body": {"text": "a", "base64": "YQ=="}}, "exactly one of text or base64"),
    ({"body": {"base64": "not base64!"}}, "not valid base64"),
    ({"body_size": 1}, "integer >= 2"),
    ({"redirect": {"status": 200, "location": "x"}}, "3xx"),
    ({"versions": ["latest"]}, "YYYY-MM-DD"),
    ({"error_wording": "polite"}, "'new', 'old' or 'no_list'"),
])
def test_bad_faults_are_clear_errors(faults, message):
    with pytest.raises(EmulatorError, match=message):
        Emulator(faults=faults)


def test_every_documented_fault_is_known():
    assert set(FAULT_NAMES) == {
        "status_for_seconds", "status_first_n", "status_always", "every_kth", "rate_limit", "delay", "hang",
        "dribble", "reset", "truncate", "html", "body", "body_size", "redirect", "versions", "error_wording",
        "loadbalancer", "error_body_size", "framing", "encoding", "interim", "dribble_head", "reason", "status_line",
        "raw_headers", "reset_after", "mute", "only_path"}


def test_set_faults_replaces_all_switches(client):
    imds = client(faults={"status_always": 500, "delay": 0.05})
    assert imds.emu.faults == {"status_always": 500, "delay": 0.05}
    assert imds.emu.set_faults(hang=False, html=None) == {}
    assert imds.get("/metadata/instance").status_code == 200


def test_faults_never_keep_stop_waiting(emulator):
    emu = emulator(faults={"dribble": 1, "delay": 0.1})
    threads = [threading.Thread(target=raw_exchange, args=(emu,), kwargs={"timeout": 10}) for attempt in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
