"""Helpers for the emulator's own tests: an HTTP client that never uses a proxy."""
from __future__ import annotations

from typing import Any

import pytest
import requests

NEWEST = "2025-04-07"


class Client:
    """Speaks to one emulator the way an IMDS client would (Metadata header, api-version)."""

    def __init__(self, emu: Any):
        self.emu = emu
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment, ever

    def get(self, path: str, api_version: str | None = NEWEST, metadata: bool = True,
            headers: dict | None = None, timeout: float = 5, **params: str) -> requests.Response:
        if api_version is not None:
            params = {"api-version": api_version, **params}
        sent = {"Metadata": "true"} if metadata else {}
        sent.update(headers or {})
        return self.session.get(self.emu.url + path, params=params, headers=sent, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.session.request(method, self.emu.url + path, **kwargs)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def client(emulator):
    """client(profile="linux", **emulator kwargs) -> Client bound to a fresh emulator."""
    made = []

    def make(profile: str = "linux", **kwargs: Any) -> Client:
        made.append(Client(emulator(profile=profile, **kwargs)))
        return made[-1]

    yield make
    for one in made:
        one.close()
