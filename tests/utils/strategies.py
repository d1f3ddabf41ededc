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


# -- hostile input, by category -----------------------------------------------------------
# What a broken or hostile server (or host) sends: text that forges terminal output, digits of
# other scripts, nesting no parser should recurse into, NaN, values of no JSON type. Each
# parser's property: any of it gives a result or the parser's own one-line error, in bounded time.

TERMINAL_FORGERIES = ("\x1b[2J", "\x1b]0;title\x07", "\x1b[31m", "\r\n", "\n", "\r", "\u2028", "\u2029", "\u202e",
                      "\x00", "\x7f", "\u200b", "\ufeff", "\x9b")
FOREIGN_DIGITS = ("²", "١٢", "１２", "٣", "߂", "໑", "𝟘")


@lru_cache(maxsize=None)
def hostile_text(max_size: int = 30) -> st.SearchStrategy[str]:
    """Text with terminal escapes, line breaks of every kind, bidi overrides, NUL, foreign digits; now and then huge."""
    piece = st.one_of(st.sampled_from(TERMINAL_FORGERIES), st.sampled_from(FOREIGN_DIGITS), unicode_text(8),
                      st.sampled_from(["ok: [localhost]", "FAILED!", "=>", "{", "}", "[", "]", ":", ";", "'", '"']))
    short = st.lists(piece, max_size=max_size // 4 + 1).map("".join)
    return st.one_of(short, st.builds(lambda text, n: text * n, short.filter(bool), st.integers(1000, HUGE)))


def nested(levels: int, leaf: Any = "leaf", kind: str = "list") -> Any:
    """A value ``levels`` containers deep, built without recursion."""
    for dummy in range(levels):
        leaf = [leaf] if kind == "list" else {"k": leaf}
    return leaf


@lru_cache(maxsize=None)
def deep_values() -> st.SearchStrategy[Any]:
    """Values nested from just under 64 to thousands of levels: json.loads gives up to ~900 before RecursionError."""
    return st.builds(nested, st.one_of(st.integers(60, 70), st.integers(200, 1000), st.integers(3000, 5000)),
                     scalars(), st.sampled_from(["list", "dict"]))


@lru_cache(maxsize=None)
def not_json() -> st.SearchStrategy[Any]:
    """What a caller may pass although no JSON parser returns it."""
    return st.one_of(st.sampled_from([float("nan"), float("inf"), float("-inf")]),
                     st.tuples(scalars()), st.binary(max_size=8), st.frozensets(st.integers(), max_size=2),
                     st.just(object()))  # (a 5000-digit int breaks hypothesis's own reports: see the unit tests)


@lru_cache(maxsize=None)
def hostile_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any value a hostile input can hold: JSON, hostile text, foreign digits, deep nesting, NaN, no JSON at all."""
    leaf = st.one_of(scalars(), hostile_text(), st.sampled_from(FOREIGN_DIGITS), not_json())
    shallow = st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(hostile_text(8), st.sampled_from(_NAMES)), inner, max_size=4),
    ), max_leaves=max_leaves)
    return st.one_of(shallow, deep_values())


# -- scheduled events ---------------------------------------------------------------------

RFC1123_LOOKING = st.one_of(
    st.builds(lambda d, m, y, h, z: f"Mon, {d:02d} {m} {y:04d} {h:02d}:26:58 {z}", st.integers(0, 99),
              st.sampled_from(["Jan", "Apr", "Foo", "Dec"]), st.integers(0, 99999), st.integers(0, 99),
              st.sampled_from(["GMT", "+0000", "-0100", "+9999", "+99999999999999999999", "UT", "XYZ"])),
    st.sampled_from(["Mon, 99 Foo", "", " ", "Fri, 31 Dec 9999 23:59:59 -0100", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2022-04-11T22:26:58Z", "Mon, 11 Apr 2022 22:26:58 GMT"]),
)


@st.composite
def events_documents(draw) -> Any:
    """A scheduled-events document, from well-formed to hostile: every field may be of any kind."""
    def field(normal: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(normal, normal, normal, hostile_values(4)))

    events = []
    for index in range(draw(st.integers(0, 6))):
        event = {
            "EventId": field(st.one_of(st.uuids().map(str), hostile_text(), st.just(f"E-{index}"))),
            "EventType": field(st.sampled_from(["Freeze", "Reboot", "Redeploy", "Preempt", "Terminate", "Hibernate"])),
            "ResourceType": field(st.just("VirtualMachine")),
            "Resources": field(st.lists(st.one_of(st.sampled_from(["vm1", "VM1", "vm2"]), hostile_text()),
                                        max_size=4)),
            "EventStatus": field(st.sampled_from(["Scheduled", "Started"])),
            "NotBefore": field(RFC1123_LOOKING),
            "Description": field(hostile_text()),
            "EventSource": field(st.sampled_from(["Platform", "User"])),
            "DurationInSeconds": field(st.one_of(st.integers(-5, 10 ** 10), NUMERIC_LOOKING,
                                                 st.sampled_from(FOREIGN_DIGITS))),
        }
        keep = draw(st.lists(st.sampled_from(sorted(event)), unique=True, min_size=0, max_size=len(event)))
        events.append({key: event[key] for key in event if key in keep or key == "EventId"})
    document: Any = {"DocumentIncarnation": field(st.one_of(st.integers(0, 10 ** 6), NUMERIC_LOOKING,
                                                            st.sampled_from(FOREIGN_DIGITS))),
                     "Events": draw(st.one_of(st.just(events), st.just(events), hostile_values(4)))}
    if draw(st.integers(0, 9)) == 0:
        document = draw(hostile_values(6))
    return document


# -- routing tables -----------------------------------------------------------------------

ROUTE_PRINT_LINES = (
    "=" * 75, "Interface List", "  6...00 0d 3a 1b 2c 3d ......Microsoft Hyper-V Network Adapter", "",
    "IPv4 Route Table", "Active Routes:", "Network Destination        Netmask          Gateway       Interface  Metric",
    "          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266",
    "      169.254.0.0      255.255.0.0         On-link     169.254.1.156    271",
    "  169.254.169.254  255.255.255.255         On-link         10.0.1.10     11",
    "        127.0.0.0        255.0.0.0         On-link         127.0.0.1    331",
    "         10.0.1.0  255.255.255.192   Auf Verbindung         10.0.1.10    266",
    "Persistent Routes:", "  Network Address          Netmask  Gateway Address  Metric",
    "  169.254.169.254  255.255.255.255        10.0.1.10       1", "          0.0.0.0          0.0.0.0  10.0.1.1  Default",
    "  None", "IPv6 Route Table", "  1    331 ::1/128                  On-link",
    "  999.0.0.0  255.0.0.0  On-link  10.0.1.10  1", "  0.0.0.0  0.0.0.0  10.0.1.1  10.0.1.10  ٢٦٦",
    "  10.0.0.0  255.0.255.0  On-link  10.0.1.10  1", "The requested operation requires elevation.",
)


@st.composite
def route_print_texts(draw) -> Any:
    """``route print`` output: real lines in any order, garbled lines, cut anywhere; now and then bytes or no text."""
    lines = draw(st.lists(st.one_of(st.sampled_from(ROUTE_PRINT_LINES), st.sampled_from(ROUTE_PRINT_LINES),
                                    hostile_text(20)), max_size=30))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    text = text[:draw(st.integers(0, len(text)))] if draw(st.booleans()) else text
    choice = draw(st.integers(0, 19))
    if choice == 0:
        return text.encode("utf-8") + draw(st.binary(max_size=4))
    if choice == 1:
        return draw(hostile_values(4))
    return text


IP_ROUTE_KEYS = ("dst", "dev", "gateway", "prefsrc", "protocol", "scope", "metric", "type", "flags", "nexthops", "via")
IP_ROUTE_VALUES = st.sampled_from(["default", "10.0.1.0/26", "169.254.0.0/16", "169.254.169.254", "eth0", "clus0",
                                   "10.0.1.1", "10.0.1.10", "kernel", "static", "blackhole", "local", "unicast",
                                   "fe80::/64", "fe80::1", "10.0.0.0/33", "eth 0", "inet6"])


@st.composite
def ip_route_outputs(draw) -> Any:
    """``ip -j route`` output: entries with real and hostile fields, as data, JSON text, cut text or bytes."""
    value = st.one_of(IP_ROUTE_VALUES, IP_ROUTE_VALUES, st.integers(-1, 2 ** 33), hostile_values(3),
                      st.lists(st.dictionaries(st.sampled_from(["dev", "gateway", "weight", "family", "host"]),
                                               st.one_of(IP_ROUTE_VALUES, hostile_values(2)), max_size=3), max_size=3))
    entries = draw(st.lists(st.dictionaries(st.sampled_from(IP_ROUTE_KEYS), value, max_size=6), max_size=6))
    return _as_output(draw, entries)


@st.composite
def ip_addr_outputs(draw) -> Any:
    """``ip -j addr`` output, in the same forms."""
    info = st.dictionaries(st.sampled_from(["family", "local", "prefixlen", "scope"]),
                           st.one_of(st.sampled_from(["inet", "inet6", "10.0.1.10", "169.254.1.156", "fe80::1"]),
                                     st.integers(-1, 40), hostile_values(2)), max_size=4)
    link = st.dictionaries(st.sampled_from(["ifname", "addr_info", "flags"]),
                           st.one_of(st.sampled_from(["eth0", "clus0", "lo"]), st.lists(info, max_size=3),
                                     hostile_values(2)), max_size=3)
    return _as_output(draw, draw(st.lists(link, max_size=4)))


def _as_output(draw, entries: list) -> Any:
    import json

    form = draw(st.integers(0, 9))
    if form == 0:
        return draw(hostile_values(4))
    try:
        text = json.dumps(entries)
    except (TypeError, ValueError, RecursionError):
        return entries
    if form in (1, 2):
        return text
    if form == 3:
        return text[:draw(st.integers(0, len(text)))]
    if form == 4:
        return text.encode("utf-8") + draw(st.binary(max_size=3))
    return entries


# -- host variables, as an inventory may give them --------------------------------------------

CONNECTIONS = ("local", "ssh", "paramiko", "paramiko_ssh", "smart", "winrm", "psrp", "ansible.builtin.ssh",
               "ansible.legacy.local", "community.docker.docker", "containers.podman.podman", "kubernetes.core.kubectl",
               "ansible.netcommon.network_cli", "", "sshx")
ADDRESSES = ("localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0.0.0.0", "::ffff:127.0.0.1", "192.0.2.10",
             "vm1", "localhost.localdomain", "LOCALHOST", "")
SSH_ARGUMENTS = ("-o ProxyJump=bastion", "-J bastion", "-oProxyCommand=nc %h %p", "-o ProxyJump=none", "-p 2222",
                 "-p 22", "-F cfg", "-W h:22", "-C -o ControlMaster=auto", "-o HostName=x", "-o 'Port 22'",
                 "-o Port=2222", "-vJb", "'", "-o", "-p", "-J")


@st.composite
def host_variables(draw) -> dict[str, Any]:
    """A host's connection variables: real, odd and hostile values for every name the plugins read."""
    names = {
        "ansible_connection": st.sampled_from(CONNECTIONS),
        "ansible_host": st.sampled_from(ADDRESSES), "ansible_ssh_host": st.sampled_from(ADDRESSES),
        "ansible_paramiko_host": st.sampled_from(ADDRESSES), "ansible_winrm_host": st.sampled_from(ADDRESSES),
        "ansible_port": st.one_of(st.sampled_from([22, "22", 2222, "2222", 0, -1, "x"]), st.integers()),
        "ansible_ssh_port": st.sampled_from([22, 2200]), "ansible_paramiko_port": st.sampled_from([22, 2022]),
        "ansible_ssh_args": st.sampled_from(SSH_ARGUMENTS), "ansible_ssh_common_args": st.sampled_from(SSH_ARGUMENTS),
        "ansible_ssh_extra_args": st.sampled_from(SSH_ARGUMENTS),
        "ansible_paramiko_proxy_command": st.sampled_from(["", "ssh -W %h:%p bastion"]),
        "ansible_user": st.sampled_from(["root", "deploy"]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(names)), unique=True, max_size=6))
    result = {}
    for name in chosen:
        result[name] = draw(st.one_of(names[name], names[name], names[name], hostile_values(2)))
    return result
