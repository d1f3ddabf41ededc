"""Is the host the controller? The decision the live source depends on."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.plugin_utils._lookup_host import controller_verdict, is_loopback


@pytest.mark.parametrize("name, connection, address, default, expected, why", [
    # a local connection is the controller, whatever the name
    ("localhost", "local", None, "ssh", True, "its ansible_connection is local"),
    ("vm1", "local", "10.0.0.4", "ssh", True, "its ansible_connection is local"),
    ("vm1", "ansible.builtin.local", None, "ssh", True, "ansible.builtin.local"),
    # ansible-pull: -c local on the command line, hosts named after the machine
    ("web-01.example.com", None, None, "local", True, "the default connection of this run is local"),
    # logging in to a loopback address logs in to the controller
    ("localhost", None, None, "ssh", True, "ssh to the loopback address localhost"),
    ("127.0.0.1", None, None, "ssh", True, "loopback address 127.0.0.1"),
    ("vm1", "ssh", "127.0.0.2", "ssh", True, "loopback address 127.0.0.2"),
    ("vm1", "paramiko", "::1", "ssh", True, "loopback address ::1"),
    ("win", "winrm", "localhost", "ssh", True, "winrm to the loopback address"),
    # anything else is another machine
    ("vm1", None, None, "ssh", False, "the default connection of this run is ssh to vm1"),
    ("vm1", "ssh", "192.0.2.10", "ssh", False, "its ansible_connection is ssh to 192.0.2.10"),
    ("localhost", "ssh", "10.1.2.3", "ssh", False, "ssh to 10.1.2.3"),
    ("web", "community.docker.docker", "localhost", "ssh", False, "reaches another system"),
    ("jail", "community.general.chroot", None, "ssh", False, "reaches another system"),
    ("sw1", "ansible.netcommon.network_cli", "127.0.0.1", "ssh", False, "reaches another system"),
    # a host connection wins over the run's default
    ("vm1", "ssh", "192.0.2.10", "local", False, "ssh to 192.0.2.10"),
    ("vm1", "", None, None, False, "ssh to vm1"),
])
def test_verdict(name, connection, address, default, expected, why):
    verdict = controller_verdict(name, connection, address, default)
    assert verdict.is_controller is expected
    assert why in verdict.why


@pytest.mark.parametrize("address, expected", [
    ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True),
    ("[::1]", True), ("ip6-localhost", True), ("10.0.0.1", False), ("169.254.169.254", False),
    ("localhost.example.com", False), ("vm1", False), ("", False), ("::2", False),
])
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected
