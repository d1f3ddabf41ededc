"""Shared pytest set-up: the collection on sys.path, the emulator, ansible-playbook."""
from __future__ import annotations

import sys

import pytest

from tests.utils.paths import EMULATOR, collections_path

sys.path.insert(0, str(collections_path()))
sys.path.insert(0, str(EMULATOR.parent))  # tools/: import imds_emulator


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
    from tests.utils.playbook import run_playbook

    counter = iter(range(1000))

    def run(pb, **kwargs):
        return run_playbook(pb, tmp_path / f"run{next(counter)}", **kwargs)

    return run
