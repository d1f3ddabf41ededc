"""IMDS's 5 requests per second, kept across processes through a private, safe window file.

The rules under test:
- a request holds its place from admission until it is over, then counts for one more
  second, so that no second ever sees six arrivals, however late admitted requests arrive;
- the window file lives in a private folder and is used only when it is ours alone (no
  symbolic or hard link, not writable by others); otherwise the limit holds per process;
- every wait (for the lock, for a place) ends at the caller's deadline;
- files of endpoints unused for an hour are removed.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _ratelimit
from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._ratelimit import POLL, RateLimiter, RateLimitTimeout
from ansible_collections.imds.azure.tests.utils.clock import FakeClock
from ansible_collections.imds.azure.tests.utils.transport import ScriptedTransport, ok

FAR = 1e9  # a deadline nobody reaches


def limiter(clock, **kwargs):
    return RateLimiter("http://127.0.0.1:9", clock=clock, sleep=clock.sleep, **kwargs)


def test_keeps_five_per_second(clock=None):
    clock = FakeClock()
    one = limiter(clock)
    stamps = []
    for dummy in range(23):
        one.done(one.acquire(FAR))
        stamps.append(clock.now)
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 1.0 - 1e-9


def test_is_shared_through_its_file():
    clock = FakeClock()
    a, b = limiter(clock), limiter(clock)
    for dummy in range(5):
        a.done(a.acquire(FAR))
    b.acquire(FAR)
    assert clock.sleeps and clock.sleeps[-1] > 0.9


def test_garbage_in_the_file_is_ignored():
    clock = FakeClock()
    one = limiter(clock)
    one.done(one.acquire(FAR))
    clock.now += 2
    Path(one.path).write_text("nonsense 1e308 -5 nan:nan:x 1:2 " + " ".join(
        f"{clock.now + 100}:0:x" for dummy in range(10)))  # in the future: impossible, ignored
    one.acquire(FAR)
    assert clock.sleeps == []


def test_a_request_under_way_keeps_its_place_until_done():
    clock = FakeClock()
    first = limiter(clock, hold=6.0)
    tickets = [first.acquire(FAR) for dummy in range(5)]
    clock.now += 2.5  # five requests still under way 2.5 s later: no sixth
    other = limiter(clock, hold=6.0)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock.now += seconds
        if len(waits) == 10:  # the five end at 1002.7, while the sixth waits
            for ticket in tickets:
                first.done(ticket)

    other.sleep = sleep
    other.acquire(FAR)
    assert waits[:10] == [POLL] * 10  # it looked again and again while they were under way
    assert clock.now >= 1002.5 + 10 * POLL + 1.0 - 1e-6  # then one second after they ended


def test_a_place_held_by_a_dead_process_is_freed_after_hold():
    clock = FakeClock()
    dead = limiter(clock, hold=3.0)
    for dummy in range(5):
        dead.acquire(FAR)  # and never done()
    limiter(clock, hold=3.0).acquire(FAR)
    assert 1003.0 <= clock.now <= 1003.0 + POLL + 1e-6


def test_a_late_arrival_counts_from_when_it_ended():
    """A is admitted at 0 s but reaches IMDS at 0.95 s; B..E arrive at 0.50-0.53 s.

    Counting admissions would let F in at 1.0 s: six arrivals (B..E, A, F) within 0.5 s
    of each other. Counting each request until it is over makes F wait until 1.95 s.
    """
    clock = FakeClock()
    start = clock.now
    one = limiter(clock, hold=6.0)
    late = one.acquire(FAR)
    clock.now = start + 0.5
    for dummy in range(4):
        one.done(one.acquire(FAR))
        clock.now += 0.01
    clock.now = start + 0.95
    one.done(late)
    clock.now = start + 1.0
    one.acquire(FAR)
    assert clock.now >= start + 1.5 - 1e-6


def answering(clock):
    return ScriptedTransport(ok({"compute": {}}), clock=clock, cost=0.3)  # a request takes 0.3 s


def test_the_client_gives_its_place_back_when_a_request_is_over():
    clock = FakeClock()
    transport = answering(clock)
    client = ImdsClient(transport, endpoint="http://127.0.0.1:9", clock=clock, sleep=clock.sleep,
                        limiter=limiter(clock, hold=6.0))
    for dummy in range(3):
        client.instance()
    entries = [word.split(":") for word in Path(client.limiter.path).read_text().split()]
    assert len(entries) == 3 and all(float(until) == 0 for _start, until, _owner in entries)  # none under way
    sent = [call["at"] for call in transport.calls]
    assert [float(start) for start, _until, _owner in entries] == pytest.approx([s + 0.3 for s in sent])


def test_tickets_of_two_limiters_admitted_at_the_same_instant_stay_apart():
    """Ending one request never frees the place of another admitted at the same microsecond."""
    clock = FakeClock()
    a, b = limiter(clock), limiter(clock)
    ticket_a = a.acquire(FAR)
    ticket_b = b.acquire(FAR)
    assert ticket_a != ticket_b
    a.done(ticket_a)
    entries = [word.split(":") for word in Path(a.path).read_text().split()]
    assert sorted(float(until) > 0 for _start, until, _owner in entries) == [False, True]


# -- the window file: private, never through a link, never another's --------------------------------

def _sixth_waited(one, clock):
    for dummy in range(6):
        one.done(one.acquire(FAR))
    return bool(clock.sleeps) and clock.sleeps[0] > 0.9


def test_the_private_folder_is_made_with_mode_0700(rate_dir):
    clock = FakeClock()
    one = limiter(clock)
    one.done(one.acquire(FAR))
    info = os.lstat(rate_dir)
    assert oct(info.st_mode & 0o777) == "0o700" and Path(one.path).parent == rate_dir
    assert oct(os.stat(one.path).st_mode & 0o777) == "0o600"


def test_the_window_file_is_never_opened_through_a_symbolic_link(rate_dir, tmp_path):
    clock = FakeClock()
    one = limiter(clock)
    rate_dir.mkdir(mode=0o700)
    precious = tmp_path / "precious"
    precious.write_text("a file the attacker wants truncated\n")
    Path(one.path).symlink_to(precious)
    assert _sixth_waited(one, clock)  # limited in this process instead
    assert precious.read_text() == "a file the attacker wants truncated\n"


def test_a_hard_link_planted_at_the_window_path_is_never_written(rate_dir, tmp_path):
    clock = FakeClock()
    one = limiter(clock)
    rate_dir.mkdir(mode=0o700)
    precious = tmp_path / "precious"
    precious.write_text("a file root owns and must keep\n")
    os.chmod(precious, 0o600)
    os.link(precious, one.path)
    assert _sixth_waited(one, clock)
    assert precious.read_text() == "a file root owns and must keep\n"


def test_a_window_file_others_may_write_is_ignored(rate_dir):
    clock = FakeClock()
    one = limiter(clock, hold=6.0)
    rate_dir.mkdir(mode=0o700)
    Path(one.path).write_text(" ".join(f"{clock.now:.6f}:{clock.now + 30:.6f}:x{i}" for i in range(5)))
    os.chmod(one.path, 0o666)
    one.acquire(FAR)
    assert clock.sleeps == []  # its five "requests under way" did not count


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_a_private_folder_others_can_enter_or_write_is_not_used(rate_dir, mode):
    clock = FakeClock()
    rate_dir.mkdir()
    os.chmod(rate_dir, mode)
    one = limiter(clock)
    assert _sixth_waited(one, clock)
    assert not Path(one.path).exists()


def test_a_held_lock_costs_at_most_the_deadline(rate_dir):
    clock = FakeClock()
    one = limiter(clock)
    one.done(one.acquire(FAR))
    with open(one.path, "rb") as handle:  # another process holds the lock for ever
        fcntl.flock(handle, fcntl.LOCK_EX)
        start = clock.now
        with pytest.raises(RateLimitTimeout) as exc:
            one.acquire(start + 3.0)
    assert clock.now - start <= 3.0 + 1e-6
    assert one.path in str(exc.value) and "remove that file" in str(exc.value)


def test_the_client_reports_a_held_lock_in_one_line(rate_dir):
    clock = FakeClock()
    client = ImdsClient(answering(clock), endpoint="http://127.0.0.1:9", clock=clock, sleep=clock.sleep,
                        timeout=1, retry_timeout=2, limiter=limiter(clock))
    client.instance()
    with open(client.limiter.path, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(ImdsError) as exc:
            client.instance()
    assert exc.value.kind == "rate_limit" and "\n" not in str(exc.value) and "retry_timeout" in str(exc.value)
    assert clock.now - 1000.0 <= 0.3 + 2 + 1 + 1e-6


def test_entries_no_request_could_have_written_are_ignored(rate_dir):
    clock = FakeClock()
    one = limiter(clock)
    rate_dir.mkdir(mode=0o700)
    Path(one.path).write_text(" ".join(f"{clock.now:.6f}:{clock.now + 100000:.6f}:x{i}" for i in range(5)))
    os.chmod(one.path, 0o600)
    one.acquire(FAR)
    assert clock.sleeps == []


def test_places_held_for_long_cost_at_most_the_deadline(rate_dir):
    clock = FakeClock()
    long = limiter(clock, hold=3000.0)
    for dummy in range(5):
        long.acquire(FAR)
    start = clock.now
    with pytest.raises(RateLimitTimeout):
        limiter(clock).acquire(start + 5.0)
    assert clock.now - start <= 5.0 + 1e-6


def test_files_of_endpoints_unused_for_an_hour_are_swept(rate_dir):
    clock = FakeClock()
    old = RateLimiter("http://127.0.0.1:1", clock=clock, sleep=clock.sleep)
    old.done(old.acquire(FAR))
    recent = RateLimiter("http://127.0.0.1:2", clock=clock, sleep=clock.sleep)
    recent.done(recent.acquire(FAR))
    an_hour_ago = time.time() - _ratelimit.SWEEP_AGE - 10
    os.utime(old.path, (an_hour_ago, an_hour_ago))
    new = RateLimiter("http://127.0.0.1:3", clock=clock, sleep=clock.sleep)
    new.done(new.acquire(FAR))  # its file is new: it sweeps
    assert not Path(old.path).exists() and Path(recent.path).exists() and Path(new.path).exists()


# -- real processes: twenty forks at once never make six arrivals in one second ------------------

WORKER = r"""
import json, os, random, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.imds.azure.plugins.module_utils import _ratelimit
_ratelimit._private_folder_name = lambda base=None: sys.argv[2]
limiter = _ratelimit.RateLimiter("http://127.0.0.1:9")
arrivals = []
for _ in range(int(sys.argv[3])):
    ticket = limiter.acquire(time.monotonic() + 60, hold=5)
    time.sleep(random.uniform(0, 0.03))  # on its way
    arrivals.append(time.monotonic())    # IMDS counts it now
    time.sleep(random.uniform(0, 0.03))  # the answer on its way back
    limiter.done(ticket)
print(json.dumps(arrivals))
"""


@pytest.mark.slow
def test_twenty_processes_never_make_six_arrivals_in_one_second(rate_dir, tmp_path):
    from ansible_collections.imds.azure.tests.utils.paths import collections_path

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), str(collections_path()), str(rate_dir), "2"],
                                stdout=subprocess.PIPE, text=True) for dummy in range(20)]
    arrivals = sorted(t for w in workers for t in json.loads(w.communicate(timeout=120)[0]))
    assert len(arrivals) == 40
    worst = max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals)
    assert worst <= 5, f"{worst} arrivals within one second"
