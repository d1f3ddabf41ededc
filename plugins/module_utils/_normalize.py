# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Turn an IMDS instance document into Ansible facts: ``normalize()``.

A pure function: no I/O, no global state, the same facts for the same document. The
facts are described in ``docs/facts.schema.json`` and ``docs/facts.md``.

What is accepted
    A JSON object with ``compute`` and/or ``network`` (a ``/metadata/instance``
    document). A ``/compute`` or ``/network`` subtree must be wrapped by the caller
    (``{"compute": body}``); the facts of the missing half are empty or None.

What is rejected (ImdsDocumentError, one sentence saying what is wrong)
    Anything that is not an object; an object with neither ``compute`` nor
    ``network`` (e.g. an IMDS error body, whose ``error`` text the message quotes);
    ``compute`` or ``network`` that is not an object; ``network.interface`` that is
    not a list; an interface that is not an object; nesting deeper than 64 levels.
    These say the document is not an instance document at all. No other exception
    ever leaves ``normalize()``.

What is tolerated
    Below those, one odd value never costs the user the other facts. In an
    interface, ``ipv4``/``ipv6`` that are not objects, address or subnet lists that
    are not lists, entries that are not objects and addresses that are not strings
    are treated as absent. In ``compute``, a known field of a kind IMDS never sends
    (an object where a string belongs, a string where an object belongs) becomes
    None; the raw value is still in ``ansible_azure_metadata``.

Values in ``ansible_azure_compute``
    Keys are snake_cased (see ``snake_case()``), at every depth. ``""`` (IMDS for
    "does not apply") becomes None. Conversions follow ``FIELDS`` in ``_versions``,
    never a guess from the string: fields known to be numbers become ``int`` when
    they are decimal digits (else they stay strings), fields known to be flags become
    ``bool`` from ``"true"``/``"false"`` in any case (else they stay strings), other
    known string fields stay strings (a number or boolean there becomes its JSON
    text). Unknown fields are kept with their values as they are, but ``""`` ->
    None. Tag names and values (``tags_list``) are never converted. Should one
    object spell a key both ways (``vmId`` and ``vm_id``), the literal snake_case key
    keeps the name and the other keeps its own spelling: nothing is dropped.

Tags (``ansible_azure_tags``)
    ``tagsList`` entries with a string name, plus every ``name:value`` of the ``tags``
    string split at the first ``:`` (a segment without ``:`` is a tag with an empty
    value; empty segments are skipped; a name given twice keeps the last value).
    Where both forms name a tag, ``tagsList`` wins, since the string cannot carry
    ``;`` in a value. A tagsList value that is not a string becomes its JSON text.

Shortcuts
    ``ansible_azure_os_type`` spells ``linux``/``windows`` as ``Linux``/``Windows``
    (``ansible_azure_compute.os_type`` keeps what IMDS sent). The fault and update
    domain shortcuts are ints, or None when the value is missing or not a number.

userData
    It may hold secrets, so it is left out of ``ansible_azure_metadata`` and
    ``ansible_azure_compute`` (the key is absent) unless ``include_user_data``. Then
    ``ansible_azure_compute.user_data`` is the base64-decoded UTF-8 text; a value that
    is not base64 of UTF-8 text is kept undecoded, exactly as IMDS sent it (the raw
    value is also in ``ansible_azure_metadata.compute.userData``): never an error.

Sharing
    ``ansible_azure_metadata`` is the document itself (shallow copies only where
    userData is removed); callers must not mutate the document afterwards.
