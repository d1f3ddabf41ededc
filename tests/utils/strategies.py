"""Hypothesis strategies for IMDS-shaped documents.

``instance_documents()`` draws an api-version, then a document of that version built
from the FIELDS table in ``plugins/module_utils/_versions.py``: a random subset of the
fields the version knows, at their place in the tree, with values that are mostly of
the kind IMDS sends (strings for everything, numbers as digit strings) and sometimes
not (a list where an object belongs, an object where a string belongs, numbers,
booleans, null). Strings are drawn to hurt: empty, unicode, huge, numeric-looking,
"true"/"false" in odd cases, tag strings full of ``:`` and ``;``. Network interfaces
come with and without ipv4/ipv6, with odd entries in their address lists.

``json_values()`` draws any JSON value, for "whatever comes in" properties.

The strategies only ever produce what ``json.loads`` can produce (no NaN, no
infinities, no tuples, string keys), so every document could have come off the wire.
"""
from __future__ import annotations

import base64
from typing import Any, Literal

from functools import lru_cache

from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.module_utils._versions import FIELDS, KNOWN_VERSIONS

HUGE = 20_000  # characters of a "huge" string; IMDS documents are a few kilobytes

# -- scalars ---------------------------------------------------------------------------

NUMERIC_LOOKING = st.one_of(
    st.sampled_from([
        "0", "1", "-1", "+5", "007", "42", "1e3", "1.5", "0x1f", " 3", "3 ", "NaN", "Infinity", "-0",
        "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() says yes, IMDS never sends it
        "１２",  # fullwidth digits
    ]),
    st.integers(4301, 6000).map(lambda n: "9" * n),  # more digits than int() accepts from a string
)
BOOL_LOOKING = st.sampled_from(["true", "false", "True", "FALSE", "tRuE", "yes", "no", "1", "0", ""])
MAC_LOOKING = st.sampled_from([
    "000D3AF806EC", "00-0D-3A-F8-06-EC", "00:0d:3a:f8:06:ec", "000d.3af8.06ec", "000D3AF806E", "ZZZZZZZZZZZZ",
    "00:0D:3A:F8:06:EC:00", "",
])
IP_LOOKING = st.sampled_from(["10.0.0.4", "52.166.222.251", "fd00::4", "::", "10.0.0.256", "not an address", ""])


_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


@lru_cache(maxsize=None)
def unicode_text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Any unicode text, surrogates excluded (json.loads never produces lone ones from UTF-8)."""
    return st.text(st.characters(exclude_categories=_SURROGATES), max_size=max_size)


@lru_cache(maxsize=None)
def strings() -> st.SearchStrategy[str]:
    """Strings as they hurt a normalizer: empty, unicode, huge, numeric- and boolean-looking."""
    return st.one_of(
        st.just(""),
        unicode_text(),
        NUMERIC_LOOKING,
        BOOL_LOOKING,
        MAC_LOOKING,
        IP_LOOKING,
        st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\u200b", ";", ":"]), st.integers(1, HUGE)),
    )


@lru_cache(maxsize=None)
def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(), st.integers(-(10 ** 30), 10 ** 30),
                     st.floats(allow_nan=False, allow_infinity=False))


@lru_cache(maxsize=None)
def scalars() -> st.SearchStrategy[Any]:
    """Any JSON scalar."""
    return st.one_of(st.none(), st.booleans(), numbers(), strings())


@lru_cache(maxsize=None)
def json_values(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars, lists and objects nested a few levels."""
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(unicode_text(8), st.sampled_from(_NAMES)), inner, max_size=5),
    ), max_leaves=max_leaves)


@lru_cache(maxsize=None)
def wrong_values() -> st.SearchStrategy[Any]:
    """A value of the wrong JSON type for wherever it lands: containers, numbers, flags, null."""
    return st.one_of(st.none(), st.booleans(), numbers(), st.lists(scalars(), max_size=3),
                     st.dictionaries(unicode_text(6), scalars(), max_size=3), strings())


# -- the FIELDS tree --------------------------------------------------------------------

class _Spec:
    """One field of the tree: its kind, its api-version, its children (by IMDS name)."""

    __slots__ = ("kind", "since", "children")

    def __init__(self, kind: str, since: str | None) -> None:
        self.kind = kind
        self.since = since
        self.children: dict[str, _Spec] = {}


def _tree() -> _Spec:
    root = _Spec("object", None)
    for field in FIELDS:
        node = root
        *parents, last = field.path.split(".")
        for segment in parents:
            node = node.children[segment.rstrip("[]")]
        node.children[last] = _Spec(field.kind, field.since)
    return root


_ROOT = _tree()
_NAMES = sorted({segment.rstrip("[]") for field in FIELDS for segment in field.path.split(".")})


def _known_at(spec: _Spec, version: str) -> dict[str, _Spec]:
    return {name: child for name, child in spec.children.items() if child.since is None or child.since <= version}


@lru_cache(maxsize=None)
def tag_strings() -> st.SearchStrategy[str]:
    """``compute.tags``: "name:value" pairs joined by ";", with colons and semicolons everywhere."""
    part = st.one_of(unicode_text(8), st.sampled_from(["", ":", "a:b", "https://example.com:8443/x", ";", " "]))
    pair = st.one_of(st.builds(lambda n, v: f"{n}:{v}", part, part), part)
    return st.one_of(st.lists(pair, max_size=6).map(";".join), strings())


@lru_cache(maxsize=None)
def tags_lists() -> st.SearchStrategy[Any]:
    """``compute.tagsList``: name/value objects, some broken."""
    entry = st.one_of(
        st.fixed_dictionaries({"name": st.one_of(strings(), tag_strings()), "value": st.one_of(strings(), tag_strings())}),
        st.fixed_dictionaries({}, optional={"name": json_values(3), "value": json_values(3), "extra": scalars()}),
        wrong_values(),
    )
    return st.lists(entry, max_size=6)


