"""The imds.azure.metadata lookup: sources, terms, answers, defaults, live-only categories, errors.

The HTTP transport is faked (see conftest.py): every request is answered in-process by the IMDS
emulator, and recorded, so that tests can count requests and read their URLs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.imds.azure.plugins.module_utils import _gather
from ansible_collections.imds.azure.plugins.lookup import metadata
from ansible_collections.imds.azure.plugins.module_utils import _detect
from ansible_collections.imds.azure.plugins.plugin_utils import _lookup_live
from ansible_collections.imds.azure.plugins.module_utils._detect import Evidence
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_PROBE_TIMEOUT
from ansible_collections.imds.azure.plugins.plugin_utils._paths import text_of

from .conftest import DEFAULT_ENDPOINT, ENDPOINT, LOCALHOST, TIMEOUT, remote

NEWEST = "2025-04-07"
LINUX_VM_ID = "3e4a1f0c-8b7d-4c52-9a31-6f2d8e5b7c10"
WINDOWS_VM_ID = "9c0b7e2d-5a14-4f36-8e8b-0d3c6a1f5e92"


def document(profile="linux", version=NEWEST):
    """The instance document the emulator serves, as the facts module would store it."""
    from imds_emulator import Emulator, document_for_version

    doc = document_for_version(Emulator(profile=profile).document, version)
    doc["compute"].pop("userData", None)  # metadata_facts leaves it out by default
    return doc


def facts(profile="windows", version=NEWEST):
    return {"azure_detected": True, "azure_api_version": version, "azure_metadata": document(profile, version),
            "azure_detection_reason": "the DMI chassis asset tag is Azure's"}


def error_of(lookup, *args, **kwargs):
    with pytest.raises(AnsibleLookupError) as info:
        lookup(*args, **kwargs)
    return str(info.value)


# -- sources ---------------------------------------------------------------------------------

def test_auto_on_the_controller_without_facts_asks_imds_once(lookup, imds):
    fake = imds("linux")
    assert lookup(["compute/vmId", "compute/location"], LOCALHOST) == [LINUX_VM_ID, "westeurope"]
    assert fake.paths() == ["/metadata/instance"]
    assert fake.queries() == [{"api-version": NEWEST}]
    assert fake.calls[0]["headers"]["Metadata"] == "true"


def test_auto_uses_the_hosts_facts_and_no_network(lookup, imds):
    fake = imds("linux")
    variables = remote(facts=facts("windows"))
    assert lookup("compute/vmId", variables) == [WINDOWS_VM_ID]
    assert fake.calls == []


def test_auto_prefers_facts_even_on_the_controller(lookup, imds):
    fake = imds("linux")
    assert lookup("compute/vmId", {**LOCALHOST, "ansible_facts": facts("windows")}) == [WINDOWS_VM_ID]
    assert fake.calls == []


def test_auto_on_a_remote_host_without_facts_says_to_gather_them(lookup, imds):
    fake = imds("linux")
    message = error_of(lookup, "compute/vmId", remote())
    assert "There are no IMDS facts for host vm1" in message
    assert "not the controller (its ansible_connection is ssh to 192.0.2.10)" in message
    assert "imds.azure.metadata_facts" in message
    assert fake.calls == []


def test_auto_without_facts_is_an_error_even_with_a_default(lookup, imds):
    imds("linux")
    assert "imds.azure.metadata_facts" in error_of(lookup, "compute/vmId", remote(), default="x")


def test_facts_filtered_without_the_document_say_so(lookup, imds):
    imds("linux")
    variables = remote(facts={"azure_detected": True, "azure_vm_id": LINUX_VM_ID})
    message = error_of(lookup, "compute/vmId", variables)
    assert "no azure_metadata" in message and "filter" in message


def test_source_facts_without_facts_is_an_error_on_the_controller_too(lookup, imds):
    fake = imds("linux")
    message = error_of(lookup, "compute/vmId", LOCALHOST, source="facts")
    assert "source=facts, and host localhost has no IMDS facts" in message
    assert "imds.azure.metadata_facts" in message
    assert fake.calls == []


def test_source_live_ignores_facts_on_the_controller(lookup, imds):
    fake = imds("linux")
    assert lookup("compute/vmId", {**LOCALHOST, "ansible_facts": facts("windows")}, source="live") == [LINUX_VM_ID]
    assert len(fake.calls) == 1


def test_source_live_for_a_remote_host_is_refused_with_the_reason(lookup, imds):
    fake = imds("linux")
    message = error_of(lookup, "compute/vmId", remote(facts=facts()), source="live")
    assert "host vm1 is not the controller" in message
    assert "would describe the controller, not vm1" in message
    assert "allow_live_for_remote_hosts=true" in message
    assert fake.calls == []


def test_source_live_for_a_remote_host_when_allowed_answers_for_the_controller(lookup, imds):
    fake = imds("linux")
    assert lookup("compute/vmId", remote(), source="live", allow_live_for_remote_hosts=True) == [LINUX_VM_ID]
    assert len(fake.calls) == 1


def test_auto_on_a_remote_host_when_allowed_goes_live(lookup, imds):
    imds("linux")
    assert lookup("compute/vmId", remote(), allow_live_for_remote_hosts=True) == [LINUX_VM_ID]


def test_no_inventory_host_is_the_controller(lookup, imds):
    imds("linux")
    assert lookup("compute/vmId", None) == [LINUX_VM_ID]
    assert lookup("compute/vmId", {}) == [LINUX_VM_ID]


def test_delegation_does_not_change_whom_the_lookup_answers_for(lookup, imds):
    fake = imds("linux")
    variables = remote(ansible_delegated_vars={"localhost": {"ansible_connection": "local"}})
    assert "There are no IMDS facts for host vm1" in error_of(lookup, "compute/vmId", variables)
    assert fake.calls == []


def test_delegation_to_the_controller_does_not_make_the_host_the_controller(lookup, imds):
    """With delegate_to, Ansible fills the connection variables the host lacks (ansible_ssh_host, ansible_port)
    with the delegated host's: the decision reads the host's own variables from hostvars."""
    fake = imds("linux")
    own = remote()
    variables = {**own, "ansible_ssh_host": "localhost", "ansible_port": None,
                 "ansible_delegated_vars": {"localhost": {"ansible_connection": "local", "ansible_host": "localhost"}},
                 "hostvars": {"vm1": own}}
    message = error_of(lookup, "compute/vmId", variables, source="live")
    assert "host vm1 is not the controller (its ansible_connection is ssh to 192.0.2.10)" in message
    assert fake.calls == []


def test_host_option_reads_another_hosts_facts(lookup, imds):
    fake = imds("linux")
    hostvars = {"vm2": {"inventory_hostname": "vm2", "ansible_host": "192.0.2.11", "ansible_facts": facts("windows")}}
    variables = remote(hostvars=hostvars)
    assert lookup("compute/vmId", variables, host="vm2") == [WINDOWS_VM_ID]
    assert fake.calls == []


def test_host_option_localhost_goes_live_in_a_task_for_a_remote_host(lookup, imds):
    imds("linux")
    hostvars = {"localhost": {"inventory_hostname": "localhost", "ansible_connection": "local"}}
    assert lookup("compute/vmId", remote(hostvars=hostvars), host="localhost") == [LINUX_VM_ID]


def test_host_option_unknown_host(lookup, imds):
    imds("linux")
    assert "no such host in the inventory" in error_of(lookup, "compute/vmId", remote(hostvars={}), host="vm9")


def test_facts_saying_not_azure_give_the_default(lookup, imds):
    imds("linux")
    variables = remote(facts={"azure_detected": False, "azure_api_version": None,
                              "azure_detection_reason": "the DMI chassis asset tag is 'None', not Azure's"})
    assert lookup(["compute/vmId", "compute/name"], variables, default="n/a") == ["n/a", "n/a"]
    message = error_of(lookup, "compute/vmId", variables)
    assert "Cannot answer the IMDS path 'compute/vmId' for host vm1" in message
    assert "not an Azure VM according to its facts (the DMI chassis asset tag is 'None', not Azure's)" in message


def test_facts_gathered_with_another_api_version_warn(lookup, imds, monkeypatch):
    imds("linux")
    warnings = []
    monkeypatch.setattr(metadata.display, "warning", warnings.append)
    assert lookup("compute/vmId", remote(facts=facts(version="2021-02-01")), api_version="2019-06-01") == [WINDOWS_VM_ID]
    assert warnings and "gathered with api-version 2021-02-01, not the api_version 2019-06-01" in warnings[0]


# -- terms and answers -------------------------------------------------------------------------

@pytest.mark.parametrize("term", ["compute/vmId", "instance/compute/vmId", "/metadata/instance/compute/vmId",
                                  "compute/vmId/"])
def test_the_spellings_of_a_path(lookup, imds, term):
    imds("linux")
    assert lookup(term, LOCALHOST) == [LINUX_VM_ID]


def test_json_answers_are_imds_json(lookup, imds):
    fake = imds("linux")
    network, tags, whole = lookup(["network", "compute/tagsList", "instance"], LOCALHOST)
    for answer, path in ((network, "/metadata/instance/network"), (tags, "/metadata/instance/compute/tagsList"),
                         (whole, "/metadata/instance")):
        reply = fake.emulator.answer("GET", path, {"api-version": NEWEST}, {"metadata": "true"}, b"")
        assert answer == json.loads(reply.body)
    assert whole["compute"]["userData"].startswith("IyEvYmluL3No")  # as IMDS returns it


def test_text_answers_are_imds_text(lookup, imds):
    fake = imds("linux")
    paths = ["instance", "compute", "network/interface", "network/interface/0", "compute/tagsList/1",
             "network/interface/0/ipv6/ipAddress", "compute/vmId", "compute/zone", "compute/userData"]
    answers = lookup(paths, LOCALHOST, format="text")
    for path, answer in zip(paths, answers):
        url = "/metadata/instance" if path == "instance" else f"/metadata/instance/{path}"
        reply = fake.emulator.answer("GET", url, {"api-version": NEWEST, "format": "text"}, {"metadata": "true"}, b"")
        assert answer == reply.body.decode(), path


def test_results_are_copies(lookup, imds):
    imds("linux")
    first = lookup("compute/tagsList", LOCALHOST)[0]
    first.append("changed")
    assert "changed" not in lookup("compute/tagsList", LOCALHOST)[0]


def test_no_terms_no_request(lookup, imds):
    fake = imds("linux")
    assert lookup([], LOCALHOST) == []
    assert fake.calls == []


def test_missing_path_names_path_and_api_version(lookup, imds):
    imds("linux")
    message = error_of(lookup, "compute/vmid", LOCALHOST)
    assert "The IMDS path 'compute/vmid' does not exist" in message
    assert f"(api-version {NEWEST})" in message
    assert "did you mean 'vmId'?" in message


def test_missing_path_from_facts_names_the_facts_version(lookup, imds):
    imds("linux")
    message = error_of(lookup, "compute/tagsList", remote(facts=facts(version="2019-06-01")))
    assert "does not exist in the facts of host vm1 (api-version 2019-06-01)" in message


def test_missing_index(lookup, imds):
    imds("linux")
    assert "no index 3" in error_of(lookup, "network/interface/3/macAddress", LOCALHOST)


def test_default_for_missing_paths_only(lookup, imds):
    imds("linux")
    answers = lookup(["compute/vmId", "compute/nothing", "network/interface/5"], LOCALHOST, default="-")
    assert answers == [LINUX_VM_ID, "-", "-"]


def test_default_may_be_none_or_data(lookup, imds):
    imds("linux")
    assert lookup("compute/nothing", LOCALHOST, default=None) == [None]
    assert lookup("compute/nothing", LOCALHOST, default={"a": [1]}) == [{"a": [1]}]


def test_userdata_from_facts_explains_include_user_data(lookup, imds):
    imds("linux")
    assert "include_user_data=true" in error_of(lookup, "compute/userData", remote(facts=facts()))


@pytest.mark.parametrize("term, words", [
    ("compute//vmId", "empty segment"),
    ("compute/vmId?format=text", "query string"),
    (7, "not an IMDS path"),
    ("/metadata/scheduledevents", "names no IMDS category"),
])
def test_bad_terms(lookup, imds, term, words):
    fake = imds("linux")
    assert words in error_of(lookup, ["compute/vmId", term], LOCALHOST)
    assert fake.calls == []


def test_unknown_option_is_named(lookup, imds):
    imds("linux")
    message = error_of(lookup, "compute/vmId", LOCALHOST, defualt="x")
    assert "has no option defualt" in message and "default" in message


def test_bad_option_values(lookup, imds):
    imds("linux")
    assert "format" in error_of(lookup, "compute/vmId", LOCALHOST, format="xml")
    assert "not an http:// URL" in error_of(lookup, "compute/vmId", LOCALHOST, endpoint="ftp://x")
    assert "timeout must be greater than 0" in error_of(lookup, "compute/vmId", LOCALHOST, timeout=0)


# -- options from variables and the environment ----------------------------------------------------

def test_options_from_variables(lookup, imds):
    fake = imds("linux")
    variables = {**LOCALHOST, "imds_azure_endpoint": "http://imds.test", "imds_azure_api_version": "2019-06-01",
                 "imds_azure_lookup_source": "live"}
    assert lookup("compute/vmId", {**variables, "ansible_facts": facts("windows")}, endpoint=None) == [LINUX_VM_ID]
    assert fake.queries() == [{"api-version": "2019-06-01"}]


def test_options_from_the_environment(lookup, imds, monkeypatch):
    fake = imds("linux")
    monkeypatch.setenv("ANSIBLE_IMDS_AZURE_ENDPOINT", "http://imds.test")
    monkeypatch.setenv("ANSIBLE_IMDS_AZURE_API_VERSION", "2018-10-01")
    monkeypatch.setenv("ANSIBLE_IMDS_AZURE_LOOKUP_CACHE_TTL", "0")
    assert lookup("compute/vmId", LOCALHOST, endpoint=None) == [LINUX_VM_ID]
    assert lookup("compute/vmId", LOCALHOST, endpoint=None) == [LINUX_VM_ID]
    assert fake.queries() == [{"api-version": "2018-10-01"}] * 2  # cache_ttl=0: no cache


def test_direct_options_win_over_variables(lookup, imds):
    fake = imds("linux")
    lookup("compute/vmId", {**LOCALHOST, "imds_azure_api_version": "2019-06-01"}, api_version="2021-02-01")
    assert fake.queries() == [{"api-version": "2021-02-01"}]


# -- live: versions, pinning, failures ---------------------------------------------------------------

def test_pinned_old_api_version_is_asked_for_and_bounds_the_fields(lookup, imds):
    fake = imds("linux")
    assert lookup("compute/vmId", LOCALHOST, api_version="2017-08-01") == [LINUX_VM_ID]
    message = error_of(lookup, "compute/tagsList", LOCALHOST, api_version="2017-08-01")
    assert "(api-version 2017-08-01)" in message
    assert fake.queries() == [{"api-version": "2017-08-01"}]  # one request: the second call used the cache


def test_pinned_version_imds_refuses(lookup, imds):
    imds("linux", faults={"versions": ["2019-06-01", "2019-06-04"]})
    message = error_of(lookup, "compute/vmId", LOCALHOST, api_version="2021-02-01")
    assert "pinned api_version 2021-02-01 is not served here" in message
    assert "2019-06-04" in message


def test_negotiated_version_is_named_in_messages(lookup, imds):
    fake = imds("linux", faults={"versions": ["2019-06-01", "2019-06-04"]})
    message = error_of(lookup, "compute/securityProfile", LOCALHOST)
    assert "(api-version 2019-06-04)" in message
    assert [q["api-version"] for q in fake.queries()] == [NEWEST, "2019-06-04"]


def test_imds_failing_is_an_error_even_with_a_default(lookup, imds):
    fake = imds("linux")
    fake.script("/metadata/instance", 500)
    message = error_of(lookup, "compute/vmId", LOCALHOST, default="x", retry_timeout=0)
    assert "IMDS answered 500" in message


def test_controller_not_on_azure_by_dmi_gives_the_default_without_any_request(lookup, imds, monkeypatch):
    fake = imds("linux")
    monkeypatch.setattr(_detect, "dmi_evidence", lambda path: Evidence(False, "the asset tag is 'x'"))
    terms = [f"compute/tagsList/{i}" for i in range(100)]
    assert lookup(terms, LOCALHOST, endpoint=DEFAULT_ENDPOINT, default="") == [""] * 100
    message = error_of(lookup, "compute/vmId", LOCALHOST, endpoint=DEFAULT_ENDPOINT)
    assert "the controller, whose IMDS the live source asks, is not an Azure VM (the asset tag is 'x')" in message
    assert fake.calls == []


def test_controller_that_may_be_azure_probes_once_then_remembers(lookup, imds, monkeypatch):
    fake = imds("linux")
    fake.script("/metadata/instance", TIMEOUT)
    monkeypatch.setattr(_detect, "dmi_evidence", lambda path: Evidence(None, "no DMI data"))
    for dummy in range(5):
        assert lookup(["compute/vmId", "compute/name"], LOCALHOST, endpoint=DEFAULT_ENDPOINT, default="-") == ["-", "-"]
    assert len(fake.calls) == 1
    assert fake.calls[0]["timeout"] == DEFAULT_PROBE_TIMEOUT


def test_the_probe_timeout_is_an_option(lookup, imds, monkeypatch):
    fake = imds("linux")
    fake.script("/metadata/instance", TIMEOUT)
    monkeypatch.setattr(_detect, "dmi_evidence", lambda path: Evidence(None, "no DMI data"))
    assert lookup("compute/vmId", LOCALHOST, endpoint=DEFAULT_ENDPOINT, default="-", probe_timeout=3.5) == ["-"]
    assert fake.calls[0]["timeout"] == 3.5


@pytest.mark.parametrize("options, needle", [
    ({"probe_timeout": float("nan")}, "probe_timeout must be a finite number"),
    ({"timeout": float("inf")}, "timeout must be a finite number"),
    ({"endpoint": "http://127.0.0.1:9/metadata"}, "has a path, query or fragment"),
    ({"api_version": ""}, "api_version must be a date"),
])
def test_bad_option_values_are_one_line_lookup_errors(lookup, imds, options, needle):
    imds("linux")
    with pytest.raises(AnsibleLookupError) as exc:
        lookup("compute/vmId", LOCALHOST, **options)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_controller_on_azure_by_dmi_asks_imds(lookup, imds, monkeypatch):
    fake = imds("linux")
    monkeypatch.setattr(_detect, "dmi_evidence", lambda path: Evidence(True, "Azure's tag"))
    assert lookup("compute/vmId", LOCALHOST, endpoint=DEFAULT_ENDPOINT) == [LINUX_VM_ID]
    assert fake.calls[0]["url"].startswith(DEFAULT_ENDPOINT + "/metadata/instance?")


def test_explicit_endpoint_failures_are_failures(lookup, imds):
    fake = imds("linux")
    fake.script("/metadata/instance", TIMEOUT)
    message = error_of(lookup, "compute/vmId", LOCALHOST, default="x", timeout=1)
    assert "Could not get http://imds.test/metadata/instance" in message and "timed out" in message


# -- live cache ------------------------------------------------------------------------------------------

def test_many_lookups_one_request_even_across_processes(lookup, imds):
    fake = imds("linux")
    for dummy in range(20):
        lookup(["compute/vmId", "network/interface/0/ipv4/ipAddress/0/privateIpAddress"], LOCALHOST)
        _lookup_live.clear_memory()  # as a new fork would start: only the run's file remains
    assert len(fake.calls) == 1


def test_cache_is_keyed_by_endpoint_and_api_version(lookup, imds):
    fake = imds("linux")
    for dummy in range(3):
        lookup("compute/vmId", LOCALHOST)
        lookup("compute/vmId", LOCALHOST, api_version="2019-06-01")
    assert [q["api-version"] for q in fake.queries()] == [NEWEST, "2019-06-01"]


def test_cache_file_is_private_and_holds_no_user_data(lookup, imds, run_dir):
    fake = imds("linux")
    user_data = fake.emulator.document["compute"]["userData"]
    assert lookup("compute/userData", LOCALHOST) == [user_data]
    assert lookup("compute/userData", LOCALHOST) == [user_data]
    files = [p for p in run_dir.iterdir() if p.suffix == ".json"]
    assert len(files) == 1
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    text = files[0].read_text()
    assert user_data not in text
    assert json.loads(text)["document"]["compute"]["userData"] is None
    # userData is asked for each time it is needed, never cached
    assert fake.paths() == ["/metadata/instance", "/metadata/instance/compute/userData",
                            "/metadata/instance/compute/userData"]


def test_user_data_is_asked_only_when_the_answer_shows_it(lookup, imds):
    fake = imds("linux")
    listing, name = lookup(["compute", "compute/name"], LOCALHOST, format="text")
    assert "\nuserData\n" in listing
    assert fake.paths() == ["/metadata/instance"]
    compute = lookup("compute", LOCALHOST)[0]
    assert compute["userData"] == fake.emulator.document["compute"]["userData"]
    assert list(compute) == list(fake.emulator.document["compute"])  # same order as IMDS
    assert fake.paths()[-1] == "/metadata/instance/compute/userData"


def test_cache_ttl_zero_asks_for_every_call_but_once_per_call(lookup, imds, run_dir):
    fake = imds("linux")
    for dummy in range(3):
        lookup(["compute/vmId", "compute/name", "compute/location"], LOCALHOST, cache_ttl=0)
    assert len(fake.calls) == 3
    assert not [p for p in run_dir.iterdir() if p.suffix == ".json"]


def test_without_a_run_folder_the_cache_holds_in_the_process(lookup, imds, monkeypatch):
    fake = imds("linux")
    monkeypatch.setattr(metadata, "_run_directory", lambda: None)
    for dummy in range(3):
        lookup("compute/vmId", LOCALHOST)
    assert len(fake.calls) == 1


# -- live-only categories -----------------------------------------------------------------------------

def test_versions(lookup, imds):
    fake = imds("linux")
    answer = lookup("versions", LOCALHOST)[0]
    assert NEWEST in answer["apiVersions"]
    assert fake.queries() == [{}]  # /metadata/versions takes no api-version


def test_attested_document_with_nonce_is_never_cached(lookup, imds, run_dir):
    fake = imds("linux")
    for dummy in range(2):
        answer = lookup("attested/document", LOCALHOST, nonce="1234567890")[0]
        assert answer["encoding"] == "pkcs7" and answer["signature"]
    assert fake.queries() == [{"nonce": "1234567890", "api-version": NEWEST}] * 2
    assert not list(run_dir.iterdir())


def test_attested_document_refused_for_a_pinned_old_version(lookup, imds):
    imds("linux")
    assert "pinned api_version 2017-08-01 is not served here" in error_of(
        lookup, "attested/document", LOCALHOST, api_version="2017-08-01")


def test_loadbalancer(lookup, imds):
    imds("linux")
    assert "loadbalancer" in lookup("loadbalancer", LOCALHOST)[0]


def test_loadbalancer_missing_gives_the_default_or_says_so(lookup, imds):
    imds("windows")  # no load balancer in this profile
    assert lookup("loadbalancer", LOCALHOST, default={}) == [{}]
    assert "No load balancer metadata is found" in error_of(lookup, "loadbalancer", LOCALHOST)


def test_token(lookup, imds, run_dir):
    fake = imds("linux")
    token = lookup("identity/oauth2/token", LOCALHOST, resource="https://vault.azure.net")[0]
    assert token["token_type"] == "Bearer" and token["resource"] == "https://vault.azure.net"
    assert fake.queries() == [{"resource": "https://vault.azure.net", "api-version": "2018-02-01"}]
    assert not list(run_dir.iterdir())  # nothing written, not even a lock


def test_token_for_a_user_assigned_identity(lookup, imds):
    fake = imds("linux")
    client_id = fake.emulator._identity["client_id"]
    lookup("identity/oauth2/token", LOCALHOST, resource="https://management.azure.com/", client_id=client_id)
    assert fake.queries()[0]["client_id"] == client_id


def test_token_errors(lookup, imds):
    fake = imds("linux")
    assert "needs the resource option" in error_of(lookup, "identity/oauth2/token", LOCALHOST)
    assert "at most one of client_id, object_id and msi_res_id" in error_of(
        lookup, "identity/oauth2/token", LOCALHOST, resource="r", client_id="a", object_id="b")
    message = error_of(lookup, "identity/oauth2/token", LOCALHOST, resource="r", client_id="someone-else")
    assert "Identity not found" in message and "no managed identity" in message
    assert len(fake.calls) == 1


def test_token_for_a_remote_host_is_refused_unless_allowed(lookup, imds):
    fake = imds("linux")
    message = error_of(lookup, "identity/oauth2/token", remote(), resource="r")
    assert "identity/oauth2/token live asks the controller's IMDS" in message
    assert fake.calls == []
    assert lookup("identity/oauth2/token", remote(), resource="r", allow_live_for_remote_hosts=True)[0]["access_token"]


def test_live_only_categories_are_not_facts_nor_text(lookup, imds):
    fake = imds("linux")
    assert "never part of the facts" in error_of(lookup, "versions", LOCALHOST, source="facts")
    assert "JSON only" in error_of(lookup, "loadbalancer", LOCALHOST, format="text")
    assert fake.calls == []


@pytest.mark.parametrize("option", ["nonce", "resource", "client_id", "object_id", "msi_res_id"])
def test_category_options_without_their_term(lookup, imds, option):
    fake = imds("linux")
    assert f"The option {option} applies to the term" in error_of(lookup, "compute/vmId", LOCALHOST, **{option: "1"})
    assert fake.calls == []


def test_mixed_terms(lookup, imds):
    imds("linux")
    vm_id, versions, text = lookup(["compute/vmId", "versions", "compute/osType"], LOCALHOST)
    assert vm_id == LINUX_VM_ID and "apiVersions" in versions and text == "Linux"


def test_text_of_facts_equals_text_of_live(lookup, imds):
    imds("linux")
    paths = ["compute", "network/interface/0/ipv4", "compute/tagsList", "compute/vmId"]
    live = lookup(paths, LOCALHOST, format="text")
    facts = {"azure_metadata": lookup("instance", LOCALHOST)[0], "azure_api_version": NEWEST}
    facts_answers = lookup(paths, remote(facts=facts), format="text")
    assert live == facts_answers
    assert live[3] == text_of(LINUX_VM_ID)


def test_documentation_is_merged_from_the_fragment():
    from .conftest import option_definitions

    options = option_definitions()
    assert options["endpoint"]["default"] == "http://169.254.169.254"
    assert options["endpoint"]["env"] == [{"name": "ANSIBLE_IMDS_AZURE_ENDPOINT"}]
    assert options["api_version"]["vars"] == [{"name": "imds_azure_api_version"}]
    assert options["retry_timeout"]["ini"] == [{"section": "imds_azure", "key": "retry_timeout"}]
    assert "description" in options["timeout"]


def test_plugin_file_imports_nothing_that_speaks_http_but_the_adapter():
    source = Path(metadata.__file__).read_text(encoding="utf-8")
    assert "open_url" not in source and "fetch_url" not in source and "http.client" not in source
    assert os.path.basename(metadata.__file__) == "metadata.py"


def test_a_list_of_paths_counts_as_that_many_terms(lookup, imds):
    fake = imds("linux")
    assert lookup([["compute/vmId", "compute/osType"], "compute/zone"], LOCALHOST) == [LINUX_VM_ID, "Linux", "2"]
    assert len(fake.calls) == 1
    assert "is a list" in error_of(lookup, [[["compute/vmId"]]], LOCALHOST)


# -- whom the live source may answer for: loopback is not enough ------------------------------

def forwarded(**extra):
    """A host reached through 127.0.0.1:2222, as Vagrant, a container's port or a tunnel gives it."""
    return {"inventory_hostname": "box", "ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_facts": {},
            **extra}


