# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decision behind the imds.azure.route role, as pure functions.

IMDS answers at 169.254.169.254 only through the VM's primary interface. When another
interface owns 169.254.0.0/16 (a failover cluster's virtual adapter on Windows, a
cluster, container or VPN interface on Linux), the longest matching route sends IMDS
traffic there and it times out. Microsoft's fix is a host route for 169.254.169.254/32
through the interface that holds the default route.

This module reads a routing table (the text of Windows ``route print``, or the JSON of
Linux ``ip -j route`` and ``ip -j addr``), finds the primary interface (the one holding
the default route with the lowest metric; on a tie the route listed first wins and the
plan carries a warning), finds where 169.254.169.254 goes today (longest prefix, then
lowest metric) and returns a plan: what to add, what to remove, and why. It runs no
commands and touches no network; the role carries the plan out with Ansible modules.

The tables come from the host, so they are read strictly: a value of the wrong type, an
address that is no address, JSON that is not UTF-8 or nested too deep, and a ``route
print`` table that does not end with its ``====`` line (output cut short) are a
RouteTableError with one line that says what was wrong, never a plan made from part of
a table. Text from the table reaches messages only through ``printable()``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.imds.azure.plugins.module_utils._text import printable, shown, whole_number

IMDS_ADDRESS = ipaddress.IPv4Address("169.254.169.254")
IMDS_NETWORK = ipaddress.IPv4Network("169.254.169.254/32")
DEFAULT_NETWORK = ipaddress.IPv4Network("0.0.0.0/0")
LINUX_PROTOCOL = "static"  # the protocol the role gives its route, so it can tell its own
WINDOWS_MAX_METRIC = 9999  # route.exe refuses larger metrics
LINUX_MAX_METRIC = 4294967295
# Route types that end a lookup in the main table without an interface.
_LINUX_TERMINAL_TYPES = frozenset(("blackhole", "unreachable", "prohibit"))
_LINUX_IGNORED_TYPES = frozenset(("local", "broadcast", "multicast", "anycast", "nat", "throw", "xresolve"))

_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
# An Active Routes row: destination, netmask, gateway (an address or a word such as
# "On-link", localized and possibly several words), interface address, metric.
_ACTIVE_ROW = re.compile(rf"^\s*({_IPV4})\s+({_IPV4})\s+(\S.*?)\s+({_IPV4})\s+([0-9]+)\s*$", re.ASCII)
# A Persistent Routes row: network address, netmask, gateway address, metric (or "Default").
_PERSISTENT_ROW = re.compile(rf"^\s*({_IPV4})\s+({_IPV4})\s+({_IPV4})\s+(\S+)\s*$", re.ASCII)
_SEPARATOR = re.compile(r"^\s*=+\s*$")
# A line that starts like a row (digits and dots in any script) but is none: a garbled or cut row.
_ROW_LIKE = re.compile(r"^\s*\d+\.\d+\.\d+\.\d+")
MAX_ROW_LENGTH = 512  # route print's rows are under 100 characters; longer lines are no rows
MAX_DEVICE_LENGTH = 64
ACTIVE, PERSISTENT, SEPARATOR, OTHER = "active", "persistent", "separator", "other"


class RouteTableError(ValueError):
    """The routing table could not be read."""


class RouteDecisionError(ValueError):
    """The table was read, but no safe plan follows from it."""


@dataclass(frozen=True)
class Route:
    """One IPv4 route, in the terms both platforms share.

    ``interface`` is the device name on Linux and the interface address on Windows
    (``route print`` names interfaces by address). ``gateway`` is None for on-link
    routes. ``kind`` is ``unicast`` or, on Linux, a terminal type such as ``blackhole``.
    """

    network: ipaddress.IPv4Network
    interface: str | None
    gateway: str | None = None
    metric: int = 0
    source: str | None = None
    protocol: str | None = None
    kind: str = "unicast"
    multipath: bool = False
    via: str | None = None  # a next hop of another family (``via inet6 fe80::1``): no IPv4 gateway to name

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "destination": str(self.network),
            "interface": self.interface,
            "gateway": self.gateway,
            "metric": self.metric,
            "source": self.source,
            "protocol": self.protocol,
            "type": self.kind,
        }

    def describe(self) -> str:
        if self.kind != "unicast":
            return f"{self.kind} route {self.network}"
        via = f"via {self.gateway or self.via}" if self.gateway or self.via else "on-link"
        return f"{self.network} {via} on {self.interface} (metric {self.metric})"


