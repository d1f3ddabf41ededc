# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An emulator of the Azure Instance Metadata Service (IMDS), for tests and demos.

A real HTTP server (standard library only) that answers as IMDS documents: the
``Metadata: true`` header rule, api-versions per category, version-dependent instance
documents, path filtering and ``format=text``, scheduled events, attested data, the
load balancer and managed identity endpoints. Fault switches make it misbehave on
purpose (error statuses, rate limits, hangs, resets, slow or broken bodies).

It is the independent oracle of the imds.azure tests: it imports nothing from the
collection and keeps its own version and field tables, so that a misreading of IMDS
cannot hide in both. See docs/emulator.md.

Python::

    from imds_emulator import Emulator
    with Emulator(profile="linux") as emu:
        ...  # emu.url, emu.requests, emu.set_faults(...), emu.add_event(...)

Command line::

    python tests/emulator/imds_emulator.py --bind 127.0.0.1 --port 0 --profile linux
"""
from __future__ import annotations

import argparse
import base64
import collections
import email.utils
import json
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

# ---------------------------------------------------------------------------------------
# What IMDS serves, by api-version. Our own tables, written from Microsoft's documentation
# and OpenAPI descriptions (tests/emulator/openapi/), never imported from the collection.
# ---------------------------------------------------------------------------------------

API_VERSIONS: tuple[str, ...] = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01",
    "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01",
    "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15",
    "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01",
    "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13",
    "2023-07-01", "2023-11-15", "2024-03-15", "2024-07-17", "2025-04-07",
)
"""Every api-version IMDS has published, oldest first (2017-03-01 was the preview)."""

SCHEDULED_EVENTS_VERSIONS: tuple[str, ...] = (
    "2017-08-01", "2017-11-01", "2019-01-01", "2019-04-01", "2019-08-01", "2020-07-01",
)
"""Scheduled events are versioned on their own."""

CATEGORY_SINCE = {
    "instance": "2017-04-02",
    "identity": "2018-02-01",
    "attested": "2018-10-01",
    "loadbalancer": "2020-10-01",
}
"""The first api-version each category answers (scheduled events: their own list)."""


def _since(version: str, *paths: str) -> dict[str, str]:
    return {path: version for path in paths}


_DATA_DISK = "compute.storageProfile.dataDisks[]"
_OS_DISK = "compute.storageProfile.osDisk"
_IMAGE = "compute.storageProfile.imageReference"

FIELD_SINCE: dict[str, str] = {
    # Paths: dict keys joined with ".", "[]" for the items of a list. A field that is not
    # in this table is served at every version (a profile may carry fields we do not know).
    **_since(
        "2017-04-02", "compute", "network",
        "compute.location", "compute.name", "compute.offer", "compute.osType",
        "compute.platformFaultDomain", "compute.platformUpdateDomain", "compute.publisher",
        "compute.sku", "compute.version", "compute.vmId", "compute.vmSize",
        "network.interface", "network.interface[].macAddress",
        "network.interface[].ipv4", "network.interface[].ipv4.ipAddress",
        "network.interface[].ipv4.ipAddress[].privateIpAddress",
        "network.interface[].ipv4.ipAddress[].publicIpAddress",
        "network.interface[].ipv4.subnet", "network.interface[].ipv4.subnet[].address",
        "network.interface[].ipv4.subnet[].prefix",
        "network.interface[].ipv6", "network.interface[].ipv6.ipAddress",
        "network.interface[].ipv6.ipAddress[].privateIpAddress",
    ),
    **_since("2017-08-01", "compute.placementGroupId", "compute.resourceGroupName",
             "compute.subscriptionId", "compute.tags"),
    **_since("2017-12-01", "compute.vmScaleSetName", "compute.zone"),
    **_since("2018-04-02", "compute.plan", "compute.plan.name", "compute.plan.product",
             "compute.plan.publisher", "compute.publicKeys", "compute.publicKeys[].keyData",
             "compute.publicKeys[].path"),
    **_since("2018-10-01", "compute.azEnvironment", "compute.provider"),
    # customData: in the OpenAPI description from 2019-02-01; always "" (superseded by userData).
    **_since("2019-02-01", "compute.customData"),
    **_since("2019-03-11", "compute.resourceId"),
    **_since(
        "2019-06-01", "compute.storageProfile",
        _IMAGE, f"{_IMAGE}.id", f"{_IMAGE}.offer", f"{_IMAGE}.publisher", f"{_IMAGE}.sku",
        f"{_IMAGE}.version",
        _OS_DISK, f"{_OS_DISK}.caching", f"{_OS_DISK}.createOption", f"{_OS_DISK}.diskSizeGB",
        f"{_OS_DISK}.encryptionSettings", f"{_OS_DISK}.encryptionSettings.enabled",
        f"{_OS_DISK}.image", f"{_OS_DISK}.image.uri", f"{_OS_DISK}.managedDisk",
        f"{_OS_DISK}.managedDisk.id", f"{_OS_DISK}.managedDisk.storageAccountType",
        f"{_OS_DISK}.name", f"{_OS_DISK}.osType", f"{_OS_DISK}.vhd", f"{_OS_DISK}.vhd.uri",
        f"{_OS_DISK}.writeAcceleratorEnabled",
        "compute.storageProfile.dataDisks", f"{_DATA_DISK}.caching",
        f"{_DATA_DISK}.createOption", f"{_DATA_DISK}.diskSizeGB", f"{_DATA_DISK}.image",
        f"{_DATA_DISK}.image.uri", f"{_DATA_DISK}.lun", f"{_DATA_DISK}.managedDisk",
        f"{_DATA_DISK}.managedDisk.id", f"{_DATA_DISK}.managedDisk.storageAccountType",
        f"{_DATA_DISK}.name", f"{_DATA_DISK}.vhd", f"{_DATA_DISK}.vhd.uri",
        f"{_DATA_DISK}.writeAcceleratorEnabled",
    ),
    **_since("2019-06-04", "compute.tagsList", "compute.tagsList[].name",
             "compute.tagsList[].value"),
    # The OpenAPI description adds the ephemeral-disk settings in 2019-08-01.
    **_since("2019-08-01", f"{_OS_DISK}.diffDiskSettings", f"{_OS_DISK}.diffDiskSettings.option"),
    **_since("2020-06-01", "compute.isHostCompatibilityLayerVm", "compute.securityProfile",
             "compute.securityProfile.secureBootEnabled",
             "compute.securityProfile.virtualTpmEnabled"),
    **_since("2020-07-15", "compute.osProfile", "compute.osProfile.adminUsername",
             "compute.osProfile.computerName"),
    **_since("2020-09-01", "compute.licenseType"),
    **_since("2020-10-01", "compute.osProfile.disablePasswordAuthentication"),
    **_since("2020-12-01", "compute.evictionPolicy", "compute.priority"),
    **_since("2021-01-01", "compute.userData"),
    **_since("2021-02-01", "compute.storageProfile.resourceDisk",
             "compute.storageProfile.resourceDisk.size"),
    **_since("2021-03-01", "compute.extendedLocation", "compute.extendedLocation.type",
             "compute.extendedLocation.name", "compute.virtualMachineScaleSet",
             "compute.virtualMachineScaleSet.id"),
    **_since("2021-05-01", f"{_DATA_DISK}.bytesPerSecondThrottle",
             f"{_DATA_DISK}.diskCapacityBytes", f"{_DATA_DISK}.isSharedDisk",
             f"{_DATA_DISK}.isUltraDisk", f"{_DATA_DISK}.opsPerSecondThrottle"),
    **_since("2021-10-01", "compute.platformSubFaultDomain"),
    **_since("2021-11-01", "compute.additionalCapabilities",
             "compute.additionalCapabilities.hibernationEnabled",
             "compute.securityProfile.encryptionAtHost"),
    **_since("2021-11-15", "compute.host", "compute.host.id", "compute.hostGroup",
             "compute.hostGroup.id"),
    **_since("2021-12-13", "compute.securityProfile.securityType"),
    **_since("2023-07-01", f"{_IMAGE}.communityGalleryImageId", f"{_IMAGE}.sharedGalleryImageId",
             f"{_IMAGE}.exactVersion",
             # Not in any published OpenAPI description (the last has only "enabled"); real
             # documents carry them next to the 2023-07-01 fields, so we date them alike.
             f"{_OS_DISK}.encryptionSettings.diskEncryptionKey",
             f"{_OS_DISK}.encryptionSettings.keyEncryptionKey"),
    **_since("2023-11-15", "compute.physicalZone"),
}

ATTESTED_FIELD_SINCE = {
    "nonce": "2018-10-01", "plan": "2018-10-01", "timeStamp": "2018-10-01", "vmId": "2018-10-01",
    "subscriptionId": "2019-04-30", "sku": "2019-11-01", "licenseType": "2020-09-01",
}
"""Fields of the signed attested document, by the version that added them."""

EVENT_FIELD_SINCE = {
    "EventId": "2017-08-01", "EventType": "2017-08-01", "ResourceType": "2017-08-01",
    "Resources": "2017-08-01", "EventStatus": "2017-08-01", "NotBefore": "2017-08-01",
    "Description": "2019-04-01", "EventSource": "2019-08-01", "DurationInSeconds": "2020-07-01",
}
"""Fields of a scheduled event, by the scheduled-events version that added them."""

EVENT_TYPE_SINCE = {
    "Freeze": "2017-08-01", "Reboot": "2017-08-01", "Redeploy": "2017-08-01",
    "Preempt": "2017-11-01", "Terminate": "2019-01-01",
}
EVENT_DESCRIPTIONS = {
    "Freeze": "Virtual machine is paused for a few seconds while its host is updated.",
    "Reboot": "Virtual machine is going to be restarted for planned maintenance.",
    "Redeploy": "Virtual machine is going to be moved to another host.",
    "Preempt": "Spot virtual machine is going to be evicted.",
    "Terminate": "Virtual machine is going to be deleted from its scale set.",
}

# Error bodies. Wordings marked "IMDS" are Microsoft's; the others are ours (IMDS does not
# document them) and only need to be plausible.
HEADER_ERROR = "Bad request. Required metadata header not specified"  # IMDS
FORWARDED_ERROR = "Bad request. Requests with an X-Forwarded-For header are not accepted"
VERSION_ERROR_NEW = ("Bad request. api-version is invalid or was not specified in the request. "
                     "For more information refer to aka.ms/azureimds")  # IMDS, current
VERSION_ERROR_OLD = ("Bad request. api-version was not specified in the request. "
                     "For more information refer to aka.ms/azureimds")  # IMDS, until ~2021
LEAF_JSON_ERROR = "Bad request. A leaf node is only served with format=text"
FORMAT_ERROR = "Bad request. The format parameter must be json or text"
LOADBALANCER_MISSING = ("No load balancer metadata is found. Please check if your VM is using "
                        "any non-basic SKU load balancer and retry later.")  # IMDS
STATUS_ERRORS = {  # the bodies of Microsoft's OpenAPI examples
    400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Not allowed",
    429: "Too many requests", 500: "Server error", 503: "Service unavailable",
}
CAPTIVE_PORTAL = (b"<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>\n"
                  b"<body><h1>Welcome to Guest Wi-Fi</h1><p>Please accept the terms of use "
                  b"to continue.</p><form method=\"post\" action=\"/login\">"
                  b"<button>Accept</button></form></body></html>\n")

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_REQUEST_BODY = 1 << 20
MAX_LOGGED_REQUESTS = 100_000  # in memory; the --log file keeps every request
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class EmulatorError(ValueError):
    """A bad profile, fault or event; the message says what to fix."""


# ---------------------------------------------------------------------------------------
# Profiles and documents
# ---------------------------------------------------------------------------------------

def available_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILES_DIR.glob("*.json"))


def load_profile(profile: str | None = None, profile_file: str | Path | None = None) -> dict:
    """Read a profile: a name from profiles/, or any JSON file with an instance document.

    An OpenAPI example file (``{"parameters": ..., "responses": {"200": {"body": ...}}}``)
    is accepted too: its 200 response body is the document.
    """
    if profile_file is not None:
        path = Path(profile_file)
        label = f"profile file {path}"
    else:
        name = profile or "linux"
        if not _PROFILE_NAME_RE.match(name) or not (PROFILES_DIR / f"{name}.json").is_file():
            raise EmulatorError(f"unknown profile {name!r}; available: {', '.join(available_profiles())}")
        path = PROFILES_DIR / f"{name}.json"
        label = f"profile {name!r}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EmulatorError(f"cannot read {label}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise EmulatorError(f"{label} is not valid JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("responses"), dict) and "parameters" in document:
        document = document["responses"].get("200", {}).get("body")
    if not isinstance(document, dict):
        raise EmulatorError(f"{label} must hold a JSON object (an instance document)")
    return document


def public_document(profile: Mapping[str, Any]) -> dict:
    """The instance document without the emulator-only top-level keys (``_...``)."""
    return {key: value for key, value in profile.items() if not key.startswith("_")}


def document_for_version(node: Any, version: str, path: str = "") -> Any:
    """Drop the fields that did not exist yet at ``version`` (see FIELD_SINCE)."""
    if isinstance(node, dict):
        kept = {}
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            since = FIELD_SINCE.get(child)
            if since is None or since <= version:
                kept[key] = document_for_version(value, version, child)
        return kept
    if isinstance(node, list):
        return [document_for_version(item, version, f"{path}[]") for item in node]
    return node


def text_of(node: Any) -> str:
    """``format=text``: a leaf's value; a dict's keys, a list's indexes, one per line.

    Children that are dicts or lists end with "/" (IMDS answers ``compute/`` and
    ``network/`` for the root).
    """
    if isinstance(node, dict):
        return "\n".join(f"{key}/" if isinstance(value, (dict, list)) else str(key)
                         for key, value in node.items())
    if isinstance(node, list):
        return "\n".join(f"{index}/" if isinstance(value, (dict, list)) else str(index)
                         for index, value in enumerate(node))
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def pkcs7_envelope(content: bytes) -> bytes:
    """A DER PKCS#7 SignedData that carries ``content`` and no signer (not a real signature)."""
    oid_signed_data = bytes.fromhex("2a864886f70d010702")
    oid_data = bytes.fromhex("2a864886f70d010701")
    oid_sha256 = bytes.fromhex("608648016503040201")
    digest_algorithms = _der(0x31, _der(0x30, _der(0x06, oid_sha256) + _der(0x05, b"")))
    encapsulated = _der(0x30, _der(0x06, oid_data) + _der(0xA0, _der(0x04, content)))
    signed_data = _der(0x30, _der(0x02, b"\x01") + digest_algorithms + encapsulated + _der(0x31, b""))
    return _der(0x30, _der(0x06, oid_signed_data) + _der(0xA0, signed_data))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# ---------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------

