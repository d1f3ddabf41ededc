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
SEED_ROWS = """\
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
SEPARATOR = "=" * 75


def route_print(rows, persistent="  None\n"):
    """``route print -4`` as Windows prints it around the Active Routes ``rows``: the filters need it whole."""
    return (f"{SEPARATOR}\nInterface List\n  6...00 0d 3a 1b 2c 3d ......Microsoft Hyper-V Network Adapter\n"
            f"  1...........................Software Loopback Interface 1\n{SEPARATOR}\n\nIPv4 Route Table\n"
            f"{SEPARATOR}\nActive Routes:\n{rows}{SEPARATOR}\nPersistent Routes:\n{persistent}")


SEED_TABLE = route_print(SEED_ROWS)

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
    with_route = route_print(SEED_ROWS + "  169.254.169.254  255.255.255.255         On-link         10.0.1.10     11\n")
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
    active_only = route_print(SEED_ROWS + "  169.254.169.254  255.255.255.255         10.0.1.1        10.0.1.10     11\n")
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
===========================================================================
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


# ---------------------------------------------------------------------------------
# Malformed and cut-short tables: one line that says what is wrong, never a plan from part of it.

def one_line(exc):
    text = str(exc.value)
    assert "\n" not in text and text.isprintable(), text
    assert len(text) < 400, text
    return text


def deep_list(levels, leaf="x"):
    for dummy in range(levels):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize("routes, message", [
    ([_route("default", "eth0", gateway="10.0.1.1", type=["unicast"])], "has type a list of 1 item, not a route type"),
    ([_route("default", "eth0", gateway="10.0.1.1", type=5)], "has type 5, not a route type"),
    ([_route("default", "eth0", gateway="10.0.1.1", type="bogus")], "unknown route type 'bogus'"),
    ([_route("default", "eth0", gateway="eth1")], "has gateway 'eth1', which is not an IPv4 address"),
    ([_route("default", "eth0", gateway="10.0.1.256")], "has gateway '10.0.1.256', which is not an IPv4"),
    ([_route("10.9.0.0/16", "eth0", gateway="fe80::1")], "has gateway 'fe80::1', which is not an IPv4"),
    ([_route("default", "eth0", gateway=167772417)], "has gateway 167772417, which is not a string"),
    ([_route("default", "eth0", gateway={"a": 1})], "has gateway an object with 1 key, which is not a string"),
    ([_route("default", "eth0", gateway="10.0.1.1", prefsrc="me")], "has prefsrc 'me', which is not an IPv4"),
    ([_route("default", 5, gateway="10.0.1.1")], "names no device (dev is 5)"),
    ([_route("default", "eth 0", gateway="10.0.1.1")], "names the device 'eth 0', which is no interface name"),
    ([_route("default", "../x", gateway="10.0.1.1")], "which is no interface name"),
    ([_route("default", "e\x1b[2J", gateway="10.0.1.1")], "names the device 'e\\x1b[2J'"),
    ([_route("default", "e" * 100, gateway="10.0.1.1")], "which is no interface name"),
    ([_route(5, "eth0")], "has no destination (entry 0: dst is 5)"),
    ([_route("default", "eth0", gateway="10.0.1.1", protocol=4)], "has protocol 4, which is not a string"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric="٣")], "metric of route default must be an integer"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric="²")], "metric of route default must be an integer"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric=1.5)], "must be an integer between 0 and 4294967295"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric=-1)], "got -1"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric=2 ** 40)], "got 1099511627776"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric=True)], "got True"),
    ([_route("default", "eth0", gateway="10.0.1.1", metric=float("nan"))], "got nan"),
    ([{"dst": "default", "nexthops": 5}], "has nexthops 5, not a list of next hops"),
    ([{"dst": "default", "nexthops": []}], "has nexthops a list of 0 items"),
    ([{"dst": "default", "nexthops": [5]}], "the first next hop of the `ip -j route` entry for default is 5"),
    ([{"dst": "default", "nexthops": [{"dev": "eth0", "gateway": "10.0.1.1"}, {"dev": "eth1", "gateway": "x"}]}],
     "the #2 next hop of the `ip -j route` entry for default has gateway 'x'"),
    ([{"dst": "default", "dev": "eth0", "via": "fe80::1"}], "has via 'fe80::1', not an object with family and host"),
    ([_route("default", "eth0", gateway="10.0.1.1", type=deep_list(100_000))], "has type a list of 1 item"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (b'[{"dst": "default", "dev": "eth\xff0"}]', "not UTF-8 text (byte 31 is 0xff)"),
    (b"\xfe\xff[]", "not UTF-8 text"),
    ("", "is not JSON"),
    ("   ", "is not JSON"),
    ('{"dst": "default", "dev": "eth0"}', "must be a JSON list of objects, got dict"),
    ('[{"dst": "default", "dev": "eth0"}, []]', "got a list whose item 1 is list"),
    ("[" + '{"dst": "default", "dev": "eth0", "gateway": "10.0.1.1"}' * 1, "is not JSON"),  # cut short
    ('[{"dst": "default", "dev": "eth0", "gateway": "10.0.1.1", "metric": NaN}]', "got nan"),
    (5, "must be a JSON list of objects, got int"),
    (None, "must be a JSON list of objects, got NoneType"),
])
def test_malformed_ip_route_is_one_clear_line(routes, message):
    with pytest.raises(RouteTableError) as caught:
        plan_linux(routes, SEED_ADDRS)
    assert message in one_line(caught)


@pytest.mark.parametrize("addrs, message", [
    ([{"ifname": "eth0", "addr_info": 5}], "interface eth0 has addr_info 5, not a list of addresses"),
    ([{"ifname": "eth0", "addr_info": "10.0.1.10/26"}], "has addr_info '10.0.1.10/26', not a list"),
    ([{"ifname": "eth0", "addr_info": {}}], "has addr_info an object with 0 keys"),
    ([{"ifname": "eth0", "addr_info": [5]}], "has an address that is 5, not an object"),
    ([{"ifname": 5, "addr_info": []}], "has no interface name (entry 0: ifname is 5)"),
    ([{"ifname": "eth0", "addr_info": [{"family": ["inet"]}]}], "has family a list of 1 item, which is not a string"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": 5, "prefixlen": 26}]}],
     "unreadable IPv4 address: local 5, prefixlen 26"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.1.10", "prefixlen": "²"}]}],
     "unreadable IPv4 address"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.1.10", "prefixlen": 33}]}],
     "unreadable IPv4 address"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.1.10", "prefixlen": True}]}],
     "prefixlen True"),
    ([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "fe80::1", "prefixlen": 64}]}],
     "local 'fe80::1'"),
    (b"[\x80]", "`ip -j addr` is not UTF-8 text"),
])
def test_malformed_ip_addr_is_one_clear_line(addrs, message):
    with pytest.raises(RouteTableError) as caught:
        plan_linux(SEED_ROUTES, addrs)
    assert message in one_line(caught)


def test_ipv6_default_routes_of_a_table_without_dash_4_are_skipped():
    """`ip -j route show table all` lists IPv6's default route as "default" too (with "pref", an IPv6 gateway)."""
    ipv6 = [{"dst": "default", "gateway": "fd00::1", "dev": "eth0", "metric": 1024, "flags": [], "pref": "medium"},
            {"dst": "default", "dev": "eth1", "metric": 5, "flags": [], "pref": "medium"},
            {"dst": "default", "metric": 1, "flags": [], "nexthops": [{"gateway": "fe80::1", "dev": "eth1"}]},
            {"dst": "fd00::/64", "dev": "eth0", "protocol": "kernel", "metric": 256, "flags": [], "pref": "medium"}]
    plan = plan_linux([*ipv6, *SEED_ROUTES], SEED_ADDRS).as_dict()
    assert plan["primary"]["interface"] == "eth0" and plan["primary"]["gateway"] == "10.0.1.1"
    assert [str(r.network) for r in parse_ip_route(ipv6)] == []


