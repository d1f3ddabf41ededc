"""Unit tests: the rate limit window of each test is its own (no waiting on other tests)."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _ratelimit


@pytest.fixture(autouse=True)
def rate_dir(tmp_path_factory, monkeypatch):
    """The rate limiter's private folder, one per test (mode 0700, as the limiter wants it)."""
    folder = tmp_path_factory.mktemp("rate") / "imds-azure"
    monkeypatch.setattr(_ratelimit, "_private_folder_name", lambda base=None: str(folder))
    return folder
