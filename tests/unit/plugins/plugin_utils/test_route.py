"""The imds.azure.route decision: Windows `route print` and Linux `ip -j` tables in, plans out."""
from __future__ import annotations

import json

import pytest

from ansible_collections.imds.azure.plugins.plugin_utils._route import (
    RouteDecisionError,
    RouteTableError,
    lookup,
    parse_ip_addr,
    parse_ip_route,
    parse_route_print,
    plan_linux,
    plan_windows,
)

# The example from Microsoft's documentation, exactly as IMDS-REFERENCE.md quotes it: a
# failover-cluster node whose cluster adapter (169.254.1.156) owns 169.254.0.0/16.
SEED_TABLE = """\
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266
         10.0.1.0  255.255.255.192         On-link         10.0.1.10    266
        10.0.1.10  255.255.255.255         On-link         10.0.1.10    266
        10.0.1.15  255.255.255.255         On-link         10.0.1.10    266
        10.0.1.63  255.255.255.255         On-link         10.0.1.10    266
        127.0.0.0        255.0.0.0         On-link         127.0.0.1    331
        127.0.0.1  255.255.255.255         On-link         127.0.0.1    331
  127.255.255.255  255.255.255.255         On-link         127.0.0.1    331
      169.254.0.0      255.255.0.0         On-link     169.254.1.156    271
    169.254.1.156  255.255.255.255         On-link     169.254.1.156    271
  169.254.255.255  255.255.255.255         On-link     169.254.1.156    271
        224.0.0.0        240.0.0.0         On-link         127.0.0.1    331
        224.0.0.0        240.0.0.0         On-link     169.254.1.156    271
        224.0.0.0        240.0.0.0         On-link         10.0.1.10    266
  255.255.255.255  255.255.255.255         On-link         127.0.0.1    331
  255.255.255.255  255.255.255.255         On-link     169.254.1.156    271
  255.255.255.255  255.255.255.255         On-link         10.0.1.10    266
"""

# The same node after `route add 169.254.169.254/32 10.0.1.10 metric 1 -p`, as a whole
# `route print` shows it: interface list, IPv4 active and persistent routes, IPv6 section.
FULL_ROUTE_PRINT = """\
===========================================================================
Interface List
  6...00 0d 3a 1b 2c 3d ......Microsoft Hyper-V Network Adapter
 14...02 1e 4c 9a 77 01 ......Microsoft Failover Cluster Virtual Adapter
  1...........................Software Loopback Interface 1
===========================================================================

IPv4 Route Table
===========================================================================
Active Routes:
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266
         10.0.1.0  255.255.255.192         On-link         10.0.1.10    266
        10.0.1.10  255.255.255.255         On-link         10.0.1.10    266
        10.0.1.63  255.255.255.255         On-link         10.0.1.10    266
        127.0.0.0        255.0.0.0         On-link         127.0.0.1    331
        127.0.0.1  255.255.255.255         On-link         127.0.0.1    331
  127.255.255.255  255.255.255.255         On-link         127.0.0.1    331
      169.254.0.0      255.255.0.0         On-link     169.254.1.156    271
    169.254.1.156  255.255.255.255         On-link     169.254.1.156    271
  169.254.169.254  255.255.255.255         On-link         10.0.1.10     11
  169.254.255.255  255.255.255.255         On-link     169.254.1.156    271
        224.0.0.0        240.0.0.0         On-link         127.0.0.1    331
        224.0.0.0        240.0.0.0         On-link         10.0.1.10    266
  255.255.255.255  255.255.255.255         On-link         127.0.0.1    331
  255.255.255.255  255.255.255.255         On-link         10.0.1.10    266
===========================================================================
Persistent Routes:
  Network Address          Netmask  Gateway Address  Metric
  169.254.169.254  255.255.255.255        10.0.1.10       1
===========================================================================

IPv6 Route Table
===========================================================================
Active Routes:
 If Metric Network Destination      Gateway
  1    331 ::1/128                  On-link
  6    266 fe80::/64                On-link
 14    271 fe80::/64                On-link
  6    266 fe80::5d4e:2a1b:7c3e:9a10/128
                                    On-link
  1    331 ff00::/8                 On-link
===========================================================================
Persistent Routes:
  None
"""

NO_CLUSTER_TABLE = "\n".join(line for line in SEED_TABLE.splitlines() if "169.254." not in line)