def _status(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise EmulatorError(f"{what} must be an HTTP status (100-599), not {value!r}")
    return value


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        raise EmulatorError(f"{what} must be a {'positive' if positive else 'non-negative'} number, not {value!r}")
    return value


def _count(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EmulatorError(f"{what} must be an integer >= {minimum}, not {value!r}")
    return value


def _table(value: Any, what: str, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(value, dict):
        raise EmulatorError(f"{what} must be an object with {', '.join(sorted(allowed))}")
    unknown = set(value) - allowed
    if unknown:
        raise EmulatorError(f"{what} has unknown keys {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(value)
    if missing:
        raise EmulatorError(f"{what} needs {', '.join(sorted(missing))}")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise EmulatorError(f"{what} must be true or false, not {value!r}")
    return value


def check_faults(faults: Mapping[str, Any] | None) -> dict:
    """Validate fault switches and return a normalized copy (``None`` values are dropped)."""
    if faults is None:
        return {}
    if not isinstance(faults, Mapping):
        raise EmulatorError(f"faults must be an object, not {type(faults).__name__}")
    checked: dict[str, Any] = {}
    for name, value in faults.items():
        if value is None:
            continue
        what = f"fault {name!r}"
        if name == "status_for_seconds":
            value = _table(value, what, {"status", "seconds", "from"}, {"status", "seconds"})
            origin = value.get("from", "set")
            if origin not in ("set", "first_request"):
                raise EmulatorError(f"{what} from must be 'set' or 'first_request', not {origin!r}")
            checked[name] = {"status": _status(value["status"], f"{what} status"),
                             "seconds": _number(value["seconds"], f"{what} seconds"), "from": origin}
        elif name == "status_first_n":
            value = _table(value, what, {"status", "count"}, {"status", "count"})
            checked[name] = {"status": _status(value["status"], f"{what} status"),
                             "count": _count(value["count"], f"{what} count")}
        elif name == "status_always":
            checked[name] = _status(value, what)
        elif name == "every_kth":
            value = _table(value, what, {"k", "status"}, {"k", "status"})
            checked[name] = {"k": _count(value["k"], f"{what} k", minimum=1),
                             "status": _status(value["status"], f"{what} status")}
        elif name == "rate_limit":
            value = _table(value, what, {"per_second", "retry_after"}, {"per_second"})
            retry_after = value.get("retry_after", 1)
            checked[name] = {
                "per_second": _count(value["per_second"], f"{what} per_second", minimum=1),
                "retry_after": None if retry_after is None else _number(retry_after, f"{what} retry_after"),
            }
        elif name == "delay":
            checked[name] = _number(value, what)
        elif name == "dribble":
            checked[name] = _number(value, what, positive=True)
        elif name in ("hang", "truncate", "html"):
            if _flag(value, what):
                checked[name] = True
        elif name == "reset":
            if value not in ("before_headers", "mid_body"):
                raise EmulatorError(f"{what} must be 'before_headers' or 'mid_body', not {value!r}")
            checked[name] = value
        elif name == "body":
            checked[name] = _check_body_fault(value, what)
        elif name == "body_size":
            checked[name] = _count(value, what, minimum=2)
        elif name == "redirect":
            value = _table(value, what, {"status", "location"}, {"location"})
            status = _status(value.get("status", 302), f"{what} status")
            if not 300 <= status <= 399 or not isinstance(value["location"], str):
                raise EmulatorError(f"{what} needs a 3xx status and a location string")
            checked[name] = {"status": status, "location": value["location"]}
        elif name == "versions":
            if (not isinstance(value, list) or not value
                    or not all(isinstance(v, str) and _VERSION_RE.match(v) for v in value)):
                raise EmulatorError(f"{what} must be a non-empty list of YYYY-MM-DD api-versions")
            checked[name] = sorted(set(value))
        elif name == "error_wording":
            if value not in ("new", "old", "no_list"):
                raise EmulatorError(f"{what} must be 'new', 'old' or 'no_list', not {value!r}")
            checked[name] = value
        else:
            raise EmulatorError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    return checked


def _check_body_fault(value: Any, what: str) -> dict:
    value = _table(value, what, {"text", "base64", "status", "content_type"}, set())
    if ("text" in value) == ("base64" in value):
        raise EmulatorError(f"{what} needs exactly one of text or base64")
    if "text" in value:
        if not isinstance(value["text"], str):
            raise EmulatorError(f"{what} text must be a string")
        data = value["text"].encode("utf-8")
    else:
        try:
            data = base64.b64decode(value["base64"], validate=True)
        except (ValueError, TypeError):
            raise EmulatorError(f"{what} base64 is not valid base64") from None
    content_type = value.get("content_type", "application/json")
    if not isinstance(content_type, str):
        raise EmulatorError(f"{what} content_type must be a string")
    return {"data": data, "status": _status(value.get("status", 200), f"{what} status"),
            "content_type": content_type, **{k: value[k] for k in ("text", "base64") if k in value}}


FAULT_NAMES = (
    "status_for_seconds", "status_first_n", "status_always", "every_kth", "rate_limit", "delay",
    "hang", "dribble", "reset", "truncate", "html", "body", "body_size", "redirect", "versions",
    "error_wording",
)


def _public_faults(faults: Mapping[str, Any]) -> dict:
    shown = dict(faults)
    if "body" in shown:
        shown["body"] = {k: v for k, v in shown["body"].items() if k != "data"}
    return shown


# ---------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------

class Reply:
    """An HTTP answer: status, headers and a body (bytes, or chunks of a known length)."""

    def __init__(self, status: int, body: bytes = b"", content_type: str | None = JSON_TYPE,
                 headers: Mapping[str, str] | None = None,
                 chunks: Callable[[], Iterator[bytes]] | None = None, length: int | None = None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self._chunks = chunks
        self.length = len(body) if chunks is None else int(length or 0)

    def chunks(self) -> Iterator[bytes]:
        if self._chunks is not None:
            return self._chunks()
        return iter((self.body,) if self.body else ())

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> "Reply":
        return cls(status, dump_json(value), JSON_TYPE, headers)

    @classmethod
    def error(cls, status: int, message: str | None = None, headers: Mapping[str, str] | None = None,
              **extra: Any) -> "Reply":
        """``{"error": message}`` plus ``extra`` members; the message defaults by status."""
        return cls.json(status, {"error": message or STATUS_ERRORS.get(status) or _reason(status), **extra},
                        headers)


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]


def _padded_json(prefix: bytes, size: int) -> tuple[Callable[[], Iterator[bytes]], int]:
    """Chunks of a JSON object of exactly ``size`` bytes: ``prefix`` plus a padding string."""
    if prefix.startswith(b"{") and prefix.endswith(b"}") and len(prefix) > 2:
        head = prefix[:-1] + b',"padding":"'
    else:
        head = b'{"padding":"'
    tail = b'"}'
    if size < len(head) + len(tail):
        head = b'{"padding":"'
    if size < len(head) + len(tail):
        head, tail = b'"', b'"'
    padding = size - len(head) - len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"x" * 65536
        left = padding
        while left > 0:
            piece = block if left >= len(block) else block[:left]
            left -= len(piece)
            yield piece
        yield tail

    return chunks, size


# ---------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------

class Emulator:
    """An IMDS emulator serving one profile on ``host:port`` in a daemon thread."""

    def __init__(self, *, profile: str = "linux", host: str = "127.0.0.1", port: int = 0,
                 faults: Mapping[str, Any] | None = None, latency: float = 0.0,
                 log_path: str | Path | None = None, profile_file: str | Path | None = None):
        self.profile_name = profile if profile_file is None else str(profile_file)
        self.profile = load_profile(profile, profile_file)
        self.document = public_document(self.profile)
        self.host = host
        self.port = port
        self.latency = _number(latency, "latency")
        self.log_path = Path(log_path) if log_path is not None else None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._faults = check_faults(faults)
        self._faults_set_at = time.monotonic()
        self._first_request_at = self._faults_set_at
        self._counter = 0
        self._window: collections.deque[float] = collections.deque()
        self._requests: list[dict] = []
        self._log_file: Any = None
        self._connections: set[socket.socket] = set()
        self._events: list[dict] = []
        self._incarnation = 1
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loadbalancer = self.profile.get("_loadbalancer")
        compute = self.document.get("compute") if isinstance(self.document.get("compute"), dict) else {}
        self._compute: dict = compute
        vm_id = str(compute.get("vmId") or "00000000-0000-0000-0000-000000000000")
        identity = self.profile.get("_identity") if isinstance(self.profile.get("_identity"), dict) else {}
        self._identity = {
            "enabled": bool(identity.get("enabled", True)),
            "tenant_id": str(identity.get("tenant_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"tenant:{vm_id}")),
            "client_id": str(identity.get("client_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"client:{vm_id}")),
            "object_id": str(identity.get("object_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"object:{vm_id}")),
        }

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> "Emulator":
        """Listen and serve in a daemon thread (OSError when the address cannot be bound)."""
        if self._server is not None:
            return self
        if self.log_path is not None and self._log_file is None:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = open(self.log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
            except OSError as exc:
                raise EmulatorError(f"cannot open the log file {self.log_path}: {exc.strerror or exc}") from None
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self.port), _Handler)
        except OSError:
            self._close_log()
            raise
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        self._stop.clear()
        with self._lock:
            self._faults_set_at = time.monotonic()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"imds-emulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; connections held by faults (hang, dribble) are closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- log, faults, events -----------------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        """The IMDS requests served so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_log(self) -> int:
        with self._lock:
            count = len(self._requests)
            self._requests.clear()
            return count

    @property
    def faults(self) -> dict:
        with self._lock:
            return _public_faults(self._faults)

    def set_faults(self, **faults: Any) -> dict:
        """Replace all fault switches; counters and the fault clock start again."""
        checked = check_faults(faults)
        with self._lock:
            self._faults = checked
            self._faults_set_at = time.monotonic()
            self._counter = 0
            self._window.clear()
        return _public_faults(checked)

    def add_event(self, *, event_type: str = "Reboot", resources: list[str] | None = None,
                  not_before_seconds: float | None = 300, status: str = "Scheduled",
                  description: str | None = None, event_source: str = "Platform",
                  duration_seconds: int = -1, event_id: str | None = None,
                  resource_type: str = "VirtualMachine",
                  complete_after_seconds: float | None = None) -> dict:
        """Schedule an event; returns it as the newest scheduled-events version shows it.

        A Scheduled event starts by itself once NotBefore has passed; a Started event
        disappears ``complete_after_seconds`` after it started (never when None).
        """
        if event_type not in EVENT_TYPE_SINCE:
            raise EmulatorError(f"event_type must be one of {', '.join(EVENT_TYPE_SINCE)}, not {event_type!r}")
        if status not in ("Scheduled", "Started"):
            raise EmulatorError(f"status must be Scheduled or Started, not {status!r}")
        if event_source not in ("Platform", "User"):
            raise EmulatorError(f"event_source must be Platform or User, not {event_source!r}")
        if resources is None:
            resources = [str(self._compute.get("name") or "vm")]
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise EmulatorError("resources must be a list of VM names")
        if not_before_seconds is not None and (isinstance(not_before_seconds, bool)
                                               or not isinstance(not_before_seconds, (int, float))):
            raise EmulatorError(f"not_before_seconds must be a number or null, not {not_before_seconds!r}")
        if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int) or duration_seconds < -1:
            raise EmulatorError(f"duration_seconds must be an integer >= -1, not {duration_seconds!r}")
        if complete_after_seconds is not None:
            _number(complete_after_seconds, "complete_after_seconds")
        for label, value in (("description", description), ("event_id", event_id), ("resource_type", resource_type)):
            if value is not None and not isinstance(value, str):
                raise EmulatorError(f"{label} must be a string")
        now = time.time()
        not_before_at = None if not_before_seconds is None else now + not_before_seconds
        event = {
            "EventId": event_id or str(uuid.uuid4()),
            "EventType": event_type,
            "ResourceType": resource_type,
            "Resources": list(resources),
            "EventStatus": status,
            "NotBefore": "" if not_before_at is None or status == "Started"
                         else email.utils.formatdate(not_before_at, usegmt=True),
            "Description": EVENT_DESCRIPTIONS[event_type] if description is None else description,
            "EventSource": event_source,
            "DurationInSeconds": duration_seconds,
        }
        with self._lock:
            if any(e["EventId"] == event["EventId"] for e in self._events):
                raise EmulatorError(f"an event with EventId {event['EventId']!r} exists already")
            self._events.append({**event, "_not_before_at": not_before_at,
                                 "_started_at": now if status == "Started" else None,
                                 "_complete_after": complete_after_seconds})
            self._incarnation += 1
        return dict(event)

    def events_document(self, version: str = SCHEDULED_EVENTS_VERSIONS[-1]) -> dict:
        """The scheduled-events document as ``version`` shows it now."""
        with self._lock:
            self._advance_events(time.time())
            events = [
                {key: value for key, value in event.items()
                 if not key.startswith("_") and EVENT_FIELD_SINCE.get(key, "0") <= version}
                for event in self._events if EVENT_TYPE_SINCE[event["EventType"]] <= version
            ]
            return {"DocumentIncarnation": self._incarnation, "Events": events}

    def _advance_events(self, now: float) -> None:
        changed = False
        for event in list(self._events):
            if event["EventStatus"] == "Scheduled" and event["_not_before_at"] is not None \
                    and event["_not_before_at"] <= now:
                event["EventStatus"] = "Started"
                event["NotBefore"] = ""  # Microsoft: blank once the event has started
                event["_started_at"] = now
                changed = True
            if event["EventStatus"] == "Started" and event["_complete_after"] is not None \
                    and event["_started_at"] + event["_complete_after"] <= now:
                self._events.remove(event)
                changed = True
        if changed:
            self._incarnation += 1

    # -- internals used by the handler -------------------------------------------------

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _log(self, entry: dict) -> None:
        with self._lock:
            self._requests.append(entry)
            if len(self._requests) > MAX_LOGGED_REQUESTS:
                del self._requests[:len(self._requests) - MAX_LOGGED_REQUESTS]
            if self._log_file is not None:
                self._log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._log_file.flush()

    def _plan(self, now: float) -> tuple[dict, Reply | None]:
        """Count the request against the faults; return them and the reply they force, if any."""
        with self._lock:
            faults = self._faults
            self._counter += 1
            count = self._counter
            if count == 1:
                self._first_request_at = now
            if faults.get("hang") or faults.get("reset") == "before_headers":
                return faults, None
            limit = faults.get("rate_limit")
            if limit:
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) >= limit["per_second"]:
                    headers = {}
                    if limit["retry_after"] is not None:
                        headers["Retry-After"] = f"{limit['retry_after']:g}"
                    return faults, Reply.error(429, headers=headers)
                self._window.append(now)
            status = None
            rule = faults.get("status_for_seconds")
            if rule:
                origin = self._first_request_at if rule["from"] == "first_request" else self._faults_set_at
                if now - origin < rule["seconds"]:
                    status = rule["status"]
            rule = faults.get("status_first_n")
            if status is None and rule and count <= rule["count"]:
                status = rule["status"]
            if status is None and faults.get("status_always"):
                status = faults["status_always"]
            rule = faults.get("every_kth")
            if status is None and rule and count % rule["k"] == 0:
                status = rule["status"]
        if status is not None:
            return faults, Reply.error(status)
        if "redirect" in faults:
            rule = faults["redirect"]
            return faults, Reply(rule["status"], b"", None, {"Location": rule["location"]})
        if faults.get("html"):
            return faults, Reply(200, CAPTIVE_PORTAL, "text/html; charset=utf-8")
        if "body" in faults:
            rule = faults["body"]
            return faults, Reply(rule["status"], rule["data"], rule["content_type"])
        if "body_size" in faults:
            chunks, length = _padded_json(dump_json(self.document), faults["body_size"])
            return faults, Reply(200, content_type=JSON_TYPE, chunks=chunks, length=length)
        return faults, None

    # -- IMDS ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               body: bytes, faults: Mapping[str, Any] | None = None) -> Reply:
        """Answer one IMDS request as the service would (faults only change versions/wording)."""
        faults = self._faults if faults is None else faults
        if headers.get("metadata", "").lower() != "true":
            return Reply.error(400, HEADER_ERROR)
        if "x-forwarded-for" in headers:
            return Reply.error(400, FORWARDED_ERROR)
        if method not in ("GET", "POST"):
            return Reply.error(405, headers={"Allow": "GET, POST"})
        if path == "/metadata/versions":
            if method != "GET":
                return Reply.error(405, headers={"Allow": "GET"})
            return Reply.json(200, {"apiVersions": list(faults.get("versions") or API_VERSIONS)})
        category = _category(path)
        if category is None:
            return Reply.error(404)
        if method == "POST" and category != "scheduledevents":
            return Reply.error(405, headers={"Allow": "GET"})
        allowed = self._versions_for(category, faults)
        version = query.get("api-version")
        if version not in allowed:
            return self._version_error(allowed, faults)
        fmt = query.get("format")
        if category == "instance":
            return self._instance(path, version, fmt)
        if fmt not in (None, "json"):
            return Reply.error(400, FORMAT_ERROR)
        if category == "scheduledevents":
            return self._scheduled_events(method, version, body)
        if category == "attested":
            return self._attested(version, query)
        if category == "loadbalancer":
            if not isinstance(self._loadbalancer, dict):
                return Reply.json(404, {"error": LOADBALANCER_MISSING})
            return Reply.json(200, {"loadbalancer": self._loadbalancer})
        if category == "identity-info":
            if not self._identity["enabled"]:
                return Reply.json(400, {"error": "invalid_request", "error_description": "Identity not found"})
            return Reply.json(200, {"tenantId": self._identity["tenant_id"]})
        return self._token(query)

    def _versions_for(self, category: str, faults: Mapping[str, Any]) -> list[str]:
        if category == "scheduledevents":
            return list(SCHEDULED_EVENTS_VERSIONS)
        since = CATEGORY_SINCE["identity" if category.startswith("identity") else category]
        return [v for v in (faults.get("versions") or API_VERSIONS) if v >= since]

    @staticmethod
    def _version_error(allowed: list[str], faults: Mapping[str, Any]) -> Reply:
        wording = faults.get("error_wording", "new")
        message = VERSION_ERROR_OLD if wording == "old" else VERSION_ERROR_NEW
        if wording == "no_list":
            return Reply.error(400, message)
        return Reply.error(400, message, **{"newest-versions": sorted(allowed, reverse=True)[:3]})

    def _instance(self, path: str, version: str, fmt: str | None) -> Reply:
        if fmt not in (None, "json", "text"):
            return Reply.error(400, FORMAT_ERROR)
        node: Any = document_for_version(self.document, version)
        rest = path[len("/metadata/instance"):]
        if rest.endswith("/"):
            rest = rest[:-1]
        for segment in rest.split("/")[1:] if rest else ():
            if isinstance(node, dict) and segment in node:
                node = node[segment]
            elif isinstance(node, list) and segment.isdigit() and str(int(segment)) == segment \
                    and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return Reply.error(404)
        if fmt == "text":
            return Reply(200, text_of(node).encode("utf-8"), TEXT_TYPE)
        if not isinstance(node, (dict, list)):
            return Reply.error(400, LEAF_JSON_ERROR)
        return Reply(200, dump_json(node))

    def _scheduled_events(self, method: str, version: str, body: bytes) -> Reply:
        if method == "GET":
            return Reply.json(200, self.events_document(version))
        try:
            request = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return Reply.error(400, "Bad request. The body is not valid JSON")
        starts = request.get("StartRequests") if isinstance(request, dict) else None
        if not isinstance(starts, list):
            return Reply.error(400, "Bad request. The body needs a StartRequests list")
        if not all(isinstance(item, dict) and isinstance(item.get("EventId"), str) for item in starts):
            return Reply.error(400, "Bad request. Every StartRequests item needs an EventId")
        wanted = {item["EventId"] for item in starts}
        now = time.time()
        with self._lock:
            self._advance_events(now)
            started = False
            for event in self._events:
                if event["EventId"] in wanted and event["EventStatus"] == "Scheduled":
                    event["EventStatus"] = "Started"
                    event["NotBefore"] = ""
                    event["_started_at"] = now
                    started = True
            if started:
                self._incarnation += 1
        return Reply(200, b"", None)

    def _attested(self, version: str, query: Mapping[str, str]) -> Reply:
        now = time.time()
        nonce = query.get("nonce")
        if nonce is None:
            nonce = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        elif not (nonce.isascii() and nonce.isalnum() and len(nonce) <= 32):
            return Reply.error(400, "Bad request. The nonce must be at most 32 letters and digits")
        compute = self._compute
        plan = compute.get("plan") if isinstance(compute.get("plan"), dict) else {}
        content = {
            "licenseType": str(compute.get("licenseType", "")),
            "nonce": nonce,
            "plan": {key: str(plan.get(key, "")) for key in ("name", "product", "publisher")},
            "sku": str(compute.get("sku", "")),
            "subscriptionId": str(compute.get("subscriptionId", "")),
            "timeStamp": {"createdOn": time.strftime("%m/%d/%y %H:%M:%S -0000", time.gmtime(now)),
                          "expiresOn": time.strftime("%m/%d/%y %H:%M:%S -0000", time.gmtime(now + 6 * 3600))},
            "vmId": str(compute.get("vmId", "")),
        }
        content = {key: value for key, value in content.items() if ATTESTED_FIELD_SINCE[key] <= version}
        signature = base64.b64encode(pkcs7_envelope(dump_json(content))).decode("ascii")
        return Reply.json(200, {"encoding": "pkcs7", "signature": signature})

    def _token(self, query: Mapping[str, str]) -> Reply:
        def invalid(description: str) -> Reply:
            return Reply.json(400, {"error": "invalid_request", "error_description": description})

        resource = query.get("resource")
        if not resource:
            return invalid("Required query variable 'resource' is missing")
        chosen = [name for name in ("client_id", "object_id", "msi_res_id") if name in query]
        if len(chosen) > 1:
            return invalid("Only one of client_id, object_id and msi_res_id may be given")
        if "bypass_cache" in query and query["bypass_cache"] != "true":
            return invalid("bypass_cache must be true when given")
        identity = self._identity
        if not identity["enabled"] or query.get("client_id", identity["client_id"]) != identity["client_id"] \
                or query.get("object_id", identity["object_id"]) != identity["object_id"]:
            return invalid("Identity not found")
        now = int(time.time())
        lifetime = 86399
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{identity['tenant_id']}/",
                  "iat": now, "nbf": now, "exp": now + lifetime, "oid": identity["object_id"],
                  "appid": identity["client_id"], "tid": identity["tenant_id"],
                  "xms_mirid": str(self._compute.get("resourceId", "")), "emulator": True}
        token = ".".join((_b64url(dump_json({"typ": "JWT", "alg": "none"})), _b64url(dump_json(claims)), ""))
        body = {"access_token": token, "client_id": identity["client_id"], "expires_in": str(lifetime),
                "expires_on": str(now + lifetime), "ext_expires_in": str(lifetime), "not_before": str(now),
                "resource": resource, "token_type": "Bearer"}
        if "msi_res_id" in query:
            body["msi_res_id"] = query["msi_res_id"]
        if "object_id" in query:
            body["object_id"] = query["object_id"]
        return Reply.json(200, body)

    # -- control API ---------------------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> Reply:
        """``/_emulator/...``: the log, the faults and events for out-of-process users."""
        route = path.rstrip("/")
        try:
            if route == "/_emulator/requests":
                if method == "GET":
                    return Reply.json(200, self.requests)
                if method == "DELETE":
                    return Reply.json(200, {"cleared": self.clear_log()})
            elif route == "/_emulator/faults":
                if method == "GET":
                    return Reply.json(200, self.faults)
                if method == "PUT":
                    return Reply.json(200, {"faults": self.set_faults(**_json_object(body))})
            elif route == "/_emulator/events":
                if method == "GET":
                    return Reply.json(200, self.events_document())
                if method == "POST":
                    event = _json_object(body)
                    unknown = set(event) - set(EVENT_KEYWORDS)
                    if unknown:
                        raise EmulatorError(f"unknown event keys {', '.join(sorted(unknown))}; "
                                            f"allowed: {', '.join(EVENT_KEYWORDS)}")
                    return Reply.json(201, self.add_event(**event))
            else:
                return Reply.error(404, f"Unknown control path {path}; use /_emulator/requests, "
                                        "/_emulator/faults or /_emulator/events")
        except EmulatorError as exc:
            return Reply.error(400, str(exc))
        return Reply.error(405, f"{method} is not supported on {path}")


EVENT_KEYWORDS = ("event_type", "resources", "not_before_seconds", "status", "description", "event_source",
                  "duration_seconds", "event_id", "resource_type", "complete_after_seconds")
"""The keyword arguments of Emulator.add_event, also the keys of POST /_emulator/events."""


def _json_object(body: bytes) -> dict:
    try:
        value = json.loads(body.decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise EmulatorError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EmulatorError("the request body must be a JSON object")
    return value


def _category(path: str) -> str | None:
    if path == "/metadata/instance" or path.startswith("/metadata/instance/"):
        return "instance"
    return {
        "/metadata/scheduledevents": "scheduledevents",
        "/metadata/attested/document": "attested",
        "/metadata/loadbalancer": "loadbalancer",
        "/metadata/identity/oauth2/token": "identity-token",
        "/metadata/identity/info": "identity-info",
    }.get(path)


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    emulator: Emulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS query); we do not need it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "imds-emulator"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.emulator._track(self.connection, False)

    def __getattr__(self, name: str) -> Any:
        # Every method (GET, POST, DELETE, BREW...) reaches _dispatch, so that IMDS can say 405.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        emu = self.server.emulator
        received = time.monotonic()
        target = urlsplit(self.path)
        path = target.path
        query: dict[str, str] = {}
        for name, value in parse_qsl(target.query, keep_blank_values=True):
            query.setdefault(name, value)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = self._read_body()
        if body is None:
            self._write(Reply.error(413, "Request body too large"))
            return
        try:
            if path == "/_emulator" or path.startswith("/_emulator/"):
                self._write(emu.control(self.command, path, body))
                return
            entry = {"time": received, "method": self.command, "path": path, "query": query,
                     "headers": headers, "status": 0, "client": self.client_address[0]}
            faults, forced = emu._plan(received)
            wait = emu.latency + faults.get("delay", 0)
            if wait and emu._stop.wait(wait):
                self.close_connection = True
                return
            if faults.get("hang"):
                emu._log(entry)
                self._hang()
                return
            if faults.get("reset") == "before_headers":
                emu._log(entry)
                self._reset()
                return
            reply = forced or emu.answer(self.command, path, query, headers, body, faults)
            entry["status"] = reply.status
            emu._log(entry)
            self._write(reply, faults)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    return data
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                if len(data) + size > MAX_REQUEST_BODY:
                    self.close_connection = True
                    return None
                data += self.rfile.read(size)
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        if length > MAX_REQUEST_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply, faults: Mapping[str, Any] | None = None) -> None:
        faults = faults or {}
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        cut = faults.get("reset") == "mid_body" or faults.get("truncate")
        if cut or self.close_connection:
            self.send_header("Connection", "close")
        chunks = iter(()) if self.command == "HEAD" else reply.chunks()
        if not cut and not faults.get("dribble") and reply.length <= 65536:
            # headers and a small body in one segment: no waiting for a delayed ACK
            self._headers_buffer.append(b"\r\n" + b"".join(chunks))
            self.flush_headers()
            return
        self.end_headers()
        limit = reply.length // 2 if cut else None
        self._send_body(chunks, limit, faults.get("dribble"))
        if faults.get("reset") == "mid_body":
            self._reset()
        elif cut:
            self.close_connection = True

    def _send_body(self, chunks: Iterable[bytes], limit: int | None, rate: float | None) -> None:
        stop = self.server.emulator._stop
        sent = 0
        started = time.monotonic()
        for chunk in chunks:
            if limit is not None:
                chunk = chunk[:max(0, limit - sent)]
            while chunk:
                if stop.is_set():
                    self.close_connection = True
                    return
                piece = chunk if rate is None else chunk[:max(1, int(rate * 0.05))]
                self.wfile.write(piece)
                sent += len(piece)
                chunk = chunk[len(piece):]
                if rate is not None:
                    stop.wait(max(0.0, started + sent / rate - time.monotonic()))
            if limit is not None and sent >= limit:
                return

    def _hang(self) -> None:
        """Hold the connection without answering until the client leaves or the server stops."""
        self.close_connection = True
        stop = self.server.emulator._stop
        while not stop.is_set():
            try:
                readable = select.select([self.connection], [], [], 0.1)[0]
                if readable and not self.connection.recv(65536):
                    return
            except (OSError, ValueError):
                return

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"imds-emulator: error: {message}\n")


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="imds_emulator.py", description="Serve an emulated Azure IMDS.")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--profile", default="linux", help=f"profile name ({', '.join(available_profiles())})")
    parser.add_argument("--profile-file", help="a JSON file with a full /metadata/instance document")
    parser.add_argument("--faults", help="fault switches as a JSON object (see docs/emulator.md)")
    parser.add_argument("--latency", type=_non_negative, default=0.0, help="seconds added to every answer")
    parser.add_argument("--log", help="append one JSON line per IMDS request to this file")
    parser.add_argument("--port-file", help="write the port number to this file once listening")
    parser.add_argument("--lifetime", type=_non_negative, default=3600.0,
                        help="exit after this many seconds (default 3600)")
    args = parser.parse_args(argv)
    if args.lifetime == 0:
        parser.error("--lifetime must be positive")
    faults = None
    if args.faults is not None:
        try:
            faults = json.loads(args.faults)
        except ValueError as exc:
            parser.error(f"--faults is not valid JSON: {exc}")
    try:
        emu = Emulator(profile=args.profile, host=args.bind, port=args.port, faults=faults,
                       latency=args.latency, log_path=args.log, profile_file=args.profile_file)
    except EmulatorError as exc:
        parser.error(str(exc))
    try:
        emu.start()
    except EmulatorError as exc:
        parser.error(str(exc))
    except OSError as exc:
        sys.stderr.write(f"imds-emulator: error: cannot listen on {args.bind}:{args.port}: "
                         f"{exc.strerror or exc}\n")
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if args.port_file:
            port_file = Path(args.port_file)
            partial = port_file.with_name(f".{port_file.name}.tmp")
            partial.write_text(f"{emu.port}\n")
            partial.replace(port_file)
        sys.stdout.write(f"imds-emulator listening on {emu.url}\n")
        sys.stdout.flush()
        deadline = time.monotonic() + args.lifetime
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            stopping.wait(min(left, 1.0))
    except OSError as exc:
        sys.stderr.write(f"imds-emulator: error: {exc}\n")
        return 1
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
