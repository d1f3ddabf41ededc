"""The table of api-versions and of the fields each brings."""
from __future__ import annotations

import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils._versions import (
    EVENTS_NEWEST,
    EVENTS_VERSIONS,
    FIELDS,
    KNOWN_VERSIONS,
    NEWEST,
    field_expected,
    field_since,
    newest_common,
)
from ansible_collections.imds.azure.tests.utils.paths import FIXTURES

REAL = FIXTURES / "real-imds"

# Microsoft's list of api-versions, oldest first, as documented (2017-03-01 was a preview).
DOCUMENTED = """
2017-03-01 2017-04-02 2017-08-01 2017-10-01 2017-12-01 2018-02-01 2018-04-02 2018-10-01 2019-02-01 2019-03-11
2019-04-30 2019-06-01 2019-06-04 2019-08-01 2019-08-15 2019-11-01 2020-06-01 2020-07-15 2020-09-01 2020-10-01
2020-12-01 2021-01-01 2021-02-01 2021-03-01 2021-05-01 2021-08-01 2021-10-01 2021-11-01 2021-11-15 2021-12-13
2023-07-01 2023-11-15 2024-03-15 2024-07-17 2025-04-07
""".split()


def test_known_versions_are_the_documented_ones_without_the_preview():
    assert list(KNOWN_VERSIONS) == [version for version in DOCUMENTED if version != "2017-03-01"]
    assert NEWEST == "2025-04-07" == KNOWN_VERSIONS[-1]
    assert list(KNOWN_VERSIONS) == sorted(set(KNOWN_VERSIONS))


def test_events_versions_are_dates_in_order():
    assert list(EVENTS_VERSIONS) == sorted(set(EVENTS_VERSIONS))
    assert EVENTS_VERSIONS[-1] == EVENTS_NEWEST
    assert all(version >= "2017-08-01" for version in EVENTS_VERSIONS)


@pytest.mark.parametrize(("fixture", "expected"), [
    # 2019-07-15 is offered but not a documented version: the newest known one wins.
    ("ohai__error_400_newest-versions_2019-08-15_code400.json", "2019-08-15"),
    ("ohai__error_400_newest-versions_2020-12-01_code400.json", "2020-12-01"),
    ("ohai__error_body_newest-versions_2021-10-01_mock_code418.json", "2021-10-01"),
])
def test_newest_common_with_real_400_bodies(fixture, expected):
    body = json.loads((REAL / fixture).read_text(encoding="utf-8"))
    assert newest_common(body["newest-versions"]) == expected


@pytest.mark.parametrize(("offered", "expected"), [
    (["2025-04-07", "2024-07-17", "2024-03-15"], "2025-04-07"),
    (["2024-03-15", "2025-04-07", "2024-07-17"], "2025-04-07"),  # order does not matter
    (["2099-01-01", "2019-07-15", "2021-02-01"], "2021-02-01"),  # unknown ones are skipped
    (["2019-07-15"], None),
    (["2017-03-01"], None),  # the preview is not ours to ask for
    ([], None),
    ((version for version in ["2018-10-01", "2017-12-01"]), "2018-10-01"),  # any iterable
    ({"2020-09-01", "2020-10-01"}, "2020-10-01"),
    ("2021-01-01", "2021-01-01"),  # one string is one version, not characters
    ("2019-07-15", None),
    ([None, 5, ["2021-01-01"], "2020-06-01", {"v": 1}], "2020-06-01"),  # entries that are not strings
    ([" 2021-01-01", "2021-01-01 ", "2021-1-1"], None),  # exact spelling only
    (None, None),
    (42, None),
    ({"newest-versions": ["2021-01-01"]}, None),  # a whole body, not the list
])
def test_newest_common(offered, expected):
    assert newest_common(offered) == expected


def test_fields_table_is_consistent():
    paths = [field.path for field in FIELDS]
    assert len(paths) == len(set(paths)), "a field is listed twice"
    seen: set[str] = set()
    for field in FIELDS:
        assert field.kind in {"str", "int", "bool", "object", "list", "raw", "base64"}, field
        assert field.since is None or field.since in KNOWN_VERSIONS, field
        parent = field.path.rpartition(".")[0].removesuffix("[]")
        assert not parent or parent in seen, f"{field.path} is listed before its parent {parent}"
        if "[]." in field.path:
            assert dict((f.path, f.kind) for f in FIELDS)[field.path.rpartition("[].")[0]] == "list", field
        seen.add(field.path)


@pytest.mark.parametrize(("path", "since"), [
    ("compute.vmId", "2017-04-02"),
    ("compute.tags", "2017-08-01"),
    ("compute.zone", "2017-12-01"),
    ("compute.plan", "2018-04-02"),
    ("compute.azEnvironment", "2018-10-01"),
    ("compute.tagsList", "2019-06-04"),
    ("compute.userData", "2021-01-01"),
    ("compute.storageProfile.dataDisks[].isUltraDisk", "2021-05-01"),
    ("compute.platformSubFaultDomain", "2021-10-01"),
    ("compute.securityProfile.securityType", "2021-12-13"),
    ("compute.storageProfile.imageReference.exactVersion", "2023-07-01"),
    ("compute.physicalZone", "2023-11-15"),
    ("network.interface[].macAddress", "2017-04-02"),
    ("network.interface[].ipv6.subnet", None),  # seen in documents, not documented
    ("compute.noSuchField", None),
])
def test_field_since(path, since):
    assert field_since(path) == since


@pytest.mark.parametrize(("path", "version", "expected"), [
    ("compute.zone", "2017-12-01", True),  # missing zone with this version: not a zonal VM
    ("compute.zone", "2017-08-01", False),  # missing because the version is too old
    ("compute.physicalZone", "2025-04-07", True),
    ("compute.physicalZone", "2023-07-01", False),
    ("compute.noSuchField", "2025-04-07", None),
    ("network.interface[].ipv6.subnet", "2025-04-07", None),
    ("compute.zone", "latest", None),
    ("compute.zone", None, None),
])
def test_field_expected(path, version, expected):
    assert field_expected(path, version) is expected
