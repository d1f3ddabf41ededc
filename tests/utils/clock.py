"""A clock and sleep that tests drive by hand: sleeping only moves the time."""
from __future__ import annotations


class FakeClock:
    """Call it for the time (like time.monotonic); .sleep() records the wait and moves time on."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
