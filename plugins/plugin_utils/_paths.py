# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IMDS paths: read them as Microsoft writes them, walk a document, render ``format=text``.

Pure functions, no I/O. The lookup uses them to answer a path from a document it
already holds (the host's gathered facts, or the one instance document fetched live)
exactly as IMDS would answer a request for that path.

Paths
    ``compute/vmId``, ``network/interface/0/ipv4/ipAddress/0/publicIpAddress``, with or
    without a leading ``instance/``, ``/metadata/instance/`` or ``metadata/instance/``;
    ``instance`` alone is the whole document. Keys are case-sensitive, as in IMDS. An
    index into a list is a decimal number without sign or leading zero. A trailing
    ``/`` is accepted (IMDS accepts it). ``loadbalancer`` is the whole load balancer
    document and ``loadbalancer/<keys and indexes>`` walks it from its root the same way
    (``loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress``). The other
    categories are named by their own paths (``attested/document``, ``versions``,
    ``identity/oauth2/token``); they are answered whole, so nothing may follow them.
    Every category may be written with ``/metadata/`` before it.

``format=text``
    A leaf is its value. An object is its keys, a list its indexes, one per line in
    document order, with ``/`` after every child that is itself an object or a list;
    no newline after the last line. IMDS answers ``compute/`` and ``network/`` for the
    root. An empty object or list is the empty string.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._text import printable, shown

INSTANCE = "instance"
ATTESTED = "attested/document"
LOADBALANCER = "loadbalancer"
VERSIONS = "versions"
TOKEN = "identity/oauth2/token"
# Categories that are never part of gathered facts: read live only, and answered whole.
LIVE_ONLY = (ATTESTED, VERSIONS, TOKEN)
# Categories whose documents the lookup walks, from the host's facts or fetched live.
WALKED = (INSTANCE, LOADBALANCER)

_INDEX = re.compile(r"(?:0|[1-9][0-9]*)\Z")
MAX_TERM_LENGTH = 2048
MAX_KEYS_SHOWN = 12


class PathError(ValueError):
    """A term that is not an IMDS path. The message says what is wrong with it."""


class PathNotFound(LookupError):
    """The path does not lead anywhere in this document.

    ``found`` is the part of the path that exists (a tuple of segments), ``reason`` a
    sentence about the first segment that does not.
    """

    def __init__(self, found: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.found = found
        self.reason = reason


class ImdsPath(t.NamedTuple):
    """One parsed term: the category and, for ``instance`` and ``loadbalancer``, the keys and indexes below it."""

    category: str
    segments: tuple[str, ...]
    term: str

    @property
    def display(self) -> str:
        """The path as a user reads it: ``compute/vmId``, ``instance`` for the root."""
        if self.category != INSTANCE:
            return "/".join((self.category, *self.segments))
        return "/".join(self.segments) if self.segments else INSTANCE

    @property
    def url_path(self) -> str:
        """The path of the IMDS request that answers this term (the load balancer document whole)."""
        if self.category != INSTANCE:
            return f"/metadata/{self.category}"
        return "/metadata/instance" + "".join(f"/{segment}" for segment in self.segments)

    @property
    def is_instance(self) -> bool:
        return self.category == INSTANCE


def parse_path(term: t.Any) -> ImdsPath:
    """Read one lookup term. Raise PathError with a sentence for the user when it is no path."""
    if not isinstance(term, str):
        what = f"The term {shown(term, 200)}" if not isinstance(term, (list, dict)) else f"A term ({shown(term)})"
        raise PathError(f"{what} is a {type(term).__name__}, not an IMDS path; "
                        "write paths as strings such as 'compute/vmId'.")
    text = term.strip()
    if not text or text == "/":
        raise PathError("An empty term is not an IMDS path; write 'instance' for the whole instance "
                        "document or a path such as 'compute/vmId'.")
    if len(text) > MAX_TERM_LENGTH:
        raise PathError(f"The term starting {text[:40]!r} is {len(text)} characters long; "
                        "no IMDS path is that long.")
    if "?" in text or "#" in text or "&" in text:
        raise PathError(f"The term {shown(text, 200)} has a query string; give only the path and set the "
                        "lookup's options (format, nonce, resource...) instead of URL parameters.")
    if any(ch.isspace() for ch in text):
        raise PathError(f"The term {shown(text, 200)} contains white space; IMDS paths have none.")
    rest = text[1:] if text.startswith("/") else text
    prefixed = False
    if rest == "metadata" or rest.startswith("metadata/"):
        rest = rest[len("metadata/"):]
        prefixed = True
    if rest.endswith("/"):
        rest = rest[:-1]
    for category in LIVE_ONLY:
        if rest == category:
            return ImdsPath(category, (), term)
        if rest.startswith(category + "/"):
            raise PathError(f"The term {shown(text, 200)} goes below {category}, which IMDS answers only as a "
                            f"whole; write {category!r} and pick the field from the result.")
    category = INSTANCE
    if rest in WALKED:
        return ImdsPath(rest, (), term)
    if rest.startswith(INSTANCE + "/"):
        rest = rest[len(INSTANCE) + 1:]
    elif rest.startswith(LOADBALANCER + "/"):
        category, rest = LOADBALANCER, rest[len(LOADBALANCER) + 1:]
    elif prefixed:
        raise PathError(f"The term {shown(text, 200)} names no IMDS category this lookup reads; it reads "
                        f"/metadata/instance and /metadata/loadbalancer paths and {', '.join(LIVE_ONLY)}.")
    segments = tuple(rest.split("/"))
    if "" in segments:
        raise PathError(f"The term {shown(text, 200)} has an empty segment ('//'); IMDS paths are keys and "
                        "list indexes separated by single slashes, such as 'network/interface/0/macAddress'.")
    return ImdsPath(category, segments, term)


def walk(document: t.Any, segments: t.Sequence[str]) -> t.Any:
    """Return the node at ``segments`` below ``document``, or raise PathNotFound.

    Objects are entered by key (case-sensitive), lists by index, as IMDS does. The
    walk is a loop over the path (never a recursion into the document), and the
    reason of PathNotFound shows keys and values only through ``printable()``.
    """
    node = document
    for depth, segment in enumerate(segments):
        here = tuple(segments[:depth])
        where = printable("/".join(here), 200) if here else "the document root"
        if isinstance(node, dict):
            if segment in node:
                node = node[segment]
                continue
            near = [key for key in node if isinstance(key, str) and key.lower() == segment.lower()]
            hint = f"; keys are case-sensitive, did you mean {shown(near[0])}?" if near else ""
            raise PathNotFound(here, f"{where} has no key {shown(segment)}{hint} ({_keys(node)})")
        if isinstance(node, list):
            if not _INDEX.match(segment):
                raise PathNotFound(here, f"{where} is a list, and {shown(segment)} is not a list index "
                                         "(0, 1, 2...)")
            if len(segment) > 18 or int(segment) >= len(node):
                raise PathNotFound(here, f"{where} is a list of {len(node)} "
                                         f"element{'' if len(node) == 1 else 's'}, so it has no index "
                                         f"{printable(segment, 40)}")
            node = node[int(segment)]
            continue
        value = node if isinstance(node, str) else text_of(node)
        raise PathNotFound(here, f"{where} is a value ({shown(value)}), it has nothing below it")
    return node


def _keys(node: dict) -> str:
    if not node:
        return "it is empty"
    names = sorted(printable(str(key), 60) for key in node)
    shown_keys = ", ".join(names[:MAX_KEYS_SHOWN])
    more = f" and {len(names) - MAX_KEYS_SHOWN} more" if len(names) > MAX_KEYS_SHOWN else ""
    return f"its keys: {shown_keys}{more}"


def text_of(node: t.Any) -> str:
    """Render a node as IMDS renders it with ``format=text``."""
    if isinstance(node, dict):
        return "\n".join(_entry(key, value) for key, value in node.items())
    if isinstance(node, list):
        return "\n".join(_entry(index, value) for index, value in enumerate(node))
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _entry(name: t.Any, value: t.Any) -> str:
    return f"{name}/" if isinstance(value, (dict, list)) else str(name)
