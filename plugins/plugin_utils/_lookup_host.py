# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Is the host a template is rendered for the controller itself?

IMDS answers only for the machine that asks. A lookup runs on the controller, so a
live answer describes the controller; it is the right answer only when the host is
the controller. We decide that from the host's variables, templated, as Ansible would
connect:

- the host variable ``imds_azure_lookup_host_is_controller`` (``true`` or ``false``)
  says it outright, whatever the connection;
- a ``local`` connection (the implicit ``localhost`` has one, ``ansible-pull`` passes
  ``-c local``) runs everything on the controller: it is the controller;
- ``ssh`` or ``paramiko`` to a loopback address (``localhost``, ``127.0.0.0/8``,
  ``::1``) logs in to the controller, unless the connection leaves it on the way: a
  port other than 22 (Vagrant's ``127.0.0.1:2222``, a container's forwarded port, a
  tunnel), a proxy or jump host (``ProxyJump``, ``ProxyCommand``, ``-J``, ``-W``), a
  ``HostName`` or another ssh configuration file (``-F``) in the ssh arguments. Those
  reach another machine;
- ``winrm`` and ``psrp`` reach Windows, and Ansible's controller does not run Windows:
  on a loopback address they are a forwarded port to another machine;
- anything else is another machine: a remote address, a container, chroot, network
  device or cloud connection, and every connection plugin we do not know (a container
  on the controller is a different host in the inventory, and we would rather refuse
  than answer for the wrong one).

``controller_verdict()`` is the pure decision; ``connection_of()`` reads what it needs
from the host's variables and Ansible's configuration, as the connection plugin would
(``ansible_port`` or ``ansible_ssh_port``, ``remote_port`` in ``ansible.cfg``,
``ANSIBLE_SSH_COMMON_ARGS``...).

