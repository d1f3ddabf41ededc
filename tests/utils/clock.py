"""A clock and sleep that tests drive by hand: sleeping only moves the time."""
from __future__ import annotations

import typing as t


class FakeClock:
    """Call it for the time (like time.monotonic); .sleep() records the wait and moves time on.

    ``time()`` is the wall clock that goes with it (``wall`` seconds since the epoch at the
    start); ``install(monkeypatch)`` makes it the ``time`` module's monotonic, time and sleep,
    for code that reads those directly.
    """

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.start = start
        self.now = start
        self.wall = wall
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + (self.now - self.start)

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def install(self, monkeypatch: t.Any) -> FakeClock:
        import time

        monkeypatch.setattr(time, "monotonic", self.monotonic)
        monkeypatch.setattr(time, "time", self.time)
        monkeypatch.setattr(time, "sleep", self.sleep)
        return self
