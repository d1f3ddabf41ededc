#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: metadata_facts
short_description: Gather facts from the Azure Instance Metadata Service
version_added: 1.0.0
description:
  - Reads the instance document of the Azure Instance Metadata Service (IMDS) in one request and
    returns it as typed facts, for example C(ansible_facts['azure_vm_id']) and
    C(ansible_facts['azure_tags']).
  - Works as a task and as a gather_facts module (C(facts_modules = ansible.builtin.setup,
    imds.azure.metadata_facts) in C(ansible.cfg)); options then come from C(module_defaults).
  - On a host that is not an Azure VM it returns RV(ansible_facts.azure_detected=false) at once
    and does not fail, unless O(require_azure=true).
  - Read C(ansible_facts['azure_...']) rather than the injected C(ansible_azure_...) variables;
    ansible-core 2.21 deprecates injected facts.
  - On Windows hosts it runs as a task only, through its action plugin; see the collection's Windows guide
    for gather_facts in mixed inventories. C(gather_facts) runs the module without its action plugin, so pass
    the endpoint switch there with C(module_defaults).
extends_documentation_fragment:
  - imds.azure.imds
  - imds.azure.imds.detection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - ansible.builtin.action_common_attributes.flow
  - imds.azure.imds.action_plugin
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
options:
  include_user_data:
    description:
      - Include the VM's C(userData), base64-decoded, in C(user_data) of RV(ansible_facts.azure_compute) and
        keep it in RV(ansible_facts.azure_metadata).
      - User data may hold secrets, and facts are shown by C(-v), stored by fact caches and
        visible to every play, so it is left out unless asked for.
    type: bool
    default: false
  filter:
    description:
      - Return only the facts whose names match one of these shell-style patterns, as with
        M(ansible.builtin.setup). A pattern matches the name with or without its C(ansible_) prefix,
        so V(azure_*ip*) and V(ansible_azure_*ip*) mean the same.
    type: list
    elements: str
    default: ['*']
  require_azure:
    description:
      - Fail when the host does not look like an Azure VM or IMDS cannot be reached, instead of
        returning RV(ansible_facts.azure_detected=false).
    type: bool
    default: false
  dmi_path:
    description:
      - File that holds the DMI chassis asset tag, which tells without any network whether the host
        is an Azure VM. Only read when O(endpoint) is the default.
      - Change it only for tests or unusual kernels.
    type: path
    default: /sys/class/dmi/id/chassis_asset_tag
  fact_path:
    description:
      - Accepted and ignored, so that a play-level C(fact_path) does not make gathering fail when this
        module is one of the C(facts_modules); M(ansible.builtin.setup) reads it.
    type: path
