# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An emulator of the Azure Instance Metadata Service (IMDS), for tests, demos and molecule.

A real HTTP server (standard library only, Python 3.8+) that answers as IMDS documents:
the ``Metadata: true`` header rule, api-versions per category, version-dependent instance
documents, path filtering and ``format=text``, scheduled events with their timelines,
attested data, the load balancer and managed identity endpoints. Fault switches make it
misbehave on purpose (error statuses, rate limits, hangs, resets, slow or broken bodies).
A fleet serves several VMs from one process, each on its own port.

It is the independent oracle of the imds.azure tests: it imports nothing from the
collection and keeps its own version and field tables, so that a misreading of IMDS
cannot hide in both. See docs/docsite/rst/emulator.rst.

Command line (from a checkout or an installed collection)::

    python3 <collection>/tools/imds_emulator --port 8169 --profile linux

Python (with ``<collection>/tools`` on ``sys.path``)::

    from imds_emulator import Emulator
    with Emulator(profile="linux") as emu:
        ...  # emu.url, emu.requests, emu.set_faults(...), emu.add_event(...)

This module is the tool's public Python API; the ``_``-prefixed modules are private.
"""
from __future__ import annotations

from ._checks import EmulatorError
from ._cli import main
from ._documents import (
    PROFILES_DIR, available_profiles, check_loadbalancer, document_for_version, dump_json, load_profile,
    pkcs7_envelope, public_document, text_of,
)
from ._emulator import Emulator, rename_vm
from ._events import EVENT_KEYWORDS, TIMELINE_KEYS, Clock, ScheduledEvents, load_timeline
from ._faults import FAULT_NAMES, SWITCHES, check_faults
from ._fleet import Fleet, load_fleet
from ._replies import Reply
from ._tables import (
    API_VERSIONS, ATTESTED_FIELD_SINCE, CATEGORY_SINCE, EVENT_DESCRIPTIONS, EVENT_FIELD_SINCE, EVENT_TYPE_SINCE,
    FIELD_SINCE, FORMAT_ERROR, FORWARDED_ERROR, HEADER_ERROR, LEAF_JSON_ERROR, LOADBALANCER_ERRORS,
    LOADBALANCER_MISSING, SCHEDULED_EVENTS_VERSIONS, STATUS_ERRORS, VERSION_ERROR_NEW, VERSION_ERROR_OLD,
)

__all__ = [
    "API_VERSIONS", "ATTESTED_FIELD_SINCE", "CATEGORY_SINCE", "EVENT_DESCRIPTIONS", "EVENT_FIELD_SINCE",
    "EVENT_KEYWORDS", "EVENT_TYPE_SINCE", "FAULT_NAMES", "FIELD_SINCE", "FORMAT_ERROR", "FORWARDED_ERROR",
    "HEADER_ERROR", "LEAF_JSON_ERROR", "LOADBALANCER_ERRORS", "LOADBALANCER_MISSING", "PROFILES_DIR",
    "SCHEDULED_EVENTS_VERSIONS", "STATUS_ERRORS", "SWITCHES", "TIMELINE_KEYS", "VERSION_ERROR_NEW",
    "VERSION_ERROR_OLD", "Clock", "Emulator", "EmulatorError", "Fleet", "Reply", "ScheduledEvents",
    "available_profiles", "check_faults", "check_loadbalancer", "document_for_version", "dump_json",
    "load_fleet", "load_profile", "load_timeline", "main", "pkcs7_envelope", "public_document", "rename_vm",
    "text_of",
]
