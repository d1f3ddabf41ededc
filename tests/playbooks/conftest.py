"""Fixtures for the integration tests."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.tests.playbooks.windows import CFG, INVENTORY_VARS


@pytest.fixture(params=["posix", "windows"])
def host(request):
    """playbook() arguments for the managed host: POSIX (a local connection), or a Windows host.

    The Windows host is played by the stand-in connection (tests/playbooks/windows): the
    action plugin runs the client on the controller and each request through win_uri.
    Tasks that write results for the test run on the controller (``delegate_to: localhost``).
    """
    if request.param == "posix":
        return {}
    return {"inventory": f"win1 {INVENTORY_VARS}\n", "cfg": CFG}
