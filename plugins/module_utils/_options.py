# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The options every IMDS plugin takes, and the one place that checks their values.

Modules, action plugins and the lookup all read ``endpoint``, ``api_version``,
``timeout`` and ``retry_timeout``; each value is checked here before anything is sent,
so that ``timeout: nan``, ``api_version: ""`` or an endpoint with a path or a password
is a one-line message that says what to write instead, never a traceback or a request
to a URL the user did not mean.
"""

from __future__ import annotations

import math
import typing as t
from urllib.parse import urlsplit

from ansible_collections.imds.azure.plugins.module_utils._text import printable
from ansible_collections.imds.azure.plugins.module_utils._versions import VERSION_RE

DEFAULT_ENDPOINT = "http://169.254.169.254"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY_TIMEOUT = 70.0  # Microsoft: IMDS may answer 410 while it updates, for up to 70 s
DEFAULT_PROBE_TIMEOUT = 1.0
MAX_TIMEOUT = 3600.0  # one request
MAX_WAIT = 7 * 86400.0  # a retry budget or a wait

_IMDS_HOST = "169.254.169.254"


class OptionError(ValueError):
    """An option value that cannot be used; the message names the option and what to write."""


def imds_argument_spec() -> dict[str, dict[str, t.Any]]:
    """The options every module that talks to IMDS takes (documented in doc_fragments/imds.py)."""
    return dict(
        endpoint=dict(type="str", default=DEFAULT_ENDPOINT),
        api_version=dict(type="str"),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        retry_timeout=dict(type="float", default=DEFAULT_RETRY_TIMEOUT),
    )


def seconds(value: t.Any, name: str, *, minimum: float = 0.0, above_minimum: bool = False,
            maximum: float = MAX_WAIT) -> float:
    """``value`` as a number of seconds within bounds, or OptionError.

    ``above_minimum`` makes ``minimum`` itself invalid (a timeout of 0 is no timeout).
    NaN, infinities and values that are no number are refused.
    """
    if isinstance(value, bool):
        raise OptionError(f"{name} must be a number of seconds, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"{name} must be a number of seconds, not {printable(value, 40)!r}.") from None
    if not math.isfinite(number):
        raise OptionError(f"{name} must be a finite number of seconds, not {printable(value, 40)}.")
    low = "greater than" if above_minimum else "at least"
    if number < minimum or (above_minimum and number == minimum) or number > maximum:
        raise OptionError(f"{name} must be {low} {minimum:g} and at most {maximum:g} seconds, not {number:g}.")
    return number


def endpoint(value: t.Any) -> str:
    """The endpoint as ``http://host[:port]`` without a trailing slash, or OptionError.

    IMDS is plain HTTP at a host and port: a path, query, fragment or user name would be
    silently dropped or sent somewhere unexpected, and a password would be echoed in
    messages, so each is refused. The message never repeats a password.
    """
    if not isinstance(value, str) or not value.strip():
        raise OptionError(f"endpoint must be a URL such as {DEFAULT_ENDPOINT} or http://127.0.0.1:8169, "
                          f"not {printable(value, 60)!r}.")
    text = value.strip()
    if not text.isascii():
        # Python would resolve it through IDNA (full-width digits, ideographic full stops...):
        # a spelling of an address that no check here could tell from the real IMDS address
        raise OptionError(f"endpoint {_shown(text)!r} is not plain ASCII; write the host as an address or an ASCII "
                          "(punycode) name: http://HOST or http://HOST:PORT.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise OptionError(f"endpoint {_shown(text)!r} is not a valid URL ({exc}); write http://HOST or "
                          "http://HOST:PORT.") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise OptionError(f"endpoint {_shown(text)!r} is not an http:// URL with a host; IMDS is plain HTTP: "
                          f"use the default {DEFAULT_ENDPOINT} or the http:// URL of an IMDS emulator.")
    if parts.username is not None or parts.password is not None:
        raise OptionError(f"endpoint {_shown(text)!r} carries a user name or password; IMDS takes none: "
                          "write http://HOST or http://HOST:PORT.")
    if parts.path not in ("", "/") or "?" in text or "#" in text:
        raise OptionError(f"endpoint {_shown(text)!r} has a path, query or fragment; give only the base URL "
                          "(http://HOST or http://HOST:PORT): the collection adds /metadata/... itself.")
    if port == 0 or parts.netloc.endswith(":") or any(c.isspace() or not c.isprintable() for c in text):
        raise OptionError(f"endpoint {_shown(text)!r} is not a valid URL; write http://HOST or http://HOST:PORT.")
    if len(parts.hostname) > 253:
        raise OptionError(f"endpoint {_shown(text)!r} has a host name longer than 253 characters, which no name "
                          "service resolves; write http://HOST or http://HOST:PORT.")
    return f"http://{parts.netloc.lower()}"


def is_default_endpoint(value: str) -> bool:
    """Whether ``value`` (as ``endpoint()`` returns it) is the real IMDS address on port 80.

    Every spelling of the address counts: ``169.254.169.254``, the legacy numeric forms
    the C library still resolves (``2852039166``, ``0251.0376.0251.0376``) and the
    IPv4-mapped IPv6 form (``[::ffff:169.254.169.254]``).
    """
    parts = urlsplit(value)
    if parts.port not in (None, 80) or not parts.hostname:
        return False
    return _ipv4(parts.hostname) == _IMDS_HOST


def _ipv4(host: str) -> str | None:
    """The dotted IPv4 address that ``host`` spells, if it spells one."""
    import ipaddress
    import socket

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
            return None
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else None
    return str(address)


def api_version(value: t.Any) -> str | None:
    """None (negotiate) or a date as ``YYYY-MM-DD``; anything else is an OptionError."""
    if value is None:
        return None
    if not isinstance(value, str) or not VERSION_RE.match(value.strip()):
        raise OptionError(f"api_version must be a date such as 2021-02-01, or unset to use the newest version "
                          f"IMDS serves, not {printable(value, 40)!r}.")
    return value.strip()


def _shown(text: str) -> str:
    """The endpoint for a message: any password replaced, invisible characters escaped."""
    scheme, sep, rest = text.partition("://")
    netloc, slash, tail = rest.partition("/")
    if sep and "@" in netloc:
        credentials, _at, host = netloc.rpartition("@")
        netloc = f"{credentials.partition(':')[0]}:***@{host}"
    return printable(f"{scheme}{sep}{netloc}{slash}{tail}", 120)
