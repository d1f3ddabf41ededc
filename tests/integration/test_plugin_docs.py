"""ansible-doc lists and renders every plugin and role of the collection, without a warning.

The expected names come from the files in plugins/ and roles/, so a plugin whose
documentation does not load (and that ansible-doc therefore leaves out or shows as
UNDOCUMENTED) fails here.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.paths import REPO
from tests.utils.playbook import ansible_env

ANSIBLE_DOC = str(Path(sys.executable).parent / "ansible-doc")
# plugins/<folder> -> ansible-doc -t <type>; filters and tests document each name in a YAML file
PLUGIN_TYPES = {"modules": "module", "lookup": "lookup", "filter": "filter", "test": "test",
                "inventory": "inventory", "callback": "callback", "connection": "connection",
                "become": "become", "cache": "cache", "vars": "vars", "strategy": "strategy"}


def expected() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder, plugin_type in PLUGIN_TYPES.items():
        directory = REPO / "plugins" / folder
        if not directory.is_dir():
            continue
        pattern = "*.yml" if plugin_type in ("filter", "test") else "*.py"
        names = {f"imds.azure.{path.stem}" for path in directory.glob(pattern) if not path.stem.startswith("_")}
        if names:
            found[plugin_type] = names
    roles = {f"imds.azure.{path.parent.parent.name}" for path in (REPO / "roles").glob("*/meta/argument_specs.yml")}
    if roles:
        found["role"] = roles
    return found


def ours(stderr: str) -> list[str]:
    """Warnings and errors, less those ansible-core gives about its own internal collections
    (2.21 warns that ansible._protomatter has no MANIFEST.json when it renders a role)."""
    return [line for line in stderr.splitlines()
            if ("[WARNING]" in line or "[ERROR]" in line) and "/_internal/ansible_collections/" not in line]


def ansible_doc(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANSIBLE_DOC, *args], env=ansible_env(tmp_path), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_collection_has_plugins_and_a_role():
    assert {"module", "lookup", "role"} <= set(expected())


@pytest.mark.parametrize("plugin_type", sorted(expected()))
def test_listed_and_rendered(tmp_path, plugin_type):
    names = expected()[plugin_type]
    listing = ansible_doc(tmp_path, "-t", plugin_type, "--list", "--json", "imds.azure")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    assert set(listed) == names
    if plugin_type == "role":
        for name in names:
            assert listed[name]["entry_points"]["main"] not in ("", "UNDOCUMENTED"), name
    else:
        assert all(description and description != "UNDOCUMENTED" for description in listed.values()), listed

    rendered = ansible_doc(tmp_path, "-t", plugin_type, *sorted(names))
    assert rendered.returncode == 0, rendered.stderr
    assert ours(rendered.stderr) == [], rendered.stderr
    for name in names:  # the header line: "> MODULE imds.azure.x (path)", "> ROLE: *imds.azure.y*", ...
        assert re.search(rf"^> .*{re.escape(name)}\b", rendered.stdout, re.M | re.I), name
    dumped = ansible_doc(tmp_path, "-t", plugin_type, "--json", *sorted(names))
    assert dumped.returncode == 0, dumped.stderr
    docs = json.loads(dumped.stdout)
    assert set(docs) == names
    if plugin_type != "role":
        for name, doc in docs.items():
            assert doc["doc"]["version_added"] == "1.0.0", name
            assert doc["doc"]["author"], name
            assert doc["examples"], f"{name} has no EXAMPLES"