TWO_DEFAULTS_TABLE = SEED_TABLE.replace(
    "          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266\n",
    "          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266\n"
    "          0.0.0.0          0.0.0.0         10.0.2.1        10.0.2.20     25\n"
    "         10.0.2.0    255.255.255.0         On-link         10.0.2.20     25\n")


def test_seed_table_reads_every_row():
    table = parse_route_print(SEED_TABLE)
    assert len(table.active) == 17
    assert table.persistent == []
    default = table.active[0]
    assert (str(default.network), default.gateway, default.interface, default.metric) == \
        ("0.0.0.0/0", "10.0.1.1", "10.0.1.10", 266)
    assert table.active[8].gateway is None  # On-link
    current = lookup(table.active)
    assert (str(current.network), current.interface) == ("169.254.0.0/16", "169.254.1.156")


def test_seed_table_plans_the_documented_fix():
    plan = plan_windows(SEED_TABLE).as_dict()
    assert plan["primary"] == {"interface": "10.0.1.10", "address": "10.0.1.10", "gateway": "10.0.1.1", "metric": 266}
    assert plan["current"]["destination"] == "169.254.0.0/16"
    assert plan["current"]["interface"] == "169.254.1.156"
    assert plan["through_primary"] is False
    assert plan["existing"] == []
    assert plan["action"] == "add" and plan["changed"] is True
    # route.exe takes the interface's own address as the gateway: an on-link route through it.
    assert plan["add"] == {"destination": "169.254.169.254/32", "gateway": "10.0.1.10",
                           "interface": "10.0.1.10", "metric": 1}
    assert plan["commands"] == ["route add 169.254.169.254/32 10.0.1.10 metric 1 -p"]
    assert "169.254.1.156" in plan["reason"] and "10.0.1.10" in plan["reason"]
    assert plan["warnings"] == []


def test_windows_metric_and_gateway_are_passed_through():
    plan = plan_windows(SEED_TABLE, metric=5, gateway="10.0.1.1").as_dict()
    assert plan["add"] == {"destination": "169.254.169.254/32", "gateway": "10.0.1.1",
                           "interface": "10.0.1.10", "metric": 5}
    assert plan["commands"] == ["route add 169.254.169.254/32 10.0.1.1 metric 5 -p"]


def test_windows_two_default_routes_lowest_metric_wins():
    plan = plan_windows(TWO_DEFAULTS_TABLE).as_dict()
    assert plan["primary"]["interface"] == "10.0.2.20"
    assert plan["primary"]["metric"] == 25
    assert plan["add"]["gateway"] == "10.0.2.20"
    assert plan["warnings"] == []


def test_windows_tied_default_routes_take_the_first_and_warn():
    tied = TWO_DEFAULTS_TABLE.replace("10.0.2.20     25", "10.0.2.20    266")
    plan = plan_windows(tied).as_dict()
    assert plan["primary"]["interface"] == "10.0.1.10"
    assert len(plan["warnings"]) == 1
    assert "share the lowest metric 266" in plan["warnings"][0]
    assert "imds_route_interface" in plan["warnings"][0]
    chosen = plan_windows(tied, interface="10.0.2.20").as_dict()
    assert chosen["primary"]["interface"] == "10.0.2.20" and chosen["warnings"] == []


def test_windows_table_that_already_has_the_route_needs_nothing():
    with_route = SEED_TABLE + "  169.254.169.254  255.255.255.255         On-link         10.0.1.10     11\n"
    plan = plan_windows(with_route).as_dict()
    assert plan["action"] == "none" and plan["changed"] is False
    assert plan["through_primary"] is True
    assert plan["current"]["destination"] == "169.254.169.254/32"
    assert [r["interface"] for r in plan["existing"]] == ["10.0.1.10"]
    assert plan["commands"] == []
    assert plan_windows(with_route, force=True).as_dict()["action"] == "none"


def test_windows_without_cluster_adapter_no_change_unless_forced():
    plan = plan_windows(NO_CLUSTER_TABLE).as_dict()
    assert plan["action"] == "none"
    assert plan["current"]["destination"] == "0.0.0.0/0"
    assert plan["through_primary"] is True
    assert "already leaves through the primary interface 10.0.1.10" in plan["reason"]
    forced = plan_windows(NO_CLUSTER_TABLE, force=True).as_dict()
    assert forced["action"] == "add"
    assert forced["commands"] == ["route add 169.254.169.254/32 10.0.1.10 metric 1 -p"]
    assert "imds_route_force" in forced["reason"]


