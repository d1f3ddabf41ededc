"""Fleet mode: one emulator process, several VMs on their own ports, one events document per set."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from imds_emulator import EmulatorError, Fleet, load_fleet

from ansible_collections.imds.azure.tests.utils.paths import EMULATOR

INSTANCE = "/metadata/instance?api-version=2021-02-01"
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False
        yield session


def get(http, url, path=INSTANCE, **kwargs):
    reply = http.get(url + path, headers={"Metadata": "true"}, timeout=5, **kwargs)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_each_vm_has_its_own_document_and_the_set_shares_its_events(http):
    vms = [{"name": "web1"}, {"name": "web2"}, {"name": "web3", "fault_domain": 1, "update_domain": 4},
           {"name": "db1", "profile": "no-public-ip", "availability_set": "db"}]
    with Fleet(vms) as fleet:
        computes = {name: get(http, fleet[name].url)["compute"] for name in ("web1", "web2", "web3", "db1")}
        assert {name: (c["name"], c["platformFaultDomain"], c["platformUpdateDomain"])
                for name, c in computes.items()} == {
            "web1": ("web1", "0", "0"), "web2": ("web2", "1", "1"), "web3": ("web3", "1", "4"), "db1": ("db1", "0", "0")}
        assert len({c["vmId"] for c in computes.values()}) == 4
        assert computes["web1"]["resourceId"].endswith("/virtualMachines/web1")
        assert computes["web1"]["osProfile"]["computerName"] == "web1"
        assert computes["db1"]["offer"] == "RHEL"
        assert len({emu.port for emu in fleet}) == 4

        reboot = fleet["web1"].add_event(event_type="Reboot", resources=["web1", "web2"])
        seen = {name: get(http, fleet[name].url, EVENTS) for name in ("web1", "web2", "web3", "db1")}
        assert seen["web1"] == seen["web2"] == seen["web3"]  # one document for the set
        assert [e["EventId"] for e in seen["web3"]["Events"]] == [reboot["EventId"]]
        assert seen["db1"] == {"DocumentIncarnation": 1, "Events": []}  # another set, another document

        # any VM of the set may approve; every VM of the set sees it started
        started = http.post(fleet["web2"].url + EVENTS, headers={"Metadata": "true"}, timeout=5,
                            data=json.dumps({"StartRequests": [{"EventId": reboot["EventId"]}]}))
        assert started.status_code == 200
        assert get(http, fleet["web1"].url, EVENTS)["Events"][0]["EventStatus"] == "Started"
        again = http.post(fleet["web1"].url + EVENTS, headers={"Metadata": "true"}, timeout=5,
                          data=json.dumps({"StartRequests": [{"EventId": reboot["EventId"]}, {"EventId": "nope"}]}))
        assert again.status_code == 200
        # the request log of each VM says which approval started what
        approvals = [(r["vm"], r["start_requests"], r["started"]) for emu in fleet for r in emu.requests
                     if r["method"] == "POST"]
        assert approvals == [("web1", [reboot["EventId"], "nope"], []), ("web2", [reboot["EventId"]], [reboot["EventId"]])]

        db_event = fleet.add_event(event_type="Freeze", resources=["db1"])
        assert fleet.events_document("db")["Events"][0]["EventId"] == db_event["EventId"]
        with pytest.raises(EmulatorError, match="several availability sets"):
            fleet.add_event(resources=["web1", "db1"])


def test_the_fleet_shares_one_clock_and_plays_a_timeline(http):
    timeline = {"events": [{"event_type": "Reboot", "resources": ["a", "b"], "not_before_seconds": 30,
                            "complete_after_seconds": 10}]}
    with Fleet([{"name": "a"}, {"name": "b"}], timeline=timeline) as fleet:
        reply = http.post(fleet["b"].url + "/_emulator/clock", json={"advance": 30}, timeout=5)
        assert reply.status_code == 200
        assert get(http, fleet["a"].url, EVENTS)["Events"][0]["EventStatus"] == "Started"
        fleet.advance_clock(10)
        assert get(http, fleet["b"].url, EVENTS)["Events"] == []
        described = http.get(fleet["a"].url + "/_emulator/fleet", timeout=5).json()
        assert [(vm["name"], vm["port"], vm["availability_set"]) for vm in described] == [
            ("a", fleet["a"].port, "default"), ("b", fleet["b"].port, "default")]


def test_faults_and_logs_are_per_vm(http, tmp_path):
    log = tmp_path / "fleet.jsonl"
    with Fleet([{"name": "a", "faults": {"status_always": 503}}, {"name": "b"}], log_path=log) as fleet:
        assert http.get(fleet["a"].url + INSTANCE, headers={"Metadata": "true"}, timeout=5).status_code == 503
        get(http, fleet["b"].url)
        assert [e["status"] for e in fleet["a"].requests] == [503] and fleet["a"].requests[0]["vm"] == "a"
        assert [e["status"] for e in fleet["b"].requests] == [200]
    assert sorted(json.loads(line)["vm"] for line in log.read_text().splitlines()) == ["a", "b"]


@pytest.mark.parametrize("vms, words", [
    ([], "vms must be a list of 1 to"),
    ([{"name": "a"}, {"name": "a"}], "the name 'a' is used twice"),
    ([{"name": "a", "port": 8201}, {"name": "b", "port": 8201}], "port 8201 is used twice"),
    ([{"name": "a", "fault_domain": 1.5}], "fault_domain must be an integer"),
    ([{"name": "a", "colour": "red"}], "unknown keys colour"),
    ([{"name": ""}], "name must be a non-empty string"),
    ([{"name": "a", "faults": {"delay": float("nan")}}], "'delay' must be a non-negative number"),
    ([{"name": "a", "profile": "nope"}], "unknown profile 'nope'"),
])
def test_bad_fleets_are_clear_errors(vms, words):
    with pytest.raises(EmulatorError, match=words):
        Fleet(vms)


def test_the_example_fleet_file(tmp_path):
    loaded = load_fleet(EMULATOR / "examples" / "fleet.json")
    assert [(vm["name"], vm["fault_domain"], vm["availability_set"]) for vm in loaded["vms"]] == [
        ("web1", 0, "web"), ("web2", 0, "web"), ("web3", 1, "web")]
    with Fleet(loaded["vms"], timeline=loaded["timeline"]) as fleet:
        assert [e["Resources"] for e in fleet.events_document("web")["Events"]] == [["web1", "web2"]]


def wait_for_lines(path, count, process):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) == count:
            return path.read_text().splitlines()
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no port file")


def test_the_command_line_serves_a_fleet(http, tmp_path):
    port_file, pid_file = tmp_path / "ports", tmp_path / "pid"
    process = subprocess.Popen([sys.executable, str(EMULATOR), "--vm", "web1=0", "--vm", "web2=0",
                                "--port-file", str(port_file), "--pid-file", str(pid_file), "--lifetime", "30",
                                "--faults", '{"delay": 0.01}'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ports = dict(line.split() for line in wait_for_lines(port_file, 2, process))
        assert int(pid_file.read_text()) == process.pid
        for name, port in ports.items():
            assert process.stdout.readline() == f"imds-emulator listening on http://127.0.0.1:{port} for {name}\n"
            assert get(http, f"http://127.0.0.1:{port}")["compute"]["name"] == name
        made = http.post(f"http://127.0.0.1:{ports['web1']}/_emulator/events", json={"resources": ["web1", "web2"]},
                         timeout=5).json()
        assert [e["EventId"] for e in get(http, f"http://127.0.0.1:{ports['web2']}", EVENTS)["Events"]] == [
            made["EventId"]]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not pid_file.exists()  # removed at exit
    finally:
        process.kill()
        process.communicate()


def test_the_command_line_serves_a_fleet_file(http, tmp_path):
    port_file = tmp_path / "ports"
    process = subprocess.Popen([sys.executable, str(EMULATOR), "--fleet", str(EMULATOR / "examples" / "fleet.json"),
                                "--port-file", str(port_file), "--lifetime", "30"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")})
    try:
        ports = dict(line.split() for line in wait_for_lines(port_file, 3, process))
        web3 = get(http, f"http://127.0.0.1:{ports['web3']}")["compute"]
        assert (web3["name"], web3["platformFaultDomain"], web3["platformUpdateDomain"]) == ("web3", "1", "2")
        events = get(http, f"http://127.0.0.1:{ports['web3']}", EVENTS)["Events"]
        assert [e["Resources"] for e in events] == [["web1", "web2"]]
    finally:
        process.terminate()
        process.communicate(timeout=10)
