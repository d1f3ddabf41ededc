# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the user reads when a call to IMDS fails: one line that says what happened and what to do.

Imported only when something fails, so that a call that succeeds compiles none of it.
Every piece of server text goes through ``printable()``: a status line, an error body or
a header can never forge lines or colours on the user's terminal.
"""

from __future__ import annotations

import typing as t

from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._text import printable

# Microsoft's words when a VM has no load balancer metadata (IMDS answers 404 with them):
# "No load balancer metadata is found. Please check if your VM is using any non-basic SKU
# load balancer and retry later." The troubleshooting page words the rest differently.
NO_LOAD_BALANCER = "no load balancer metadata is found"

ROUTE_HINT = (
    "If this host is an Azure VM whose 169.254.0.0/16 route belongs to another interface "
    "(a Windows failover cluster node, a container bridge, a VPN), apply the "
    "imds.azure.route role so that 169.254.169.254 is reached through the primary NIC."
)


def no_load_balancer(status: int | None, text: str | None) -> bool:
    """Whether an answer is IMDS's ordinary "this VM has no load balancer metadata" (a 404)."""
    return status == 404 and isinstance(text, str) and NO_LOAD_BALANCER in text.lower()


def attempts_text(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def failure(client: t.Any, what: str, cause: t.Any, url: str, version: str | None, attempts: int,
            **details: t.Any) -> ImdsError:
    """The ImdsError for a failed call; ``what`` is transport, body, status or gave_up."""
    if what == "transport":
        return _transport(client, cause, url, version, attempts)
    if what == "body":
        return _body(cause, url, version)
    return _status(client, cause.status, url, version, attempts, gave_up=what == "gave_up", **details)


def _transport(client: t.Any, exc: t.Any, url: str, version: str | None, attempts: int) -> ImdsError:
    tries = f" after {attempts_text(attempts)}" if attempts > 1 else ""
    message = f"Could not get {url} (api-version {version}): {printable(str(exc))}{tries}."
    # once IMDS has answered this client, the route to it is not the problem
    if exc.kind in ("timeout", "unreachable") and client.is_default_endpoint and not getattr(client, "answered", False):
        message += " " + ROUTE_HINT
    elif exc.kind == "refused":
        message += " Nothing listens at that address: check the endpoint."
    elif exc.kind == "too_large":
        message += " IMDS documents are a few kilobytes; something other than IMDS answered."
    elif exc.kind == "truncated":
        message += " Something between this host and IMDS cut the answer short; try again later."
    elif exc.kind == "protocol":
        message += " Something other than IMDS answered."
    elif exc.kind == "rate_limit":
        message += " Raise retry_timeout, or find what else calls IMDS on this host."
    return ImdsError(message, url=url, api_version=version, kind=exc.kind)


def _body_problem(code: str, detail: str) -> str:
    if code == "encoded":
        return (f"answered with a {detail}-encoded body (Content-Encoding: {detail}); IMDS never compresses its "
                "answers and this collection does not ask it to, so something between this host and IMDS changed "
                "the answer")
    if code == "not_utf8":
        return (f"answered with a body that is not UTF-8 ({detail}). Something other than IMDS answered, or the "
                "response was damaged on the way")
    if code == "too_deep":
        return (f"answered with JSON nested more than {detail} levels deep; IMDS documents are a few levels deep, "
                "so something other than IMDS answered")
    return (f"answered with JSON holding {detail}, which standard JSON (and IMDS) never sends; something other "
            "than IMDS answered")


def _body(exc: t.Any, url: str, version: str | None) -> ImdsError:
    where = f"IMDS at {url} (api-version {version})"
    if exc.code == "not_json":
        reason, _bar, start = exc.detail.partition("|")
        message = (f"{where} answered with a body that is not JSON ({printable(reason, 120)}); it starts with "
                   f"{printable(start, 60)!r}. A captive portal or proxy may have answered instead of IMDS.")
    else:
        message = f"{where} {_body_problem(exc.code, printable(exc.detail, 40))}."
    return ImdsError(message, url=url, status=200, api_version=version, kind="body")


def _status(client: t.Any, status: int, url: str, version: str | None, attempts: int, *, gave_up: bool,
            text: str | None = None, offered: list[str] | None = None, retry_after: float | None = None) -> ImdsError:
    detail = f": {printable(text)}" if text else ""
    message = f"IMDS answered {status} for {url} (api-version {version}){detail}."
    if gave_up:
        spent = f"in {client.retry_timeout:g} s"
        if retry_after is not None:  # we did not wait: IMDS asked for longer than was left
            message += (f" It asked to retry after {retry_after:g} s (Retry-After), more than is left of "
                        f"retry_timeout ({client.retry_timeout:g} s).")
            spent = "without waiting"
        if status == 410:
            message += (f" IMDS is going through updates and is usually available again within 70 seconds; gave "
                        f"up after {attempts_text(attempts)} {spent}. Raise retry_timeout to at least 70 s.")
        elif status == 429:
            message += (f" IMDS is throttling this VM (5 requests per second); gave up after "
                        f"{attempts_text(attempts)} {spent}. Something else on the VM may be calling IMDS in a loop.")
        elif status == 404:
            message += (f" IMDS says its identity endpoint is updating; gave up after {attempts_text(attempts)} "
                        f"{spent}. Try again later or raise retry_timeout.")
        else:
            message += f" Gave up after {attempts_text(attempts)} {spent}; IMDS may be degraded, try again later."
    elif status == 400 and (offered or (text and "api-version" in text)):
        shown = ", ".join(printable(v, 40) for v in (offered or [])[:10])
        if client.pinned:
            message += (f" The pinned api_version {version} is not served here"
                        + (f" (IMDS offers {shown})" if shown else "")
                        + "; pin one of those or leave api_version unset to negotiate.")
        else:
            message += " No api-version known to this collection is served here."
    elif status == 400:
        message += " The request was refused as malformed."
    elif no_load_balancer(status, text):
        message += (" IMDS keeps load balancer metadata only for VMs behind a Standard SKU load balancer or with a "
                    "Standard SKU public IP address.")
    elif status == 404 and "/metadata/loadbalancer" in url:
        message += (" Microsoft documents this while IMDS enables or provisions its load balancer metadata; try "
                    "again later.")
    elif status == 404:
        message += " That path does not exist in IMDS (paths are case-sensitive)."
    elif status == 405:
        message += " IMDS does not allow that method on this path."
    elif 300 <= status < 400:
        message += (" IMDS never redirects; something between this host and IMDS did, and the redirect was "
                    "not followed.")
    elif status in (401, 403):
        message += (" The request was refused. IMDS itself can answer this (Azure Arc's IMDS asks for a challenge "
                    "it answers with 401), as can a firewall, proxy or security agent on the way.")
    elif 100 <= status < 200:
        message += " IMDS never answers with an interim status alone; something other than IMDS answered."
    return ImdsError(message, url=url, status=status, api_version=version, text=text)