"""
from __future__ import annotations

import json
import re

from ansible_collections.imds.azure.plugins.module_utils._text import printable
from ansible_collections.imds.azure.plugins.module_utils._versions import FIELDS, Field

MAX_DEPTH = 64

_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")
_MAC_SEPARATORS = re.compile(r"[:.\-]")
_MAC_HEX = re.compile(r"[0-9a-fA-F]{12}\Z")
_OS_TYPES = {"linux": "Linux", "windows": "Windows"}


class ImdsDocumentError(ValueError):
    """The document is not an IMDS instance document; message says what is wrong."""


def snake_case(name: str) -> str:
    """Return ``name`` in snake_case.

    A capital starts a new word after a lowercase letter or a digit; a run of
    capitals is one word (an acronym), except that its last capital starts the next
    word when a lowercase letter follows. Digits stay with what precedes them.
    ``vmId`` -> ``vm_id``, ``diskSizeGB`` -> ``disk_size_gb``, ``HTTPSProxy`` ->
    ``https_proxy``, ``ipv4Address`` -> ``ipv4_address``, ``vm_id`` -> ``vm_id``.
    """
    return _WORD_BREAK.sub("_", name).lower()


class _Node:
    """What we know about one field: its kind, its known children (by snake_case name), its list items."""

    __slots__ = ("kind", "children", "item")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.children: dict[str, _Node] = {}
        self.item: _Node | None = _Node("object") if kind == "list" else None


_KNOWN_SNAKE = {
    segment: snake_case(segment)
    for segment in {segment for field in FIELDS for segment in field.path.replace("[]", "").split(".")}
}


def _compute_tree(fields: tuple[Field, ...]) -> _Node:
    root = _Node("object")
    for field in fields:
        if not field.path.startswith("compute."):
            continue
        *parents, last = field.path.split(".")[1:]
        node = root
        for segment in parents:
            if segment.endswith("[]"):
                node = node.children[_KNOWN_SNAKE[segment[:-2]]].item
            else:
                node = node.children[_KNOWN_SNAKE[segment]]
        node.children[_KNOWN_SNAKE[last]] = _Node(field.kind)
    return root


_COMPUTE = _compute_tree(FIELDS)


def _snake(name: object) -> str:
    if not isinstance(name, str):
        name = str(name)
    known = _KNOWN_SNAKE.get(name)
    return known if known is not None else snake_case(name)


def _describe(value: object) -> str:
    """Name the JSON type of ``value`` for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _json_text(value: object) -> str:
    """Render a non-string scalar (or anything) as the JSON text IMDS would have sent."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return f"<{_describe(value)}>"


def _too_deep() -> ImdsDocumentError:
    return ImdsDocumentError(f"compute is nested more than {MAX_DEPTH} levels deep; an IMDS instance document is not")


def _object(mapping: dict, children: dict[str, _Node] | None, depth: int) -> dict[str, object]:
    """Snake-case the keys of ``mapping`` and convert its values (known ones by kind)."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    result: dict[str, object] = {}
    origin: dict[str, str] = {}
    for key, value in mapping.items():
        key = key if isinstance(key, str) else str(key)
        name = _snake(key)
        node = children.get(name) if children else None
        converted = _known(value, node, depth) if node else _unknown(value, depth)
        if name not in result:
            result[name] = converted
            origin[name] = key
        elif key == name:
            # "vm_id" after "vmId": the literal name wins, the other keeps its own key.
            result[origin[name]] = result[name]
            result[name] = converted
            origin[name] = key
        else:
            result[key] = converted
    return result