notes:
  - One request per gather when the api-version is known; two when IMDS refuses the newest version
    and one has to be negotiated.
  - When the asset tag cannot be read (containers, some kernels) and the endpoint is the default,
    the first request waits at most O(probe_timeout) seconds for an answer; no answer then means the
    host is not on Azure, unless O(require_azure=true).
  - IMDS answers only from inside the VM, so this module must run on the VM itself (not delegated
    to the controller).
  - As a gather_facts module beside M(ansible.builtin.setup), set C(ansible_facts_parallel=false).
    Otherwise ansible-core runs the fact modules in parallel through async polling, which costs more
    than it saves for two short modules (see the collection's C(docs/performance.md)).
seealso:
  - plugin: imds.azure.metadata
    plugin_type: lookup
  - module: ansible.builtin.setup
author:
  - imds.azure maintainers (@imds-azure)
"""

EXAMPLES = r"""
- name: Gather Azure facts
  imds.azure.metadata_facts:

- name: Show where the VM runs
  ansible.builtin.debug:
    msg: "{{ ansible_facts['azure_name'] }} is a {{ ansible_facts['azure_vm_size'] }} in {{ ansible_facts['azure_location'] }}"
  when: ansible_facts['azure_detected']

- name: Only the network facts, from an old region that serves 2021-02-01
  imds.azure.metadata_facts:
    api_version: "2021-02-01"
    filter:
      - azure_*ipv4*
      - azure_interfaces

- name: Fail on hosts that are not Azure VMs
  imds.azure.metadata_facts:
    require_azure: true

# As a gather_facts module, in ansible.cfg:
#   [defaults]
#   facts_modules = ansible.builtin.setup, imds.azure.metadata_facts
- name: Gather everything at play start, with options for the Azure part
  hosts: azure_vms
  gather_facts: true
  module_defaults:
    imds.azure.metadata_facts:
      retry_timeout: 30
  tasks:
    - name: Tag-driven decision
      ansible.builtin.debug:
        msg: "{{ ansible_facts['azure_tags']['environment'] | default('untagged') }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts about the Azure VM. Read them as C(ansible_facts['azure_...']).
  returned: always
  type: dict
  contains:
    azure_detected:
      description: Whether the host is an Azure VM whose IMDS answered.
      returned: always
      type: bool
      sample: true
    azure_detection_reason:
      description: Why the host was or was not taken to be an Azure VM.
      returned: always
      type: str
      sample: the DMI chassis asset tag in /sys/class/dmi/id/chassis_asset_tag is Azure's
    azure_api_version:
      description: The api-version that answered, or V(null) when the host is not on Azure.
      returned: always
      type: str
      sample: "2025-04-07"
    azure_metadata:
      description:
        - The instance document as IMDS returned it (userData removed unless O(include_user_data=true)).
        - The lookup P(imds.azure.metadata#lookup) with C(source=facts) reads it.
      returned: when detected
      type: dict
    azure_compute:
      description:
        - Every compute field, keys in snake_case (C(vmId) becomes C(vm_id)), numbers as integers,
          C("true")/C("false") as booleans and empty strings as V(null). Unknown fields are kept.
      returned: when detected
      type: dict
      sample: {"vm_id": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "platform_fault_domain": 0}
    azure_vm_id:
      description: The VM's unique id (C(compute.vmId)).
      returned: when detected
      type: str
      sample: 02aab8a4-74ef-476e-8182-f6d2ba4166a6
    azure_name:
      description: The VM's name.
      returned: when detected
      type: str
    azure_location:
      description: The Azure region.
      returned: when detected
      type: str
      sample: westeurope
    azure_vm_size:
      description: The VM size.
      returned: when detected
      type: str
      sample: Standard_D2s_v5
    azure_zone:
      description: The availability zone, or V(null).
      returned: when detected
      type: str
    azure_resource_group:
      description: The resource group.
      returned: when detected
      type: str
    azure_subscription_id:
      description: The subscription id.
      returned: when detected
      type: str
    azure_os_type:
      description: V(Linux) or V(Windows), as IMDS says.
      returned: when detected
      type: str
    azure_platform_fault_domain:
      description: The fault domain, as an integer.
      returned: when detected
      type: int
    azure_platform_update_domain:
      description: The update domain, as an integer.
      returned: when detected
      type: int
    azure_environment:
      description: The Azure cloud (C(azEnvironment)), or V(null) with api-versions before 2018-10-01.
      returned: when detected
      type: str
      sample: AzurePublicCloud
    azure_tags:
      description: Tags as a dictionary, from C(tagsList) and the C(tags) string (C(tagsList) wins).
      returned: when detected
      type: dict
      sample: {"environment": "prod", "url": "https://example.com:8443/"}
    azure_interfaces:
      description: One entry per NIC in document order, MAC addresses as C(00:0d:3a:f8:06:ec), subnets as CIDR.
      returned: when detected
      type: list
      elements: dict
    azure_private_ipv4_addresses:
      description: Every private IPv4 address, in document order.
      returned: when detected
      type: list
      elements: str
    azure_public_ipv4_addresses:
      description: Every public IPv4 address IMDS reports (Standard SKU public IPs are never reported).
      returned: when detected
      type: list
      elements: str
    azure_ipv6_addresses:
      description: Every private IPv6 address.
      returned: when detected
      type: list
      elements: str
    azure_mac_addresses:
      description: Every NIC's MAC address.
      returned: when detected
      type: list
      elements: str
    azure_private_ipv4:
      description: The first private IPv4 address, or V(null).
      returned: when detected
      type: str
      sample: 10.0.1.10
    azure_public_ipv4:
      description: The first public IPv4 address, or V(null).
      returned: when detected
      type: str
"""

import fnmatch
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._detect import DMI_ASSET_TAG_PATH, NotOnAzure, request_on_azure
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport
from ansible_collections.imds.azure.plugins.module_utils._normalize import ImdsDocumentError, normalize
from ansible_collections.imds.azure.plugins.module_utils._options import (
    DEFAULT_PROBE_TIMEOUT, MAX_TIMEOUT, OptionError, imds_argument_spec, seconds)


def filter_facts(facts: dict[str, t.Any], patterns: list[str]) -> dict[str, t.Any]:
    """Keep the facts whose name, with or without the ansible_ prefix, matches a pattern."""
    if patterns == ["*"] or not patterns:
        return facts
    return {name: value for name, value in facts.items()
            if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name[len("ansible_"):], p) for p in patterns)}


def argument_spec() -> dict[str, t.Any]:
    return dict(
        **imds_argument_spec(),
        include_user_data=dict(type="bool", default=False),
        filter=dict(type="list", elements="str", default=["*"]),
        require_azure=dict(type="bool", default=False),
        dmi_path=dict(type="path", default=DMI_ASSET_TAG_PATH),
        probe_timeout=dict(type="float", default=DEFAULT_PROBE_TIMEOUT),
        fact_path=dict(type="path"),  # passed by gather_facts with a play-level fact_path; not used
    )


def gather(params: dict[str, t.Any], client: ImdsClient, evidence: t.Any = "dmi") -> tuple[dict[str, t.Any], list[str]]:
    """The facts for this host, and warnings. Raises OptionError, NotOnAzure, ImdsError or ImdsDocumentError.

    ``evidence``: what the host says about being an Azure VM (``"dmi"``: read ``dmi_path``
    here, on the host; the action plugin passes what it knows of a Windows host).
    """
    probe = seconds(params["probe_timeout"], "probe_timeout", above_minimum=True, maximum=MAX_TIMEOUT)
    detected = request_on_azure(client, lambda first: client.instance(first_timeout=first), probe_timeout=probe,
                                evidence=evidence, dmi_path=params["dmi_path"])
    facts = normalize(detected.response.data, detected.response.api_version,
                      include_user_data=params["include_user_data"])
    facts["ansible_azure_detection_reason"] = detected.reason
    return facts, [f"IMDS at {detected.response.url}: {w}" for w in detected.response.warnings]


def run(params: dict[str, t.Any], transport: t.Any, evidence: t.Any = "dmi", limiter: t.Any = None) -> dict[str, t.Any]:
    """The module's result for ``params``: facts, or ``failed`` and ``msg``; with ``warnings``.

    ``transport`` carries each HTTP attempt (http.client on the host; win_uri, through the
    action plugin, for a Windows host), ``evidence`` and ``limiter`` as the host allows.
    """
    client = None
    try:
        client = ImdsClient(transport, endpoint=params["endpoint"], api_version=params["api_version"],
                            timeout=params["timeout"], retry_timeout=params["retry_timeout"], limiter=limiter)
        facts, warnings = gather(params, client, evidence)
    except OptionError as exc:
        return {"failed": True, "msg": str(exc)}
    except NotOnAzure as exc:
        if params["require_azure"]:
            return {"failed": True, "msg": f"This host does not look like an Azure VM: {exc.reason}. {exc.hint}".strip()}
        facts, warnings = {"ansible_azure_detected": False, "ansible_azure_api_version": None,
                           "ansible_azure_detection_reason": exc.reason}, []
    except ImdsError as exc:
        return {"failed": True, "msg": str(exc), **exc.to_result()}
    except ImdsDocumentError as exc:  # the client answered, so it exists
        endpoint, version = getattr(client, "endpoint", None), getattr(client, "api_version", None)
        return {"failed": True, "api_version": version,
                "msg": f"IMDS at {endpoint} (api-version {version}) answered with a document that is not an "
                       f"instance document: {exc}"}
    return {"changed": False, "ansible_facts": filter_facts(facts, params["filter"]), "warnings": warnings}


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    result = run(module.params, HttpClientTransport())
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
