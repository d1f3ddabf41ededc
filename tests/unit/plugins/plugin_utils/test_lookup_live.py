"""The live cache of the lookup: TTL, keys, files, locks and forks."""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import time

import pytest

from ansible_collections.imds.azure.plugins.plugin_utils import _lookup_live
from ansible_collections.imds.azure.plugins.module_utils._client import ImdsError
from ansible_collections.imds.azure.plugins.plugin_utils._lookup_live import (
    InstanceCache, LiveSettings, redact_user_data)
from ansible_collections.imds.azure.plugins.module_utils._detect import NotOnAzure
from ansible_collections.imds.azure.tests.utils.clock import FakeClock

SETTINGS = LiveSettings("http://imds.test", None, 5.0, 70.0)
DOC = {"compute": {"vmId": "a", "userData": "c2VjcmV0"}, "network": {"interface": []}}


def answer(document=None, version="2025-04-07"):
    redacted, had = redact_user_data(document or DOC)
    return {"document": redacted, "api_version": version, "user_data": had, "warnings": []}


class Fetches:
    def __init__(self, *entries):
        self.entries = list(entries) or [answer()]
        self.count = 0

    def __call__(self):
        self.count += 1
        return self.entries[min(self.count, len(self.entries)) - 1]


def test_redact_user_data_keeps_the_key_and_its_place():
    redacted, had = redact_user_data(DOC)
    assert had is True
    assert list(redacted["compute"]) == ["vmId", "userData"] and redacted["compute"]["userData"] is None
    assert DOC["compute"]["userData"] == "c2VjcmV0"  # the input is not changed
    assert redact_user_data({"compute": {"vmId": "a"}}) == ({"compute": {"vmId": "a"}}, False)
    assert redact_user_data({"network": {}}) == ({"network": {}}, False)


def test_ttl(tmp_path):
    clock = FakeClock(start=500.0)
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1, clock=clock, sleep=clock.sleep)
    fetch = Fetches()
    cache.get(SETTINGS, fetch)
    clock.now += 59
    _lookup_live.clear_memory()
    cache.get(SETTINGS, fetch)
    assert fetch.count == 1
    clock.now += 2
    cache.get(SETTINGS, fetch)
    assert fetch.count == 2


def test_an_entry_from_the_future_is_stale(tmp_path):
    clock = FakeClock(start=500.0)
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1, clock=clock, sleep=clock.sleep)
    fetch = Fetches()
    cache.get(SETTINGS, fetch)
    clock.now -= 100  # another boot, or a clock that went back
    _lookup_live.clear_memory()
    cache.get(SETTINGS, fetch)
    assert fetch.count == 2


def test_keys_differ_by_endpoint_and_version(tmp_path):
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1)
    names = {cache.name(SETTINGS), cache.name(SETTINGS._replace(api_version="2019-06-01")),
             cache.name(SETTINGS._replace(endpoint="http://other.test"))}
    assert len(names) == 3
    assert cache.name(SETTINGS) == cache.name(SETTINGS._replace(endpoint="http://imds.test/"))
    assert cache.name(SETTINGS) == cache.name(SETTINGS._replace(timeout=1.0))


@pytest.mark.parametrize("content", ["not json", "[]", json.dumps({"format": 99}),
                                     json.dumps({"format": 1, "endpoint": "http://imds.test", "requested": None,
                                                 "fetched_at": "yesterday", "document": {}})])
def test_a_damaged_file_is_ignored(tmp_path, content):
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1)
    (tmp_path / f"{cache.name(SETTINGS)}.json").write_text(content)
    fetch = Fetches()
    assert cache.get(SETTINGS, fetch).document["compute"]["vmId"] == "a"
    assert fetch.count == 1


def test_a_file_for_another_endpoint_is_not_used(tmp_path):
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1)
    entry = {**answer(), "format": 1, "endpoint": "http://other.test", "requested": None, "fetched_at": time.monotonic()}
    (tmp_path / f"{cache.name(SETTINGS)}.json").write_text(json.dumps(entry))
    fetch = Fetches()
    cache.get(SETTINGS, fetch)
    assert fetch.count == 1


def test_failures_are_remembered_and_raised_again(tmp_path):
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=1)
    fetch = Fetches({"error": {"message": "IMDS answered 500", "hint": "", "not_azure": False, "status": 500,
                               "kind": "http", "api_version": "2025-04-07"}})
    for dummy in range(3):
        with pytest.raises(ImdsError) as info:
            cache.get(SETTINGS, fetch)
        assert info.value.status == 500 and str(info.value) == "IMDS answered 500"
        _lookup_live.clear_memory()
    assert fetch.count == 1
    other = InstanceCache(str(tmp_path / "x"), ttl=60, lock_wait=1)
    (tmp_path / "x").mkdir()
    with pytest.raises(NotOnAzure) as info:
        other.get(SETTINGS, Fetches({"error": {"message": "no DMI", "hint": "route", "not_azure": True}}))
    assert info.value.hint == "route"


def test_an_unwritable_folder_costs_requests_not_errors(tmp_path):
    cache = InstanceCache(str(tmp_path / "gone"), ttl=60, lock_wait=1)
    fetch = Fetches()
    assert cache.get(SETTINGS, fetch).api_version == "2025-04-07"
    _lookup_live.clear_memory()
    cache.get(SETTINGS, fetch)
    assert fetch.count == 2


def test_a_held_lock_is_waited_for_only_so_long(tmp_path):
    cache = InstanceCache(str(tmp_path), ttl=60, lock_wait=0.2)
    fd = os.open(tmp_path / f"{cache.name(SETTINGS)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = time.monotonic()
        fetch = Fetches()
        cache.get(SETTINGS, fetch)
        assert fetch.count == 1
        assert 0.2 <= time.monotonic() - start < 2
    finally:
        os.close(fd)


def _fork_worker(directory, log):
    _lookup_live.clear_memory()

    def fetch():
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.3)  # slow enough that the other forks arrive while it runs
        return answer()

    cache = InstanceCache(directory, ttl=60, lock_wait=10)
    assert cache.get(SETTINGS, fetch).document["compute"]["vmId"] == "a"


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forks_that_miss_together_fetch_once(tmp_path):
    log = tmp_path / "fetches.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_fork_worker, args=(str(tmp_path), str(log))) for dummy in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert [worker.exitcode for worker in workers] == [0] * 8
    assert len(log.read_text().split()) == 1
