"""IMDS paths: parsing as Microsoft writes them, walking, and format=text, checked against the emulator."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.plugin_utils._paths import (
    ATTESTED, INSTANCE, LOADBALANCER, TOKEN, VERSIONS, PathError, PathNotFound, parse_path, text_of, walk)

DOC = {
    "compute": {
        "vmId": "3e4a1f0c",
        "tagsList": [{"name": "Role", "value": "Web"}, {"name": "Env", "value": "prod"}],
        "plan": {"name": "", "product": "", "publisher": ""},
        "publicKeys": [],
        "osProfile": {},
    },
    "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.0.0.4", "publicIpAddress": "20.1.2.3"}]},
                               "ipv6": {"ipAddress": []}, "macAddress": "6045BD7A1C2E"}]},
}


# -- parse_path --------------------------------------------------------------------------

@pytest.mark.parametrize("term, segments", [
    ("compute/vmId", ("compute", "vmId")),
    ("instance/compute/vmId", ("compute", "vmId")),
    ("/metadata/instance/compute/vmId", ("compute", "vmId")),
    ("metadata/instance/compute/vmId", ("compute", "vmId")),
    ("/compute/vmId", ("compute", "vmId")),
    ("compute/vmId/", ("compute", "vmId")),
    ("  compute/vmId\n", ("compute", "vmId")),
    ("network/interface/0/ipv4/ipAddress/0/publicIpAddress",
     ("network", "interface", "0", "ipv4", "ipAddress", "0", "publicIpAddress")),
    ("instance", ()),
    ("instance/", ()),
    ("/metadata/instance", ()),
    ("/metadata/instance/", ()),
    ("compute", ("compute",)),
])
def test_instance_paths(term, segments):
    path = parse_path(term)
    assert path.category == INSTANCE
    assert path.segments == segments
    assert path.url_path == "/metadata/instance" + "".join(f"/{s}" for s in segments)


def test_display_names_the_path_as_written_by_microsoft():
    assert parse_path("/metadata/instance/compute/vmId").display == "compute/vmId"
    assert parse_path("/metadata/instance").display == "instance"


def test_case_is_kept():
    assert parse_path("Compute/VMID").segments == ("Compute", "VMID")


@pytest.mark.parametrize("term, category", [
    ("attested/document", ATTESTED), ("/metadata/attested/document", ATTESTED), ("attested/document/", ATTESTED),
    ("versions", VERSIONS), ("/metadata/versions", VERSIONS),
    ("identity/oauth2/token", TOKEN), ("metadata/identity/oauth2/token", TOKEN),
])
def test_live_only_categories(term, category):
    path = parse_path(term)
    assert path.category == category
    assert not path.is_instance
    assert path.url_path == f"/metadata/{category}"
    assert path.display == category


@pytest.mark.parametrize("term, segments", [
    ("loadbalancer", ()), ("/metadata/loadbalancer", ()), ("loadbalancer/", ()), ("metadata/loadbalancer", ()),
    ("loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress",
     ("loadbalancer", "publicIpAddresses", "0", "frontendIpAddress")),
    ("/metadata/loadbalancer/loadbalancer/inboundRules/", ("loadbalancer", "inboundRules")),
])
def test_loadbalancer_paths_walk_its_document(term, segments):
    path = parse_path(term)
    assert path.category == LOADBALANCER and not path.is_instance
    assert path.segments == segments
    assert path.url_path == "/metadata/loadbalancer"  # fetched whole, walked here
    assert path.display == "/".join(("loadbalancer", *segments))


@pytest.mark.parametrize("term, words", [
    ("", "empty term"),
    ("loadbalancer//inboundRules", "empty segment"),
    ("/metadata/loadbalancers", "names no IMDS category"),
    ("   ", "empty term"),
    ("/", "empty term"),
    (42, "is a int, not an IMDS path"),
    (None, "is a NoneType"),
    (["compute"], "is a list"),
    ("compute//vmId", "empty segment"),
    ("compute/vmId?format=text", "query string"),
    ("compute/vmId&x=1", "query string"),
    ("compute/vm Id", "white space"),
    ("/metadata/scheduledevents", "names no IMDS category"),
    ("/metadata/identity/info", "names no IMDS category"),
    ("metadata/compute/vmId", "names no IMDS category"),
    ("attested/document/signature", "answers only as a whole"),
    ("identity/oauth2/token/access_token", "answers only as a whole"),
    ("x" * 3000, "characters long"),
])
def test_not_paths(term, words):
    with pytest.raises(PathError) as info:
        parse_path(term)
    assert words in str(info.value)


# -- walk ----------------------------------------------------------------------------------

def test_walk_leaf_dict_list():
    assert walk(DOC, ("compute", "vmId")) == "3e4a1f0c"
    assert walk(DOC, ("compute", "tagsList", "1")) == {"name": "Env", "value": "prod"}
    assert walk(DOC, ("network", "interface", "0", "ipv4", "ipAddress", "0", "publicIpAddress")) == "20.1.2.3"
    assert walk(DOC, ()) is DOC


@pytest.mark.parametrize("segments, found, words", [
    (("compute", "vmid"), ("compute",), "compute has no key 'vmid'; keys are case-sensitive, did you mean 'vmId'?"),
    (("compute", "nothing"), ("compute",), "compute has no key 'nothing' (its keys: osProfile, plan, publicKeys"),
    (("compute", "osProfile", "adminUsername"), ("compute", "osProfile"), "has no key 'adminUsername' (it is empty)"),
    (("Compute",), (), "the document root has no key 'Compute'; keys are case-sensitive, did you mean 'compute'?"),
    (("compute", "tagsList", "2"), ("compute", "tagsList"), "a list of 2 elements, so it has no index 2"),
    (("network", "interface", "1"), ("network", "interface"), "a list of 1 element, so it has no index 1"),
    (("compute", "tagsList", "01"), ("compute", "tagsList"), "'01' is not a list index"),
    (("compute", "tagsList", "-1"), ("compute", "tagsList"), "'-1' is not a list index"),
    (("compute", "tagsList", "name"), ("compute", "tagsList"), "'name' is not a list index"),
    (("compute", "vmId", "x"), ("compute", "vmId"), "compute/vmId is a value ('3e4a1f0c'), it has nothing below it"),
])
def test_walk_misses_say_where(segments, found, words):
    with pytest.raises(PathNotFound) as info:
        walk(DOC, segments)
    assert info.value.found == found
    assert words in info.value.reason


def test_walk_lists_at_most_a_dozen_keys():
    doc = {f"k{i:02d}": "" for i in range(20)}
    with pytest.raises(PathNotFound) as info:
        walk(doc, ("zz",))
    assert "k11 and 8 more" in info.value.reason


# -- text_of --------------------------------------------------------------------------------

def test_text_of_root_is_compute_and_network_with_slashes():
    assert text_of(DOC) == "compute/\nnetwork/"


def test_text_of_shapes():
    assert text_of(DOC["compute"]) == "vmId\ntagsList/\nplan/\npublicKeys/\nosProfile/"
    assert text_of(DOC["compute"]["tagsList"]) == "0/\n1/"
    assert text_of(DOC["compute"]["tagsList"][0]) == "name\nvalue"
    assert text_of("20.1.2.3") == "20.1.2.3"
    assert text_of("") == ""
    assert text_of([]) == ""
    assert text_of({}) == ""
    assert text_of(["a", "b"]) == "0\n1"


def test_text_of_non_string_leaves_as_json_spells_them():
    assert text_of(True) == "true"
    assert text_of(False) == "false"
    assert text_of(None) == ""
    assert text_of(3) == "3"


# -- against the emulator: the independent oracle --------------------------------------------

KEYS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=8)
LEAVES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NODES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                     max_leaves=25)


def _paths_into(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths_into(value, prefix + (key,))
        yield prefix + ("missing",)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths_into(value, prefix + (str(index),))
        yield prefix + (str(len(node)),)
        yield prefix + ("00",)
    else:
        yield prefix + ("below",)


@pytest.fixture(scope="module")
def oracle():
    from imds_emulator import Emulator  # tools/, on sys.path through tests/conftest.py

    return Emulator(profile="linux")  # never started: answer() is called directly


def _ask(emu, segments, fmt):
    query = {"api-version": "2025-04-07"}
    if fmt:
        query["format"] = fmt
    path = "/metadata/instance" + "".join(f"/{s}" for s in segments)
    return emu.answer("GET", path, query, {"metadata": "true"}, b"")


@pytest.mark.property
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(compute=st.dictionaries(KEYS, NODES, max_size=5), network=NODES)
def test_walk_and_text_equal_the_emulator(oracle, compute, network):
    document = {"compute": compute, "network": network}
    oracle.document = document
    for segments in _paths_into(document):
        text = _ask(oracle, segments, "text")
        try:
            node = walk(document, segments)
        except PathNotFound:
            assert text.status == 404, segments
            continue
        assert text.status == 200, segments
        assert text_of(node) == text.body.decode("utf-8"), segments
        if isinstance(node, (dict, list)):
            assert json.loads(_ask(oracle, segments, None).body) == node


def test_every_path_of_every_profile_equals_the_emulator():
    from imds_emulator import Emulator, available_profiles

    checked = 0
    for profile in available_profiles():
        emu = Emulator(profile=profile)
        document = json.loads(_ask(emu, (), None).body)
        for segments in _paths_into(document):
            text = _ask(emu, segments, "text")
            try:
                node = walk(document, segments)
            except PathNotFound:
                assert text.status == 404, (profile, segments)
                continue
            assert text_of(node) == text.body.decode("utf-8"), (profile, segments)
            checked += 1
    assert checked > 300
