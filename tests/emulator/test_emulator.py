"""The emulator answers as IMDS documents: headers, versions, paths, formats, categories."""
from __future__ import annotations

import base64
import email.utils
import json
import time
import urllib.request

import pytest

from imds_emulator import (
    API_VERSIONS, Emulator, EmulatorError, VERSION_ERROR_NEW, available_profiles, document_for_version, load_profile,
)

from ansible_collections.imds.azure.tests.utils.paths import FIXTURES

REAL = FIXTURES / "real-imds"
PROFILES = ["linux", "multi-nic-ipv6", "no-public-ip", "nva-gateway-lb", "old-tags-colon", "scaleset", "spot", "standard-lb",
            "standard-public-ip", "windows"]
FIELDS_2017_04_02 = {"location", "name", "offer", "osType", "platformFaultDomain", "platformUpdateDomain",
                     "publisher", "sku", "version", "vmId", "vmSize"}


def profile_document(name: str) -> dict:
    return {k: v for k, v in load_profile(name).items() if not k.startswith("_")}


# --- the request rules -----------------------------------------------------------------

def test_requests_without_the_metadata_header_are_refused(client):
    imds = client()
    for headers in ({}, {"Metadata": "false"}, {"Metadatas": "true"}):
        reply = imds.get("/metadata/instance", metadata=False, headers=headers)
        assert reply.status_code == 400
        assert reply.json() == {"error": "Bad request. Required metadata header not specified"}
    assert imds.get("/metadata/instance", metadata=False, headers={"metadata": "True"}).status_code == 200


def test_proxied_requests_are_refused(client):
    reply = client().get("/metadata/instance", headers={"X-Forwarded-For": "10.0.0.9"})
    assert reply.status_code == 400
    assert "X-Forwarded-For" in reply.json()["error"]


def test_versions_lists_every_known_version_without_api_version(client):
    reply = client().get("/metadata/versions", api_version=None)
    assert reply.status_code == 200
    assert reply.json() == {"apiVersions": list(API_VERSIONS)}
    assert reply.json()["apiVersions"][-3:] == ["2024-03-15", "2024-07-17", "2025-04-07"]


@pytest.mark.parametrize("params", [{}, {"api-version": "2019-07-15"}, {"api-version": "latest"},
                                    {"api-version": ""}, {"Api-Version": "2021-02-01"},
                                    {"api-version": "2017-03-01"}])
def test_missing_or_unknown_api_version_lists_the_newest_three(client, params):
    imds = client()
    reply = imds.session.get(imds.emu.url + "/metadata/instance", params=params, headers={"Metadata": "true"})
    assert reply.status_code == 400
    assert reply.json() == {"error": VERSION_ERROR_NEW, "newest-versions": ["2025-04-07", "2024-07-17", "2024-03-15"]}
    assert reply.json()["error"] == ("Bad request. api-version is invalid or was not specified in the request. "
                                     "For more information refer to aka.ms/azureimds")


def test_paths_are_case_sensitive_and_unknown_paths_are_404(client):
    imds = client()
    for path in ("/metadata/Instance", "/Metadata/instance", "/metadata/instance/Compute",
                 "/metadata/instance/compute/VMID", "/metadata/nothing", "/", "/metadata",
                 "/metadata/instance/compute//vmId", "/metadata/instance/compute/vmId/more"):
        reply = imds.get(path, format="text")
        assert reply.status_code == 404, path
        assert reply.json() == {"error": "Not found"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_methods_other_than_get_and_post_are_405(client, method):
    imds = client()
    reply = imds.request(method, "/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"})
    assert reply.status_code == 405
    assert reply.json() == {"error": "Not allowed"}


def test_post_is_only_for_scheduled_events(client):
    imds = client()
    reply = imds.request("POST", "/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"},
                         data="{}")
    assert reply.status_code == 405
    head = imds.request("HEAD", "/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"})
    assert head.status_code == 405 and head.content == b""
    assert imds.get("/metadata/instance").status_code == 200  # the connection survived the HEAD


# --- the instance document ----------------------------------------------------------------