@dataclass(frozen=True)
class PersistentRoute:
    """One row of the Windows ``Persistent Routes`` section."""

    network: ipaddress.IPv4Network
    gateway: str
    metric: int | None  # None when Windows shows "Default"

    def as_dict(self) -> dict[str, t.Any]:
        return {"destination": str(self.network), "gateway": self.gateway, "metric": self.metric}


@dataclass
class WindowsTable:
    active: list[Route]
    persistent: list[PersistentRoute]


@dataclass
class Plan:
    """What the role must do, and why. ``as_dict`` is what the filters return."""

    platform: str
    state: str
    primary: dict[str, t.Any] | None
    current: Route | None
    through_primary: bool
    existing: list[Route]
    add: dict[str, t.Any] | None
    remove: list[dict[str, t.Any]]
    commands: list[t.Any]
    reason: str
    warnings: list[str] = field(default_factory=list)
    # The role's route once the plan is carried out: what persistence must restore.
    kept: dict[str, t.Any] | None = None

    @property
    def action(self) -> str:
        if self.add and self.remove:
            return "replace"
        if self.add:
            return "add"
        if self.remove:
            return "remove"
        return "none"

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "platform": self.platform,
            "state": self.state,
            "destination": str(IMDS_NETWORK),
            "primary": self.primary,
            "current": self.current.as_dict() if self.current else None,
            "through_primary": self.through_primary,
            "existing": [r.as_dict() for r in self.existing],
            "action": self.action,
            "changed": self.action != "none",
            "add": self.add,
            "remove": self.remove,
            "commands": self.commands,
            "route": self.kept,
            "reason": self.reason,
            "warnings": self.warnings,
        }


# ---------------------------------------------------------------------------------
# Reading the tables


