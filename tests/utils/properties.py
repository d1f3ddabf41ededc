"""What the "any input" property tests share: a bounded run, and what a parser's error must look like."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLE_DEADLINE = timedelta(seconds=5)  # per example: an endless loop or a quadratic blow-up fails the test


def bounded(max_examples: int = 150) -> settings:
    """Hypothesis settings for hostile inputs: large examples allowed, each within EXAMPLE_DEADLINE."""
    return settings(max_examples=max_examples, deadline=EXAMPLE_DEADLINE,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_one_line(text: str, limit: int = 3000) -> None:
    """A message for the terminal: not empty, one line, nothing invisible or forging, not endless."""
    assert isinstance(text, str) and text and text.isprintable() and len(text) < limit, text