def test_the_newest_version_serves_the_whole_profile_but_no_emulator_keys(client):
    reply = client().get("/metadata/instance")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.json() == profile_document("linux")
    assert "_loadbalancer" not in reply.text and "_description" not in reply.text


def test_2017_04_02_serves_only_the_first_fields(client):
    document = client().get("/metadata/instance", api_version="2017-04-02").json()
    assert set(document["compute"]) == FIELDS_2017_04_02
    assert document["network"] == profile_document("linux")["network"]


@pytest.mark.parametrize("version, present, absent", [
    ("2017-08-01", {"tags", "subscriptionId", "resourceGroupName", "placementGroupId"}, {"zone", "plan"}),
    ("2017-12-01", {"zone", "vmScaleSetName"}, {"plan", "publicKeys"}),
    ("2018-10-01", {"azEnvironment", "provider", "plan", "publicKeys"}, {"resourceId"}),
    ("2019-06-04", {"tagsList", "storageProfile", "resourceId"}, {"osProfile", "securityProfile"}),
    ("2020-07-15", {"osProfile", "securityProfile"}, {"licenseType", "priority"}),
    ("2021-01-01", {"userData", "priority", "evictionPolicy"}, {"virtualMachineScaleSet", "host"}),
    ("2021-12-13", {"host", "hostGroup", "platformSubFaultDomain"}, {"physicalZone"}),
    ("2023-11-15", {"physicalZone"}, set()),
])
def test_compute_fields_appear_with_the_version_that_introduced_them(client, version, present, absent):
    compute = client().get("/metadata/instance/compute", api_version=version).json()
    assert present <= set(compute)
    assert not absent & set(compute)


def test_nested_fields_follow_their_own_versions(client):
    imds = client()

    def compute(version):
        return imds.get("/metadata/instance/compute", api_version=version).json()

    assert "disablePasswordAuthentication" not in compute("2020-09-01")["osProfile"]
    assert compute("2020-10-01")["osProfile"]["disablePasswordAuthentication"] == "true"
    assert "resourceDisk" not in compute("2021-01-01")["storageProfile"]
    assert compute("2021-02-01")["storageProfile"]["resourceDisk"] == {"size": "16384"}
    assert "diffDiskSettings" not in compute("2019-06-04")["storageProfile"]["osDisk"]
    disk = compute("2021-03-01")["storageProfile"]["dataDisks"][0]
    assert not {"diskCapacityBytes", "isSharedDisk", "isUltraDisk", "opsPerSecondThrottle"} & set(disk)
    disk = compute("2021-05-01")["storageProfile"]["dataDisks"][0]
    assert disk["diskCapacityBytes"] == str(256 * 1024 ** 3) and disk["isUltraDisk"] == "false"
    assert set(compute("2021-11-01")["securityProfile"]) == {"encryptionAtHost", "secureBootEnabled",
                                                             "virtualTpmEnabled"}
    assert compute("2021-12-13")["securityProfile"]["securityType"] == "TrustedLaunch"
    image = compute("2021-12-13")["storageProfile"]["imageReference"]
    assert "exactVersion" not in image and compute("2023-07-01")["storageProfile"]["imageReference"][
        "exactVersion"] == "22.04.202409110"


def test_every_version_serves_only_fields_it_knows(client):
    imds = client("linux")
    previous: set = set()
    for version in API_VERSIONS[1:]:
        fields = set(imds.get("/metadata/instance/compute", api_version=version).json())
        assert previous <= fields, f"{version} lost {previous - fields}"
        previous = fields
    assert previous == set(profile_document("linux")["compute"])


def test_unknown_fields_of_a_profile_file_are_served_at_every_version(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"compute": {"vmId": "x", "futureField": "1", "tagsList": []}, "extended": {}}))
    document = load_profile(profile_file=path)
    assert document_for_version(document, "2017-04-02") == {"compute": {"vmId": "x", "futureField": "1"},
                                                            "extended": {}}


