"""The control API, the JSONL log and the command line, as out-of-process users see them."""
from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from imds_emulator import EVENT_KEYWORDS, Emulator

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "imds_emulator"
INSTANCE = "/metadata/instance?api-version=2021-02-01"


def session() -> requests.Session:
    one = requests.Session()
    one.trust_env = False
    return one


# --- control API ----------------------------------------------------------------------------------------

def test_the_request_log_records_imds_requests_only(client):
    imds = client()
    imds.get("/metadata/instance", format="json", headers={"User-Agent": "probe/1.0"})
    imds.get("/metadata/instance", metadata=False)
    imds.request("GET", "/_emulator/requests")
    log = imds.emu.requests
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/metadata/instance", 200), ("GET", "/metadata/instance", 400)]
    first = log[0]
    assert first["query"] == {"api-version": "2025-04-07", "format": "json"}
    assert first["headers"]["metadata"] == "true" and first["headers"]["user-agent"] == "probe/1.0"
    assert first["client"] == "127.0.0.1"
    assert isinstance(first["time"], float) and first["time"] <= time.monotonic()
    # ``ended`` comes once the answer is over (a moment after the client has read it)
    assert set(first) - {"ended"} == {"time", "method", "path", "query", "headers", "status", "client"}
    assert imds.emu.clear_log() == 2 and imds.emu.requests == []


def test_control_api(client):
    imds = client()
    imds.get("/metadata/instance")
    listed = imds.request("GET", "/_emulator/requests").json()
    assert [e["path"] for e in listed] == ["/metadata/instance"]
    assert imds.request("DELETE", "/_emulator/requests").json() == {"cleared": 1}
    assert imds.request("GET", "/_emulator/requests").json() == []

    reply = imds.request("PUT", "/_emulator/faults", json={"status_first_n": {"status": 500, "count": 1}})
    assert reply.status_code == 200
    assert reply.json() == {"faults": {"status_first_n": {"status": 500, "count": 1}}}
    assert imds.request("GET", "/_emulator/faults").json() == {"status_first_n": {"status": 500, "count": 1}}
    assert [imds.get("/metadata/instance").status_code for attempt in range(2)] == [500, 200]
    bad = imds.request("PUT", "/_emulator/faults", json={"status_always": "x"})
    assert bad.status_code == 400 and "must be an HTTP status" in bad.json()["error"]
    assert imds.request("PUT", "/_emulator/faults", data="{not json").status_code == 400
    assert imds.request("PUT", "/_emulator/faults", json={}).json() == {"faults": {}}

    made = imds.request("POST", "/_emulator/events", json={"event_type": "Freeze", "resources": ["a", "b"],
                                                           "not_before_seconds": None, "duration_seconds": 9})
    assert made.status_code == 201
    event = made.json()
    assert (event["EventType"], event["Resources"], event["NotBefore"]) == ("Freeze", ["a", "b"], "")
    served = imds.get("/metadata/scheduledevents", api_version="2020-07-01").json()
    assert served["Events"] == [event]
    assert imds.request("GET", "/_emulator/events").json() == served
    wrong = imds.request("POST", "/_emulator/events", json={"kind": "Freeze"})
    assert wrong.status_code == 400 and "kind" in wrong.json()["error"]
    assert imds.request("POST", "/_emulator/events", json={"event_type": "Boom"}).status_code == 400

    assert imds.request("GET", "/_emulator/nothing").status_code == 404
    assert imds.request("PATCH", "/_emulator/faults").status_code == 405
    assert [e["path"] for e in imds.emu.requests] == ["/metadata/instance"] * 2 + ["/metadata/scheduledevents"]


def test_faults_spare_the_control_api(client):
    imds = client(faults={"status_always": 503, "hang": True})
    assert imds.request("GET", "/_emulator/faults").status_code == 200
    assert imds.request("PUT", "/_emulator/faults", json={}).status_code == 200
    assert imds.get("/metadata/instance").status_code == 200


def test_log_path_appends_json_lines(tmp_path):
    log = tmp_path / "logs" / "imds.jsonl"
    log.parent.mkdir()
    log.write_text('{"earlier": true}\n')
    with Emulator(log_path=log) as emu:
        with session() as http:
            http.get(emu.url + INSTANCE, headers={"Metadata": "true"})
            http.get(emu.url + "/metadata/versions")
            http.get(emu.url + "/_emulator/requests")
        expected = emu.requests
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0] == {"earlier": True}
    # the file is written as requests arrive: without the in-memory log's ``ended``
    assert lines[1:] == [{k: v for k, v in entry.items() if k != "ended"} for entry in expected]
    assert [e["status"] for e in lines[1:]] == [200, 400]


