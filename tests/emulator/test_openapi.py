"""What the emulator serves, checked against Microsoft's OpenAPI description of each version.

tests/emulator/openapi/ holds Microsoft's imds.json for every published api-version and
its GetInstanceMetadata example (see the README there). For each version we validate the
instance document of every profile, the attested document, the identity token (success and
error) and identity info, and an error body; we also check the emulator's field table
against the fields the description knows at that version, and serve Microsoft's own example
back from the emulator.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from imds_emulator import Emulator, available_profiles, load_profile

STABLE = Path(__file__).resolve().parent / "openapi" / "Microsoft.InstanceMetadataService" / "stable"
VERSIONS = sorted(path.name for path in STABLE.iterdir() if (path / "imds.json").is_file())

# Fields real documents carry that a version's description leaves out: customData (dropped
# from the description in 2019-06-01, still in real documents, e.g. a 2025 capture) and
# tagsList (missing from the 2019-08-15 and 2019-11-01 descriptions only).
NOT_DESCRIBED = {
    "compute.customData": lambda version: version >= "2019-06-01",
    "compute.tagsList": lambda version: version in ("2019-08-15", "2019-11-01"),
    "compute.tagsList[].name": lambda version: version in ("2019-08-15", "2019-11-01"),
    "compute.tagsList[].value": lambda version: version in ("2019-08-15", "2019-11-01"),
}


@functools.lru_cache(maxsize=None)
def spec(version: str) -> dict:
    return json.loads((STABLE / version / "imds.json").read_text())


@functools.lru_cache(maxsize=None)
def validator(version: str, definition: str) -> jsonschema.Draft4Validator:
    """A draft-4 validator for one definition; OpenAPI 2 schemas are close to JSON Schema draft 4."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": spec(version)["definitions"]}
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def check(version: str, definition: str, value: Any) -> None:
    errors = sorted(validator(version, definition).iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{definition} at {version}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@functools.lru_cache(maxsize=None)
def described_paths(version: str) -> frozenset[str]:
    """Every field path the description of ``version`` knows for the instance document."""
    definitions = spec(version)["definitions"]
    paths: set[str] = set()

    def walk(schema: dict, path: str, depth: int = 0) -> None:
        assert depth < 12, path
        if "$ref" in schema:
            schema = {**definitions[schema["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in schema.items() if k != "$ref"}}
        if "items" in schema:
            walk(schema["items"], f"{path}[]", depth + 1)
        for name, child in schema.get("properties", {}).items():
            child_path = f"{path}.{name}" if path else name
            paths.add(child_path)
            walk(child, child_path, depth + 1)

    walk(definitions["Instance"], "")
    return frozenset(paths)


def paths_of(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            yield child
            yield from paths_of(value, child)
    elif isinstance(node, list):
        for item in node:
            yield from paths_of(item, f"{path}[]")


def example(version: str) -> Path:
    (found,) = [p for p in (STABLE / version / "examples").iterdir() if p.name.lower() == "getinstancemetadata.json"]
    return found


@pytest.fixture(scope="module")
def served():
    """One emulator per profile for the whole module; fetch(profile, path, version, **params)."""
    import requests

    emulators = {name: Emulator(profile=name).start() for name in available_profiles()}
    http = requests.Session()
    http.trust_env = False

    def fetch(profile: str, path: str, version: str, **params: str) -> requests.Response:
        return http.get(emulators[profile].url + path, params={"api-version": version, **params},
                        headers={"Metadata": "true"}, timeout=5)

    yield fetch
    http.close()
    for emu in emulators.values():
        emu.stop()


def test_the_descriptions_are_all_here():
    assert VERSIONS[0] == "2018-10-01" and VERSIONS[-1] == "2021-02-01" and len(VERSIONS) == 16


@pytest.mark.parametrize("version", VERSIONS)
def test_microsofts_example_validates_against_its_own_description(version):
    body = json.loads(example(version).read_text())["responses"]["200"]["body"]
    check(version, "Instance", body)
    with pytest.raises(AssertionError):  # the validator has teeth: a number where a string belongs
        check(version, "Instance", {"compute": {"vmId": 7}})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("profile", available_profiles())
def test_instance_documents_match_the_description(served, version, profile):
    reply = served(profile, "/metadata/instance", version)
    assert reply.status_code == 200
    document = reply.json()
    check(version, "Instance", document)
    served_paths = set(paths_of(document))
    described = described_paths(version)
    unexpected = {p for p in served_paths - described if not NOT_DESCRIBED.get(p, lambda v: False)(version)}
    assert not unexpected, f"served at {version} but not described there: {sorted(unexpected)}"
    in_profile = set(paths_of({k: v for k, v in load_profile(profile).items() if not k.startswith("_")}))
    withheld = (described & in_profile) - served_paths
    assert not withheld, f"described at {version} but not served: {sorted(withheld)}"


@pytest.mark.parametrize("version", VERSIONS)
def test_other_answers_match_the_description(served, version):
    attested = served("linux", "/metadata/attested/document", version, nonce="abcde12345")
    assert attested.status_code == 200
    check(version, "AttestedData", attested.json())
    token = served("linux", "/metadata/identity/oauth2/token", version, resource="https://management.azure.com/")
    assert token.status_code == 200
    check(version, "IdentityTokenResponse", token.json())
    refused = served("linux", "/metadata/identity/oauth2/token", version)
    assert refused.status_code == 400
    check(version, "IdentityErrorResponse", refused.json())
    info = served("windows", "/metadata/identity/info", version)
    assert info.status_code == 200
    check(version, "IdentityInfoResponse", info.json())
    for path, params in (("/metadata/instance/compute/nothing", {}), ("/metadata/instance/compute/vmId", {}),
                         ("/metadata/instance", {"format": "yaml"})):
        error = served("linux", path, version, **params)
        assert error.status_code in (400, 404)
        check(version, "ErrorResponse", error.json())
    missing = served("linux", "/metadata/instance", "1999-01-01")
    check(version, "ErrorResponse", missing.json())


@pytest.mark.parametrize("version", VERSIONS)
def test_microsofts_example_is_served_back(version):
    body = json.loads(example(version).read_text())["responses"]["200"]["body"]
    import requests

    with Emulator(profile_file=example(version)) as emu, requests.Session() as http:
        http.trust_env = False

        def get(api_version: str) -> dict:
            reply = http.get(f"{emu.url}/metadata/instance", params={"api-version": api_version},
                             headers={"Metadata": "true"}, timeout=5)
            assert reply.status_code == 200
            return reply.json()

        assert get(version) == body
        assert get("2025-04-07") == body
        oldest = get("2017-04-02")["compute"]
        assert set(oldest) <= {"location", "name", "offer", "osType", "platformFaultDomain", "platformUpdateDomain",
                               "publisher", "sku", "version", "vmId", "vmSize"}
        assert oldest["vmId"] == body["compute"]["vmId"]