def test_full_route_print_parses_only_ipv4():
    table = parse_route_print(FULL_ROUTE_PRINT)
    assert len(table.active) == 15
    assert all(r.network.version == 4 for r in table.active)
    assert [p.as_dict() for p in table.persistent] == [
        {"destination": "169.254.169.254/32", "gateway": "10.0.1.10", "metric": 1}]
    plan = plan_windows(FULL_ROUTE_PRINT).as_dict()
    assert plan["action"] == "none"
    assert plan["current"] == {"destination": "169.254.169.254/32", "interface": "10.0.1.10", "gateway": None,
                               "metric": 11, "source": None, "protocol": None, "type": "unicast"}


def test_windows_absent_removes_the_persistent_route_only():
    plan = plan_windows(FULL_ROUTE_PRINT, state="absent").as_dict()
    assert plan["action"] == "remove"
    assert plan["remove"] == [{"destination": "169.254.169.254/32", "gateway": "10.0.1.10", "metric": 1}]
    assert plan["commands"] == ["route delete 169.254.169.254 mask 255.255.255.255"]
    assert plan_windows(SEED_TABLE, state="absent").as_dict()["action"] == "none"
    active_only = SEED_TABLE + "  169.254.169.254  255.255.255.255         10.0.1.1        10.0.1.10     11\n"
    kept = plan_windows(active_only, state="absent").as_dict()
    assert kept["action"] == "none"
    assert "not persistent" in kept["warnings"][0]


def test_windows_route_through_the_cluster_adapter_is_replaced():
    wrong = FULL_ROUTE_PRINT.replace(
        "  169.254.169.254  255.255.255.255         On-link         10.0.1.10     11",
        "  169.254.169.254  255.255.255.255         On-link     169.254.1.156    272").replace(
        "  169.254.169.254  255.255.255.255        10.0.1.10       1",
        "  169.254.169.254  255.255.255.255    169.254.1.156       1")
    plan = plan_windows(wrong).as_dict()
    assert plan["action"] == "replace"
    assert plan["remove"] == [{"destination": "169.254.169.254/32", "gateway": "169.254.1.156", "metric": 1}]
    assert plan["add"]["gateway"] == "10.0.1.10"
    assert plan["commands"] == ["route delete 169.254.169.254 mask 255.255.255.255",
                                "route add 169.254.169.254/32 10.0.1.10 metric 1 -p"]


def test_localized_route_print_is_read_by_shape():
    german = """\
IPv4-Routentabelle
===========================================================================
Aktive Routen:
     Netzwerkziel    Netzwerkmaske          Gateway    Schnittstelle Metrik
          0.0.0.0          0.0.0.0         10.0.1.1        10.0.1.10    266
      169.254.0.0      255.255.0.0   Auf Verbindung     169.254.1.156    271
===========================================================================
Ständige Routen:
  Netzwerkadresse          Netzmaske  Gatewayadresse  Metrik
          0.0.0.0          0.0.0.0         10.0.1.1  Standard
"""
    table = parse_route_print(german)
    assert [(str(r.network), r.gateway) for r in table.active] == [("0.0.0.0/0", "10.0.1.1"), ("169.254.0.0/16", None)]
    assert table.persistent[0].metric is None
    assert plan_windows(german).as_dict()["add"]["gateway"] == "10.0.1.10"


@pytest.mark.parametrize("text, message", [
    ("", "found no IPv4 Active Routes"),
    ("The requested operation requires elevation.", "began with: 'The requested operation requires elevation.'"),
    ("IPv6 Route Table\n  1    331 ::1/128    On-link\n", "found no IPv4 Active Routes"),
    ("  999.0.0.0  255.0.0.0  On-link  10.0.1.10  1", "not a valid IPv4 network"),
    ("  10.0.0.0  255.0.255.0  On-link  10.0.1.10  1", "not a valid IPv4 network"),
])
def test_unreadable_route_print_is_a_clear_error(text, message):
    with pytest.raises(RouteTableError, match=message):
        plan_windows(text)


def test_route_print_must_be_text():
    with pytest.raises(RouteTableError, match="expected the text of `route print`, got list"):
        parse_route_print(["0.0.0.0"])