def test_the_emulator_is_a_context_manager_and_restartable_stop():
    with Emulator(profile="windows", port=0) as emu:
        assert emu.url == f"http://127.0.0.1:{emu.port}" and emu.port > 0
        with session() as http:
            assert http.get(emu.url + "/metadata/instance/compute/osType?api-version=2021-02-01&format=text",
                            headers={"Metadata": "true"}).text == "Windows"
    emu.stop()  # a second stop is harmless
    with pytest.raises(requests.exceptions.ConnectionError), session() as http:
        http.get(emu.url + INSTANCE, headers={"Metadata": "true"}, timeout=2)


# --- command line ---------------------------------------------------------------------------------------

def launch(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd)


def wait_for_port(port_file: Path, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the emulator did not write its port file")


def test_cli_serves_logs_and_stops_on_sigterm(tmp_path):
    port_file, log = tmp_path / "port", tmp_path / "log.jsonl"
    faults = json.dumps({"status_first_n": {"status": 410, "count": 1}})
    process = launch("--bind", "127.0.0.1", "--port", "0", "--profile", "scaleset", "--port-file", str(port_file),
                     "--log", str(log), "--faults", faults, "--latency", "0.01")
    try:
        port = wait_for_port(port_file, process)
        line = process.stdout.readline()
        assert line == f"imds-emulator listening on http://127.0.0.1:{port}\n"
        with session() as http:
            url = f"http://127.0.0.1:{port}/metadata/instance/compute/vmScaleSetName?api-version=2021-02-01&format=text"
            assert http.get(url, headers={"Metadata": "true"}).status_code == 410
            assert http.get(url, headers={"Metadata": "true"}).text == "web-vmss"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.communicate()
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == [410, 200]


def test_cli_profile_file_and_sigint(tmp_path):
    document = tmp_path / "doc.json"
    document.write_text(json.dumps({"compute": {"vmId": "from-a-file"}, "network": {"interface": []}}))
    port_file = tmp_path / "port"
    process = launch("--profile-file", str(document), "--port-file", str(port_file))
    try:
        port = wait_for_port(port_file, process)
        with session() as http:
            assert http.get(f"http://127.0.0.1:{port}/metadata/instance/compute/vmId?api-version=2017-04-02"
                            "&format=text", headers={"Metadata": "true"}).text == "from-a-file"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.communicate()


def test_cli_exits_by_itself_after_its_lifetime(tmp_path):
    started = time.monotonic()
    process = launch("--lifetime", "0.5", "--faults", '{"hang": true}')
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out.startswith("imds-emulator listening on http://127.0.0.1:")
    assert time.monotonic() - started < 5


BAD_ARGUMENTS = [
    (["--port", "http"], "not a port number"),
    (["--port", "70000"], "not a port number"),
    (["--latency", "-1"], "must not be negative"),
    (["--lifetime", "0"], "--lifetime must be positive"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--faults", "{bad"], "--faults is not valid JSON"),
    (["--faults", '{"explode": true}'], "unknown fault 'explode'"),
    (["--faults", "[]"], "faults must be an object"),
    (["--profile-file", "/nonexistent/doc.json"], "cannot read profile file"),
    (["--log", "/proc/no/such/dir/log.jsonl"], "cannot open the log file"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
]


def test_cli_bad_arguments_exit_2_with_one_line():
    processes = [(launch(*args), args, message) for args, message in BAD_ARGUMENTS]  # in parallel: faster
    for process, args, message in processes:
        out, err = process.communicate(timeout=10)
        assert process.returncode == 2, args
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("imds-emulator: error: ") and message in err, err
        assert "Traceback" not in err


def test_cli_port_in_use_is_one_line_and_exit_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        process = launch("--port", str(taken.getsockname()[1]))
        out, err = process.communicate(timeout=10)
    assert process.returncode == 1
    assert err.startswith("imds-emulator: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1
    assert "Traceback" not in err and out == ""


def test_the_event_keys_of_the_control_api_are_add_events_keywords():
    parameters = inspect.signature(Emulator.add_event).parameters
    assert tuple(name for name in parameters if name != "self") == EVENT_KEYWORDS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in parameters.items() if name != "self")
