# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Telling, without the network, whether this host is an Azure VM.

Azure sets the DMI chassis asset tag of every VM to a fixed value. Linux exposes it in
sysfs; where that file cannot be read (containers, other systems) we cannot tell.
"""

from __future__ import annotations

AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
DMI_ASSET_TAG_PATH = "/sys/class/dmi/id/chassis_asset_tag"


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