def test_windows_without_default_route_asks_for_the_interface():
    no_default = "\n".join(line for line in SEED_TABLE.splitlines() if "10.0.1.1 " not in line)
    with pytest.raises(RouteDecisionError, match="no default route .* set imds_route_interface"):
        plan_windows(no_default)
    assert plan_windows(no_default, interface="10.0.1.10").as_dict()["add"]["interface"] == "10.0.1.10"


@pytest.mark.parametrize("kwargs, message", [
    ({"state": "gone"}, "state must be 'present' or 'absent'"),
    ({"metric": 10000}, "metric must be an integer between 0 and 9999"),
    ({"metric": "one"}, "metric must be an integer"),
    ({"metric": True}, "metric must be an integer"),
    ({"gateway": "nowhere"}, "gateway must be an IPv4 address"),
    ({"interface": "Ethernet"}, "imds_route_interface is the interface's IPv4 address"),
    ({"interface": "10.9.9.9"}, "10.9.9.9 is not an interface in route print"),
])
def test_windows_bad_arguments(kwargs, message):
    with pytest.raises(RouteDecisionError, match=message):
        plan_windows(SEED_TABLE, **kwargs)


# ---------------------------------------------------------------------------------
# Linux: the same situations as `ip -j route` / `ip -j addr` print them.

def _route(dst, dev=None, **extra):
    entry = {"dst": dst, **({"dev": dev} if dev else {}), **extra}
    entry.setdefault("flags", [])
    return entry


SEED_ROUTES = [
    _route("default", "eth0", gateway="10.0.1.1"),
    _route("10.0.1.0/26", "eth0", protocol="kernel", scope="link", prefsrc="10.0.1.10"),
    _route("169.254.0.0/16", "clus0", protocol="kernel", scope="link", prefsrc="169.254.1.156"),
]


def _link(name, *addresses, index=2):
    info = []
    for address in addresses:
        local, prefixlen = address.split("/")
        info.append({"family": "inet", "local": local, "prefixlen": int(prefixlen), "scope": "global", "label": name})
    info.append({"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"})
    return {"ifindex": index, "ifname": name, "flags": ["UP", "LOWER_UP"], "operstate": "UP", "addr_info": info}


SEED_ADDRS = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    _link("eth0", "10.0.1.10/26", index=2),
    _link("clus0", "169.254.1.156/16", index=3),
]
OURS = _route("169.254.169.254", "eth0", gateway="10.0.1.1", protocol="static", prefsrc="10.0.1.10", metric=1)
ADD_ARGV = ["ip", "-4", "route", "add", "169.254.169.254/32", "via", "10.0.1.1", "dev", "eth0",
            "src", "10.0.1.10", "metric", "1", "proto", "static"]


def test_linux_seed_situation_adds_the_route_with_source_address():
    plan = plan_linux(json.dumps(SEED_ROUTES), json.dumps(SEED_ADDRS)).as_dict()
    assert plan["primary"] == {"interface": "eth0", "address": "10.0.1.10", "gateway": "10.0.1.1", "metric": 0}
    assert plan["current"]["destination"] == "169.254.0.0/16"
    assert plan["current"]["interface"] == "clus0"
    assert plan["through_primary"] is False
    assert plan["action"] == "add"
    assert plan["add"] == {"destination": "169.254.169.254/32", "interface": "eth0", "gateway": "10.0.1.1",
                           "source": "10.0.1.10", "metric": 1, "protocol": "static"}
    assert plan["commands"] == [ADD_ARGV]
    assert plan["route"] == plan["add"]  # what the boot unit must restore
    assert "through 169.254.0.0/16 on-link on clus0" in plan["reason"]


def test_linux_two_default_routes_lowest_metric_wins():
    routes = [_route("default", "eth1", gateway="10.0.2.1", metric=200),
              _route("default", "eth0", gateway="10.0.1.1", protocol="dhcp", prefsrc="10.0.1.10", metric=100),
              *SEED_ROUTES[1:], _route("10.0.2.0/24", "eth1", protocol="kernel", prefsrc="10.0.2.20")]
    addrs = [*SEED_ADDRS, _link("eth1", "10.0.2.20/24", index=4)]
    plan = plan_linux(routes, addrs).as_dict()
    assert plan["primary"] == {"interface": "eth0", "address": "10.0.1.10", "gateway": "10.0.1.1", "metric": 100}
    assert plan["add"]["interface"] == "eth0"
    assert plan["warnings"] == []
    routes[0]["metric"] = 100
    tied = plan_linux(routes, addrs).as_dict()
    assert tied["primary"]["interface"] == "eth1"
    assert "2 default routes share the lowest metric 100" in tied["warnings"][0]
    assert plan_linux(routes, addrs, interface="eth0").as_dict()["add"]["interface"] == "eth0"


