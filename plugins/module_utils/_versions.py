# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""The api-versions of the Azure Instance Metadata Service and the fields each brings.

This is the one place in the collection that knows versions:

``KNOWN_VERSIONS``
    Every generally available api-version, oldest first. The preview version
    ``2017-03-01`` is left out on purpose: Microsoft announced that it may disappear
    once the service became generally available, it predates the documented
    ``/metadata/instance`` category (2017-04-02), and nothing we normalize depends on
    it. A server that still offers it is simply never asked for it.

``EVENTS_VERSIONS``
    The api-versions of scheduled events (``/metadata/scheduledevents``), oldest
    first. Scheduled events are versioned on their own: 2019-01-01 is a scheduled
    events version and no instance version, 2025-04-07 the other way round. The
    preview ``2017-03-01`` is left out as above.

``FIELDS``
    Every field of an instance document we know, and of the load balancer document
    (``/metadata/loadbalancer``, paths starting ``loadbalancer.``), with the api-version
    that brings it and the kind of value it holds. The normalizer reads the kinds (so
    that only fields that are numbers become ``int`` and only fields that are flags
    become ``bool``), ``scripts/facts-docs`` generates the docsite's fields-by-version
    page from it, and ``field_since()`` tells "not in this api-version" from "not on
    this VM".

``LOAD_BALANCER_SINCE``
    The first api-version that serves ``/metadata/loadbalancer`` (Microsoft's load
    balancer IMDS how-to and the IMDS endpoint categories table both say 2020-10-01).

Versions are ``YYYY-MM-DD`` strings; they order as dates, so they compare as strings.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

KNOWN_VERSIONS: tuple[str, ...] = (
    "2017-04-02",
    "2017-08-01",
    "2017-10-01",
    "2017-12-01",
    "2018-02-01",
    "2018-04-02",
    "2018-10-01",
    "2019-02-01",
    "2019-03-11",
    "2019-04-30",
    "2019-06-01",
    "2019-06-04",
    "2019-08-01",
    "2019-08-15",
    "2019-11-01",
    "2020-06-01",
    "2020-07-15",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2021-10-01",
    "2021-11-01",
    "2021-11-15",
    "2021-12-13",
    "2023-07-01",
    "2023-11-15",
    "2024-03-15",
    "2024-07-17",
    "2025-04-07",
)
NEWEST: str = KNOWN_VERSIONS[-1]
# Managed identity tokens: the api-version Microsoft documents for /metadata/identity/oauth2/token.
IDENTITY_API_VERSION: str = "2018-02-01"
LOAD_BALANCER_SINCE: str = "2020-10-01"

# Microsoft's release notes: 2017-11-01 brings EventType Preempt, 2019-01-01 Terminate,
# 2019-04-01 Description, 2019-08-01 EventSource, 2020-07-01 DurationInSeconds.
EVENTS_VERSIONS: tuple[str, ...] = (
    "2017-08-01",
    "2017-11-01",
    "2019-01-01",
    "2019-04-01",
    "2019-08-01",
    "2020-07-01",
)
EVENTS_NEWEST: str = EVENTS_VERSIONS[-1]

_KNOWN = frozenset(KNOWN_VERSIONS)
VERSION_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])\Z")  # an api-version: a date


def newest_common(offered: Iterable[str] | None) -> str | None:
    """Return the newest api-version that is both in ``offered`` and known to us.

    ``offered`` is what a server says it serves, e.g. the ``newest-versions`` list of a
    400 body; it may hold versions we do not know (they are skipped), entries that are
    not strings (skipped) or be a single string. Whatever cannot be read counts as
    offering nothing: the result is None then, never an exception, because the input
    comes straight from a server.
    """
    if isinstance(offered, str):
        offered = (offered,)
    if offered is None:
        return None
    try:
        candidates = [version for version in offered if isinstance(version, str) and version in _KNOWN]
    except TypeError:
        return None
    return max(candidates, default=None)


class Field(NamedTuple):
    """One field of an instance document (or of the load balancer document).

    ``path`` names it in IMDS spelling from the document root; ``[]`` stands for "each
    element of this list". ``since`` is the api-version that brings it, or None where
    Microsoft does not document one (the field was seen in real documents). ``kind``
    is one of ``str``, ``int``, ``bool``, ``object``, ``list``, ``raw`` (kept exactly:
    tag names and values) and ``base64`` (userData).
    """

    path: str
    since: str | None
    kind: str