def test_path_filtering_walks_keys_and_list_indexes(client):
    imds = client("multi-nic-ipv6")
    network = profile_document("multi-nic-ipv6")["network"]
    assert imds.get("/metadata/instance/network").json() == network
    assert imds.get("/metadata/instance/network/interface/0/ipv4/ipAddress/1").json() == {
        "privateIpAddress": "10.2.0.5", "publicIpAddress": "20.96.31.5"}
    reply = imds.get("/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress", format="text")
    assert (reply.status_code, reply.text) == (200, "20.96.31.4")
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert imds.get("/metadata/instance/network/interface/2/ipv6/ipAddress/0/privateIpAddress",
                    format="text").text == "fd00:2:2::4"
    assert imds.get("/metadata/instance/compute/vmId/", format="text").text == "71d5c0a8-2e9f-4b63-a4c7-8f1e0b2d6a39"
    for missing in ("interface/3", "interface/-1", "interface/00", "interface/x", "interface/0/ipv4/nothing"):
        assert imds.get(f"/metadata/instance/network/{missing}", format="text").status_code == 404, missing


def test_a_field_newer_than_the_version_is_not_found(client):
    imds = client()
    assert imds.get("/metadata/instance/compute/tagsList", api_version="2019-06-01").status_code == 404
    assert imds.get("/metadata/instance/compute/tagsList", api_version="2019-06-04").status_code == 200


def test_a_leaf_needs_format_text(client):
    imds = client()
    for params in ({}, {"format": "json"}):
        reply = imds.get("/metadata/instance/compute/vmId", **params)
        assert reply.status_code == 400
        assert "format=text" in reply.json()["error"]
    assert imds.get("/metadata/instance/compute/vmId", format="text").text == "3e4a1f0c-8b7d-4c52-9a31-6f2d8e5b7c10"
    assert imds.get("/metadata/instance/compute/userData", format="text").text == \
        profile_document("linux")["compute"]["userData"]
    assert imds.get("/metadata/instance/compute/zone", format="Text").status_code == 400
    assert imds.get("/metadata/instance", format="xml").status_code == 400


def test_format_text_lists_children_one_per_line(client):
    imds = client()
    assert imds.get("/metadata/instance", format="text").text == "compute/\nnetwork/"
    lines = imds.get("/metadata/instance/compute", api_version="2018-10-01", format="text").text.split("\n")
    compute = imds.get("/metadata/instance/compute", api_version="2018-10-01").json()
    assert lines == [f"{k}/" if isinstance(v, (dict, list)) else k for k, v in compute.items()]
    assert "plan/" in lines and "publicKeys/" in lines and "vmId" in lines
    assert imds.get("/metadata/instance/network/interface", format="text").text == "0/"
    assert imds.get("/metadata/instance/network/interface/0/ipv6/ipAddress", format="text").text == ""


def test_text_keeps_non_ascii_values(tmp_path, client):
    path = tmp_path / "unicode.json"
    path.write_text(json.dumps({"compute": {"location": "Sé", "name": "vmé"}}, ensure_ascii=False), "utf-8")
    imds = client(profile_file=path)
    assert imds.get("/metadata/instance/compute/name", format="text").text == "vmé"
    assert imds.get("/metadata/instance").json()["compute"]["location"] == "Sé"


# --- profiles -------------------------------------------------------------------------------