@pytest.mark.parametrize("variables, why", [
    (forwarded(), "ssh to the loopback address 127.0.0.1, but its port is 2222"),
    ({"inventory_hostname": "localhost", "ansible_connection": "ssh",
      "ansible_ssh_common_args": "-o ProxyJump=bastion"}, "its ssh_common_args sets ProxyJump"),
    ({"inventory_hostname": "win", "ansible_connection": "winrm", "ansible_host": "127.0.0.1"},
     "a port forwarded to a Windows machine"),
])
def test_loopback_hosts_that_are_other_machines_get_no_live_answer(lookup, imds, variables, why):
    fake = imds("linux")
    message = error_of(lookup, "compute/vmId", variables)
    assert "it is not the controller" in message and why in message
    assert "imds_azure_lookup_host_is_controller" in message or "Windows" in message
    message = error_of(lookup, "identity/oauth2/token", variables, resource="https://vault.azure.net")
    assert "is not the controller" in message and why in message
    assert fake.calls == []  # neither the controller's document nor its token


@pytest.mark.parametrize("value", [True, "true", "yes", 1])
def test_the_host_variable_lets_a_forwarded_host_be_the_controller(lookup, imds, value):
    fake = imds("linux")
    assert lookup("compute/vmId", forwarded(imds_azure_lookup_host_is_controller=value)) == [LINUX_VM_ID]
    assert fake.paths() == ["/metadata/instance"]


