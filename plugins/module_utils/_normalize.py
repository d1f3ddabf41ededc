# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Turn an IMDS instance document into Ansible facts: ``normalize()``.

A pure function: no I/O, no global state, the same facts for the same document. The
facts are described in ``docs/facts.schema.json`` (keyed as plays read them, ``azure_*``)
and in ``docs/docsite/rst/facts.rst``, which ``scripts/facts-docs`` generates from it.

What is accepted
    A JSON object with ``compute`` and/or ``network`` (a ``/metadata/instance``
    document). A ``/compute`` or ``/network`` subtree must be wrapped by the caller
    (``{"compute": body}``); the facts of the missing half are empty or None.

What is rejected (ImdsDocumentError, one sentence saying what is wrong)
    Anything that is not an object; an object with neither ``compute`` nor
    ``network`` (e.g. an IMDS error body, whose ``error`` text the message quotes);
    ``compute`` or ``network`` that is not an object; ``network.interface`` that is
    not a list; an interface that is not an object; nesting deeper than 64 levels
    anywhere in the document (under ``compute``, ``network`` or any other key: the
    document is passed on whole as ``ansible_azure_metadata``, and Ansible cannot show
    or cache a value nested hundreds of levels); NaN or Infinity anywhere (no JSON has
    them), and values of no JSON type. These say the document is not an instance
    document at all. No other exception ever leaves ``normalize()``.

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
    ``tagsList`` entries, plus every ``name:value`` of the ``tags`` string split at
    the first ``:`` (a segment without ``:`` is a tag with an empty value; empty
    segments are skipped; a name given twice keeps the last value). Where both forms
    name a tag, ``tagsList`` wins, since the string cannot carry ``;`` in a value. A
    tagsList name or value that is a number, a boolean, an object or a list becomes
    its JSON text (the name ``7`` is the tag ``"7"``). An entry that names no tag (not
    an object, or a name that is missing, null or empty) cannot be a tag: it is left
    out, and ``facts_warnings()`` says so.

Fields the api-version does not have (``ansible_azure_missing_by_api_version``)
    The fields of ``FIELDS`` that arrived after the api-version the document was
    fetched with and that the document lacks, in IMDS spelling (``compute.zone``,
    ``compute.storageProfile.dataDisks[].diskCapacityBytes``), outermost only: when
    ``compute.storageProfile`` is missing, its children are not listed. Their facts
    are null or missing because of the version, not because the VM lacks them.
    ``facts_warnings()`` turns the list into a warning for the module to show.

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

The load balancer document (``load_balancer()``)
    ``/metadata/loadbalancer`` answers ``{"loadbalancer": {"publicIpAddresses": [...],
    "inboundRules": [...], "outboundRules": [...]}}``. ``load_balancer()`` refuses
    anything without a ``loadbalancer`` object (ImdsDocumentError) and types the rest by
    ``FIELDS``: keys snake_cased, ports ``int`` (from numbers or decimal strings),
    protocols and addresses as IMDS writes them, ``""`` -> None; each of the three lists
    is a list of objects holding every known key (None when missing); unknown fields are
    kept. ``normalize(..., load_balancer=...)`` puts it into ``ansible_azure_load_balancer``
    (the raw body into ``ansible_azure_load_balancer_metadata``) and merges
    ``publicIpAddresses`` into the public address facts: an interface IPv4 address
    without a public address in the instance document takes the one the load balancer
    document gives its private address (``public_source``: ``instance`` or
    ``load_balancer``). Only addresses that can be public count: IMDS documents
    publicIpAddresses as "the instance level public or private IP", and a private,
    link-local or otherwise non-public address there is not a public IP.

Sharing
    ``ansible_azure_metadata`` is the document itself (shallow copies only where
    userData is removed); callers must not mutate the document afterwards.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple, cast

from ansible_collections.imds.azure.plugins.module_utils._text import printable, whole_number
from ansible_collections.imds.azure.plugins.module_utils._versions import FIELDS, Field, field_expected, field_since

MAX_DEPTH = 64
MAX_FIELDS_WARNED = 8  # fields named in the api-version warning; the fact lists them all
MAX_INT_BITS = 13_000  # about 3900 digits: json.dumps() refuses ints of more than 4300

_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_MAC_SEPARATORS = re.compile(r"[:.\-]")
_MAC_HEX = re.compile(r"[0-9a-fA-F]{12}\Z")
_OS_TYPES = {"linux": "Linux", "windows": "Windows"}

