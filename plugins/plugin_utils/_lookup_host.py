# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Is the host a template is rendered for the controller itself? A pure decision.

IMDS answers only for the machine that asks. A lookup runs on the controller, so a
live answer describes the controller; it is the right answer only when the host is
the controller. We decide that from the host's variables, as Ansible would connect:

- a ``local`` connection (the implicit ``localhost`` has one, ``ansible-pull`` passes
  ``-c local``) runs everything on the controller: it is the controller;
- a connection that logs in over the network (ssh, paramiko, winrm, psrp) to a
  loopback address (``localhost``, ``127.0.0.0/8``, ``::1``) logs in to the controller;
- anything else is another machine: a remote address, or a container or chroot
  connection (a container on the controller is a different host in the inventory,
  and we would rather refuse than answer for the wrong one).

``delegate_to`` does not change the answer: templates are rendered with the
variables of ``inventory_hostname``, so the lookup answers for that host.
"""

from __future__ import annotations

import ipaddress
import typing as t

LOCAL_CONNECTIONS = frozenset(("local", "ansible.builtin.local", "ansible.legacy.local"))
LOGIN_CONNECTIONS = frozenset((
    "ssh", "paramiko", "paramiko_ssh", "winrm", "psrp", "smart",
    "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh", "ansible.builtin.winrm", "ansible.builtin.psrp",
    "ansible.legacy.ssh", "ansible.legacy.paramiko_ssh", "ansible.legacy.winrm", "ansible.legacy.psrp",
))
LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"))


class Verdict(t.NamedTuple):
    is_controller: bool
    why: str


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


def controller_verdict(name: str, connection: t.Any, address: t.Any, default_connection: t.Any) -> Verdict:
    """Decide whether inventory host ``name`` is the controller.

    ``connection`` and ``address`` are the host's ``ansible_connection`` and
    ``ansible_host`` (None when not set); ``default_connection`` is the connection the
    command line or ansible.cfg gives hosts that set none.
    """
    chosen = connection if isinstance(connection, str) and connection else None
    effective = chosen or (default_connection if isinstance(default_connection, str) and default_connection else "ssh")
    origin = "its ansible_connection" if chosen else "the default connection of this run"
    target = address if isinstance(address, str) and address else name
    if effective in LOCAL_CONNECTIONS:
        return Verdict(True, f"{origin} is {effective}")
    if effective in LOGIN_CONNECTIONS:
        if is_loopback(target):
            return Verdict(True, f"{origin} is {effective} to the loopback address {target}")
        return Verdict(False, f"{origin} is {effective} to {target}")
    return Verdict(False, f"{origin} is {effective}, which reaches another system than the controller")