@pytest.mark.parametrize("value", [False, "false", "no"])
def test_the_host_variable_can_say_a_local_host_is_not_the_controller(lookup, imds, value):
    fake = imds("linux")
    message = error_of(lookup, "compute/vmId", {**LOCALHOST, "imds_azure_lookup_host_is_controller": value})
    assert "its imds_azure_lookup_host_is_controller is false" in message and fake.calls == []


@pytest.mark.parametrize("value", ["maybe", [], "2"])
def test_the_host_variable_must_be_a_boolean(lookup, imds, value):
    imds("linux")
    message = error_of(lookup, "compute/vmId", {**LOCALHOST, "imds_azure_lookup_host_is_controller": value})
    assert message.startswith("imds_azure_lookup_host_is_controller of host localhost must be true or false")


def test_host_variables_are_templated_before_the_decision(lookup, imds):
    from .conftest import trusted

    fake = imds("linux")
    far = {"inventory_hostname": "tpl", "ansible_connection": "ssh", "ansible_host": trusted("{{ real_address }}"),
           "real_address": "192.0.2.50", "ansible_facts": {}}
    assert "ssh to 192.0.2.50" in error_of(lookup, "compute/vmId", far)
    near = {**far, "real_address": "127.0.0.1", "ansible_port": trusted("{{ real_port }}"), "real_port": 2222}
    assert "127.0.0.1, but its port is 2222" in error_of(lookup, "compute/vmId", near)
    local = {**far, "ansible_connection": trusted("{{ how }}"), "how": "local"}
    assert lookup("compute/vmId", local) == [LINUX_VM_ID]
    assert fake.paths() == ["/metadata/instance"]


def test_facts_need_no_decision_even_with_broken_connection_variables(lookup, imds):
    from .conftest import trusted

    fake = imds("linux")
    variables = remote(facts=facts("windows"), ansible_host=trusted("{{ undefined_variable }}"))
    assert lookup("compute/vmId", variables) == [WINDOWS_VM_ID] and fake.calls == []
    message = error_of(lookup, "compute/vmId", {**variables, "ansible_facts": {}})
    assert "its connection settings cannot be read" in message and "undefined_variable" in message


# -- documents in gathered facts that no IMDS sends --------------------------------------------

def deep(levels):
    value = "leaf"
    for dummy in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [250, 900, 50_000])
def test_facts_nested_deeper_than_any_document_are_a_one_line_error(lookup, imds, levels):
    imds("linux")
    gathered = facts("linux")
    gathered["azure_metadata"]["network"]["future"] = deep(levels)
    variables = remote(facts=gathered)
    message = error_of(lookup, "network", variables)
    assert message == ("The facts of host vm1 (ansible_facts['azure_metadata']) are not an IMDS instance document: "
                       "network is nested more than 64 levels deep; an IMDS instance document is not. Gather them "
                       "again with imds.azure.metadata_facts.")
    assert "nested more than" in error_of(lookup, "compute/vmId", variables)  # any path: the document is refused