def _network(destination: str, netmask: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(f"{destination}/{netmask}")
    except ValueError as exc:
        raise RouteTableError(f"route print row {destination} {netmask} is not a valid IPv4 network: {exc}") from None


def _kind_of_line(line: str) -> tuple[str, re.Match[str] | None]:
    if len(line) > MAX_ROW_LENGTH:
        return OTHER, None
    row = _ACTIVE_ROW.match(line)
    if row:
        return ACTIVE, row
    row = _PERSISTENT_ROW.match(line)
    if row:
        return PERSISTENT, row
    return (SEPARATOR if _SEPARATOR.match(line) else OTHER), None


def _text_of(data: t.Any, what: str) -> str:
    """The text of a command's output: a string, or bytes that are UTF-8."""
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RouteTableError(f"the output of `{what}` is not UTF-8 text (byte {exc.start} is "
                                  f"0x{data[exc.start]:02x})") from None
    if not isinstance(data, str):
        raise RouteTableError(f"expected the text of `{what}`, got {type(data).__name__}")
    return data


def parse_route_print(text: t.Any) -> WindowsTable:
    """Read the IPv4 part of Windows ``route print`` (or ``route print -4``) output.

    Rows are recognised by their shape, not by the (localized) headings: an Active
    Routes row has five columns ending in an interface address and a metric; a
    Persistent Routes row has four. Everything after a heading that mentions IPv6 is
    skipped until a heading mentions IPv4 again; the Interface List never matches.

    Complete output is required: every table of rows ends with a ``====`` line, and the
    Active Routes are followed by the Persistent Routes section (its heading, then
    ``None`` or its rows). A row cut in the middle, a table without its ``====`` line or
    a missing Persistent Routes section means the output was cut short: RouteTableError.
    """
    text = _text_of(text, "route print")
    active: list[Route] = []
    persistent: list[PersistentRoute] = []
    in_ipv6 = False
    run: str | None = None  # the kind of rows being read, until their ==== line
    active_end: int | None = None  # the index of the line that closes the IPv4 Active Routes
    lines = text.splitlines()
    for number, line in enumerate(lines):
        kind, row = _kind_of_line(line)
        if in_ipv6 and kind in (ACTIVE, PERSISTENT):
            kind = OTHER
        if run is not None and kind != run:
            if kind != SEPARATOR:
                raise RouteTableError(
                    f"the {run} routes of the `route print` output end without their ==== line: line {number + 1} "
                    f"is {shown(line.strip())}; the output was cut short or is not route print's")
            if run == ACTIVE and active_end is None:
                active_end = number
            run = None
            continue
        if kind == OTHER:
            if "IPv6" in line:
                in_ipv6 = True
            elif "IPv4" in line:
                in_ipv6 = False
            elif not in_ipv6 and _ROW_LIKE.match(line):
                raise RouteTableError(f"line {number + 1} of the `route print` output starts like a route but is "
                                      f"none: {shown(line.strip())}; the output was cut short or garbled")
            continue
        if row is None:
            continue
        run = kind
        if kind == PERSISTENT:
            destination, netmask, gateway, metric = row.groups()
            persistent.append(PersistentRoute(_network(destination, netmask), gateway,
                                              int(metric) if metric.isascii() and metric.isdigit() else None))
            continue
        destination, netmask, gateway, interface, metric = row.groups()
        try:
            ipaddress.IPv4Address(interface)
            gateway_address = str(ipaddress.IPv4Address(gateway)) if re.fullmatch(_IPV4, gateway, re.ASCII) else None
        except ValueError as exc:
            raise RouteTableError(f"route print row {shown(line.strip())} has an invalid address: {exc}") from None
        active.append(Route(_network(destination, netmask), interface, gateway_address, int(metric)))
    if not active:
        sample = " ".join(text.split())[:80]
        raise RouteTableError(
            "found no IPv4 Active Routes in the `route print` output (expected rows such as "
            f"'0.0.0.0  0.0.0.0  10.0.1.1  10.0.1.10  266'); the output began with: {shown(sample)}")
    if run is not None:
        raise RouteTableError(f"the `route print` output ends in its {run} routes, without their ==== line: it was "
                              "cut short")
    _check_persistent_section(lines, active_end)
    return WindowsTable(active, persistent)


def _check_persistent_section(lines: list[str], active_end: int | None) -> None:
    """After the Active Routes' ==== line: the Persistent Routes heading, then ``None`` or column names and rows."""
    rest = [line for line in lines[(active_end or 0) + 1:] if line.strip()]
    cut = ("the `route print` output ends after the Active Routes, without the Persistent Routes section: it was "
           "cut short")
    if len(rest) < 2 or any(_kind_of_line(line)[0] != OTHER for line in rest[:1]):
        raise RouteTableError(cut)
    second, following = rest[1], rest[2] if len(rest) > 2 else None
    kind = _kind_of_line(second)[0]
    if kind == PERSISTENT:
        return
    if kind != OTHER or len(second.split()) == 1:  # "None", "Keine", "Aucun": no persistent routes
        return
    # column names: rows must follow (their ==== line was checked with the rows)
    if following is None or _kind_of_line(following)[0] != PERSISTENT:
        raise RouteTableError("the Persistent Routes of the `route print` output end after their column names: "
                              "the output was cut short")


def _load_json(data: t.Any, what: str) -> list[dict[str, t.Any]]:
    if isinstance(data, (str, bytes)):
        text = _text_of(data, what)
        try:
            data = json.loads(text)
        except ValueError as exc:
            sample = " ".join(text.split())[:80]
            raise RouteTableError(f"the output of `{what}` is not JSON ({exc}); it began with: {shown(sample)}") from None
        except RecursionError:
            raise RouteTableError(f"the output of `{what}` is JSON nested too deeply to be `{what}`'s") from None
    if not isinstance(data, list):
        raise RouteTableError(f"the output of `{what}` must be a JSON list of objects, got {type(data).__name__}")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise RouteTableError(f"the output of `{what}` must be a JSON list of objects, got a list whose "
                                  f"item {index} is {type(item).__name__}")
    return data


def _int(value: t.Any, what: str, maximum: int = LINUX_MAX_METRIC) -> int:
    """A whole number 0..maximum, from an int or a string of ASCII digits."""
    number = whole_number(value) if isinstance(value, (int, str)) else None
    if number is None or not 0 <= number <= maximum:
        raise RouteTableError(f"{what} must be an integer between 0 and {maximum}, got {shown(value)}")
    return number


def _string(entry: t.Mapping[str, t.Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise RouteTableError(f"{where} has {key} {shown(value)}, which is not a string")
    return value


def _device(entry: t.Mapping[str, t.Any], where: str) -> str:
    dev = entry.get("dev")
    if not isinstance(dev, str):
        raise RouteTableError(f"{where} names no device (dev is {shown(dev)})")
    if not dev or len(dev) > MAX_DEVICE_LENGTH or not dev.isprintable() or any(c.isspace() or c == "/" for c in dev):
        raise RouteTableError(f"{where} names the device {shown(dev)}, which is no interface name")
    return dev


def _ipv4(entry: t.Mapping[str, t.Any], key: str, where: str) -> str | None:
    """An IPv4 address field (gateway, prefsrc), or None when absent."""
    value = _string(entry, key, where)
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise RouteTableError(f"{where} has {key} {shown(value)}, which is not an IPv4 address") from None


def _via(entry: t.Mapping[str, t.Any], where: str) -> str | None:
    """``via`` (a next hop of another family, as ``ip -j`` prints it), as text, or None."""
    via = entry.get("via")
    if via is None:
        return None
    if not isinstance(via, dict) or not isinstance(via.get("family"), str) or not isinstance(via.get("host"), str):
        raise RouteTableError(f"{where} has via {shown(via)}, not an object with family and host")
    return printable(f"{via['family']} {via['host']}", 80)


def _ipv6_default(entry: t.Mapping[str, t.Any]) -> bool:
    """Whether a ``default`` entry is IPv6's (``ip -j route`` without ``-4`` lists both, both as ``default``).

    ``ip`` prints ``pref`` for IPv6 routes only, and an IPv6 route's gateways are IPv6
    addresses (an IPv4 route with an IPv6 next hop names it in ``via`` instead).
    """
    nexthops = entry.get("nexthops")
    hops: list[t.Any] = nexthops if isinstance(nexthops, list) else []
    gateways = [entry.get("gateway")] + [hop.get("gateway") for hop in hops if isinstance(hop, dict)]
    return "pref" in entry or any(isinstance(gateway, str) and ":" in gateway for gateway in gateways)


def parse_ip_route(data: t.Any) -> list[Route]:
    """Read ``ip -j route`` output (text or already parsed) into IPv4 routes.

    Routes of other families are skipped, and so are local, broadcast and throw
    routes, which never carry traffic for 169.254.169.254 in the main table. Every
    field the decision reads is checked: its type, and that an address is one.
    """
    routes: list[Route] = []
    for index, entry in enumerate(_load_json(data, "ip -j route")):
        dst = entry.get("dst")
        if not isinstance(dst, str) or not dst:
            raise RouteTableError(f"an `ip -j route` entry has no destination (entry {index}: dst is {shown(dst)})")
        where = f"the `ip -j route` entry for {printable(dst, 60)}"
        kind = entry.get("type", "unicast")
        if not isinstance(kind, str):
            raise RouteTableError(f"{where} has type {shown(kind)}, not a route type such as unicast")
        if kind in _LINUX_IGNORED_TYPES:
            continue
        if kind != "unicast" and kind not in _LINUX_TERMINAL_TYPES:
            raise RouteTableError(f"{where} has the unknown route type {shown(kind)}")
        if dst == "default" and _ipv6_default(entry):
            continue
        try:
            network = DEFAULT_NETWORK if dst == "default" else ipaddress.ip_network(dst, strict=False)
        except ValueError:
            raise RouteTableError(f"an `ip -j route` entry has an invalid destination {shown(dst)}") from None
        if network.version != 4:
            continue
        metric = _int(entry.get("metric", 0), f"the metric of route {printable(dst, 60)}")
        protocol = _string(entry, "protocol", where)
        if kind in _LINUX_TERMINAL_TYPES:
            routes.append(Route(network, None, None, metric, None, protocol, kind))
            continue
        source = _ipv4(entry, "prefsrc", where)
        nexthops = entry.get("nexthops")
        if nexthops is not None:
            if not isinstance(nexthops, list) or not nexthops:
                raise RouteTableError(f"{where} has nexthops {shown(nexthops)}, not a list of next hops")
            hops = []
            for number, hop in enumerate(nexthops):
                label = f"the {'first' if number == 0 else f'#{number + 1}'} next hop of {where}"
                if not isinstance(hop, dict):
                    raise RouteTableError(f"{label} is {shown(hop)}, not an object")
                hops.append((_device(hop, label), _ipv4(hop, "gateway", label), _via(hop, label)))
            dev, gateway, via = hops[0]
            routes.append(Route(network, dev, gateway, metric, source, protocol, kind, len(hops) > 1, via))
            continue
        routes.append(Route(network, _device(entry, where), _ipv4(entry, "gateway", where), metric, source, protocol,
                            kind, via=_via(entry, where)))
    return routes


def parse_ip_addr(data: t.Any) -> dict[str, list[ipaddress.IPv4Interface]]:
    """Read ``ip -j addr`` output into the IPv4 addresses of each interface, in order."""
    addresses: dict[str, list[ipaddress.IPv4Interface]] = {}
    for index, link in enumerate(_load_json(data, "ip -j addr")):
        name = link.get("ifname")
        if not isinstance(name, str) or not name:
            raise RouteTableError(f"an `ip -j addr` entry has no interface name (entry {index}: ifname is "
                                  f"{shown(name)})")
        where = f"interface {printable(name, 60)}"
        found = addresses.setdefault(name, [])
        infos = link.get("addr_info", [])
        if infos is None:
            continue
        if not isinstance(infos, list):
            raise RouteTableError(f"{where} has addr_info {shown(infos)}, not a list of addresses")
        for info in infos:
            if not isinstance(info, dict):
                raise RouteTableError(f"{where} has an address that is {shown(info)}, not an object")
            if _string(info, "family", where) != "inet":
                continue
            local, prefixlen = info.get("local"), info.get("prefixlen")
            length = whole_number(prefixlen) if isinstance(prefixlen, (int, str)) else None
            try:
                if not isinstance(local, str) or length is None or not 0 <= length <= 32:
                    raise ValueError
                found.append(ipaddress.IPv4Interface(f"{local}/{length}"))
            except ValueError:
                raise RouteTableError(f"{where} has an unreadable IPv4 address: local {shown(local)}, prefixlen "
                                      f"{shown(prefixlen)}") from None
    return addresses


# ---------------------------------------------------------------------------------
# Deciding


def lookup(routes: t.Iterable[Route], address: ipaddress.IPv4Address = IMDS_ADDRESS) -> Route | None:
    """The route the table picks for address: longest prefix, then lowest metric, then first."""
    best: Route | None = None
    for route in routes:
        if address not in route.network:
            continue
        if best is None or (route.network.prefixlen, -route.metric) > (best.network.prefixlen, -best.metric):
            best = route
    return best


def default_route(routes: list[Route], interface: str | None, warnings: list[str]) -> Route:
    """The default route that names the primary interface (lowest metric; first on a tie)."""
    defaults = [r for r in routes if r.network == DEFAULT_NETWORK and r.kind == "unicast"]
    if interface:
        on_interface = [r for r in defaults if r.interface == interface]
        if on_interface:
            return min(on_interface, key=lambda r: r.metric)
        return Route(DEFAULT_NETWORK, interface, None, 0)
    if not defaults:
        raise RouteDecisionError(
            "the routing table has no default route (0.0.0.0/0), so the primary interface is unknown; "
            "set imds_route_interface to the interface that reaches Azure")
    best = min(r.metric for r in defaults)
    winners = [r for r in defaults if r.metric == best]
    chosen = winners[0]
    others = sorted({r.interface for r in winners if r.interface is not None and r.interface != chosen.interface})
    if others:
        warnings.append(
            f"{len(winners)} default routes share the lowest metric {best}; the one listed first "
            f"({chosen.describe()}) was taken as primary over {', '.join(others)}. "
            "Set imds_route_interface to choose.")
    if chosen.multipath:
        warnings.append(f"the default route is multipath; its first next hop ({chosen.interface}) was taken as primary")
    return chosen


def _check_state(state: t.Any, metric: t.Any, max_metric: int, gateway: str | None) -> int:
    if state not in ("present", "absent"):
        raise RouteDecisionError(f"state must be 'present' or 'absent', got {shown(state)}")
    value = whole_number(metric) if isinstance(metric, (int, float, str)) else None
    if value is None or not 0 <= value <= max_metric:
        raise RouteDecisionError(f"metric must be an integer between 0 and {max_metric}, got {shown(metric)}")
    if gateway:
        try:
            ipaddress.IPv4Address(gateway)
        except ValueError:
            raise RouteDecisionError(f"gateway must be an IPv4 address, got {shown(gateway)}") from None
    return value


def _where(current: Route | None) -> str:
    return current.describe() if current else "nowhere (no route matches it)"


def _linux_source(primary: Route, addresses: dict[str, list[ipaddress.IPv4Interface]],
                  gateway: str | None) -> str:
    name = primary.interface or ""
    if name not in addresses:
        raise RouteDecisionError(f"interface {name} is not in the `ip -j addr` output")
    candidates = addresses[name]
    if primary.source and any(str(a.ip) == primary.source for a in candidates):
        return primary.source
    if not candidates:
        raise RouteDecisionError(f"interface {name} holds the default route but has no IPv4 address")
    if gateway:
        for address in candidates:
            if ipaddress.IPv4Address(gateway) in address.network:
                return str(address.ip)
    return str(candidates[0].ip)


def _linux_argv(verb: str, route: dict[str, t.Any]) -> list[str]:
    argv = ["ip", "-4", "route", verb, route["destination"]]
    if route.get("gateway"):
        argv += ["via", route["gateway"]]
    argv += ["dev", route["interface"]]
    if verb == "add" and route.get("source"):
        argv += ["src", route["source"]]
    # Only the role's own routes are ever deleted, so "del" names the protocol too.
    return argv + ["metric", str(route["metric"]), "proto", LINUX_PROTOCOL]


def _linux_route_dict(route: Route) -> dict[str, t.Any]:
    return {"destination": str(IMDS_NETWORK), "interface": route.interface, "gateway": route.gateway,
            "source": route.source, "metric": route.metric, "protocol": route.protocol}


def plan_linux(routes_json: t.Any, addresses_json: t.Any, *, state: str = "present", metric: t.Any = 1,
               force: bool = False, interface: str | None = None, gateway: str | None = None) -> Plan:
    """Plan the /32 route on Linux from ``ip -j route`` and ``ip -j addr`` output.

    The role's own routes carry ``proto static``; they are kept in line with the
    variables (a changed metric replaces them) and are the only ones state=absent
    removes. Routes from elsewhere (DHCP, an administrator) are never touched.
    """
    metric = _check_state(state, metric, LINUX_MAX_METRIC, gateway)
    routes = parse_ip_route(routes_json)
    addresses = parse_ip_addr(addresses_json)
    warnings: list[str] = []
    current = lookup(routes)
    existing = [r for r in routes if r.network == IMDS_NETWORK]
    ours = [r for r in existing if r.protocol == LINUX_PROTOCOL and r.kind == "unicast"]

    if state == "absent":
        others = [r for r in existing if r not in ours]
        if others:
            warnings.append("left alone (not added by this role, whose routes carry proto static): "
                            + "; ".join(f"{r.describe()} proto {r.protocol or 'boot'}" for r in others))
        remove = [_linux_route_dict(r) for r in ours]
        reason = (f"removing {len(ours)} route(s) for {IMDS_NETWORK} with proto {LINUX_PROTOCOL}" if ours
                  else f"no route for {IMDS_NETWORK} with proto {LINUX_PROTOCOL} exists")
        return Plan("linux", state, None, current, False, existing, None, remove,
                    [_linux_argv("del", r) for r in remove], reason, warnings)

    if interface and interface not in addresses:
        raise RouteDecisionError(f"imds_route_interface {shown(interface)} is not an interface of this host "
                                 f"(known: {', '.join(sorted(addresses)) or 'none'})")
    primary = default_route(routes, interface, warnings)
    if primary.via and not gateway:
        raise RouteDecisionError(f"the default route goes via {primary.via}, a next hop that is no IPv4 address, so "
                                 "the role cannot name one for 169.254.169.254; set imds_route_gateway")
    next_hop = gateway or primary.gateway
    source = _linux_source(primary, addresses, next_hop)
    primary_info = {"interface": primary.interface, "address": source, "gateway": primary.gateway,
                    "metric": primary.metric}
    through_primary = bool(current and current.kind == "unicast" and current.interface == primary.interface)
    desired = Route(IMDS_NETWORK, primary.interface, next_hop, metric, source, LINUX_PROTOCOL)
    matching = [r for r in ours if (r.interface, r.gateway, r.source, r.metric) ==
                (desired.interface, desired.gateway, desired.source, desired.metric)]
    stale = [r for r in ours if r not in matching]
    satisfied = through_primary and (not force or (current is not None and current.network == IMDS_NETWORK))

    add: dict[str, t.Any] | None = None
    if matching:
        reason = f"the route {desired.describe()} is in place"
    elif satisfied and not stale:
        reason = f"169.254.169.254 already leaves through the primary interface {primary.interface}: {_where(current)}"
    else:
        add = _linux_route_dict(desired)
        if stale:
            reason = (f"replacing this role's route ({'; '.join(r.describe() for r in stale)}) "
                      f"with {desired.describe()}")
        elif force:
            reason = f"imds_route_force is set: adding {desired.describe()} (today: {_where(current)})"
        else:
            reason = (f"169.254.169.254 leaves through {_where(current)}, not through the primary "
                      f"interface {primary.interface}; adding {desired.describe()}")
    remove = [_linux_route_dict(r) for r in stale]

    after = [r for r in routes if r not in stale] + ([desired] if add else [])
    winner = lookup(after)
    if winner is None or winner.kind != "unicast" or winner.interface != primary.interface:
        raise RouteDecisionError(
            f"even with this role's route, 169.254.169.254 would leave through {_where(winner)}. "
            f"Remove that route or set imds_route_metric below {winner.metric if winner else 0}")
    clash = [r for r in existing if r not in ours and r.metric == metric and add is not None]
    if clash:
        raise RouteDecisionError(
            f"a route for {IMDS_NETWORK} with metric {metric} already exists ({clash[0].describe()}); "
            "the kernel allows one per metric. Set imds_route_metric to another value")

    commands = [_linux_argv("del", r) for r in remove] + ([_linux_argv("add", add)] if add else [])
    kept = add or (_linux_route_dict(matching[0]) if matching else None)
    return Plan("linux", state, primary_info, current, through_primary, existing, add, remove, commands,
                reason, warnings, kept)


def plan_windows(route_print: t.Any, *, state: str = "present", metric: t.Any = 1, force: bool = False,
                 interface: str | None = None, gateway: str | None = None) -> Plan:
    """Plan the /32 route on Windows from ``route print -4`` output.

    Microsoft's fix passes the primary interface's own address as the gateway
    (``route add 169.254.169.254/32 10.0.1.10 metric 1 -p``), which makes the route
    on-link through that interface; that is the default here too. The persistent rows
    are this role's (and ``route -p``'s) routes: state=absent removes those.
    """
    metric = _check_state(state, metric, WINDOWS_MAX_METRIC, gateway)
    table = parse_route_print(route_print)
    warnings: list[str] = []
    current = lookup(table.active)
    existing = [r for r in table.active if r.network == IMDS_NETWORK]
    persisted = [p for p in table.persistent if p.network == IMDS_NETWORK]

    if state == "absent":
        if not persisted and existing:
            warnings.append("left alone (active but not persistent, so not added by this role): "
                            + "; ".join(r.describe() for r in existing))
        reason = (f"removing the persistent route(s) for {IMDS_NETWORK}" if persisted
                  else f"no persistent route for {IMDS_NETWORK} exists")
        return Plan("windows", state, None, current, False, existing, None, [p.as_dict() for p in persisted],
                    ["route delete 169.254.169.254 mask 255.255.255.255"] if persisted else [], reason, warnings)

    if interface:
        try:
            ipaddress.IPv4Address(interface)
        except ValueError:
            raise RouteDecisionError(
                f"on Windows imds_route_interface is the interface's IPv4 address (the Interface "
                f"column of route print), got {shown(interface)}") from None
        if not any(r.interface == interface for r in table.active):
            raise RouteDecisionError(f"imds_route_interface {interface} is not an interface in route print")
    primary = default_route(table.active, interface, warnings)
    primary_info = {"interface": primary.interface, "address": primary.interface, "gateway": primary.gateway,
                    "metric": primary.metric}
    through_primary = bool(current and current.interface == primary.interface)
    satisfied = through_primary and (not force or (current is not None and current.network == IMDS_NETWORK))
    next_hop = gateway or primary.interface
    add: dict[str, t.Any] | None = None
    remove: list[dict[str, t.Any]] = []
    commands: list[t.Any] = []
    if satisfied:
        reason = f"169.254.169.254 already leaves through the primary interface {primary.interface}: {_where(current)}"
    else:
        add = {"destination": str(IMDS_NETWORK), "gateway": next_hop, "interface": primary.interface,
               "metric": metric}
        remove = [p.as_dict() for p in persisted]
        if remove:
            commands.append("route delete 169.254.169.254 mask 255.255.255.255")
        commands.append(f"route add {IMDS_NETWORK} {next_hop} metric {metric} -p")
        what = f"adding {IMDS_NETWORK} through {next_hop} (interface {primary.interface}, metric {metric})"
        if force and through_primary:
            reason = f"imds_route_force is set: {what} (today: {_where(current)})"
        else:
            reason = (f"169.254.169.254 leaves through {_where(current)}, not through the primary "
                      f"interface {primary.interface}; {what}")
        blocking = [r for r in existing if r.interface != primary.interface]
        if blocking and not persisted:
            warnings.append("a non-persistent route for 169.254.169.254/32 through another interface exists "
                            f"({'; '.join(r.describe() for r in blocking)}); ansible.windows.win_route cannot "
                            "remove it, and it may still win. Remove it with `route delete 169.254.169.254`")
    kept = add or next((p.as_dict() for p in persisted), None)
    return Plan("windows", state, primary_info, current, through_primary, existing, add, remove, commands,
                reason, warnings, kept)