# What a gather knows of /metadata/loadbalancer (ansible_azure_load_balancer_status).
LB_FOUND = "found"
LB_NOT_FOUND = "not_found"
LB_NOT_REQUESTED = "not_requested"
LB_FAILED = "failed"
LB_STATUSES = (LB_FOUND, LB_NOT_FOUND, LB_NOT_REQUESTED, LB_FAILED)
# Where a public address came from (public_source, ansible_azure_public_ipv4_source).
SOURCE_INSTANCE = "instance"
SOURCE_LOAD_BALANCER = "load_balancer"


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


def _tree(fields: tuple[Field, ...], top: str) -> _Node:
    """The fields below ``top`` (``compute``, ``loadbalancer``) as a tree of _Nodes."""
    root = _Node("object")
    for field in fields:
        if not field.path.startswith(top + "."):
            continue
        *parents, last = field.path.split(".")[1:]
        node = root
        for segment in parents:
            if segment.endswith("[]"):
                # the field table lists a list before its items, so this node is a list's
                node = cast(_Node, node.children[_KNOWN_SNAKE[segment[:-2]]].item)
            else:
                node = node.children[_KNOWN_SNAKE[segment]]
        node.children[_KNOWN_SNAKE[last]] = _Node(field.kind)
    return root


_COMPUTE = _tree(FIELDS, "compute")
_LOAD_BALANCER = _tree(FIELDS, "loadbalancer")


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


def _too_deep(what: str = "compute", document: str = "instance") -> ImdsDocumentError:
    return ImdsDocumentError(f"{what} is nested more than {MAX_DEPTH} levels deep; an IMDS {document} document is not")


def _where(path: tuple[object, ...]) -> str:
    """``compute.storageProfile.dataDisks[0]`` for a message, printable."""
    text = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path).lstrip(".")
    return printable(text or "the document", 120)


def check_tree(document: object, kind: str = "instance") -> None:
    """Refuse what no IMDS document holds, anywhere in it; raise ImdsDocumentError (one line).

    Containers nested more than MAX_DEPTH levels below the root, NaN and infinities,
    numbers too long to write as JSON again, and values of no JSON type. The walk is iterative, so that a document nested
    thousands of levels costs no recursion, and linear in the size of the document.
    """
    stack: list[tuple[object, tuple[object, ...]]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise _too_deep(printable(str(path[0]), 60), kind)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, (dict, list)):
                stack.append((value, path + (key,)))
            elif isinstance(value, float) and not math.isfinite(value):
                raise ImdsDocumentError(f"{_where(path + (key,))} is {value}, which is not JSON (JSON has no NaN "
                                        f"or Infinity): this is not an IMDS {kind} document")
            elif value is not None and not isinstance(value, (str, int, float)):
                raise ImdsDocumentError(f"{_where(path + (key,))} is a {printable(type(value).__name__, 40)}, "
                                        f"which is no JSON value: this is not an IMDS {kind} document")
            elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
                raise ImdsDocumentError(f"{_where(path + (key,))} is a number of more than 4000 digits, which "
                                        f"Python's JSON cannot write back: this is not an IMDS {kind} document")


def _object(mapping: dict, children: dict[str, _Node] | None) -> dict[str, object]:
    """Snake-case the keys of ``mapping`` and convert its values (known ones by kind)."""
    result: dict[str, object] = {}
    origin: dict[str, str] = {}
    for key, value in mapping.items():
        key = key if isinstance(key, str) else str(key)
        name = _snake(key)
        node = children.get(name) if children else None
        converted = _known(value, node) if node else _unknown(value)
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