def test_live_document_nested_too_deep_or_with_nan_is_an_error_not_a_traceback(lookup, imds, monkeypatch):
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient

    imds("linux")
    real = ImdsClient.instance

    def poisoned(self, *args, **kwargs):
        response = real(self, *args, **kwargs)
        response.data["extended"] = deep(900)
        return response

    monkeypatch.setattr(ImdsClient, "instance", poisoned)
    message = error_of(lookup, "compute/vmId", LOCALHOST)
    assert "not an instance document (extended is nested more than 64 levels deep" in message


# -- text from the document, escaped in messages -------------------------------------------------

def test_path_not_found_shows_keys_and_values_escaped(lookup, imds):
    imds("linux")
    gathered = facts("linux")
    gathered["azure_metadata"]["compute"]["\x1b]0;owned\x07key\u202e"] = "v"
    gathered["azure_metadata"]["compute"]["name"] = "\x1b[2J\r\nforged line\u2028"
    variables = remote(facts=gathered)
    for term in ("compute/noSuchField", "compute/name/below", "compute/\x1b[31m"):
        message = error_of(lookup, term, variables)
        assert message.isprintable(), message
    assert "\\x1b[2J\\r\\nforged line\\u2028" in error_of(lookup, "compute/name/below", variables)
    assert "\\x1b]0;owned\\x07key\\u202e" in error_of(lookup, "compute/noSuchField", variables)


