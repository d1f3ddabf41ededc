"""The facts view the module_utils tests validate is the one ansible-core makes."""
from __future__ import annotations

import importlib
import sys

import pytest
from ansible.vars.clean import namespace_facts

from ansible_collections.imds.azure.tests.utils import facts

SAMPLES = [
    {},
    {"ansible_azure_vm_id": "a", "ansible_azure_tags": {"env": "prod"}, "ansible_local": {"x": 1}, "other": [1, 2]},
    {"ansible_": 1, "ansible_ansible_x": None, "azure_detected": True},
]


@pytest.fixture
def without_controller(monkeypatch):
    """tests/utils/facts.py as ansible-test imports it for module_utils tests: no ansible.vars."""
    monkeypatch.setitem(sys.modules, "ansible.vars.clean", None)  # import fails
    yield importlib.reload(facts)
    monkeypatch.undo()
    importlib.reload(facts)


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_fallback_view_equals_ansible_cores(without_controller, sample):
    assert without_controller.namespace_facts is not namespace_facts
    assert without_controller.as_users_see(sample) == namespace_facts(sample)["ansible_facts"]


def test_the_view_is_a_copy(without_controller):
    sample = {"ansible_azure_tags": {"env": "prod"}}
    without_controller.as_users_see(sample)["azure_tags"]["env"] = "changed"
    assert sample["ansible_azure_tags"] == {"env": "prod"}
