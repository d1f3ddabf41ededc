# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Fleet mode: one process serving several VMs, each on its own port.

Each VM has its own instance document (its name, vmId, fault and update domain), faults
and request log. The VMs of one availability set share one scheduled-events document, as
in Azure; all VMs share one clock.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from . import _checks as check
from ._checks import EmulatorError
from ._control import describe
from ._emulator import Emulator
from ._events import Clock, ScheduledEvents, check_event, load_timeline

VM_KEYS = ("name", "port", "profile", "profile_file", "fault_domain", "update_domain", "availability_set", "faults")
FLEET_KEYS = ("vms", "timeline", "description")
DEFAULT_SET = "default"
MAX_VMS = 256


def check_vms(vms: Any, what: str = "fleet", base: Path | None = None) -> list[dict]:
    """Validate a fleet's VM list; fill in the fault and update domains Azure would give
    (VM i of an availability set: fault domain i % 2, update domain i % 5)."""
    if not isinstance(vms, list) or not vms or len(vms) > MAX_VMS:
        raise EmulatorError(f"{what} vms must be a list of 1 to {MAX_VMS} VMs")
    checked, names, ports, per_set = [], set(), set(), {}
    for index, vm in enumerate(vms):
        where = f"{what} VM {index}"
        vm = check.table(vm, where, VM_KEYS, {"name"})
        name = check.text(vm["name"], f"{where} name", empty=False)
        if name in names:
            raise EmulatorError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        port = check.count(vm.get("port", 0), f"{where} port", maximum=65535)
        if port and port in ports:
            raise EmulatorError(f"{where}: port {port} is used twice")
        ports.add(port)
        group = check.text(vm.get("availability_set", DEFAULT_SET), f"{where} availability_set", empty=False)
        position = per_set.get(group, 0)
        per_set[group] = position + 1
        profile_file = vm.get("profile_file")
        if profile_file is not None:
            profile_file = Path(check.text(profile_file, f"{where} profile_file", empty=False))
            if base is not None and not profile_file.is_absolute():
                profile_file = base / profile_file
        checked.append({
            "name": name, "port": port, "profile": vm.get("profile"), "profile_file": profile_file,
            "fault_domain": check.count(vm.get("fault_domain", position % 2), f"{where} fault_domain", maximum=99),
            "update_domain": check.count(vm.get("update_domain", position % 5), f"{where} update_domain",
                                         maximum=99),
            "availability_set": group, "faults": vm.get("faults"),
        })
        if checked[-1]["profile"] is not None:
            check.text(checked[-1]["profile"], f"{where} profile", empty=False)
    return checked


def load_fleet(path: str | Path) -> dict:
    """Read a fleet file: ``{"vms": [...], "timeline": FILE-or-object}``; paths relative to it."""
    path = Path(path)
    label = f"fleet file {path}"
    document = check.table(check.read_json_file(path, label), label, FLEET_KEYS, {"vms"})
    timeline = document.get("timeline")
    if isinstance(timeline, str):
        timeline = path.parent / timeline
    elif timeline is not None and not isinstance(timeline, dict):
        raise EmulatorError(f"{label} timeline must be a file name or a timeline object")
    return {"vms": check_vms(document["vms"], label, path.parent), "timeline": timeline}


class Fleet:
    """Several emulated VMs in one process; ``fleet["web1"]`` is one VM's Emulator.

    ``vms``: dicts with ``name`` (required), ``port`` (0: a free one), ``profile`` or
    ``profile_file``, ``fault_domain``, ``update_domain``, ``availability_set`` and
    ``faults``. The other arguments are the defaults every VM shares.
    """

    def __init__(self, vms: list[Mapping[str, Any]], *, host: str = "127.0.0.1", profile: str = "linux",
                 faults: Mapping[str, Any] | None = None, latency: float = 0.0,
                 log_path: str | Path | None = None,
                 timeline: str | Path | Mapping[str, Any] | None = None):
        checked = check_vms(list(vms))
        self.clock = Clock()
        self.sets: dict[str, ScheduledEvents] = {}
        self.vms: dict[str, Emulator] = {}
        for vm in checked:
            events = self.sets.setdefault(vm["availability_set"], ScheduledEvents(self.clock))
            emu = Emulator(profile=vm["profile"] or profile, profile_file=vm["profile_file"], host=host,
                           port=vm["port"], faults=faults if vm["faults"] is None else vm["faults"],
                           latency=latency, log_path=log_path, name=vm["name"],
                           fault_domain=vm["fault_domain"], update_domain=vm["update_domain"], events=events)
            emu.fleet_name = vm["name"]
            emu.availability_set = vm["availability_set"]
            emu.fleet = self
            self.vms[vm["name"]] = emu
        if timeline is not None:
            self.load_timeline(timeline)

    def __getitem__(self, name: str) -> Emulator:
        return self.vms[name]

    def __iter__(self) -> Iterator[Emulator]:
        return iter(self.vms.values())

    def start(self) -> "Fleet":
        try:
            for emu in self:
                emu.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for emu in self:
            emu.stop()

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def describe(self) -> list[dict]:
        """One entry per VM: name, url, port, vm_id, fault_domain, update_domain, availability_set."""
        return [describe(emu) for emu in self]

    def _set_of(self, resources: list[str] | None, what: str) -> tuple[ScheduledEvents, list[str]]:
        """The events document an event with these Resources goes to (their availability set)."""
        if not resources:
            first = next(iter(self))
            return first.events, [first.name]
        groups = {self.vms[name].availability_set for name in resources if name in self.vms}
        if len(groups) > 1:
            raise EmulatorError(f"{what} names VMs of several availability sets ({', '.join(sorted(groups))}); "
                                "an event belongs to one set")
        group = groups.pop() if groups else next(iter(self.sets))
        return self.sets[group], resources

    def add_event(self, **event: Any) -> dict:
        """Add an event (Emulator.add_event's keywords) to the set of its ``resources``."""
        events, resources = self._set_of(event.get("resources"), "the event")
        return events.add(check_event({**event, "resources": resources}, resources))

    def load_timeline(self, timeline: str | Path | Mapping[str, Any]) -> list[dict]:
        """Add a timeline's events, each to the availability set of its ``resources``."""
        added = []
        for index, (at, fields) in enumerate(load_timeline(timeline)):
            events, resources = self._set_of(fields["resources"], f"timeline event {index}")
            added.append(events.add({**fields, "resources": resources}, at))
        return added

    def advance_clock(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def events_document(self, availability_set: str = DEFAULT_SET) -> dict:
        return self.sets[availability_set].document()