# -- loadbalancer paths: from the facts too --------------------------------------------------

LB_BODY = {"publicIpAddresses": [{"frontendIpAddress": "20.61.15.200", "privateIpAddress": "10.0.0.4"}],
           "inboundRules": [{"frontendIpAddress": "20.61.15.201", "protocol": "tcp", "frontendPort": 2222,
                             "backendPort": 22, "privateIpAddress": "10.0.0.4"}],
           "outboundRules": []}
LB_PATHS = ["loadbalancer", "/metadata/loadbalancer", "loadbalancer/loadbalancer",
            "loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress",
            "loadbalancer/loadbalancer/inboundRules/0/frontendPort", "loadbalancer/loadbalancer/outboundRules"]


@pytest.fixture
def lb_profile(tmp_path):
    """An emulator profile file: the windows profile's document behind a load balancer (LB_BODY)."""
    from imds_emulator import load_profile

    path = tmp_path / "behind-a-load-balancer.json"
    path.write_text(json.dumps({**load_profile("windows"), "_loadbalancer": LB_BODY}))
    return path


def gathered(fake, **params):
    """The facts imds.azure.metadata_facts gathers from the fake's emulator (ansible_ prefix dropped)."""
    from ansible_collections.imds.azure.plugins.modules import metadata_facts

    options = {name: spec.get("default") for name, spec in metadata_facts.argument_spec().items()}
    options.update(endpoint=ENDPOINT, **params)
    result = _gather.run(options, fake)
    fake.calls.clear()
    return {name[len("ansible_"):]: value for name, value in result["ansible_facts"].items()}


