# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Profiles (JSON data in profiles/) and the documents served from them."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Mapping

from ._checks import EmulatorError, read_json_file
from ._tables import FIELD_SINCE, PROFILE_NAME_RE

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


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
        if not PROFILE_NAME_RE.match(name) or not (PROFILES_DIR / f"{name}.json").is_file():
            raise EmulatorError(f"unknown profile {name!r}; available: {', '.join(available_profiles())}")
        path = PROFILES_DIR / f"{name}.json"
        label = f"profile {name!r}"
    document = read_json_file(path, label)
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


_LB_LISTS = {
    # list key: {field: type} for the fields whose type we check (others pass through)
    "publicIpAddresses": {"frontendIpAddress": str, "privateIpAddress": str},
    "inboundRules": {"frontendIpAddress": str, "protocol": str, "frontendPort": int, "backendPort": int,
                     "privateIpAddress": str},
    "outboundRules": {"frontendIpAddress": str, "privateIpAddress": str},
    "tunnelInterfaces": {"gatewayIpAddress": str, "gatewayPort": int, "identifier": int, "type": str,
                         "protocol": str, "localIpAddress": str, "localPort": int},
}
"""The loadbalancer object as Microsoft's OpenAPI describes it (LoadBalancerMetadata)."""


def check_loadbalancer(value: Any, label: str) -> dict | None:
    """Validate a profile's ``_loadbalancer``: None (the VM is in no load balancer) or the object."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EmulatorError(f"{label} _loadbalancer must be an object (or null for a VM in no load balancer)")
    for key, fields in _LB_LISTS.items():
        items = value.get(key, [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise EmulatorError(f"{label} _loadbalancer.{key} must be a list of objects")
        for index, item in enumerate(items):
            for field, kind in fields.items():
                if field in item and (not isinstance(item[field], kind) or isinstance(item[field], bool)):
                    raise EmulatorError(f"{label} _loadbalancer.{key}[{index}].{field} must be "
                                        f"{'an integer' if kind is int else 'a string'}, not {item[field]!r}")
    return value