def _unknown(value: object) -> object:
    """Convert a field we do not know: keys snake_cased, "" -> None, nothing else."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        return _object(value, None)
    if isinstance(value, list):
        return [_unknown(item) for item in value]
    return value


def _known(value: object, node: _Node) -> object:
    """Convert a field we know, by its kind."""
    kind = node.kind
    if kind == "raw":
        return value if value is None or isinstance(value, str) else _json_text(value)
    if value is None or isinstance(value, str) and not value:
        return None
    if kind == "object":
        return _object(value, node.children) if isinstance(value, dict) else None
    if kind == "list":
        item_node = node.item
        if not isinstance(value, list) or item_node is None:
            return None
        return [_known(item, item_node) for item in value]
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
    if isinstance(value, (int, float)):
        number = whole_number(value)
        return number if number is not None else _json_text(value)
    if isinstance(value, str):
        number = whole_number(value, max_digits=4000)  # int() refuses more than 4300 digits
        return number if number is not None else value
    return _json_text(value)


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
        facts = _object(compute, _COMPUTE.children)
    else:
        facts = _object({k: v for k, v in compute.items() if k != "userData"}, _COMPUTE.children)
    if include_user_data and "userData" in compute:
        facts["user_data"] = _user_data(compute["userData"])
    return facts


def _tag_name(entry: object) -> str | None:
    """The tag a tagsList entry names: its name, or the JSON text of a name that is no string."""
    if not isinstance(entry, dict):
        return None
    name = entry.get("name")
    if name is None or name == "":
        return None
    return name if isinstance(name, str) else _json_text(name)


def _tags(compute: dict) -> dict[str, str]:
    """Merge tagsList and the tags string; tagsList wins where both name a tag."""
    tags: dict[str, str] = {}
    tags_list = compute.get("tagsList")
    if isinstance(tags_list, list):
        for entry in tags_list:
            name = _tag_name(entry)
            if name is not None:
                value = entry.get("value")
                tags[name] = "" if value is None else value if isinstance(value, str) else _json_text(value)
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


def _ipv4_address(private: str | None, public: str | None) -> dict[str, str | None]:
    return {"private": private, "public": public, "public_source": SOURCE_INSTANCE if public is not None else None}


def _interface(nic: dict) -> dict[str, Any]:
    ipv4 = nic.get("ipv4")
    ipv6 = nic.get("ipv6")
    return {
        "mac_address": _mac(nic.get("macAddress")),
        "ipv4_addresses": [
            _ipv4_address(_text(entry.get("privateIpAddress")), _text(entry.get("publicIpAddress")))
            for entry in _entries(ipv4, "ipAddress")
        ],
        "ipv4_subnets": _subnets(ipv4),
        "ipv6_addresses": [
            address for address in (_text(entry.get("privateIpAddress")) for entry in _entries(ipv6, "ipAddress"))
            if address is not None
        ],
        "ipv6_subnets": _subnets(ipv6),
    }


def _interfaces(network: dict) -> list[dict[str, Any]]:
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


class LoadBalancer(NamedTuple):
    """What a gather knows of ``/metadata/loadbalancer``.

    ``status`` is one of LB_FOUND (``document`` is the body IMDS returned and ``facts``
    its typed form), LB_NOT_FOUND (IMDS answered that the VM has no load balancer
    metadata), LB_NOT_REQUESTED (not asked) and LB_FAILED (asked, no usable answer).
    """

    status: str
    document: dict | None = None
    facts: dict | None = None


NOT_REQUESTED = LoadBalancer(LB_NOT_REQUESTED)


def load_balancer(document: object) -> LoadBalancer:
    """Read the body of ``/metadata/loadbalancer``: a LoadBalancer with status LB_FOUND.

    Raises ImdsDocumentError, and nothing else, when ``document`` is not a load balancer
    document (an object whose ``loadbalancer`` is an object). Below that, odd values
    are tolerated as in the instance document: lists that are not lists are empty,
    entries that are not objects are left out, a known field of the wrong kind is None.
    """
    if not isinstance(document, dict):
        raise ImdsDocumentError(f"the document is {_describe(document)}; an IMDS load balancer document is an object "
                                "with a loadbalancer object")
    inner = document.get("loadbalancer")
    if not isinstance(inner, dict):
        error = document.get("error")
        if isinstance(error, str) and error:
            raise ImdsDocumentError(f"IMDS answered with an error, not a load balancer document: {printable(error, 300)}")
        if "loadbalancer" in document:
            raise ImdsDocumentError(f"loadbalancer is {_describe(inner)}, not an object: this is not an IMDS load "
                                    "balancer document")
        keys = [printable(str(key), 60) for key in list(document)[:5]]
        more = ", ..." if len(document) > 5 else ""
        raise ImdsDocumentError(f"the document has no loadbalancer object (its keys: {', '.join(keys) or 'none'}{more}); "
                                "this is not an IMDS load balancer document")
    check_tree(document, "load balancer")
    facts = _object(inner, _LOAD_BALANCER.children)
    for name, node in _LOAD_BALANCER.children.items():  # the three lists, always lists of whole entries
        entries = facts.get(name)
        known = node.item.children if node.item is not None else {}
        facts[name] = [{**dict.fromkeys(known), **entry} for entry in entries if isinstance(entry, dict)] \
            if isinstance(entries, list) else []
    return LoadBalancer(LB_FOUND, document, facts)


_NOT_PUBLIC = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
               "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8")
_NOT_PUBLIC_NETWORKS: list = []  # _NOT_PUBLIC parsed, at the first use (ipaddress is imported then)


def _public_family(text: object) -> str | None:
    """``ipv4`` or ``ipv6`` when ``text`` is an IP address that can be reached from the internet.

    None for text that is no IP address and for addresses that never are public: private
    (RFC 1918, unique local), shared (100.64.0.0/10), link-local, loopback, multicast,
    reserved. IMDS calls publicIpAddresses "the instance level public or private IP".
    """
    if not isinstance(text, str) or not text:
        return None
    import ipaddress

    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if not _NOT_PUBLIC_NETWORKS:
        _NOT_PUBLIC_NETWORKS.extend(map(ipaddress.ip_network, _NOT_PUBLIC))
    if any(address.version == network.version and address in network for network in _NOT_PUBLIC_NETWORKS):
        return None
    return f"ipv{address.version}"


def _address_key(text: object) -> str | None:
    """The address in one spelling (``fd00:0::4`` and ``fd00::4`` match), or the text as it is."""
    if not isinstance(text, str) or not text:
        return None
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _merge_public(interfaces: list[dict[str, Any]], load_balancer: dict | None) -> list[dict[str, Any]]:
    """Give interface addresses without a public one the load balancer's; return every public address.

    Each address of the load balancer's publicIpAddresses that is public goes to every
    interface IPv4 address with its private address, unless IMDS's instance document
    already gave that one a public address. The result lists each interface's public
    addresses in document order, then the load balancer's that no interface address
    took (another private address, a second address for the same one, IPv6).
    """
    reported = []
    for entry in (load_balancer or {}).get("public_ip_addresses") or []:
        family = _public_family(entry.get("frontend_ip_address"))
        if family is not None:
            private = entry.get("private_ip_address")
            reported.append({"address": entry["frontend_ip_address"],
                             "private": private if isinstance(private, str) else None,
                             "source": SOURCE_LOAD_BALANCER, "family": family})
    by_private: dict[str, str] = {}
    for item in reported:
        key = _address_key(item["private"])
        if item["family"] == "ipv4" and key is not None:
            by_private.setdefault(key, item["address"])
    every: list[dict[str, Any]] = []
    for nic in interfaces:
        for address in nic["ipv4_addresses"]:
            if address["public"] is None and by_private:
                found = by_private.get(_address_key(address["private"]))  # type: ignore[arg-type]
                if found is not None:
                    address.update(public=found, public_source=SOURCE_LOAD_BALANCER)
            if address["public"] is not None:
                every.append({"address": address["public"], "private": address["private"],
                              "source": address["public_source"], "family": "ipv4"})
    listed = {item["address"] for item in every}
    for item in reported:
        if item["address"] not in listed:
            every.append(item)
            listed.add(item["address"])
    return every


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


def normalize(document: object, api_version: str, include_user_data: bool = False,
              load_balancer: LoadBalancer = NOT_REQUESTED) -> dict[str, object]:
    """Return the Ansible facts (keys prefixed ``ansible_azure_``) for an IMDS document.

    ``document`` is the parsed JSON body of ``/metadata/instance``; ``api_version`` the
    version it was fetched with (reported as ``ansible_azure_api_version``);
    ``include_user_data`` keeps userData (decoded) in the facts; ``load_balancer`` what
    the gather learnt from ``/metadata/loadbalancer`` (see ``load_balancer()``), merged
    as ``merge_load_balancer()`` does. Raises ImdsDocumentError, and nothing else, when
    ``document`` is not an instance document.
    """
    if not isinstance(document, dict):
        raise ImdsDocumentError(
            f"the document is {_describe(document)}; an IMDS instance document is an object with compute and network"
        )
    if "compute" not in document and "network" not in document:
        raise _not_an_instance_document(document)
    check_tree(document)
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
    facts = {
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
        "ansible_azure_ipv6_addresses": [address for nic in interfaces for address in nic["ipv6_addresses"]],
        "ansible_azure_mac_addresses": [nic["mac_address"] for nic in interfaces if nic["mac_address"] is not None],
        "ansible_azure_private_ipv4": private_ipv4[0] if private_ipv4 else None,
        "ansible_azure_missing_by_api_version": missing_by_api_version(document, api_version, include_user_data),
    }
    return merge_load_balancer(facts, load_balancer)


def merge_load_balancer(facts: dict[str, Any], load_balancer: LoadBalancer) -> dict[str, Any]:
    """Return ``facts`` (from ``normalize()``) with the public address and load balancer facts
    for what the gather learnt of ``/metadata/loadbalancer``: a new dict; ``facts`` is not changed.

    The public address facts are made from the interfaces' instance-document addresses
    (``public_source`` ``instance``) and, when ``load_balancer`` was found, its
    publicIpAddresses (see ``_merge_public()``), so that merging twice gives the same facts.
    """
    found = load_balancer.status == LB_FOUND and isinstance(load_balancer.facts, dict)
    lb_facts = load_balancer.facts if found else None
    interfaces = [
        {**nic, "ipv4_addresses": [_ipv4_address(a["private"], a["public"] if a["public_source"] == SOURCE_INSTANCE
                                                 else None)
                                   for a in nic["ipv4_addresses"]]}
        for nic in facts.get("ansible_azure_interfaces") or []
    ]
    public = _merge_public(interfaces, lb_facts)
    public_ipv4 = [item for item in public if item["family"] == "ipv4"]
    return {
        **facts,
        "ansible_azure_interfaces": interfaces,
        "ansible_azure_public_ipv4_addresses": [item["address"] for item in public_ipv4],
        "ansible_azure_public_ipv4": public_ipv4[0]["address"] if public_ipv4 else None,
        "ansible_azure_public_ipv4_source": public_ipv4[0]["source"] if public_ipv4 else None,
        "ansible_azure_public_ip_addresses": public,
        "ansible_azure_load_balancer": lb_facts,
        "ansible_azure_load_balancer_metadata": load_balancer.document if found else None,
        "ansible_azure_load_balancer_status": load_balancer.status if found or load_balancer.status != LB_FOUND
        else LB_FAILED,
    }


def _containers(document: object, path: str) -> list[dict]:
    """The objects at ``path`` (IMDS spelling, ``[]`` for each list element) in ``document``."""
    found: list[object] = [document]
    for segment in path.split("."):
        name, each = (segment[:-2], True) if segment.endswith("[]") else (segment, False)
        values = [node.get(name) for node in found if isinstance(node, dict)]
        if each:
            found = [item for value in values if isinstance(value, list) for item in value]
        else:
            found = values
    return [node for node in found if isinstance(node, dict)]


def missing_by_api_version(document: object, api_version: object, include_user_data: bool = False) -> list[str]:
    """The FIELDS newer than ``api_version`` that ``document`` lacks, outermost only, in FIELDS order.

    A field is listed when its parent is in the document (for a list, some element)
    and lacks it, and ``field_expected()`` says the version predates the field. Fields
    without a documented version, and userData unless it was asked for, are never listed.
    """
    missing = []
    for field in FIELDS:
        if field_expected(field.path, api_version) is not False:  # type: ignore[arg-type]
            continue
        if field.path == "compute.userData" and not include_user_data:
            continue
        parent, _dot, name = field.path.rpartition(".")
        name = name[:-2] if name.endswith("[]") else name
        if any(name not in node for node in _containers(document, parent)):
            missing.append(field.path)
    return missing


def facts_warnings(facts: dict[str, object]) -> list[str]:
    """Warnings a module shows with ``facts`` (as ``normalize()`` returns them): one line each.

    - fields missing because of the api-version (``ansible_azure_missing_by_api_version``);
    - ``tagsList`` entries that name no tag and so are not in ``ansible_azure_tags``.
    """
    warnings = []
    missing = facts.get("ansible_azure_missing_by_api_version")
    if isinstance(missing, list) and missing:
        named = ", ".join(f"{path} (since {field_since(path)})" for path in missing[:MAX_FIELDS_WARNED])
        more = f" and {len(missing) - MAX_FIELDS_WARNED} more" if len(missing) > MAX_FIELDS_WARNED else ""
        warnings.append(
            f"IMDS answered with api-version {printable(facts.get('ansible_azure_api_version'), 40)}, which predates "
            f"{named}{more}: their facts are missing or null because of the api-version, not because the VM lacks "
            "them (ansible_facts['azure_missing_by_api_version'] lists them all). Where IMDS serves a newer "
            "api-version, set api_version to it.")
    metadata = facts.get("ansible_azure_metadata")
    compute = metadata.get("compute") if isinstance(metadata, dict) else None
    tags_list = compute.get("tagsList") if isinstance(compute, dict) else None
    if isinstance(tags_list, list):
        skipped = [index for index, entry in enumerate(tags_list) if _tag_name(entry) is None]
        if skipped:
            shown = ", ".join(str(index) for index in skipped[:MAX_FIELDS_WARNED])
            more = f" and {len(skipped) - MAX_FIELDS_WARNED} more" if len(skipped) > MAX_FIELDS_WARNED else ""
            warnings.append(
                f"compute.tagsList entr{'y' if len(skipped) == 1 else 'ies'} {shown}{more} "
                f"name{'s' if len(skipped) == 1 else ''} no tag (not an object, or a name that is missing, null "
                "or empty), so ansible_facts['azure_tags'] leaves "
                f"{'it' if len(skipped) == 1 else 'them'} out; ansible_facts['azure_metadata'] has the raw list.")
    return warnings