def test_linux_table_that_already_has_the_route_needs_nothing():
    plan = plan_linux([*SEED_ROUTES, OURS], SEED_ADDRS).as_dict()
    assert plan["action"] == "none" and plan["commands"] == []
    assert plan["through_primary"] is True
    assert plan["current"]["destination"] == "169.254.169.254/32"
    assert plan["existing"][0]["protocol"] == "static"
    assert plan["route"] == {"destination": "169.254.169.254/32", "interface": "eth0", "gateway": "10.0.1.1",
                             "source": "10.0.1.10", "metric": 1, "protocol": "static"}
    assert plan_linux([*SEED_ROUTES, OURS], SEED_ADDRS, force=True).as_dict()["action"] == "none"


def test_linux_changed_metric_replaces_the_roles_route():
    plan = plan_linux([*SEED_ROUTES, OURS], SEED_ADDRS, metric=7).as_dict()
    assert plan["action"] == "replace"
    assert plan["commands"] == [
        ["ip", "-4", "route", "del", "169.254.169.254/32", "via", "10.0.1.1", "dev", "eth0", "metric", "1",
         "proto", "static"],
        ADD_ARGV[:12] + ["7", "proto", "static"]]


def test_linux_without_cluster_interface_no_change_unless_forced():
    routes, addrs = [SEED_ROUTES[0], SEED_ROUTES[1]], SEED_ADDRS[:2]
    plan = plan_linux(routes, addrs).as_dict()
    assert plan["action"] == "none"
    assert plan["current"]["destination"] == "0.0.0.0/0"
    assert "already leaves through the primary interface eth0" in plan["reason"]
    assert plan["route"] is None  # nothing of the role's to keep across reboots
    forced = plan_linux(routes, addrs, force=True).as_dict()
    assert forced["action"] == "add" and forced["commands"] == [ADD_ARGV]


def test_linux_absent_removes_only_the_roles_route():
    dhcp = _route("169.254.169.254", "eth0", gateway="10.0.1.1", protocol="dhcp", prefsrc="10.0.1.10", metric=100)
    plan = plan_linux([*SEED_ROUTES, OURS, dhcp], SEED_ADDRS, state="absent").as_dict()
    assert plan["action"] == "remove"
    assert plan["route"] is None
    assert plan["commands"] == [
        ["ip", "-4", "route", "del", "169.254.169.254/32", "via", "10.0.1.1", "dev", "eth0", "metric", "1",
         "proto", "static"]]
    assert "proto dhcp" in plan["warnings"][0]
    assert plan_linux(SEED_ROUTES, SEED_ADDRS, state="absent").as_dict()["action"] == "none"


def test_linux_dhcp_host_route_on_the_primary_is_enough():
    # Azure's DHCP pushes 169.254.169.254/32 via the gateway; that already beats the /16.
    dhcp = _route("169.254.169.254", "eth0", gateway="10.0.1.1", protocol="dhcp", prefsrc="10.0.1.10", metric=100)
    plan = plan_linux([*SEED_ROUTES, dhcp], SEED_ADDRS).as_dict()
    assert plan["action"] == "none"
    assert plan["through_primary"] is True


def test_linux_host_route_through_another_interface_that_would_still_win_is_an_error():
    other = _route("169.254.169.254", "clus0", protocol="boot", metric=0)
    with pytest.raises(RouteDecisionError, match="would leave through 169.254.169.254/32 on-link on clus0 "
                                                 r"\(metric 0\).*below 0"):
        plan_linux([*SEED_ROUTES, other], SEED_ADDRS)
    other["metric"] = 1
    with pytest.raises(RouteDecisionError, match="would leave through .* on clus0"):
        plan_linux([*SEED_ROUTES, other], SEED_ADDRS)
    other["metric"] = 50
    assert plan_linux([*SEED_ROUTES, other], SEED_ADDRS).as_dict()["action"] == "add"


def test_linux_blackholed_link_local_range_counts_as_elsewhere():
    routes = [SEED_ROUTES[0], SEED_ROUTES[1], {"type": "blackhole", "dst": "169.254.0.0/16", "flags": []}]
    plan = plan_linux(routes, SEED_ADDRS).as_dict()
    assert plan["current"]["type"] == "blackhole"
    assert plan["action"] == "add"
    assert "blackhole route 169.254.0.0/16" in plan["reason"]