``delegate_to`` does not change the answer: templates are rendered with the
variables of ``inventory_hostname``, so the lookup answers for that host.
"""

from __future__ import annotations

import ipaddress
import shlex
import typing as t

from ansible_collections.imds.azure.plugins.module_utils._text import printable, whole_number

# The host variable that says whether the host is the controller, whatever its connection.
HOST_IS_CONTROLLER = "imds_azure_lookup_host_is_controller"

LOCAL = "local"
SSH_PLUGINS = ("ssh", "paramiko_ssh")  # log in over ssh: the controller when on loopback, directly
WINDOWS_PLUGINS = ("winrm", "psrp")
SSH_PORT = 22
LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"))
_ALIASES = {"smart": "ssh", "paramiko": "paramiko_ssh"}
# ssh(1)'s options: those that take an argument, and the ones among them that lead elsewhere.
_SSH_ARG_OPTIONS = frozenset("BbcDEeFIiJLlmOoPpQRSWw")
_SSH_ELSEWHERE = {"J": "a jump host (-J)", "W": "a forwarded stdio (-W)", "F": "another ssh configuration file (-F)"}
_SSH_CONFIG_ELSEWHERE = {"proxyjump": "ProxyJump", "proxycommand": "ProxyCommand", "hostname": "HostName"}
# The options of each connection plugin that say where it goes (read from its configuration).
_ADDRESS_OPTION = {"ssh": "host", "paramiko_ssh": "remote_addr", "winrm": "remote_addr", "psrp": "remote_addr"}
_SSH_ARGUMENTS = ("ssh_args", "ssh_common_args", "ssh_extra_args")


class Verdict(t.NamedTuple):
    is_controller: bool
    why: str


class Connection(t.NamedTuple):
    """How Ansible reaches a host, as far as the decision needs it.

    ``plugin`` is the connection as set (``ssh``, ``ansible.builtin.paramiko_ssh``,
    ``community.docker.docker``); ``origin`` says where it was set; ``address`` is
    where a login connection goes (None: the inventory name); ``port`` is its port
    option (None: the plugin's default); ``settings`` are (name, value) pairs of the
    options that can send it elsewhere (ssh arguments, a proxy command).
    """

    plugin: str
    origin: str
    address: t.Any = None
    port: t.Any = None
    settings: tuple[tuple[str, t.Any], ...] = ()


def plugin_name(connection: str) -> str:
    """The builtin connection plugin ``connection`` names (``ansible.builtin.ssh`` -> ``ssh``), else itself."""
    name = connection.strip()
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return _ALIASES.get(name, name)


def is_loopback(address: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    text = address.strip().lower()
    if text in LOOPBACK_NAMES:
        return True
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _ssh_detour(name: str, value: t.Any) -> str | None:
    """What in the ssh arguments ``value`` (the option ``name``) leads away from the address, if anything."""
    if value is None or value == "":
        return None
    try:
        tokens = shlex.split(str(value))
    except ValueError as exc:
        return f"its {name} cannot be read ({exc})"
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-") or token == "-":
            continue  # not an option: ssh would take it for the host; ansible passes its own
        for position, letter in enumerate(token[1:], start=1):
            if letter not in _SSH_ARG_OPTIONS:
                continue
            argument = token[position + 1:]
            if not argument and index < len(tokens):
                argument = tokens[index]
                index += 1
            if letter in _SSH_ELSEWHERE:
                return f"its {name} names {_SSH_ELSEWHERE[letter]}"
            if letter == "p" and whole_number(argument) != SSH_PORT:
                return f"its {name} sets the port {printable(argument, 40)} (-p)"
            if letter == "o":
                key, _sep, setting = argument.replace("=", " ", 1).partition(" ")
                setting = setting.strip()
                if key.lower() in _SSH_CONFIG_ELSEWHERE and setting.lower() not in ("", "none"):
                    return f"its {name} sets {_SSH_CONFIG_ELSEWHERE[key.lower()]}"
                if key.lower() == "port" and whole_number(setting) != SSH_PORT:
                    return f"its {name} sets the port {printable(setting, 40)} (-o Port)"
            break  # the rest of the token was the argument
    return None


def _detour(connection: Connection) -> str | None:
    """Why a login connection to a loopback address does not end on this machine, or None."""
    if connection.port is not None and whole_number(connection.port) != SSH_PORT:
        return f"its port is {printable(connection.port, 40)}, not {SSH_PORT}"
    for name, value in connection.settings:
        if name == "proxy_command":
            if value:
                return "its proxy_command is set"
            continue
        reason = _ssh_detour(name, value)
        if reason:
            return reason
    return None


def explicit_verdict(explicit: bool) -> Verdict:
    """The verdict the host's ``imds_azure_lookup_host_is_controller`` gives: it wins over everything else."""
    return Verdict(explicit, f"its {HOST_IS_CONTROLLER} is {'true' if explicit else 'false'}")


def controller_verdict(name: str, connection: Connection, explicit: bool | None = None) -> Verdict:
    """Decide whether inventory host ``name``, reached through ``connection``, is the controller.

    ``explicit`` is the host's ``imds_azure_lookup_host_is_controller`` (None when unset).
    """
    if explicit is not None:
        return explicit_verdict(explicit)
    plugin = plugin_name(connection.plugin)
    origin = connection.origin
    shown = printable(connection.plugin, 80)
    target = printable(connection.address if isinstance(connection.address, str) and connection.address else name, 120)
    if plugin == LOCAL:
        return Verdict(True, f"{origin} is {shown}")
    if plugin in SSH_PLUGINS:
        if not is_loopback(target):
            return Verdict(False, f"{origin} is {shown} to {target}")
        detour = _detour(connection)
        if detour:
            return Verdict(False, f"{origin} is {shown} to the loopback address {target}, but {detour}: that "
                                  "reaches another machine (a VM, a container, a tunnel), not the controller, unless "
                                  f"the host's {HOST_IS_CONTROLLER} is true")
        return Verdict(True, f"{origin} is {shown} to the loopback address {target}")
    if plugin in WINDOWS_PLUGINS:
        if is_loopback(target):
            return Verdict(False, f"{origin} is {shown} to the loopback address {target}, which is a port forwarded "
                                  "to a Windows machine: Ansible's controller does not run Windows (set the host's "
                                  f"{HOST_IS_CONTROLLER} to true if it is the controller)")
        return Verdict(False, f"{origin} is {shown} to {target}")
    return Verdict(False, f"{origin} is {shown}, which reaches another system than the controller")


# -- reading a host's connection from its variables and Ansible's configuration ---------------

Template = t.Callable[[t.Any], t.Any]


def connection_of(name: str, host_vars: t.Mapping[str, t.Any], default_connection: t.Any,
                  template: Template) -> Connection:
    """The connection Ansible would use for ``name``: its plugin and the options that say where it goes.

    ``host_vars`` are the host's variables as the lookup gets them (raw); every value
    read is passed through ``template`` first. The options are resolved by Ansible's
    configuration for the connection plugin, with its precedence: the host's variables
    (``ansible_port``, ``ansible_ssh_port``...), the environment, ``ansible.cfg``, the
    plugin's default. Raises ValueError when they cannot be read.
    """
    chosen = template(host_vars.get("ansible_connection"))
    if isinstance(chosen, str) and chosen.strip():
        plugin, origin = chosen.strip(), "its ansible_connection"
    else:
        plugin = default_connection if isinstance(default_connection, str) and default_connection else "ssh"
        origin = "the default connection of this run"
    builtin = plugin_name(plugin)
    if builtin not in _ADDRESS_OPTION or not _definitions(builtin):
        # not a plugin that names an address, or not one this ansible-core has (paramiko_ssh left
        # ansible-core in 2.21): never taken for the controller
        return Connection(plugin, origin)
    address = _option(builtin, _ADDRESS_OPTION[builtin], name, host_vars, template)
    if builtin in WINDOWS_PLUGINS:
        return Connection(plugin, origin, address)
    port = _option(builtin, "port", name, host_vars, template)
    # paramiko reads its proxy_command, and (before ansible-core 2.18) a ProxyCommand in the ssh arguments
    settings = tuple((option, _option("ssh", option, name, host_vars, template)) for option in _SSH_ARGUMENTS)
    if builtin == "paramiko_ssh":
        settings += (("proxy_command", _option(builtin, "proxy_command", name, host_vars, template)),)
    return Connection(plugin, origin, address, port, settings)


def _definitions(plugin: str) -> dict[str, t.Any]:
    """The option definitions of a builtin connection plugin; empty when this ansible-core has no such plugin."""
    from ansible import constants as C
    from ansible.plugins.loader import connection_loader

    definitions = C.config.get_configuration_definitions("connection", plugin)
    if not definitions:
        connection_loader.get(plugin, class_only=True)  # loads the plugin's option definitions
        definitions = C.config.get_configuration_definitions("connection", plugin)
    return definitions or {}


def _option(plugin: str, option: str, name: str, host_vars: t.Mapping[str, t.Any], template: Template) -> t.Any:
    """The value of a connection plugin's option for this host, as Ansible's configuration resolves it."""
    from ansible import constants as C
    from ansible.errors import AnsibleError

    definitions = _definitions(plugin)
    names = [entry.get("name") for entry in (definitions.get(option) or {}).get("vars") or ()]
    variables = {"inventory_hostname": name}
    for variable in names:
        if variable in host_vars and variable != "inventory_hostname":
            variables[variable] = template(host_vars[variable])
    try:
        return C.config.get_config_value(option, plugin_type="connection", plugin_name=plugin, variables=variables)
    except AnsibleError as exc:
        raise ValueError(f"the {plugin} option {option} cannot be read: {printable(str(exc), 200)}") from None
