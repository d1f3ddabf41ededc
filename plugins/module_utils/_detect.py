# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Telling, without the network, whether this host is an Azure VM.

Azure sets the DMI chassis asset tag of every VM to a fixed value. Linux exposes it in
sysfs; where that file cannot be read (containers, other systems) we cannot tell.
"""

from __future__ import annotations

import typing as t

from ansible_collections.imds.azure.plugins.module_utils._client import ROUTE_HINT, ImdsClient, ImdsError, ImdsResponse

AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
DMI_ASSET_TAG_PATH = "/sys/class/dmi/id/chassis_asset_tag"
PROBE_TIMEOUT = 1.0  # seconds the first request may take when the DMI data cannot tell
NO_ANSWER_KINDS = ("timeout", "refused", "unreachable")


class NotOnAzure(Exception):
    """The host is not an Azure VM (or its IMDS cannot be reached at the default address)."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Evidence:
    """What the DMI data says: ``azure`` is True, False, or None (could not tell)."""

    __slots__ = ("azure", "reason")

    def __init__(self, azure: bool | None, reason: str) -> None:
        self.azure = azure
        self.reason = reason


def dmi_evidence(path: str = DMI_ASSET_TAG_PATH) -> Evidence:
    """Read the chassis asset tag at ``path`` and compare it with Azure's."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(256)
    except OSError as exc:
        return Evidence(None, f"the DMI chassis asset tag could not be read from {path} ({exc.strerror or exc})")
    tag = raw.decode("ascii", "replace").strip()
    if tag == AZURE_ASSET_TAG:
        return Evidence(True, f"the DMI chassis asset tag in {path} is Azure's")
    return Evidence(False, f"the DMI chassis asset tag in {path} is {tag!r}, not Azure's {AZURE_ASSET_TAG}")


def call_detecting(client: ImdsClient, request: t.Callable[[float | None], ImdsResponse],
                   dmi_path: str = DMI_ASSET_TAG_PATH) -> tuple[ImdsResponse, str]:
    """Make one request, telling "this host is not on Azure" from a failure.

    ``request(first_timeout)`` makes the call. Returns the response and why the host was
    taken to be on Azure; raises NotOnAzure, or ImdsError for a failure. With the default
    endpoint the DMI asset tag decides first, without any network; when it cannot tell,
    the first attempt may take PROBE_TIMEOUT seconds and no answer means "not on Azure".
    An endpoint given explicitly is always asked, and its failures are failures.
    """
    if not client.is_default_endpoint:
        return request(None), f"the endpoint {client.endpoint} was given explicitly and answered"
    evidence = dmi_evidence(dmi_path)
    if evidence.azure is False:
        raise NotOnAzure(evidence.reason)
    if evidence.azure:
        return request(None), evidence.reason
    try:
        response = request(PROBE_TIMEOUT)
    except ImdsError as exc:
        if exc.kind in NO_ANSWER_KINDS:
            raise NotOnAzure(f"{evidence.reason}, and {client.endpoint} did not answer within "
                             f"{PROBE_TIMEOUT:g} s ({exc.kind})", ROUTE_HINT) from None
        raise
    return response, f"{evidence.reason}, and IMDS at {client.endpoint} answered"