def test_prefixlen_as_digits_and_addr_info_null_are_read():
    addrs = [{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.1.10", "prefixlen": "26"}]},
             {"ifname": "clus0", "addr_info": None}]
    assert plan_linux(SEED_ROUTES, addrs).as_dict()["add"]["source"] == "10.0.1.10"


def test_a_default_route_via_an_ipv6_next_hop_needs_a_gateway():
    routes = [{"dst": "default", "dev": "eth0", "via": {"family": "inet6", "host": "fe80::1"}, "flags": []},
              *SEED_ROUTES[1:]]
    with pytest.raises(RouteDecisionError, match="goes via inet6 fe80::1, a next hop that is no IPv4 address"):
        plan_linux(routes, SEED_ADDRS)
    assert plan_linux(routes, SEED_ADDRS, gateway="10.0.1.1").as_dict()["add"]["gateway"] == "10.0.1.1"


@pytest.mark.parametrize("metric", [float("inf"), float("nan"), 1e308, "٣", "1.5", 1.5, [1], None])
def test_role_metric_values_that_are_no_metric(metric):
    with pytest.raises(RouteDecisionError, match="metric must be an integer between 0 and 9999"):
        plan_windows(SEED_TABLE, metric=metric)


def cut_points(text):
    """Every place a text can be cut: each line end, and every few characters within lines."""
    ends = {i for i, c in enumerate(text) if c == "\n"}
    return sorted(set(range(0, len(text), 3)) | ends | {i + 1 for i in ends})


PERSISTENT_ROWS = ("  Network Address          Netmask  Gateway Address  Metric\n"
                   "          0.0.0.0          0.0.0.0         10.0.1.1  Default\n" + SEPARATOR + "\n")


@pytest.mark.parametrize("full", [FULL_ROUTE_PRINT, SEED_TABLE, route_print(SEED_ROWS, PERSISTENT_ROWS)],
                         ids=["full", "seed", "persistent"])
def test_route_print_cut_anywhere_is_an_error_or_the_whole_table(full):
    """Never a plan made from part of a table: a cut gives the same table as the whole output, or an error.

    One place is told apart by no rule: a cut inside the first word of the Persistent Routes
    column names leaves one word, which is what "None" (localized: "Keine", "Aucun"...) looks
    like. There the table reads as having no persistent routes; the Active Routes are whole.
    """
    whole = parse_route_print(full)
    header = full.find("  Network Address")
    first_word = range(header + 1, header + len("  Network ") + 1) if header >= 0 else range(0)
    plans = 0
    for end in cut_points(full):
        try:
            table = parse_route_print(full[:end])
        except RouteTableError as exc:
            assert "\n" not in str(exc)
            continue
        plans += 1
        if end in first_word:
            assert (table.active, table.persistent) == (whole.active, []), repr(full[end - 40:end])
            continue
        assert (table.active, table.persistent) == (whole.active, whole.persistent), repr(full[end - 40:end])
    assert plans > 0


def test_json_cut_anywhere_is_an_error():
    text = json.dumps(SEED_ROUTES)
    for end in range(len(text)):
        with pytest.raises(RouteTableError):
            parse_ip_route(text[:end])


@pytest.mark.parametrize("text, message", [
    (FULL_ROUTE_PRINT.partition(f"{SEPARATOR}\nPersistent Routes:")[0], "without their ==== line"),
    (SEED_TABLE.replace("  None\n", ""), "ends after the Active Routes, without the Persistent Routes section"),
    (SEED_TABLE.replace("Persistent Routes:\n  None\n", ""), "without the Persistent Routes section"),
    (route_print(SEED_ROWS, "  Network Address  Netmask  Gateway Address  Metric\n"), "end after their column names"),
    (route_print(SEED_ROWS, "  Network Address  Netmask  Gateway Address  Metric\n"
                            "  169.254.169.254  255.255.255.255        10.0.1.10       1\n"), "ends in its persistent"),
    (route_print(SEED_ROWS.replace("  169.254.0.0      255.255.0.0         On-link     169.254.1.156    271\n",
                                   "  169.254.0.0      255.255.0.0      On-li\n")), "line 19 is '169.254.0.0"),
    (route_print(SEED_ROWS.replace("    10.0.1.15  255.255.255.255         On-link         10.0.1.10    266\n",
                                   "    10.0.1.15  255.255.255.255   10.0.1.1  10.0.1.10\n")),
     "the active routes of the `route print` output end without their ==== line"),
    (route_print(SEED_ROWS.replace("On-link         127.0.0.1    331", "On-link  " + " " * 100_000 + "127.0.0.1 331")),
     "end without their ==== line"),
    ("\x1b[2J\x1b]0;title\x07 The requested operation requires elevation.\r\n", "began with: '\\x1b[2J"),
    (b"\xff\xfe=\x00=", "`route print` is not UTF-8 text"),
    (5, "expected the text of `route print`, got int"),
])
def test_route_print_cut_short_or_garbled_is_one_clear_line(text, message):
    with pytest.raises(RouteTableError) as caught:
        plan_windows(text)
    assert message in one_line(caught)


def test_route_print_metrics_are_ascii_digits():
    arabic = SEED_TABLE.replace("10.0.1.10    266\n", "10.0.1.10    ٢٦٦\n", 1)  # the first row: the default
    with pytest.raises(RouteTableError, match="line 11 of the `route print` output starts like a route but is none"):
        plan_windows(arabic)
    with pytest.raises(RouteTableError, match="starts like a route but is none"):
        plan_windows(SEED_TABLE.replace("          0.0.0.0", "          ٠.٠.٠.٠", 1))


def test_a_long_garbled_line_costs_linear_time():
    import time

    started = time.process_time()
    line = "0.0.0.0 0.0.0.0 x" + " " * 200_000 + "y\n"
    with pytest.raises(RouteTableError):
        parse_route_print(route_print(SEED_ROWS + line))
    with pytest.raises(RouteTableError):
        parse_route_print(line * 50)
    assert time.process_time() - started < 10  # a backtracking regex over such lines took minutes
