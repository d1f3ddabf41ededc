"""The facts JSON Schema, and facts as a play sees them.

``imds.azure.metadata_facts`` returns its facts with the ``ansible_`` prefix
(``ansible_azure_vm_id``); ansible-core strips it inside ``ansible_facts``, where plays
read ``ansible_facts['azure_vm_id']``. The schema (docs/facts.schema.json) describes
that view, so tests validate what ``normalize()`` returns after ansible-core's own
``namespace_facts()``, the function that makes the view.
"""
from __future__ import annotations

import copy
import json
import typing as t

import jsonschema

from ansible_collections.imds.azure.tests.utils.paths import REPO

try:
    from ansible.vars.clean import namespace_facts
except ImportError:  # ansible-test runs module_utils tests with ansible.module_utils alone

    def namespace_facts(facts: t.Any) -> t.Any:  # the signature of ansible-core's
        """What ansible-core's namespace_facts() returns (tests/unit/utils/test_facts.py compares them)."""
        return {"ansible_facts": {name[len("ansible_"):] if name.startswith("ansible_") and name != "ansible_local"
                                  else name: copy.deepcopy(value) for name, value in facts.items()}}

SCHEMA_PATH = REPO / "docs" / "facts.schema.json"
SCHEMA: dict[str, t.Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def as_users_see(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The facts a module returned, as ``ansible_facts`` holds them for a play."""
    return namespace_facts(facts)["ansible_facts"]


def schema_errors(facts: t.Mapping[str, t.Any], limit: int = 200) -> list[str]:
    """Where the facts (as the module returns them) break the schema, one line each."""
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:limit]}"
            for error in VALIDATOR.iter_errors(as_users_see(facts))]


def is_valid(facts: t.Mapping[str, t.Any]) -> bool:
    return VALIDATOR.is_valid(as_users_see(facts))
