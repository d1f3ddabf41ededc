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

from ansible_collections.imds.azure.tests.utils.paths import REPO
from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

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


RETURNED = """
- name: What the modules return, as a user registers it
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_endpoint }}"
  tasks:
    - {name: Facts, imds.azure.metadata_facts: {}, register: facts}
    - {name: List the events, imds.azure.scheduled_events: {}, register: listed}
    - {name: Approve in check mode, imds.azure.scheduled_events: {approve: all_for_this_vm}, check_mode: true,
       register: would}
    - {name: Approve, imds.azure.scheduled_events: {approve: all_for_this_vm}, register: approved}
    - {name: Wait for what does not come, imds.azure.scheduled_events: {wait_for: [Reboot], wait_timeout: 1},
       register: waited}
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'metadata_facts': [facts], 'scheduled_events': [listed, would, approved, waited]} | to_json }}"
        dest: "{{ out_dir }}/returned.json"
        mode: "0600"
"""
TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list, "float": (int, float), "raw": object}


def undocumented(spec: dict, value: object, path: str) -> list[str]:
    """Where a returned value and its RETURN documentation disagree (null is allowed everywhere)."""
    problems = []
    if value is not None and not isinstance(value, TYPES[spec.get("type", "raw")]):
        problems.append(f"{path} is {type(value).__name__}, documented as {spec['type']}")
    contains = spec.get("contains")
    items = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
    for item in items if contains else []:
        # the module returns facts with the ansible_ prefix, which ansible_facts does not show
        shown = {key.removeprefix("ansible_") if path == "ansible_facts" else key: sub for key, sub in item.items()}
        problems += [f"{path}.{key} is returned but not documented" for key in shown if key not in contains]
        problems += [f"{path}.{key} is documented as always returned but missing" for key, sub in contains.items()
                     if key not in shown and sub.get("returned", "always") == "always"]
        for key, sub in contains.items():
            if key in shown:
                problems += undocumented(sub, shown[key], f"{path}.{key}")
    return problems


def test_return_docs_match_what_the_modules_return(emulator, playbook, tmp_path):
    imds = emulator(profile="linux")
    imds.add_event(event_type="Freeze")
    result = playbook(RETURNED, extra_vars={"imds_endpoint": imds.url}).check()
    returned = result.read_json("returned.json")
    dumped = ansible_doc(tmp_path, "-t", "module", "--json", "imds.azure.metadata_facts", "imds.azure.scheduled_events")
    docs = {name.removeprefix("imds.azure."): doc["return"] for name, doc in json.loads(dumped.stdout).items()}
    problems = []
    for module, results in returned.items():
        for number, registered in enumerate(results):
            values = {key: value for key, value in registered.items() if key not in ("changed", "failed", "invocation")}
            problems += [f"{module}[{number}]: {key} is returned but not documented" for key in values
                         if key not in docs[module]]
            problems += [f"{module}[{number}]: {problem}" for key, value in values.items() if key in docs[module]
                         for problem in undocumented(docs[module][key], value, key)]
    assert problems == []
    # the sample of msg has the form of a real message
    approved = returned["scheduled_events"][2]["msg"]
    sample = docs["scheduled_events"]["msg"]["sample"]
    assert re.fullmatch(r"Approved \S+ \(Freeze\)\.", approved), approved
    assert re.fullmatch(r"Approved \S+ \(\w+\)\.", sample), sample
