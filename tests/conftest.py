"""Shared pytest set-up for every test folder, under plain pytest and under ansible-test.

ansible-test runs the tests from a tree laid out as ``ansible_collections/imds/azure``, so
``ansible_collections.imds.azure.tests.utils`` imports there as it is. Plain pytest runs
them from the checkout: ``pytest.ini`` puts the checkout on ``sys.path`` (``tests.utils``),
and the checkout is made importable as ``ansible_collections.imds.azure`` through the link
tests/utils/paths.py keeps. Every test imports the shared helpers the first way.

The markers are registered here, not in pytest.ini: ansible-test's pytest reads its own
configuration file, and fails a test file whose markers it does not know.
"""
from __future__ import annotations

import sys

import pytest

try:
    from ansible_collections.imds.azure.tests.utils import paths
except ImportError:  # plain pytest in a checkout
    from tests.utils.paths import collections_path

    sys.path.insert(0, str(collections_path()))
    from ansible_collections.imds.azure.tests.utils import paths

sys.path.insert(0, str(paths.EMULATOR.parent))

MARKERS = {
    "netns": "needs root and network namespaces (skipped with a reason otherwise)",
    "slow": "takes more than a few seconds",
    "property": "hypothesis property tests",
}


def pytest_configure(config):
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


@pytest.fixture
def emulator():
    """Start IMDS emulators on 127.0.0.1 (random port); stop them after the test.

    Call it as emulator(profile="linux", faults={...}, latency=0.0) and use .url,
    .requests, .set_faults(...), .clear_log().
    """
    from imds_emulator import Emulator  # tools/imds_emulator

    started = []

    def start(**kwargs):
        emu = Emulator(host="127.0.0.1", port=0, **kwargs).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def playbook(tmp_path):
    """run_playbook bound to this test's tmp_path (see tests/utils/playbook.py)."""
    from ansible_collections.imds.azure.tests.utils.playbook import run_playbook

    counter = iter(range(1000))

    def run(pb, **kwargs):
        return run_playbook(pb, tmp_path / f"run{next(counter)}", **kwargs)

    return run
