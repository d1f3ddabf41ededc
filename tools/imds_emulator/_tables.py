# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""What IMDS serves, by api-version, and the words it answers with.

Our own tables, written from Microsoft's documentation and OpenAPI descriptions
(tests/emulator/openapi/), never imported from the collection: the emulator is the
independent oracle of the collection's tests.
"""
from __future__ import annotations

import re

API_VERSIONS: tuple[str, ...] = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01",
    "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01",
    "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15",
    "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01",
    "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13",
    "2023-07-01", "2023-11-15", "2024-03-15", "2024-07-17", "2025-04-07",
)
"""Every api-version IMDS has published, oldest first (2017-03-01 was the preview)."""

SCHEDULED_EVENTS_VERSIONS: tuple[str, ...] = (
    "2017-08-01", "2017-11-01", "2019-01-01", "2019-04-01", "2019-08-01", "2020-07-01",
)
"""Scheduled events are versioned on their own."""

CATEGORY_SINCE = {
    "instance": "2017-04-02",
    "identity": "2018-02-01",
    "attested": "2018-10-01",
    "loadbalancer": "2020-10-01",
}
"""The first api-version each category answers (scheduled events: their own list)."""


def _since(version: str, *paths: str) -> dict[str, str]:
    return {path: version for path in paths}


_DATA_DISK = "compute.storageProfile.dataDisks[]"
_OS_DISK = "compute.storageProfile.osDisk"
_IMAGE = "compute.storageProfile.imageReference"

FIELD_SINCE: dict[str, str] = {
    # Paths: dict keys joined with ".", "[]" for the items of a list. A field that is not
    # in this table is served at every version (a profile may carry fields we do not know).
    **_since(
        "2017-04-02", "compute", "network",
        "compute.location", "compute.name", "compute.offer", "compute.osType",
        "compute.platformFaultDomain", "compute.platformUpdateDomain", "compute.publisher",
        "compute.sku", "compute.version", "compute.vmId", "compute.vmSize",
        "network.interface", "network.interface[].macAddress",
        "network.interface[].ipv4", "network.interface[].ipv4.ipAddress",
        "network.interface[].ipv4.ipAddress[].privateIpAddress",
        "network.interface[].ipv4.ipAddress[].publicIpAddress",
        "network.interface[].ipv4.subnet", "network.interface[].ipv4.subnet[].address",
        "network.interface[].ipv4.subnet[].prefix",
        "network.interface[].ipv6", "network.interface[].ipv6.ipAddress",
        "network.interface[].ipv6.ipAddress[].privateIpAddress",
    ),
    **_since("2017-08-01", "compute.placementGroupId", "compute.resourceGroupName",
             "compute.subscriptionId", "compute.tags"),
    **_since("2017-12-01", "compute.vmScaleSetName", "compute.zone"),
    **_since("2018-04-02", "compute.plan", "compute.plan.name", "compute.plan.product",
             "compute.plan.publisher", "compute.publicKeys", "compute.publicKeys[].keyData",
             "compute.publicKeys[].path"),
    **_since("2018-10-01", "compute.azEnvironment", "compute.provider"),
    # customData: in the OpenAPI description from 2019-02-01; always "" (superseded by userData).
    **_since("2019-02-01", "compute.customData"),
    **_since("2019-03-11", "compute.resourceId"),
    **_since(
        "2019-06-01", "compute.storageProfile",
        _IMAGE, f"{_IMAGE}.id", f"{_IMAGE}.offer", f"{_IMAGE}.publisher", f"{_IMAGE}.sku",
        f"{_IMAGE}.version",
        _OS_DISK, f"{_OS_DISK}.caching", f"{_OS_DISK}.createOption", f"{_OS_DISK}.diskSizeGB",
        f"{_OS_DISK}.encryptionSettings", f"{_OS_DISK}.encryptionSettings.enabled",
        f"{_OS_DISK}.image", f"{_OS_DISK}.image.uri", f"{_OS_DISK}.managedDisk",
        f"{_OS_DISK}.managedDisk.id", f"{_OS_DISK}.managedDisk.storageAccountType",
        f"{_OS_DISK}.name", f"{_OS_DISK}.osType", f"{_OS_DISK}.vhd", f"{_OS_DISK}.vhd.uri",
        f"{_OS_DISK}.writeAcceleratorEnabled",
        "compute.storageProfile.dataDisks", f"{_DATA_DISK}.caching",
        f"{_DATA_DISK}.createOption", f"{_DATA_DISK}.diskSizeGB", f"{_DATA_DISK}.image",
        f"{_DATA_DISK}.image.uri", f"{_DATA_DISK}.lun", f"{_DATA_DISK}.managedDisk",
        f"{_DATA_DISK}.managedDisk.id", f"{_DATA_DISK}.managedDisk.storageAccountType",
        f"{_DATA_DISK}.name", f"{_DATA_DISK}.vhd", f"{_DATA_DISK}.vhd.uri",
        f"{_DATA_DISK}.writeAcceleratorEnabled",
    ),
    **_since("2019-06-04", "compute.tagsList", "compute.tagsList[].name",
             "compute.tagsList[].value"),
    # The OpenAPI description adds the ephemeral-disk settings in 2019-08-01.
    **_since("2019-08-01", f"{_OS_DISK}.diffDiskSettings", f"{_OS_DISK}.diffDiskSettings.option"),
    **_since("2020-06-01", "compute.isHostCompatibilityLayerVm", "compute.securityProfile",
             "compute.securityProfile.secureBootEnabled",
             "compute.securityProfile.virtualTpmEnabled"),
    **_since("2020-07-15", "compute.osProfile", "compute.osProfile.adminUsername",
             "compute.osProfile.computerName"),
    **_since("2020-09-01", "compute.licenseType"),
    **_since("2020-10-01", "compute.osProfile.disablePasswordAuthentication"),
    **_since("2020-12-01", "compute.evictionPolicy", "compute.priority"),
    **_since("2021-01-01", "compute.userData"),
    **_since("2021-02-01", "compute.storageProfile.resourceDisk",
             "compute.storageProfile.resourceDisk.size"),
    **_since("2021-03-01", "compute.extendedLocation", "compute.extendedLocation.type",
             "compute.extendedLocation.name", "compute.virtualMachineScaleSet",
             "compute.virtualMachineScaleSet.id"),
    **_since("2021-05-01", f"{_DATA_DISK}.bytesPerSecondThrottle",
             f"{_DATA_DISK}.diskCapacityBytes", f"{_DATA_DISK}.isSharedDisk",
             f"{_DATA_DISK}.isUltraDisk", f"{_DATA_DISK}.opsPerSecondThrottle"),
    **_since("2021-10-01", "compute.platformSubFaultDomain"),
    **_since("2021-11-01", "compute.additionalCapabilities",
             "compute.additionalCapabilities.hibernationEnabled",
             "compute.securityProfile.encryptionAtHost"),
    **_since("2021-11-15", "compute.host", "compute.host.id", "compute.hostGroup",
             "compute.hostGroup.id"),
    **_since("2021-12-13", "compute.securityProfile.securityType"),
    **_since("2023-07-01", f"{_IMAGE}.communityGalleryImageId", f"{_IMAGE}.sharedGalleryImageId",
             f"{_IMAGE}.exactVersion",
             # Not in any published OpenAPI description (the last has only "enabled"); real
             # documents carry them next to the 2023-07-01 fields, so we date them alike.
             f"{_OS_DISK}.encryptionSettings.diskEncryptionKey",
             f"{_OS_DISK}.encryptionSettings.keyEncryptionKey"),
    **_since("2023-11-15", "compute.physicalZone"),
}

ATTESTED_FIELD_SINCE = {
    "nonce": "2018-10-01", "plan": "2018-10-01", "timeStamp": "2018-10-01", "vmId": "2018-10-01",
    "subscriptionId": "2019-04-30", "sku": "2019-11-01", "licenseType": "2020-09-01",
}
"""Fields of the signed attested document, by the version that added them."""

EVENT_FIELD_SINCE = {
    "EventId": "2017-08-01", "EventType": "2017-08-01", "ResourceType": "2017-08-01",
    "Resources": "2017-08-01", "EventStatus": "2017-08-01", "NotBefore": "2017-08-01",
    "Description": "2019-04-01", "EventSource": "2019-08-01", "DurationInSeconds": "2020-07-01",
}
"""Fields of a scheduled event, by the scheduled-events version that added them."""

EVENT_TYPE_SINCE = {
    "Freeze": "2017-08-01", "Reboot": "2017-08-01", "Redeploy": "2017-08-01",
    "Preempt": "2017-11-01", "Terminate": "2019-01-01",
}
EVENT_DESCRIPTIONS = {
    "Freeze": "Virtual machine is paused for a few seconds while its host is updated.",
    "Reboot": "Virtual machine is going to be restarted for planned maintenance.",
    "Redeploy": "Virtual machine is going to be moved to another host.",
    "Preempt": "Spot virtual machine is going to be evicted.",
    "Terminate": "Virtual machine is going to be deleted from its scale set.",
}

# Error bodies. Wordings marked "IMDS" are Microsoft's; the others are ours (IMDS does not
# document them) and only need to be plausible.
HEADER_ERROR = "Bad request. Required metadata header not specified"  # IMDS
FORWARDED_ERROR = "Bad request. Requests with an X-Forwarded-For header are not accepted"
VERSION_ERROR_NEW = ("Bad request. api-version is invalid or was not specified in the request. "
                     "For more information refer to aka.ms/azureimds")  # IMDS, current
VERSION_ERROR_OLD = ("Bad request. api-version was not specified in the request. "
                     "For more information refer to aka.ms/azureimds")  # IMDS, until ~2021
LEAF_JSON_ERROR = "Bad request. A leaf node is only served with format=text"
FORMAT_ERROR = "Bad request. The format parameter must be json or text"
LOADBALANCER_MISSING = ("No load balancer metadata is found. Please check if your VM is using "
                        "any non-basic SKU load balancer and retry later.")  # IMDS
LOADBALANCER_ERRORS = {
    # The `loadbalancer` fault: the other answers Microsoft documents for /metadata/loadbalancer
    # (learn.microsoft.com/azure/load-balancer/troubleshoot-load-balancer-imds), by name.
    "not_found": (404, LOADBALANCER_MISSING),
    "not_available": (404, "Load Balancer metadata API isn't available right now. Retry later"),
    "not_enabled": (404, "/metadata/loadbalancer isn't currently available"),
    "service_unavailable": (503, "Internal service unavailable. Retry later"),
}
STATUS_ERRORS = {  # the bodies of Microsoft's OpenAPI examples
    400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Not allowed",
    429: "Too many requests", 500: "Server error", 503: "Service unavailable",
}
CAPTIVE_PORTAL = (b"<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>\n"
                  b"<body><h1>Welcome to Guest Wi-Fi</h1><p>Please accept the terms of use "
                  b"to continue.</p><form method=\"post\" action=\"/login\">"
                  b"<button>Accept</button></form></body></html>\n")

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_REQUEST_BODY = 1 << 20
MAX_LOGGED_REQUESTS = 100_000  # in memory; the --log file keeps every request
VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
