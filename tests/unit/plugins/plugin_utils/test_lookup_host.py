"""Is the host the controller? The decision the live source depends on."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.plugin_utils._lookup_host import (
    HOST_IS_CONTROLLER,
    Connection,
    _definitions,
    connection_of,
    controller_verdict,
    explicit_verdict,
    is_loopback,
)

PARAMIKO = pytest.mark.skipif(not _definitions("paramiko_ssh"),
                              reason="this ansible-core has no paramiko_ssh connection plugin (it left in 2.21)")


def verdict_for(name, host_vars, default="ssh", template=lambda value: value):
    """The verdict as the lookup reaches it: the connection read from the variables, then decided."""
    return controller_verdict(name, connection_of(name, host_vars, default, template))


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
    pytest.param("vm1", "paramiko", "::1", "ssh", True, "loopback address ::1", marks=PARAMIKO),
    # WinRM on a loopback address is a port forwarded to Windows: the controller does not run Windows
    ("win", "winrm", "localhost", "ssh", False, "winrm to the loopback address localhost, which is a port forwarded"),
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
    host_vars = {key: value for key, value in (("ansible_connection", connection), ("ansible_host", address))
                 if value is not None}
    verdict = verdict_for(name, host_vars, default)
    assert verdict.is_controller is expected
    assert why in verdict.why


@pytest.mark.parametrize("address, expected", [
    ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True),
    ("[::1]", True), ("ip6-localhost", True), ("10.0.0.1", False), ("169.254.169.254", False),
    ("localhost.example.com", False), ("vm1", False), ("", False), ("::2", False),
])
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected


# -- loopback, but the connection goes on elsewhere ------------------------------------------

@pytest.mark.parametrize("host_vars, why", [
    # Vagrant, a container's published port, an ssh tunnel: 127.0.0.1 with another port
    ({"ansible_host": "127.0.0.1", "ansible_port": 2222}, "its port is 2222, not 22"),
    ({"ansible_host": "127.0.0.1", "ansible_port": "2222"}, "its port is 2222"),
    ({"ansible_host": "127.0.0.1", "ansible_ssh_port": 2200}, "its port is 2200"),
    pytest.param({"ansible_host": "localhost", "ansible_connection": "paramiko", "ansible_paramiko_port": 2022},
                 "port is 2022", marks=PARAMIKO),
    ({"ansible_ssh_host": "::1", "ansible_port": 10022}, "its port is 10022"),
    # a jump host or a proxy in any of the three ssh argument variables
    ({"ansible_ssh_common_args": "-o ProxyJump=bastion.example.com"}, "its ssh_common_args sets ProxyJump"),
    ({"ansible_ssh_common_args": "-oProxyJump=bastion"}, "sets ProxyJump"),
    ({"ansible_ssh_common_args": "-o 'ProxyJump bastion'"}, "sets ProxyJump"),
    ({"ansible_ssh_extra_args": "-J admin@bastion:2222"}, "its ssh_extra_args names a jump host (-J)"),
    ({"ansible_ssh_extra_args": "-Jbastion"}, "names a jump host (-J)"),
    ({"ansible_ssh_extra_args": "-vJ bastion"}, "names a jump host (-J)"),
    ({"ansible_ssh_args": "-C -o ControlMaster=auto -o ProxyCommand='ssh -W %h:%p bastion'"},
     "its ssh_args sets ProxyCommand"),
    ({"ansible_ssh_common_args": "-W vm7:22"}, "a forwarded stdio (-W)"),
    ({"ansible_ssh_common_args": "-o HostName=10.0.0.9"}, "sets HostName"),
    ({"ansible_ssh_common_args": "-p 2222"}, "sets the port 2222 (-p)"),
    ({"ansible_ssh_common_args": "-o Port=2222"}, "sets the port 2222 (-o Port)"),
    ({"ansible_ssh_common_args": "-F ./vagrant-ssh-config"}, "another ssh configuration file (-F)"),
    pytest.param({"ansible_ssh_common_args": "-o ProxyJump=bastion", "ansible_connection": "paramiko_ssh"},
                 "sets ProxyJump", marks=PARAMIKO),
    pytest.param({"ansible_connection": "paramiko", "ansible_paramiko_proxy_command": "ssh -W %h:%p bastion"},
                 "its proxy_command is set", marks=PARAMIKO),
    ({"ansible_ssh_common_args": "-o 'ProxyJump"}, "cannot be read"),
])
def test_loopback_with_a_port_proxy_or_jump_is_another_machine(host_vars, why):
    verdict = verdict_for("localhost", host_vars)
    assert verdict.is_controller is False
    assert why in verdict.why
    assert "loopback address" in verdict.why and HOST_IS_CONTROLLER in verdict.why


@pytest.mark.parametrize("host_vars", [
    {"ansible_port": 22},
    {"ansible_port": "22", "ansible_user": "deploy"},  # another user is the same machine
    {"ansible_ssh_common_args": "-o ProxyJump=none -o StrictHostKeyChecking=no -p 22"},
    {"ansible_ssh_common_args": "-o ProxyCommand=none -o Port=22"},
    {"ansible_ssh_extra_args": "-4 -v -i ~/.ssh/id_ed25519 -l root"},
    {"ansible_ssh_args": "-C -o ControlMaster=auto -o ControlPersist=60s"},
    pytest.param({"ansible_connection": "paramiko", "ansible_paramiko_proxy_command": ""}, marks=PARAMIKO),
])
def test_loopback_on_port_22_without_a_detour_is_the_controller(host_vars):
    verdict = verdict_for("localhost", host_vars)
    assert verdict.is_controller is True, verdict.why


def test_the_configuration_counts_like_the_variables(monkeypatch):
    """ssh_args, remote_port... from the environment or ansible.cfg apply to every host: read them too."""
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ProxyJump=bastion")
    assert "its ssh_args sets ProxyJump" in verdict_for("localhost", {}).why
    monkeypatch.delenv("ANSIBLE_SSH_ARGS")
    monkeypatch.setenv("ANSIBLE_REMOTE_PORT", "2222")
    assert "its port is 2222" in verdict_for("localhost", {}).why
    assert verdict_for("localhost", {"ansible_port": 22}).is_controller is True  # the host's variable wins


def test_variables_are_read_templated():
    values = {"{{ address }}": "127.0.0.1", "{{ port }}": 2222, "{{ conn }}": "local", "{{ far }}": "192.0.2.7"}

    def template(value):
        return values.get(value, value)

    assert "ssh to 192.0.2.7" in verdict_for("vm1", {"ansible_host": "{{ far }}"}, template=template).why
    forwarded = verdict_for("vm1", {"ansible_host": "{{ address }}", "ansible_port": "{{ port }}"}, template=template)
    assert forwarded.is_controller is False and "127.0.0.1" in forwarded.why and "port is 2222" in forwarded.why
    assert verdict_for("vm1", {"ansible_connection": "{{ conn }}"}, template=template).is_controller is True


@pytest.mark.parametrize("plugin", [
    "community.docker.docker", "community.docker.docker_api", "containers.podman.podman",
    "kubernetes.core.kubectl", "community.general.lxd", "community.general.chroot",
    "ansible.netcommon.network_cli", "ansible.netcommon.httpapi", "ansible.netcommon.netconf",
    "amazon.aws.aws_ssm", "community.libvirt.libvirt_qemu", "my.own.connection", "sshx", "locall",
])
def test_every_other_connection_is_another_machine(plugin):
    verdict = verdict_for("localhost", {"ansible_connection": plugin, "ansible_host": "127.0.0.1"})
    assert verdict.is_controller is False and "reaches another system" in verdict.why


@pytest.mark.parametrize("plugin", ["winrm", "psrp", "ansible.builtin.winrm", "ansible.legacy.psrp"])
def test_windows_connections_are_never_the_controller(plugin):
    for address in ("127.0.0.1", "::1", "localhost", "192.0.2.4"):
        assert verdict_for("win", {"ansible_connection": plugin, "ansible_host": address}).is_controller is False


@pytest.mark.parametrize("explicit, expected", [(True, True), (False, False)])
def test_the_host_variable_says_it_outright(explicit, expected):
    """Only the user knows that 127.0.0.1:2222 is the controller's own sshd, or a local host is not."""
    for connection in (Connection("ssh", "its ansible_connection", "127.0.0.1", 2222),
                       Connection("local", "its ansible_connection"),
                       Connection("community.docker.docker", "its ansible_connection")):
        verdict = controller_verdict("h", connection, explicit)
        assert verdict.is_controller is expected
        assert verdict.why == f"its {HOST_IS_CONTROLLER} is {'true' if explicit else 'false'}"
    assert explicit_verdict(explicit) == controller_verdict("h", Connection("ssh", "x", "192.0.2.1"), explicit)


def test_text_from_variables_is_escaped_in_the_reason():
    verdict = verdict_for("vm1", {"ansible_host": "\x1b[2J192.0.2.1\r\nok"})
    assert verdict.why.isprintable() and "\\x1b[2J" in verdict.why