def test_linux_multipath_default_takes_the_first_hop_and_warns():
    routes = [{"dst": "default", "metric": 10, "flags": [], "nexthops": [
        {"gateway": "10.0.1.1", "dev": "eth0", "weight": 1, "flags": []},
        {"gateway": "10.0.2.1", "dev": "eth1", "weight": 1, "flags": []}]}, *SEED_ROUTES[1:]]
    plan = plan_linux(routes, [*SEED_ADDRS, _link("eth1", "10.0.2.20/24", index=4)]).as_dict()
    assert plan["add"]["interface"] == "eth0" and plan["add"]["gateway"] == "10.0.1.1"
    assert "multipath" in plan["warnings"][0]


def test_linux_source_is_the_address_in_the_gateways_subnet():
    routes = [_route("default", "eth0", gateway="10.0.1.1"), *SEED_ROUTES[1:]]
    addrs = [_link("eth0", "192.168.7.5/24", "10.0.1.10/26"), SEED_ADDRS[2]]
    assert plan_linux(routes, addrs).as_dict()["add"]["source"] == "10.0.1.10"


def test_linux_local_and_ipv6_entries_are_ignored():
    routes = parse_ip_route([*SEED_ROUTES,
                             {"type": "local", "dst": "10.0.1.10", "dev": "eth0", "flags": []},
                             {"dst": "fe80::/64", "dev": "eth0", "metric": 256, "flags": []}])
    assert [str(r.network) for r in routes] == ["0.0.0.0/0", "10.0.1.0/26", "169.254.0.0/16"]
    assert [str(a) for a in parse_ip_addr(SEED_ADDRS)["eth0"]] == ["10.0.1.10/26"]


@pytest.mark.parametrize("routes, message", [
    ("Error: ipv4: FIB table does not exist.", r"`ip -j route` is not JSON .* began with: 'Error: ipv4"),
    ("", "`ip -j route` is not JSON"),
    ('{"dst": "default"}', "must be a JSON list of objects, got dict"),
    ("[1, 2]", "must be a JSON list of objects"),
    ('[{"dev": "eth0"}]', "entry has no destination"),
    ('[{"dst": "10.0.0.0/33", "dev": "eth0"}]', "invalid destination '10.0.0.0/33'"),
    ('[{"dst": "default", "gateway": "10.0.1.1"}]', "names no device"),
    ('[{"dst": "default", "dev": "eth0", "metric": "low"}]', "metric of route default must be an integer"),
    ('[{"dst": "default", "nexthops": [{"gateway": "10.0.1.1"}]}]', "first next hop .* names no device"),
])
def test_linux_garbage_route_output_is_a_clear_error(routes, message):
    with pytest.raises(RouteTableError, match=message):
        plan_linux(routes, SEED_ADDRS)


@pytest.mark.parametrize("addrs, message", [
    ("Cannot open netlink socket", "`ip -j addr` is not JSON"),
    ([{"addr_info": []}], "entry has no interface name"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.1.10"}]}], "unreadable IPv4 address"),
])
def test_linux_garbage_addr_output_is_a_clear_error(addrs, message):
    with pytest.raises(RouteTableError, match=message):
        plan_linux(SEED_ROUTES, addrs)


def test_linux_decision_errors():
    with pytest.raises(RouteDecisionError, match="no default route"):
        plan_linux(SEED_ROUTES[1:], SEED_ADDRS)
    with pytest.raises(RouteDecisionError, match=r"imds_route_interface 'eth9' is not an interface .*clus0, eth0, lo"):
        plan_linux(SEED_ROUTES, SEED_ADDRS, interface="eth9")
    with pytest.raises(RouteDecisionError, match="interface eth0 is not in the `ip -j addr` output"):
        plan_linux(SEED_ROUTES, SEED_ADDRS[2:])
    with pytest.raises(RouteDecisionError, match="eth0 holds the default route but has no IPv4 address"):
        plan_linux(SEED_ROUTES, [{"ifname": "eth0", "addr_info": []}])
    with pytest.raises(RouteDecisionError, match="metric must be an integer between 0 and 4294967295"):
        plan_linux(SEED_ROUTES, SEED_ADDRS, metric=-1)
