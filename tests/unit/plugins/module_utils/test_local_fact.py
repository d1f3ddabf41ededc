"""The executable local fact of the imds.azure.local_facts role (plugins/module_utils/_local_fact.py).

What a user relies on: ansible_local['azure'] holds what metadata_facts returns as
ansible_facts['azure_*'] without the prefix; whatever happens the fact prints one JSON
object (a failure says so) and never outlasts its deadline; an answer is kept for ttl
seconds in a private file that nobody else can plant or read, and a failure is never kept.
"""
from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.imds.azure.plugins.module_utils import _gather
from ansible_collections.imds.azure.plugins.module_utils import _local_fact
from ansible_collections.imds.azure.plugins.module_utils._http import TransportError
from ansible_collections.imds.azure.plugins.modules import metadata_facts
from ansible_collections.imds.azure.tests.utils.paths import REPO, collections_path
from ansible_collections.imds.azure.tests.utils.transport import ScriptedTransport, err, instance_and_no_load_balancer, ok

DOC = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "linux.json").read_text())
AZURE_TAG = "7783-7084-3265-9085-8269-3286-77"
EXTRAS = {"failed", "from_cache", "fetched_at", "warnings"}


def gathers(transport):
    """How many times IMDS was asked for the instance document (each gather also asks for the load balancer)."""
    return sum(1 for call in transport.calls if call["url"].split("?")[0].endswith("/metadata/instance"))


def config(**overrides):
    return {**_local_fact.defaults(), "endpoint": "http://127.0.0.1:9", **overrides}


def test_same_facts_as_the_module_without_the_prefix():
    fact = _local_fact.facts(config(ttl=0), transport=ScriptedTransport(instance_and_no_load_balancer(ok(DOC))))
    module = _gather.run({**metadata_facts_defaults(), "endpoint": "http://127.0.0.1:9"},
                         ScriptedTransport(instance_and_no_load_balancer(ok(DOC))))["ansible_facts"]
    assert {k: v for k, v in fact.items() if k not in EXTRAS} == {
        name[len("ansible_azure_"):]: value for name, value in module.items()}
    assert fact["failed"] is False and fact["from_cache"] is False and fact["warnings"] == []
    assert fact["vm_id"] == DOC["compute"]["vmId"]
    assert "userData" not in fact["metadata"]["compute"]
    time.strptime(fact["fetched_at"], "%Y-%m-%dT%H:%M:%SZ")


def metadata_facts_defaults():
    return {name: spec.get("default") for name, spec in metadata_facts.argument_spec().items()}


def test_user_data_only_when_asked():
    doc = {**DOC, "compute": {**DOC["compute"], "userData": "c2VjcmV0"}}
    assert "user_data" not in _local_fact.facts(config(ttl=0), transport=ScriptedTransport(instance_and_no_load_balancer(ok(doc))))["compute"]
    fact = _local_fact.facts(config(ttl=0, include_user_data=True), transport=ScriptedTransport(instance_and_no_load_balancer(ok(doc))))
    assert fact["compute"]["user_data"] == "secret"


def test_not_an_azure_vm_asks_nothing(tmp_path):
    dmi = tmp_path / "chassis_asset_tag"
    dmi.write_text("Default string\n")
    transport = ScriptedTransport(AssertionError("no request may be made"))
    fact = _local_fact.facts({**_local_fact.defaults(), "dmi_path": str(dmi), "ttl": 0}, transport=transport)
    assert fact["detected"] is False and fact["failed"] is False and fact["api_version"] is None
    assert "not Azure's" in fact["detection_reason"]
    assert transport.calls == []


def test_an_azure_vm_asks_the_default_endpoint(tmp_path):
    dmi = tmp_path / "chassis_asset_tag"
    dmi.write_text(AZURE_TAG + "\n")
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    fact = _local_fact.facts({**_local_fact.defaults(), "dmi_path": str(dmi), "ttl": 0}, transport=transport)
    assert fact["detected"] is True and "Azure's" in fact["detection_reason"]
    assert [call["url"].split("?")[0] for call in transport.calls] == [
        "http://169.254.169.254/metadata/instance", "http://169.254.169.254/metadata/loadbalancer"]