_V1 = "2017-04-02"
FIELDS: tuple[Field, ...] = (
    Field("compute", _V1, "object"),
    Field("compute.location", _V1, "str"),
    Field("compute.name", _V1, "str"),
    Field("compute.offer", _V1, "str"),
    Field("compute.osType", _V1, "str"),
    Field("compute.platformFaultDomain", _V1, "int"),
    Field("compute.platformUpdateDomain", _V1, "int"),
    Field("compute.publisher", _V1, "str"),
    Field("compute.sku", _V1, "str"),
    Field("compute.version", _V1, "str"),
    Field("compute.vmId", _V1, "str"),
    Field("compute.vmSize", _V1, "str"),
    Field("compute.placementGroupId", "2017-08-01", "str"),
    Field("compute.resourceGroupName", "2017-08-01", "str"),
    Field("compute.subscriptionId", "2017-08-01", "str"),
    Field("compute.tags", "2017-08-01", "str"),
    Field("compute.vmScaleSetName", "2017-12-01", "str"),
    Field("compute.zone", "2017-12-01", "str"),
    Field("compute.plan", "2018-04-02", "object"),
    Field("compute.plan.name", "2018-04-02", "str"),
    Field("compute.plan.product", "2018-04-02", "str"),
    Field("compute.plan.publisher", "2018-04-02", "str"),
    Field("compute.publicKeys", "2018-04-02", "list"),
    Field("compute.publicKeys[].keyData", "2018-04-02", "str"),
    Field("compute.publicKeys[].path", "2018-04-02", "str"),
    Field("compute.azEnvironment", "2018-10-01", "str"),
    Field("compute.provider", "2018-10-01", "str"),
    Field("compute.customData", "2019-02-01", "str"),
    Field("compute.resourceId", "2019-03-11", "str"),
    Field("compute.storageProfile", "2019-06-01", "object"),
    Field("compute.storageProfile.imageReference", "2019-06-01", "object"),
    Field("compute.storageProfile.imageReference.id", "2019-06-01", "str"),
    Field("compute.storageProfile.imageReference.offer", "2019-06-01", "str"),
    Field("compute.storageProfile.imageReference.publisher", "2019-06-01", "str"),
    Field("compute.storageProfile.imageReference.sku", "2019-06-01", "str"),
    Field("compute.storageProfile.imageReference.version", "2019-06-01", "str"),
    Field("compute.storageProfile.imageReference.communityGalleryImageId", "2023-07-01", "str"),
    Field("compute.storageProfile.imageReference.sharedGalleryImageId", "2023-07-01", "str"),
    Field("compute.storageProfile.imageReference.exactVersion", "2023-07-01", "str"),
    Field("compute.storageProfile.osDisk", "2019-06-01", "object"),
    Field("compute.storageProfile.osDisk.caching", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.createOption", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.diffDiskSettings", "2019-08-01", "object"),
    Field("compute.storageProfile.osDisk.diffDiskSettings.option", "2019-08-01", "str"),
    Field("compute.storageProfile.osDisk.diskSizeGB", "2019-06-01", "int"),
    Field("compute.storageProfile.osDisk.encryptionSettings", "2019-06-01", "object"),
    Field("compute.storageProfile.osDisk.encryptionSettings.enabled", "2019-06-01", "bool"),
    Field("compute.storageProfile.osDisk.encryptionSettings.diskEncryptionKey", "2021-11-01", "object"),
    Field("compute.storageProfile.osDisk.encryptionSettings.diskEncryptionKey.secretUrl", "2021-11-01", "str"),
    Field("compute.storageProfile.osDisk.encryptionSettings.diskEncryptionKey.sourceVault", "2021-11-01", "object"),
    Field("compute.storageProfile.osDisk.encryptionSettings.diskEncryptionKey.sourceVault.id", "2021-11-01", "str"),
    Field("compute.storageProfile.osDisk.encryptionSettings.keyEncryptionKey", "2021-11-01", "object"),
    Field("compute.storageProfile.osDisk.encryptionSettings.keyEncryptionKey.keyUrl", "2021-11-01", "str"),
    Field("compute.storageProfile.osDisk.encryptionSettings.keyEncryptionKey.sourceVault", "2021-11-01", "object"),
    Field("compute.storageProfile.osDisk.encryptionSettings.keyEncryptionKey.sourceVault.id", "2021-11-01", "str"),
    Field("compute.storageProfile.osDisk.image", "2019-06-01", "object"),
    Field("compute.storageProfile.osDisk.image.uri", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.managedDisk", "2019-06-01", "object"),
    Field("compute.storageProfile.osDisk.managedDisk.id", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.managedDisk.storageAccountType", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.name", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.osType", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.vhd", "2019-06-01", "object"),
    Field("compute.storageProfile.osDisk.vhd.uri", "2019-06-01", "str"),
    Field("compute.storageProfile.osDisk.writeAcceleratorEnabled", "2019-06-01", "bool"),
    Field("compute.storageProfile.dataDisks", "2019-06-01", "list"),
    Field("compute.storageProfile.dataDisks[].bytesPerSecondThrottle", "2021-05-01", "int"),
    Field("compute.storageProfile.dataDisks[].caching", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].createOption", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].diffDiskSettings", "2019-06-01", "object"),
    Field("compute.storageProfile.dataDisks[].diffDiskSettings.option", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].diskCapacityBytes", "2021-05-01", "int"),
    Field("compute.storageProfile.dataDisks[].diskSizeGB", "2019-06-01", "int"),
    # Microsoft documents one table of encryption settings for the OS disk and the data disks.
    Field("compute.storageProfile.dataDisks[].encryptionSettings", "2019-06-01", "object"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.enabled", "2019-06-01", "bool"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.diskEncryptionKey", "2021-11-01", "object"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.diskEncryptionKey.secretUrl", "2021-11-01", "str"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.diskEncryptionKey.sourceVault", "2021-11-01", "object"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.diskEncryptionKey.sourceVault.id", "2021-11-01", "str"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.keyEncryptionKey", "2021-11-01", "object"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.keyEncryptionKey.keyUrl", "2021-11-01", "str"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.keyEncryptionKey.sourceVault", "2021-11-01", "object"),
    Field("compute.storageProfile.dataDisks[].encryptionSettings.keyEncryptionKey.sourceVault.id", "2021-11-01", "str"),
    Field("compute.storageProfile.dataDisks[].image", "2019-06-01", "object"),
    Field("compute.storageProfile.dataDisks[].image.uri", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].isSharedDisk", "2021-05-01", "bool"),
    Field("compute.storageProfile.dataDisks[].isUltraDisk", "2021-05-01", "bool"),
    Field("compute.storageProfile.dataDisks[].lun", "2019-06-01", "int"),
    Field("compute.storageProfile.dataDisks[].managedDisk", "2019-06-01", "object"),
    Field("compute.storageProfile.dataDisks[].managedDisk.id", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].managedDisk.storageAccountType", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].name", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].opsPerSecondThrottle", "2021-05-01", "int"),
    Field("compute.storageProfile.dataDisks[].osType", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].vhd", "2019-06-01", "object"),
    Field("compute.storageProfile.dataDisks[].vhd.uri", "2019-06-01", "str"),
    Field("compute.storageProfile.dataDisks[].writeAcceleratorEnabled", "2019-06-01", "bool"),
    Field("compute.storageProfile.resourceDisk", "2021-02-01", "object"),
    Field("compute.storageProfile.resourceDisk.size", "2021-02-01", "int"),
    Field("compute.tagsList", "2019-06-04", "list"),
    Field("compute.tagsList[].name", "2019-06-04", "raw"),
    Field("compute.tagsList[].value", "2019-06-04", "raw"),
    Field("compute.isHostCompatibilityLayerVm", "2020-06-01", "bool"),
    Field("compute.securityProfile", "2020-06-01", "object"),
    Field("compute.securityProfile.secureBootEnabled", "2020-06-01", "bool"),
    Field("compute.securityProfile.virtualTpmEnabled", "2020-06-01", "bool"),
    Field("compute.securityProfile.encryptionAtHost", "2021-11-01", "bool"),
    Field("compute.securityProfile.securityType", "2021-12-13", "str"),
    Field("compute.osProfile", "2020-07-15", "object"),
    Field("compute.osProfile.adminUsername", "2020-07-15", "str"),
    Field("compute.osProfile.computerName", "2020-07-15", "str"),
    Field("compute.osProfile.disablePasswordAuthentication", "2020-10-01", "bool"),
    Field("compute.licenseType", "2020-09-01", "str"),
    Field("compute.evictionPolicy", "2020-12-01", "str"),
    Field("compute.priority", "2020-12-01", "str"),
    Field("compute.userData", "2021-01-01", "base64"),
    Field("compute.extendedLocation", "2021-03-01", "object"),
    Field("compute.extendedLocation.name", "2021-03-01", "str"),
    Field("compute.extendedLocation.type", "2021-03-01", "str"),
    Field("compute.virtualMachineScaleSet", "2021-03-01", "object"),
    Field("compute.virtualMachineScaleSet.id", "2021-03-01", "str"),
    Field("compute.platformSubFaultDomain", "2021-10-01", "int"),
    Field("compute.additionalCapabilities", "2021-11-01", "object"),
    Field("compute.additionalCapabilities.hibernationEnabled", "2021-11-01", "bool"),
    Field("compute.host", "2021-11-15", "object"),
    Field("compute.host.id", "2021-11-15", "str"),
    Field("compute.hostGroup", "2021-11-15", "object"),
    Field("compute.hostGroup.id", "2021-11-15", "str"),
    Field("compute.physicalZone", "2023-11-15", "str"),
    Field("network", _V1, "object"),
    Field("network.interface", _V1, "list"),
    Field("network.interface[].macAddress", _V1, "str"),
    Field("network.interface[].ipv4", _V1, "object"),
    Field("network.interface[].ipv4.ipAddress", _V1, "list"),
    Field("network.interface[].ipv4.ipAddress[].privateIpAddress", _V1, "str"),
    Field("network.interface[].ipv4.ipAddress[].publicIpAddress", _V1, "str"),
    Field("network.interface[].ipv4.subnet", _V1, "list"),
    Field("network.interface[].ipv4.subnet[].address", _V1, "str"),
    Field("network.interface[].ipv4.subnet[].prefix", _V1, "str"),
    Field("network.interface[].ipv6", _V1, "object"),
    Field("network.interface[].ipv6.ipAddress", _V1, "list"),
    Field("network.interface[].ipv6.ipAddress[].privateIpAddress", _V1, "str"),
    Field("network.interface[].ipv6.subnet", None, "list"),
    Field("network.interface[].ipv6.subnet[].address", None, "str"),
    Field("network.interface[].ipv6.subnet[].prefix", None, "str"),
    # /metadata/loadbalancer: {"loadbalancer": {...}}. Ports arrive as JSON numbers in
    # Microsoft's sample, where every other IMDS value is a string: "int" takes both.
    Field("loadbalancer", LOAD_BALANCER_SINCE, "object"),
    Field("loadbalancer.publicIpAddresses", LOAD_BALANCER_SINCE, "list"),
    Field("loadbalancer.publicIpAddresses[].frontendIpAddress", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.publicIpAddresses[].privateIpAddress", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.inboundRules", LOAD_BALANCER_SINCE, "list"),
    Field("loadbalancer.inboundRules[].frontendIpAddress", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.inboundRules[].protocol", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.inboundRules[].frontendPort", LOAD_BALANCER_SINCE, "int"),
    Field("loadbalancer.inboundRules[].backendPort", LOAD_BALANCER_SINCE, "int"),
    Field("loadbalancer.inboundRules[].privateIpAddress", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.outboundRules", LOAD_BALANCER_SINCE, "list"),
    Field("loadbalancer.outboundRules[].frontendIpAddress", LOAD_BALANCER_SINCE, "str"),
    Field("loadbalancer.outboundRules[].privateIpAddress", LOAD_BALANCER_SINCE, "str"),
)

_SINCE: dict[str, str | None] = {field.path: field.since for field in FIELDS}


def field_since(path: str) -> str | None:
    """Return the api-version that brings the field at ``path`` (IMDS spelling).

    None when the field is not in FIELDS or Microsoft does not document a version.
    """
    return _SINCE.get(path)


def field_expected(path: str, api_version: str) -> bool | None:
    """Tell whether a document of ``api_version`` can carry the field at ``path``.

    True: the version brings it, so a missing value means "not on this VM". False: the
    field arrived later, so it is missing because of the version. None: we cannot
    tell (unknown field, undocumented version, or ``api_version`` not a date).
    """
    since = _SINCE.get(path)
    if since is None or not isinstance(api_version, str) or not VERSION_RE.match(api_version):
        return None
    return api_version >= since