def test_loadbalancer_paths_from_the_facts_answer_as_imds_does(lookup, imds, lb_profile):
    fake = imds(profile_file=lb_profile)
    host_facts = gathered(fake)
    assert host_facts["azure_load_balancer_status"] == "found"
    from_facts = lookup(LB_PATHS, remote(facts=host_facts))
    assert fake.calls == []  # no network: the facts answered
    live = lookup(LB_PATHS, {**LOCALHOST, "ansible_facts": {}})
    assert from_facts == live == [{"loadbalancer": LB_BODY}, {"loadbalancer": LB_BODY}, LB_BODY, "20.61.15.200",
                                  2222, []]
    assert fake.paths() == ["/metadata/loadbalancer"] * len(LB_PATHS)  # live: the document, whole, each term


def test_loadbalancer_answers_from_facts_are_copies(lookup, imds, lb_profile):
    host_facts = gathered(imds(profile_file=lb_profile))
    answer = lookup("loadbalancer", remote(facts=host_facts), source="facts")[0]
    answer["loadbalancer"]["publicIpAddresses"].clear()
    assert host_facts["azure_load_balancer_metadata"]["loadbalancer"]["publicIpAddresses"]


def test_loadbalancer_path_that_is_not_there(lookup, imds, lb_profile):
    fake = imds(profile_file=lb_profile)
    host_facts = gathered(fake)
    term = "loadbalancer/loadbalancer/outboundRules/0/frontendIpAddress"
    assert lookup(term, remote(facts=host_facts), default="none") == ["none"]
    message = error_of(lookup, term, remote(facts=host_facts))
    assert message.startswith(f"The IMDS path '{term}' does not exist in the load balancer metadata in the facts of "
                              "host vm1 (api-version 2025-04-07): loadbalancer/outboundRules is a list of 0 elements")
    assert "does not exist in the loadbalancer document IMDS at http://imds.test returned live" in error_of(
        lookup, term, LOCALHOST)