def test_a_failure_is_json_that_says_so():
    fact = _local_fact.facts(config(), transport=ScriptedTransport(TransportError("refused", "connection refused")))
    assert fact["failed"] is True and "from_cache" not in fact
    assert "http://127.0.0.1:9/metadata/instance" in fact["msg"] and "refused" in fact["msg"]


def test_the_deadline_bounds_every_request():
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    _local_fact.facts(config(ttl=0, timeout=30.0, deadline=1.5), transport=transport)
    assert transport.calls[0]["timeout"] <= 1.5


def test_a_document_that_is_not_one_is_a_failure():
    fact = _local_fact.facts(config(ttl=0), transport=ScriptedTransport(ok({"error": "nope"})))
    assert fact["failed"] is True and "not an instance document" in fact["msg"]


# -- the cache ---------------------------------------------------------------------------------

def test_an_answer_is_kept_for_ttl_seconds(rate_dir):
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    first = _local_fact.facts(config(ttl=60), now=1000.0, transport=transport)
    again = _local_fact.facts(config(ttl=60), now=1059.0, transport=transport)
    assert gathers(transport) == 1
    assert again["from_cache"] is True and first["from_cache"] is False
    assert {k: v for k, v in again.items() if k != "from_cache"} == {k: v for k, v in first.items() if k != "from_cache"}
    later = _local_fact.facts(config(ttl=60), now=1060.0, transport=transport)
    assert later["from_cache"] is False and gathers(transport) == 2
    [kept] = list(rate_dir.glob("fact-*.json"))
    assert kept.stat().st_mode & 0o777 == 0o600


def test_a_clock_set_back_does_not_make_an_entry_new(rate_dir):
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    _local_fact.facts(config(ttl=60), now=1000.0, transport=transport)
    assert _local_fact.facts(config(ttl=60), now=900.0, transport=transport)["from_cache"] is False


def test_a_failure_is_never_kept(rate_dir):
    transport = ScriptedTransport(err(403, {"error": "forbidden"}), instance_and_no_load_balancer(ok(DOC)))
    assert _local_fact.facts(config(ttl=60), now=1000.0, transport=transport)["failed"]
    assert list(rate_dir.glob("fact-*.json")) == []
    assert _local_fact.facts(config(ttl=60), now=1001.0, transport=transport)["from_cache"] is False


def test_ttl_zero_keeps_nothing(rate_dir):
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    _local_fact.facts(config(ttl=0), transport=transport)
    _local_fact.facts(config(ttl=0), transport=transport)
    assert gathers(transport) == 2 and list(rate_dir.glob("fact-*")) == []


def test_another_configuration_is_another_entry(rate_dir):
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    _local_fact.facts(config(ttl=60), now=1000.0, transport=transport)
    assert _local_fact.facts(config(ttl=60, include_user_data=True), now=1001.0, transport=transport)["from_cache"] is False
    assert _local_fact.facts(config(ttl=60, endpoint="http://127.0.0.2:9"), now=1001.0,
                             transport=transport)["from_cache"] is False
    assert gathers(transport) == 3


@pytest.mark.parametrize("plant", ["mode", "symlink", "hardlink", "garbage"])
def test_a_cache_file_that_is_not_ours_alone_is_ignored(rate_dir, tmp_path, plant):
    transport = ScriptedTransport(instance_and_no_load_balancer(ok(DOC)))
    _local_fact.facts(config(ttl=60), now=1000.0, transport=transport)
    [kept] = list(rate_dir.glob("fact-*.json"))
    if plant == "mode":
        kept.chmod(0o644)
    elif plant == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_bytes(kept.read_bytes())
        target.chmod(0o600)
        kept.unlink()
        kept.symlink_to(target)
    elif plant == "hardlink":
        os.link(kept, tmp_path / "second-name.json")
    else:
        kept.write_text("{not json")
    assert _local_fact.facts(config(ttl=60), now=1001.0, transport=transport)["from_cache"] is False


# -- main(): what setup reads ------------------------------------------------------------------

def run_main(options):
    out = []
    assert _local_fact.main(options, out.append) == 0
    assert len(out) == 1
    return json.loads(out[0])