def _unknown(value: object, depth: int) -> object:
    """Convert a field we do not know: keys snake_cased, "" -> None, nothing else."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        return _object(value, None, depth + 1)
    if isinstance(value, list):
        if depth + 1 > MAX_DEPTH:
            raise _too_deep()
        return [_unknown(item, depth + 1) for item in value]
    return value


def _known(value: object, node: _Node, depth: int) -> object:
    """Convert a field we know, by its kind."""
    kind = node.kind
    if kind == "raw":
        return value if value is None or isinstance(value, str) else _json_text(value)
    if value is None or isinstance(value, str) and not value:
        return None
    if kind == "object":
        return _object(value, node.children, depth + 1) if isinstance(value, dict) else None
    if kind == "list":
        if not isinstance(value, list):
            return None
        if depth + 1 > MAX_DEPTH:
            raise _too_deep()
        return [_known(item, node.item, depth + 1) for item in value]
    if isinstance(value, (dict, list)):
        return None
    if kind == "int":
        return _to_int(value)
    if kind == "bool":
        return _to_bool(value)
    # "str" (and "base64" reached without include_user_data, which cannot happen).
    return value if isinstance(value, str) else _json_text(value)


def _to_int(value: object) -> object:
    if isinstance(value, bool):
        return _json_text(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else _json_text(value)
    if isinstance(value, str) and _DECIMAL.match(value):
        try:
            return int(value)
        except ValueError:  # more digits than int() accepts from a string
            return value
    return value if isinstance(value, str) else _json_text(value)


def _to_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        return value
    return _json_text(value)


def _user_data(value: object) -> object:
    """Decode userData (base64 of UTF-8 text); keep it undecoded when it is not that."""
    if not isinstance(value, str):
        return None if value is None or isinstance(value, (dict, list)) else _json_text(value)
    if not value:
        return None
    import base64  # only with include_user_data: a gather without it does not import it

    try:
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
        return value


def _compute_facts(compute: dict, include_user_data: bool) -> dict[str, object]:
    if include_user_data or "userData" not in compute:
        facts = _object(compute, _COMPUTE.children, 1)
    else:
        facts = _object({k: v for k, v in compute.items() if k != "userData"}, _COMPUTE.children, 1)
    if include_user_data and "userData" in compute:
        facts["user_data"] = _user_data(compute["userData"])
    return facts


def _tags(compute: dict) -> dict[str, str]:
    """Merge tagsList and the tags string; tagsList wins where both name a tag."""
    tags: dict[str, str] = {}
    tags_list = compute.get("tagsList")
    if isinstance(tags_list, list):
        for entry in tags_list:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                value = entry.get("value")
                tags[entry["name"]] = "" if value is None else value if isinstance(value, str) else _json_text(value)
    text = compute.get("tags")
    if isinstance(text, str):
        in_string: dict[str, str] = {}
        for pair in text.split(";"):
            name, _colon, value = pair.partition(":")
            if name:
                in_string[name] = value
        for name, value in in_string.items():
            tags.setdefault(name, value)
    return tags


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mac(value: object) -> str | None:
    """``000D3AF806EC`` (or any colon, dash or dot form) -> ``00:0d:3a:f8:06:ec``."""
    if not isinstance(value, str) or not value:
        return None
    digits = _MAC_SEPARATORS.sub("", value)
    if not _MAC_HEX.match(digits):
        return value
    digits = digits.lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _entries(family: object, key: str) -> list[dict]:
    """The object entries of ``family[key]`` (ipv4/ipv6 ipAddress or subnet lists)."""
    if not isinstance(family, dict):
        return []
    entries = family.get(key)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def _subnets(family: object) -> list[str]:
    subnets = []
    for entry in _entries(family, "subnet"):
        address = _text(entry.get("address"))
        if address is None:
            continue
        prefix = entry.get("prefix")
        if isinstance(prefix, int) and not isinstance(prefix, bool):
            prefix = str(prefix)
        subnets.append(f"{address}/{prefix}" if _text(prefix) else address)
    return subnets


def _interface(nic: dict) -> dict[str, object]:
    ipv4 = nic.get("ipv4")
    ipv6 = nic.get("ipv6")
    return {
        "mac_address": _mac(nic.get("macAddress")),
        "ipv4_addresses": [
            {"private": _text(entry.get("privateIpAddress")), "public": _text(entry.get("publicIpAddress"))}
            for entry in _entries(ipv4, "ipAddress")
        ],
        "ipv4_subnets": _subnets(ipv4),
        "ipv6_addresses": [
            address for address in (_text(entry.get("privateIpAddress")) for entry in _entries(ipv6, "ipAddress"))
            if address is not None
        ],
        "ipv6_subnets": _subnets(ipv6),
    }


def _interfaces(network: dict) -> list[dict[str, object]]:
    nics = network.get("interface")
    if nics is None or nics == "":
        return []
    if not isinstance(nics, list):
        raise ImdsDocumentError(f"network.interface is {_describe(nics)}, not a list of network interfaces")
    interfaces = []
    for index, nic in enumerate(nics):
        if not isinstance(nic, dict):
            raise ImdsDocumentError(f"network.interface[{index}] is {_describe(nic)}, not a network interface object")
        interfaces.append(_interface(nic))
    return interfaces


def _not_an_instance_document(document: dict) -> ImdsDocumentError:
    error = document.get("error")
    if isinstance(error, str) and error:
        return ImdsDocumentError(f"IMDS answered with an error, not an instance document: {printable(error, 300)}")
    keys = [printable(str(key), 60) for key in list(document)[:5]]
    if not keys:
        return ImdsDocumentError("the document is an empty object; an instance document has compute and network")
    more = ", ..." if len(document) > 5 else ""
    return ImdsDocumentError(
        f"the document has neither compute nor network (its keys: {', '.join(keys)}{more}); "
        "a /metadata/instance/compute or /network body must be wrapped as {\"compute\": ...} or {\"network\": ...}"
    )


def _section(document: dict, name: str) -> dict:
    value = document.get(name)
    if value is None and name not in document:
        return {}
    if not isinstance(value, dict):
        raise ImdsDocumentError(f"{name} is {_describe(value)}, not an object: this is not an IMDS instance document")
    return value


def _strip_user_data(document: dict, compute: dict) -> dict:
    if "userData" not in compute:
        return document
    stripped = dict(document)
    stripped["compute"] = {key: value for key, value in compute.items() if key != "userData"}
    return stripped


def _shortcut(compute: dict[str, object], key: str) -> str | None:
    value = compute.get(key)
    return value if isinstance(value, str) else None


def _int_shortcut(compute: dict[str, object], key: str) -> int | None:
    value = compute.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def normalize(document: object, api_version: str, include_user_data: bool = False) -> dict[str, object]:
    """Return the Ansible facts (keys prefixed ``ansible_azure_``) for an IMDS document.

    ``document`` is the parsed JSON body of ``/metadata/instance``; ``api_version`` the
    version it was fetched with (reported as ``ansible_azure_api_version``);
    ``include_user_data`` keeps userData (decoded) in the facts. Raises
    ImdsDocumentError, and nothing else, when ``document`` is not an instance document.
    """
    if not isinstance(document, dict):
        raise ImdsDocumentError(
            f"the document is {_describe(document)}; an IMDS instance document is an object with compute and network"
        )
    if "compute" not in document and "network" not in document:
        raise _not_an_instance_document(document)
    compute = _section(document, "compute")
    network = _section(document, "network")
    include_user_data = bool(include_user_data)
    try:
        compute_facts = _compute_facts(compute, include_user_data)
    except RecursionError:  # only reachable with a tiny interpreter stack
        raise _too_deep() from None
    interfaces = _interfaces(network)

    tags = _tags(compute)
    os_type = _shortcut(compute_facts, "os_type")
    private_ipv4 = [a["private"] for nic in interfaces for a in nic["ipv4_addresses"] if a["private"] is not None]
    public_ipv4 = [a["public"] for nic in interfaces for a in nic["ipv4_addresses"] if a["public"] is not None]
    return {
        "ansible_azure_detected": True,
        "ansible_azure_api_version": api_version,
        "ansible_azure_metadata": document if include_user_data else _strip_user_data(document, compute),
        "ansible_azure_compute": compute_facts,
        "ansible_azure_vm_id": _shortcut(compute_facts, "vm_id"),
        "ansible_azure_name": _shortcut(compute_facts, "name"),
        "ansible_azure_location": _shortcut(compute_facts, "location"),
        "ansible_azure_vm_size": _shortcut(compute_facts, "vm_size"),
        "ansible_azure_zone": _shortcut(compute_facts, "zone"),
        "ansible_azure_resource_group": _shortcut(compute_facts, "resource_group_name"),
        "ansible_azure_subscription_id": _shortcut(compute_facts, "subscription_id"),
        "ansible_azure_os_type": _OS_TYPES.get(os_type.lower(), os_type) if os_type else None,
        "ansible_azure_platform_fault_domain": _int_shortcut(compute_facts, "platform_fault_domain"),
        "ansible_azure_platform_update_domain": _int_shortcut(compute_facts, "platform_update_domain"),
        "ansible_azure_environment": _shortcut(compute_facts, "az_environment"),
        "ansible_azure_tags": tags,
        "ansible_azure_interfaces": interfaces,
        "ansible_azure_private_ipv4_addresses": private_ipv4,
        "ansible_azure_public_ipv4_addresses": public_ipv4,
        "ansible_azure_ipv6_addresses": [address for nic in interfaces for address in nic["ipv6_addresses"]],
        "ansible_azure_mac_addresses": [nic["mac_address"] for nic in interfaces if nic["mac_address"] is not None],
        "ansible_azure_private_ipv4": private_ipv4[0] if private_ipv4 else None,
        "ansible_azure_public_ipv4": public_ipv4[0] if public_ipv4 else None,
    }
