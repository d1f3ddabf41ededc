# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place that decides whether to ask IMDS at all: is this host an Azure VM?

An endpoint given explicitly (an emulator, a proxy the user runs) is always asked, and its
failures are failures. With the default endpoint the host's own evidence decides first,
without any network: Azure sets the DMI chassis asset tag of every VM to a fixed value,
which Linux shows in sysfs. Where that cannot tell (containers, Windows hosts seen from
the controller, other systems), the first request may take ``probe_timeout`` seconds and
no answer means "not an Azure VM". Where the evidence says Azure, no answer is a failure
that names the route role, never a quiet "not on Azure".
"""

from __future__ import annotations

import os
import stat
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError

AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
DMI_ASSET_TAG_PATH = "/sys/class/dmi/id/chassis_asset_tag"
NO_ANSWER_KINDS = ("timeout", "refused", "unreachable")


class NotOnAzure(Exception):
    """The host is not an Azure VM (or its IMDS does not answer at the default address)."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Evidence(t.NamedTuple):
    """What the host itself says: ``azure`` is True, False, or None (it cannot tell)."""

    azure: bool | None
    reason: str


class Detected(t.NamedTuple):
    """A response from IMDS and why the host was taken to be an Azure VM."""

    response: t.Any
    reason: str


def dmi_evidence(path: str = DMI_ASSET_TAG_PATH) -> Evidence:
    """Read the chassis asset tag at ``path`` (a regular file, 256 bytes at most) and compare it with Azure's.

    Anything but a readable regular file (missing, a FIFO, a device) cannot tell; it is
    opened without blocking, so a FIFO never hangs the module.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return Evidence(None, f"the DMI chassis asset tag could not be read from {path} ({exc.strerror or exc})")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return Evidence(None, f"the DMI chassis asset tag could not be read from {path} (not a regular file)")
        raw = os.read(fd, 256)
    except OSError as exc:
        return Evidence(None, f"the DMI chassis asset tag could not be read from {path} ({exc.strerror or exc})")
    finally:
        os.close(fd)
    tag = raw.decode("ascii", "replace").strip()
    if tag == AZURE_ASSET_TAG:
        return Evidence(True, f"the DMI chassis asset tag in {path} is Azure's")
    from ansible_collections.imds.azure.plugins.module_utils._text import printable

    return Evidence(False, f"the DMI chassis asset tag in {path} is {printable(tag, 64)!r}, not Azure's {AZURE_ASSET_TAG}")


def host_evidence(client: t.Any, dmi_path: str = DMI_ASSET_TAG_PATH) -> Evidence | None:
    """None when the endpoint was given explicitly (always ask it); else what the DMI data says."""
    if not client.is_default_endpoint:
        return None
    return dmi_evidence(dmi_path)


def request_on_azure(client: t.Any, request: t.Callable[[float | None], t.Any], *, probe_timeout: float,
                     evidence: Evidence | None | str = "dmi", dmi_path: str = DMI_ASSET_TAG_PATH) -> Detected:
    """Make ``request(first_timeout)`` only if the host may be an Azure VM.

    ``evidence`` is what the host says (``"dmi"``: read it here; an Evidence from
    elsewhere, such as a Windows host that has no DMI file to read). Raises NotOnAzure,
    or ImdsError for a failure.
    """
    if evidence == "dmi":
        evidence = host_evidence(client, dmi_path)
    if not isinstance(evidence, Evidence) or not client.is_default_endpoint:
        return Detected(request(None), f"the endpoint {client.endpoint} was given explicitly and answered")
    if evidence.azure is False:
        raise NotOnAzure(evidence.reason)
    if evidence.azure:
        return Detected(request(None), evidence.reason)
    try:
        response = request(probe_timeout)
    except ImdsError as exc:
        if exc.kind in NO_ANSWER_KINDS:
            from ansible_collections.imds.azure.plugins.module_utils._messages import ROUTE_HINT

            raise NotOnAzure(f"{evidence.reason}, and {client.endpoint} did not answer within "
                             f"{probe_timeout:g} s ({exc.kind})", ROUTE_HINT) from None
        raise
    return Detected(response, f"{evidence.reason}, and IMDS at {client.endpoint} answered")


def refuse_if_not_azure(client: t.Any, dmi_path: str = DMI_ASSET_TAG_PATH) -> None:
    """Raise NotOnAzure when the host says it is not an Azure VM (default endpoint only)."""
    evidence = host_evidence(client, dmi_path)
    if evidence is not None and evidence.azure is False:
        raise NotOnAzure(evidence.reason)