def test_the_profiles_are_the_documented_set_with_distinct_vms():
    assert available_profiles() == PROFILES
    documents = {name: profile_document(name) for name in PROFILES}
    assert len({d["compute"]["vmId"] for d in documents.values()}) == len(PROFILES)
    assert len({d["compute"]["name"] for d in documents.values()}) == len(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_follow_the_imds_shape(name):
    document = profile_document(name)
    assert set(document) == {"compute", "network"}

    def scalars(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from scalars(value)
        elif isinstance(node, list):
            for value in node:
                yield from scalars(value)
        else:
            yield node

    # every scalar of the instance document is a string; a field that does not apply is ""
    assert all(isinstance(value, str) for value in scalars(document))
    for interface in document["network"]["interface"]:
        assert all(set(a) == {"privateIpAddress", "publicIpAddress"} for a in interface["ipv4"]["ipAddress"])
        assert all(set(a) == {"privateIpAddress"} for a in interface["ipv6"]["ipAddress"])
    compute = document["compute"]
    if "tagsList" in compute:
        assert compute["tags"] == ";".join(f"{t['name']}:{t['value']}" for t in compute["tagsList"])


def test_profile_specifics():
    linux = profile_document("linux")["compute"]
    assert linux["zone"] and linux["tagsList"] and len(linux["storageProfile"]["dataDisks"]) == 2
    assert base64.b64decode(linux["userData"]).startswith(b"#!/bin/sh")
    assert profile_document("linux")["network"]["interface"][0]["ipv4"]["ipAddress"][0]["publicIpAddress"]
    assert load_profile("linux")["_loadbalancer"]["publicIpAddresses"]
    windows = profile_document("windows")["compute"]
    assert (windows["osType"], windows["licenseType"]) == ("Windows", "Windows_Server")
    assert windows["osProfile"]["computerName"]
    interfaces = profile_document("multi-nic-ipv6")["network"]["interface"]
    assert len(interfaces) == 3 and len(interfaces[0]["ipv4"]["ipAddress"]) == 3
    assert interfaces[0]["ipv6"]["ipAddress"]
    scaleset = profile_document("scaleset")["compute"]
    assert scaleset["vmScaleSetName"] == "web-vmss" and scaleset["placementGroupId"]
    assert scaleset["virtualMachineScaleSet"]["id"].endswith("/virtualMachineScaleSets/web-vmss")
    assert profile_document("no-public-ip")["network"]["interface"][0]["ipv4"]["ipAddress"][0]["publicIpAddress"] == ""
    old = profile_document("old-tags-colon")["compute"]
    assert old["tags"] == "url:https://example.com:8443/x;owner:ops" and "tagsList" not in old
    spot = profile_document("spot")["compute"]
    assert (spot["priority"], spot["evictionPolicy"]) == ("Spot", "Deallocate")


def test_bad_profiles_are_clear_errors(tmp_path):
    with pytest.raises(EmulatorError, match="unknown profile 'nope'; available: linux"):
        Emulator(profile="nope")
    with pytest.raises(EmulatorError, match="unknown profile"):
        Emulator(profile="../profiles/linux")
    with pytest.raises(EmulatorError, match="cannot read profile file"):
        Emulator(profile_file=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(EmulatorError, match="is not valid JSON"):
        Emulator(profile_file=tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(EmulatorError, match="must hold a JSON object"):
        Emulator(profile_file=tmp_path / "list.json")


def test_a_real_document_loads_as_a_profile_file(client):
    path = REAL / "suse-azuremetadata__metadata-v2019-08-15.json"
    assert path.is_file(), f"{path} is missing (tests/fixtures/real-imds is shared with the normalizer tests)"
    imds = client(profile_file=path)
    assert imds.get("/metadata/instance", api_version="2019-08-15").json() == json.loads(path.read_text())
    assert imds.get("/metadata/instance/network/interface/1/ipv4/ipAddress/0/publicIpAddress",
                    format="text").text == "52.142.197.66"


# --- other categories ----------------------------------------------------------------------

def decode_attested(reply) -> dict:
    body = reply.json()
    assert body["encoding"] == "pkcs7"
    raw = base64.b64decode(body["signature"], validate=True)
    assert raw[:2] == b"\x30\x82"  # a DER SEQUENCE, as in real attested documents
    start = raw.index(b'{"')
    return json.JSONDecoder().raw_decode(raw[start:].decode("utf-8"))[0]


def test_attested_document_carries_the_nonce_and_the_vm(client):
    imds = client()
    content = decode_attested(imds.get("/metadata/attested/document", nonce="abcde12345"))
    compute = profile_document("linux")["compute"]
    assert content["nonce"] == "abcde12345"
    assert (content["vmId"], content["subscriptionId"]) == (compute["vmId"], compute["subscriptionId"])
    assert set(content["timeStamp"]) == {"createdOn", "expiresOn"}
    assert content["sku"] == compute["sku"]
    old = decode_attested(imds.get("/metadata/attested/document", api_version="2018-10-01"))
    assert set(old) == {"nonce", "plan", "timeStamp", "vmId"}
    assert len(old["nonce"]) == 15 and old["nonce"][8] == "-"  # the time, as IMDS does without a nonce
    assert imds.get("/metadata/attested/document", nonce="not-alnum!").status_code == 400
    assert imds.get("/metadata/attested/document", nonce="a" * 33).status_code == 400
    assert imds.get("/metadata/attested/document", api_version="2018-04-02").status_code == 400


def test_load_balancer_metadata_or_the_imds_not_found_body(client):
    linux = client("linux")
    reply = linux.get("/metadata/loadbalancer", format="json")
    assert reply.status_code == 200
    assert reply.json() == {"loadbalancer": load_profile("linux")["_loadbalancer"]}
    reply = client("windows").get("/metadata/loadbalancer")
    assert reply.status_code == 404
    assert reply.json() == json.loads((REAL / "cnquery__loadbalancer_no_info_2023-07-01.json").read_text())
    assert linux.get("/metadata/loadbalancer", api_version="2020-09-01").status_code == 400


def test_identity_token_and_its_errors(client):
    imds = client()
    reply = imds.get("/metadata/identity/oauth2/token", api_version="2018-02-01", resource="https://vault.azure.net")
    assert reply.status_code == 200
    token = reply.json()
    assert {"access_token", "expires_in", "expires_on", "resource", "token_type"} <= set(token)
    assert (token["resource"], token["token_type"]) == ("https://vault.azure.net", "Bearer")
    assert int(token["expires_on"]) - time.time() > 3600
    claims = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[1] + "=="))
    assert claims["aud"] == "https://vault.azure.net"
    missing = imds.get("/metadata/identity/oauth2/token")
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request",
                              "error_description": "Required query variable 'resource' is missing"}
    assert imds.get("/metadata/identity/oauth2/token", resource="r", client_id="a", object_id="b").status_code == 400
    assert imds.get("/metadata/identity/oauth2/token", resource="r", client_id="someone-else").json()[
        "error_description"] == "Identity not found"
    assert imds.get("/metadata/identity/oauth2/token", api_version="2017-12-01", resource="r").status_code == 400
    assert imds.get("/metadata/identity/info").json() == {"tenantId": claims["tid"]}


# --- scheduled events ---------------------------------------------------------------------------

def events(imds, version="2020-07-01"):
    reply = imds.get("/metadata/scheduledevents", api_version=version)
    assert reply.status_code == 200
    return reply.json()


def start(imds, body, version="2020-07-01"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return imds.request("POST", f"/metadata/scheduledevents?api-version={version}",
                        headers={"Metadata": "true", "Content-Type": "application/json"}, data=data)


def test_scheduled_events_use_their_own_versions(client):
    imds = client()
    assert events(imds) == {"DocumentIncarnation": 1, "Events": []}
    reply = imds.get("/metadata/scheduledevents", api_version="2021-02-01")
    assert reply.status_code == 400
    assert reply.json()["newest-versions"] == ["2020-07-01", "2019-08-01", "2019-04-01"]


def test_event_fields_depend_on_the_version(client):
    imds = client("spot")
    made = imds.emu.add_event(event_type="Reboot", not_before_seconds=300, duration_seconds=600)
    assert made["Resources"] == ["batch-spot-07"] and made["EventStatus"] == "Scheduled"
    not_before = email.utils.parsedate_to_datetime(made["NotBefore"]).timestamp()
    assert 290 < not_before - time.time() <= 301
    assert made["NotBefore"].endswith(" GMT")
    newest = events(imds)["Events"][0]
    assert newest == made
    assert set(events(imds, "2017-08-01")["Events"][0]) == {"EventId", "EventType", "ResourceType", "Resources",
                                                            "EventStatus", "NotBefore"}
    assert set(events(imds, "2019-08-01")["Events"][0]) == set(made) - {"DurationInSeconds"}
    assert newest["DurationInSeconds"] == 600 and newest["EventSource"] == "Platform"


def test_event_types_appear_with_their_version(client):
    imds = client("spot")
    imds.emu.add_event(event_type="Preempt", not_before_seconds=30)
    imds.emu.add_event(event_type="Terminate", not_before_seconds=None)
    assert events(imds, "2017-08-01")["Events"] == []
    assert [e["EventType"] for e in events(imds, "2017-11-01")["Events"]] == ["Preempt"]
    document = events(imds, "2019-01-01")
    assert [e["EventType"] for e in document["Events"]] == ["Preempt", "Terminate"]
    assert document["Events"][1]["NotBefore"] == ""


def test_starting_an_event_moves_it_to_started_and_bumps_the_incarnation(client):
    imds = client()
    first = imds.emu.add_event(event_type="Freeze")
    second = imds.emu.add_event(event_type="Redeploy", event_source="User")
    before = events(imds)["DocumentIncarnation"]
    reply = start(imds, {"StartRequests": [{"EventId": first["EventId"]}]})
    assert reply.status_code == 200
    after = events(imds)
    assert after["DocumentIncarnation"] == before + 1
    assert [e["EventStatus"] for e in after["Events"]] == ["Started", "Scheduled"]
    assert after["Events"][1]["EventId"] == second["EventId"]
    # an unknown EventId is accepted and changes nothing; so is starting a Started event again
    assert start(imds, {"StartRequests": [{"EventId": "00000000-0000-0000-0000-000000000000"}]}).status_code == 200
    assert start(imds, {"StartRequests": [{"EventId": first["EventId"]}]}).status_code == 200
    assert events(imds) == after


@pytest.mark.parametrize("body", ["not json", b"\xff\xfe", "[]", "{}", '{"StartRequests": {}}',
                                  '{"StartRequests": [{}]}', '{"StartRequests": [{"EventId": 7}]}',
                                  '{"StartRequests": ["id"]}'])
def test_malformed_start_requests_are_400(client, body):
    imds = client()
    imds.emu.add_event()
    before = events(imds)
    reply = start(imds, body)
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("Bad request")
    assert events(imds) == before


def test_events_start_at_not_before_and_complete(client):
    imds = client()
    imds.emu.add_event(event_type="Freeze", not_before_seconds=0, complete_after_seconds=0.3)
    assert events(imds)["Events"][0]["EventStatus"] == "Started"
    time.sleep(0.4)
    assert events(imds)["Events"] == []


def test_bad_events_are_refused(client):
    emu = client().emu
    for kwargs in ({"event_type": "Explode"}, {"status": "Completed"}, {"event_source": "Someone"},
                   {"resources": "vm1"}, {"duration_seconds": -2}, {"not_before_seconds": "soon"}):
        with pytest.raises(EmulatorError):
            emu.add_event(**kwargs)
    emu.add_event(event_id="fixed")
    with pytest.raises(EmulatorError, match="exists already"):
        emu.add_event(event_id="fixed")


def test_started_events_have_blank_not_before_and_2019_04_01_is_served():
    """Microsoft documents NotBefore as blank once an event started; 2019-04-01 brought Description."""
    with Emulator(profile="linux") as emu:
        event = emu.add_event(event_type="Reboot", not_before_seconds=600)
        assert event["NotBefore"] != ""
        body = json.dumps({"StartRequests": [{"EventId": event["EventId"]}]}).encode()
        request = urllib.request.Request(f"{emu.url}/metadata/scheduledevents?api-version=2020-07-01", data=body,
                                         method="POST", headers={"Metadata": "true"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        started = emu.events_document("2020-07-01")["Events"][0]
        assert (started["EventStatus"], started["NotBefore"]) == ("Started", "")
        request = urllib.request.Request(f"{emu.url}/metadata/scheduledevents?api-version=2019-04-01",
                                         headers={"Metadata": "true"})
        with urllib.request.urlopen(request, timeout=5) as response:
            document = json.loads(response.read())
        assert "Description" in document["Events"][0] and "EventSource" not in document["Events"][0]