def test_no_load_balancer_metadata_from_the_facts_is_what_imds_said(lookup, imds):
    fake = imds("windows")  # no load balancer: IMDS answers 404 "No load balancer metadata is found"
    host_facts = gathered(fake)
    assert host_facts["azure_load_balancer_status"] == "not_found"
    for source in ("auto", "facts"):
        assert lookup("loadbalancer", remote(facts=host_facts), source=source, default={}) == [{}]
        message = error_of(lookup, "loadbalancer", remote(facts=host_facts), source=source)
        assert message == ('IMDS told the gather on host vm1 that it has no load balancer metadata (404 "No load '
                           'balancer metadata is found"): the VM is behind no Standard SKU load balancer and has no '
                           'Standard SKU public IP. Set default= to get a value instead.')
    assert fake.calls == []
    # live, the same answer: the default, or IMDS's words
    assert lookup("loadbalancer", LOCALHOST, default={}) == [{}]
    assert "No load balancer metadata is found" in error_of(lookup, "loadbalancer", LOCALHOST)


@pytest.mark.parametrize(("host_facts", "words"), [
    ({**facts(), "azure_load_balancer_status": "not_requested"}, "gathered with load_balancer=false"),
    ({**facts(version="2019-06-01"), "azure_load_balancer_status": "not_requested"},
     "gathered with api-version 2019-06-01, older than 2020-10-01"),
    ({**facts(), "azure_load_balancer_status": "failed"}, "reading it failed when they were gathered"),
    (facts(), "azure_load_balancer_status'] is missing"),
    ({**facts(), "azure_load_balancer_status": "found"}, "azure_load_balancer_metadata'] is missing"),
])
def test_facts_without_a_load_balancer_document_say_why(lookup, imds, host_facts, words):
    fake = imds("linux")
    message = error_of(lookup, "loadbalancer", remote(facts=host_facts), source="facts", default={})
    assert message.startswith("source=facts, and the facts of host vm1 hold no load balancer metadata (")
    assert words in message and "load_balancer=true (the default)" in message
    message = error_of(lookup, "loadbalancer", remote(facts=host_facts))  # auto, a remote host: no live either
    assert message.startswith("There is no load balancer metadata in the facts of host vm1 (") and words in message
    assert "not the controller (its ansible_connection is ssh to 192.0.2.10)" in message
    assert fake.calls == []


def test_auto_on_the_controller_without_it_in_the_facts_asks_live(lookup, imds, lb_profile):
    fake = imds(profile_file=lb_profile)
    host_facts = gathered(fake, load_balancer=False)
    assert host_facts["azure_load_balancer_status"] == "not_requested"
    assert lookup("loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress",
                  {**LOCALHOST, "ansible_facts": host_facts}) == ["20.61.15.200"]
    assert fake.paths() == ["/metadata/loadbalancer"]


def test_loadbalancer_facts_of_a_host_that_is_not_on_azure(lookup, imds):
    fake = imds("linux")
    not_azure = {"azure_detected": False, "azure_api_version": None, "azure_detection_reason": "no DMI tag"}
    assert lookup("loadbalancer", remote(facts=not_azure), default="-") == ["-"]
    assert "not an Azure VM according to its facts (no DMI tag)" in error_of(
        lookup, "loadbalancer", remote(facts=not_azure))
    assert fake.calls == []


def test_loadbalancer_as_text_is_refused_from_facts_too(lookup, imds, lb_profile):
    host_facts = gathered(imds(profile_file=lb_profile))
    assert "JSON only" in error_of(lookup, "loadbalancer/loadbalancer", remote(facts=host_facts), format="text")
