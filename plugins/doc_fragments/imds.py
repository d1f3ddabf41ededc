# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by every plugin that talks to IMDS."""

    DOCUMENTATION = r"""
options:
  endpoint:
    description:
      - Base URL of the Instance Metadata Service, without a path, as C(http://HOST) or C(http://HOST:PORT) in
        plain ASCII, with no user name or password.
      - Set it to the URL of an IMDS emulator to test playbooks off Azure (see
        R(the emulator guide,ansible_collections.imds.azure.docsite.emulator)).
      - With the default, a host that is clearly not an Azure VM is recognised without any
        network wait. An endpoint given explicitly is always queried, and its failures are failures.
        Every spelling of the default address (V(http://2852039166), V(http://[::ffff:169.254.169.254]:80))
        counts as the default.
      - Requests never go through a proxy and never follow a redirect, whatever the environment says.
    type: str
    default: http://169.254.169.254
  api_version:
    description:
      - The IMDS C(api-version) to ask for, for example V(2021-02-01).
      - When not set, the newest version this collection knows is asked for, and when IMDS refuses
        it (older regions and sovereign clouds lag behind) the newest version both sides know is
        used instead, at the cost of one more request.
      - When set, exactly that version is used; IMDS refusing it is an error that lists the
        versions IMDS offers.
      - Fields newer than the version asked for are absent from the answer; see
        R(IMDS fields by api-version,ansible_collections.imds.azure.docsite.fields_by_version).
    type: str
  timeout:
    description:
      - Seconds one request may take, connection and whole response included.
    type: float
    default: 5
  retry_timeout:
    description:
      - Total seconds to keep retrying answers that IMDS says are temporary (410 while IMDS is
        going through updates, 429 throttling, 500, 502, 503, 504), with jittered exponential
        back-off that honours C(Retry-After).
      - The default follows Microsoft's documentation that IMDS answers 410 while it is going
        through updates and is available again within 70 seconds. Set V(0) to never retry.
      - A call gives up after at most O(retry_timeout) plus O(timeout) seconds.
    type: float
    default: 70
"""

    # The probe that tells "not an Azure VM" where the host's own evidence cannot.
    # Use as imds.azure.imds.detection.
    DETECTION = r"""
options:
  probe_timeout:
    description:
      - Seconds the first request may take when O(endpoint) is the default and the host's own evidence
        (its DMI chassis asset tag) cannot tell whether it is an Azure VM, as in containers, on some
        kernels and on Windows hosts. No answer in that time means the host is not an Azure VM.
      - Raise it on busy hosts, such as large scale sets, where IMDS can take longer than a second to
        answer the first request. Where the evidence says Azure, O(timeout) applies and no answer is a
        failure that names the P(imds.azure.route#role) role.
    type: float
    default: 1
"""

    # Where controller plugins (the lookup) also read the options above: environment,
    # ansible.cfg and variables. Merged key by key into DOCUMENTATION by ansible-core, so
    # the descriptions stay in one place. Use as imds.azure.imds.plugin_sources, after
    # imds.azure.imds.
    PLUGIN_SOURCES = r"""
options:
  endpoint:
    env:
      - name: ANSIBLE_IMDS_AZURE_ENDPOINT
    ini:
      - section: imds_azure
        key: endpoint
    vars:
      - name: imds_azure_endpoint
  api_version:
    env:
      - name: ANSIBLE_IMDS_AZURE_API_VERSION
    ini:
      - section: imds_azure
        key: api_version
    vars:
      - name: imds_azure_api_version
  timeout:
    env:
      - name: ANSIBLE_IMDS_AZURE_TIMEOUT
    ini:
      - section: imds_azure
        key: timeout
    vars:
      - name: imds_azure_timeout
  probe_timeout:
    env:
      - name: ANSIBLE_IMDS_AZURE_PROBE_TIMEOUT
    ini:
      - section: imds_azure
        key: probe_timeout
    vars:
      - name: imds_azure_probe_timeout
  retry_timeout:
    env:
      - name: ANSIBLE_IMDS_AZURE_RETRY_TIMEOUT
    ini:
      - section: imds_azure
        key: retry_timeout
    vars:
      - name: imds_azure_retry_timeout
"""

    # What the modules' action plugins bring: the endpoint switch and Windows hosts.
    # Use as imds.azure.imds.action_plugin, after ansible.builtin.action_common_attributes.flow.
    ACTION_PLUGIN = r"""
attributes:
  action:
    support: full
    details: The action plugin applies the endpoint switch, and on Windows hosts runs the module's code on the
      controller.
  async:
    support: partial
    details: On POSIX hosts only.
  bypass_host_loop:
    support: none
  platform:
    platforms: posix, windows
    details: On Windows hosts (a PowerShell shell, as with C(winrm), C(psrp) or C(ssh) to Windows) the action
      plugin runs the module's code on the controller and sends each request through
      M(ansible.windows.win_uri), so C(ansible.windows) must be installed on the controller. Options, results
      and errors are the same.
notes:
  - When the task (or C(module_defaults)) does not set O(endpoint), the variable C(imds_azure_endpoint), the
    environment variable E(ANSIBLE_IMDS_AZURE_ENDPOINT) or C(endpoint) in the C([imds_azure]) section of
    C(ansible.cfg) sets it, as for the P(imds.azure.metadata#lookup) lookup. Such an endpoint counts as given
    explicitly (always asked, no detection).
  - On Windows hosts each request is one M(ansible.windows.win_uri) run, which costs one module round trip.
    win_uri counts O(timeout) in whole seconds (rounded up) and only up to the response headers. With the default
    O(endpoint) the first request is the probe (O(probe_timeout)), as there is no DMI data to read.
"""
