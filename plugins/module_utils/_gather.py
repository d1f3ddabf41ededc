# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One gather of Azure facts: the instance document, the load balancer metadata, the facts.

The one place that does it, whatever carries the requests: the ``metadata_facts``
module on a POSIX host, its action plugin for a Windows host (each attempt through
``win_uri``), and the local fact that the ``imds.azure.local_facts`` role installs.
"""

from __future__ import annotations

import fnmatch
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._detect import NotOnAzure, request_on_azure
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._normalize import (
    LB_FAILED, LB_NOT_FOUND, NOT_REQUESTED, ImdsDocumentError, LoadBalancer, facts_warnings, load_balancer,
    merge_load_balancer, normalize)
from ansible_collections.imds.azure.plugins.module_utils._options import MAX_TIMEOUT, OptionError, seconds
from ansible_collections.imds.azure.plugins.module_utils._versions import LOAD_BALANCER_SINCE

LOAD_BALANCER_PATH = "/metadata/loadbalancer"
# The facts the load balancer metadata feeds: with a filter that keeps none of them it is not asked for.
LOAD_BALANCER_FACTS = (
    "ansible_azure_interfaces", "ansible_azure_public_ipv4_addresses", "ansible_azure_public_ipv4",
    "ansible_azure_public_ipv4_source", "ansible_azure_public_ip_addresses", "ansible_azure_load_balancer",
    "ansible_azure_load_balancer_metadata", "ansible_azure_load_balancer_status",
)
# The longest fact name is under 50 characters; fnmatch's translation is quadratic in unclosed
# brackets, so a pattern far longer than any name can only cost time.
MAX_PATTERN = 200
UNKNOWN_PUBLIC_IPS = "so public IP addresses that IMDS reports only there (Standard SKU) are unknown"


def check_filter(patterns: t.Any) -> list[str]:
    """The filter option as a list of patterns; OptionError for a pattern no fact name could need."""
    for pattern in patterns or []:
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
            raise OptionError(f"filter: a pattern of {len(str(pattern))} characters is longer than any fact name; "
                              f"give patterns of at most {MAX_PATTERN} characters, such as azure_*ip*.")
    return list(patterns or [])


def filter_facts(facts: dict[str, t.Any], patterns: list[str]) -> dict[str, t.Any]:
    """Keep the facts whose name, with or without the ansible_ prefix, matches a pattern."""
    patterns = check_filter(patterns)
    if patterns == ["*"] or not patterns:
        return facts
    return {name: value for name, value in facts.items()
            if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name[len("ansible_"):], p) for p in patterns)}


def gather(params: dict[str, t.Any], client: ImdsClient, evidence: t.Any = "dmi") -> tuple[dict[str, t.Any], list[str]]:
    """The facts for this host, and warnings. Raises OptionError, NotOnAzure, ImdsError or ImdsDocumentError.

    ``evidence``: what the host says about being an Azure VM (``"dmi"``: read ``dmi_path``
    here, on the host; the action plugin passes what it knows of a Windows host).
    """
    probe = seconds(params["probe_timeout"], "probe_timeout", above_minimum=True, maximum=MAX_TIMEOUT)
    started = client.clock()
    detected = request_on_azure(client, lambda first: client.instance(first_timeout=first), probe_timeout=probe,
                                evidence=evidence, dmi_path=params["dmi_path"])
    warnings = list(detected.response.warnings)  # each names the URL
    facts = normalize(detected.response.data, detected.response.api_version,
                      include_user_data=params["include_user_data"])
    if params.get("load_balancer", True) and filter_facts(dict.fromkeys(LOAD_BALANCER_FACTS),
                                                          params.get("filter") or ["*"]):
        # the second request shares the first one's deadline: the gather's bound stays that of one call
        lb = read_load_balancer(client, detected.response.api_version, started + client.retry_timeout, warnings)
        facts = merge_load_balancer(facts, lb)
    facts["ansible_azure_detection_reason"] = detected.reason
    return facts, warnings + facts_warnings(facts)


def read_load_balancer(client: ImdsClient, api_version: str | None, until: float, warnings: list[str]) -> LoadBalancer:
    """Ask IMDS for /metadata/loadbalancer; what it says, never an exception. Warnings go to ``warnings``.

    Asked at the api-version the instance document came with (IMDS serves the category from
    2020-10-01), through the same client: same rate limit, same transport. ``until`` (on
    the client's clock) is the gather's deadline: no retry starts after it and no attempt
    ends later than ``timeout`` after it, so the gather keeps the bound of one call. IMDS's
    ordinary "no load balancer metadata is found" (404) is an answer, not a problem: no warning.
    """
    if not api_version or api_version < LOAD_BALANCER_SINCE:
        warnings.append(f"Load balancer metadata not read: api-version {api_version} predates {LOAD_BALANCER_PATH} "
                        f"({LOAD_BALANCER_SINCE}), {UNKNOWN_PUBLIC_IPS}. Use an api_version of {LOAD_BALANCER_SINCE} "
                        "or newer where IMDS serves one, or set load_balancer=false.")
        return NOT_REQUESTED
    if client.clock() >= until + client.timeout:
        warnings.append(f"Load balancer metadata not read: the instance document took all of the gather's time "
                        f"(retry_timeout + timeout, {client.retry_timeout + client.timeout:g} s), {UNKNOWN_PUBLIC_IPS}.")
        return LoadBalancer(LB_FAILED)
    try:
        response = client.get(LOAD_BALANCER_PATH, until=until)
    except ImdsError as exc:
        from ansible_collections.imds.azure.plugins.module_utils._messages import no_load_balancer

        if no_load_balancer(exc.status, exc.text):
            return LoadBalancer(LB_NOT_FOUND)
        warnings.append(f"Load balancer metadata not read, {UNKNOWN_PUBLIC_IPS}: {exc}")
        return LoadBalancer(LB_FAILED)
    warnings.extend(response.warnings)
    try:
        return load_balancer(response.data)
    except ImdsDocumentError as exc:
        warnings.append(f"Load balancer metadata not read: IMDS at {response.url} (api-version {response.api_version}) "
                        f"answered with a document that is not a load balancer document, {UNKNOWN_PUBLIC_IPS}: {exc}")
        return LoadBalancer(LB_FAILED)


def run(params: dict[str, t.Any], transport: t.Any, evidence: t.Any = "dmi", limiter: t.Any = None) -> dict[str, t.Any]:
    """The module's result for ``params``: facts, or ``failed`` and ``msg``; with ``warnings``.

    ``transport`` carries each HTTP attempt (http.client on the host; win_uri, through the
    action plugin, for a Windows host), ``evidence`` and ``limiter`` as the host allows.
    """
    client = None
    try:
        client = ImdsClient(transport, endpoint=params["endpoint"], api_version=params["api_version"],
                            timeout=params["timeout"], retry_timeout=params["retry_timeout"], limiter=limiter)
        check_filter(params["filter"])  # before any request
        facts, warnings = gather(params, client, evidence)
    except OptionError as exc:
        return {"failed": True, "msg": str(exc)}
    except NotOnAzure as exc:
        if params["require_azure"]:
            return {"failed": True, "msg": f"This host does not look like an Azure VM: {exc.reason}. {exc.hint}".strip()}
        facts, warnings = {"ansible_azure_detected": False, "ansible_azure_api_version": None,
                           "ansible_azure_detection_reason": exc.reason}, []
    except ImdsError as exc:
        return {"failed": True, "msg": str(exc), **exc.to_result()}
    except ImdsDocumentError as exc:  # the client answered, so it exists
        endpoint, version = getattr(client, "endpoint", None), getattr(client, "api_version", None)
        return {"failed": True, "api_version": version,
                "msg": f"IMDS at {endpoint} (api-version {version}) answered with a document that is not an "
                       f"instance document: {exc}"}
    return {"changed": False, "ansible_facts": filter_facts(facts, params["filter"]), "warnings": warnings}