@lru_cache(maxsize=None)
def user_data() -> st.SearchStrategy[Any]:
    """``compute.userData``: base64 of text, of bytes that are not UTF-8, or not base64 at all."""
    return st.one_of(
        unicode_text(200).map(lambda text: base64.b64encode(text.encode("utf-8")).decode("ascii")),
        st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode("ascii")),
        strings(),
    )


def _value(name: str, spec: _Spec, version: str, draw, depth: int) -> Any:
    """A value for one field: usually of its kind, sometimes of another."""
    if draw(st.integers(0, 9)) == 0:
        return draw(wrong_values())
    if name == "tags":
        return draw(tag_strings())
    if name == "tagsList":
        return draw(tags_lists())
    if name == "userData":
        return draw(user_data())
    if name == "interface":
        return draw(interface_lists(version))
    if name == "macAddress":
        return draw(st.one_of(MAC_LOOKING, strings()))
    if name in ("privateIpAddress", "publicIpAddress", "address"):
        return draw(st.one_of(IP_LOOKING, strings()))
    kind = spec.kind
    if kind == "object":
        return _object(spec, version, draw, depth + 1)
    if kind == "list":
        return [_object(spec, version, draw, depth + 1) for dummy in range(draw(st.integers(0, 3)))]
    if kind == "int":
        return draw(st.one_of(st.integers(0, 100).map(str), NUMERIC_LOOKING, st.integers(-5, 2 ** 70), strings()))
    if kind == "bool":
        return draw(st.one_of(BOOL_LOOKING, st.booleans(), strings()))
    return draw(strings())


def _object(spec: _Spec, version: str, draw, depth: int) -> dict[str, Any]:
    """A random subset of the children this version knows (now and then all of them), plus now
    and then an unknown field."""
    known = _known_at(spec, version)
    if known and draw(st.integers(0, 3)) == 0:
        names = sorted(known)
    else:
        names = draw(st.lists(st.sampled_from(sorted(known)), unique=True, max_size=len(known))) if known else []
    result = {name: _value(name, known[name], version, draw, depth) for name in names}
    if draw(st.integers(0, 4)) == 0:  # a field Microsoft added after this collection was written
        result[draw(st.one_of(unicode_text(10), st.sampled_from(_NAMES)))] = draw(json_values(6))
    return result


@st.composite
def interfaces(draw, version: str = KNOWN_VERSIONS[-1]) -> dict[str, Any]:
    """One network interface: ipv4 and ipv6 present, absent, empty, or of the wrong type."""
    nic = _object(_ROOT.children["network"].children["interface"], version, draw, 3)
    for family in ("ipv4", "ipv6"):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            nic.pop(family, None)  # a NIC with no ipv4 (or ipv6) at all
        elif choice == 1:
            nic[family] = draw(st.sampled_from([None, "", {}, [], {"ipAddress": []}, {"ipAddress": None}]))
    return nic


@lru_cache(maxsize=None)
def interface_lists(version: str) -> st.SearchStrategy[list]:
    return st.lists(interfaces(version), max_size=4)


@st.composite
def instance_documents(draw, versions: tuple[str, ...] = KNOWN_VERSIONS) -> tuple[str, dict[str, Any]]:
    """(api-version, document): a /metadata/instance document as that version could send it.

    compute and network are objects and network.interface a list of objects, so that the
    document is one normalize() must accept; everything below them may be odd.
    """
    version = draw(st.sampled_from(versions))
    document: dict[str, Any] = {}
    halves = draw(st.sampled_from([("compute", "network"), ("compute",), ("network",)]))
    if "compute" in halves:
        document["compute"] = _object(_ROOT.children["compute"], version, draw, 1)
    if "network" in halves:
        document["network"] = {"interface": draw(interface_lists(version))}
        if draw(st.booleans()):
            document["network"].update(draw(st.dictionaries(unicode_text(8), json_values(4), max_size=2)))
    if draw(st.integers(0, 4)) == 0:
        document[draw(unicode_text(8).filter(lambda k: k not in ("compute", "network")))] = draw(json_values(4))
    return version, document


@st.composite
def broken_documents(draw) -> tuple[str, Any]:
    """(api-version, value) where the top of the document is wrong: not an object, compute a
    string, interface an object, an interface a list... normalize() must refuse those."""
    version = draw(st.sampled_from(KNOWN_VERSIONS))
    kind = draw(st.sampled_from(["not_object", "compute", "network", "interface", "nic", "neither"]))
    if kind == "not_object":
        return version, draw(st.one_of(scalars(), st.lists(json_values(5), max_size=3)))
    if kind == "neither":
        return version, draw(st.dictionaries(unicode_text(8).filter(lambda k: k not in ("compute", "network")),
                                             json_values(4), max_size=4))
    wrong_top = st.one_of(scalars(), st.lists(json_values(4), min_size=0, max_size=3))
    if kind == "compute":
        return version, {"compute": draw(wrong_top), "network": {"interface": []}}
    if kind == "network":
        return version, {"compute": {}, "network": draw(wrong_top)}
    if kind == "interface":
        value = draw(st.one_of(st.dictionaries(unicode_text(5), scalars(), max_size=3),
                               scalars().filter(lambda v: v is not None and v != "")))
        return version, {"network": {"interface": value}}
    nics = draw(interface_lists(version))[:2]
    nics.insert(draw(st.integers(0, len(nics))), draw(st.one_of(scalars(), st.lists(scalars(), max_size=2))))
    return version, {"network": {"interface": nics}}
