"""The endpoint switch: one definition (the doc fragment's sources), read by ansible-core's configuration manager."""
from __future__ import annotations

import yaml

from ansible_collections.imds.azure.plugins.doc_fragments.imds import ModuleDocFragment
from ansible_collections.imds.azure.plugins.plugin_utils._action import SWITCH, Switch, switch_endpoint


class Templar:
    """Renders "{{ name }}" from ``variables``, as the task's templar would."""

    def __init__(self, variables):
        self.variables = variables

    def template(self, value):
        if isinstance(value, str) and value.startswith("{{"):
            return self.variables[value.strip("{} ")]
        return value


def test_unset_is_none(monkeypatch):
    monkeypatch.delenv("ANSIBLE_IMDS_AZURE_ENDPOINT", raising=False)
    assert switch_endpoint({}, Templar({})) is None


def test_the_variable_templated(monkeypatch):
    monkeypatch.delenv("ANSIBLE_IMDS_AZURE_ENDPOINT", raising=False)
    variables = {"imds_azure_endpoint": "{{ emulator }}", "emulator": "http://127.0.0.1:8169"}
    assert switch_endpoint(variables, Templar(variables)) == Switch("http://127.0.0.1:8169", "var: imds_azure_endpoint")


def test_the_environment_and_the_variable_wins(monkeypatch):
    monkeypatch.setenv("ANSIBLE_IMDS_AZURE_ENDPOINT", "http://127.0.0.1:1")
    assert switch_endpoint({}, Templar({})) == Switch("http://127.0.0.1:1", "env: ANSIBLE_IMDS_AZURE_ENDPOINT")
    variables = {"imds_azure_endpoint": "http://127.0.0.1:2"}
    assert switch_endpoint(variables, Templar(variables)).endpoint == "http://127.0.0.1:2"


def test_the_sources_are_the_lookups():
    """The switch reads what the doc fragment declares for the lookup, nothing of its own."""
    sources = yaml.safe_load(ModuleDocFragment.PLUGIN_SOURCES)["options"][SWITCH]
    assert sources == {"env": [{"name": "ANSIBLE_IMDS_AZURE_ENDPOINT"}],
                       "ini": [{"section": "imds_azure", "key": "endpoint"}],
                       "vars": [{"name": "imds_azure_endpoint"}]}