@pytest.mark.parametrize("change, words", [
    ({"endpont": "http://127.0.0.1:9"}, "unknown: endpont"),
    ({"ttl": None}, "ttl must be a number of seconds"),
    ({"deadline": 0}, "deadline must be greater than 0"),
    ({"ttl": "soon"}, "ttl must be a number of seconds"),
    ({"include_user_data": "yes"}, "include_user_data must be true or false"),
    ({"endpoint": "https://169.254.169.254"}, "not an http:// URL"),
])
def test_bad_options_are_a_failure_that_says_what(change, words):
    fact = run_main({**config(ttl=0), **change})
    assert fact["failed"] is True and words in fact["msg"]


def test_missing_options_name_the_role():
    options = config()
    del options["dmi_path"]
    fact = run_main(options)
    assert fact["failed"] is True and "missing: dmi_path" in fact["msg"] and "imds.azure.local_facts" in fact["msg"]
    assert "imds.azure.local_facts" in run_main(["not", "a", "mapping"])["msg"]


def test_the_watchdog_ends_what_outlasts_the_deadline(monkeypatch):
    monkeypatch.setattr(_local_fact, "gather", lambda *args: time.sleep(5))
    began = time.monotonic()
    fact = run_main(config(deadline=0.2, ttl=0))
    assert fact["failed"] is True and "deadline of 0.2 s" in fact["msg"]
    assert time.monotonic() - began < 4


@pytest.mark.parametrize("error, words", [
    (KeyError("surprise"), ["KeyError", "surprise", "report it"]),
    (ModuleNotFoundError("No module named 'ansible_collections.imds.azure.plugins.module_utils._client'"),
     ["_client", "apply the imds.azure.local_facts role again"]),
])
def test_an_error_is_reported_not_raised(monkeypatch, error, words):
    def broken(*args):
        raise error

    monkeypatch.setattr(_local_fact, "gather", broken)
    fact = run_main(config(ttl=0))
    assert fact["failed"] is True and all(word in fact["msg"] for word in words), fact["msg"]


def test_a_kept_answer_is_served_without_importing_json_or_the_client(rate_dir, tmp_path):
    """What setup pays when the answer is kept: a bare interpreter that reads one file."""
    import subprocess
    import sys

    _local_fact.facts(config(ttl=60), transport=ScriptedTransport(instance_and_no_load_balancer(ok(DOC))))
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(collections_path())!r})\n"
        "from ansible_collections.imds.azure.plugins.module_utils import _local_fact, _ratelimit\n"
        f"_ratelimit._private_folder_name = lambda base=None: {str(rate_dir)!r}\n"
        "out = []\n"
        f"_local_fact.main({config(ttl=60)!r}, out.append)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('json', 'typing', 're', 'http', 'socket')))\n"
        "print(out[0])\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, check=True)
    imported, printed = proc.stdout.splitlines()
    assert imported == "[]"
    assert json.loads(printed)["from_cache"] is True


# -- the role ships every file the fact imports ------------------------------------------------

def module_utils_closure(name, seen=None):
    """The collection's module_utils that ``name`` imports, anywhere in the file, recursively."""
    seen = set() if seen is None else seen
    seen.add(name)
    prefix = "ansible_collections.imds.azure.plugins.module_utils"
    tree = ast.parse((REPO / "plugins" / "module_utils" / name).read_text())
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.ImportFrom) and node.module == prefix:
            found = [f"{alias.name}.py" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(prefix + "."):
            found = [f"{node.module.rsplit('.', 1)[1]}.py"]
        for other in found:
            if other not in seen:
                module_utils_closure(other, seen)
    return seen


def test_the_role_copies_every_module_util_the_fact_imports():
    role_vars = yaml.safe_load((REPO / "roles" / "local_facts" / "vars" / "main.yml").read_text())
    assert sorted(role_vars["local_facts_module_utils"]) == sorted(module_utils_closure("_local_fact.py"))
    assert all((REPO / "plugins" / "module_utils" / name).is_file() for name in role_vars["local_facts_module_utils"])
    assert Path(_local_fact.__file__).name in role_vars["local_facts_module_utils"]
