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
  - Then reads the load balancer metadata in a second request (see O(load_balancer)), where IMDS reports
    the Standard SKU public IP addresses that the instance document leaves out, and merges them into
    C(ansible_facts['azure_public_ipv4']) and the other public IP facts.
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
  load_balancer:
    description:
      - Also read C(/metadata/loadbalancer), one more request, and merge the public IP addresses it
        reports into RV(ansible_facts.azure_public_ipv4), RV(ansible_facts.azure_public_ipv4_addresses),
        RV(ansible_facts.azure_public_ip_addresses) and RV(ansible_facts.azure_interfaces); its frontends and
        rules become RV(ansible_facts.azure_load_balancer).
      - IMDS reports a Standard SKU public IP address only there (the instance document has an empty
        C(publicIpAddress) for it), and Basic SKU public IPs were retired on 2025-09-30, so without it
        RV(ansible_facts.azure_public_ipv4) is null on almost every VM.
      - Set V(false) to save the request when no public IP or load balancer fact is needed. It is also left
        out when O(filter) keeps none of the facts it feeds, and when the api-version is older than
        V(2020-10-01), the first that serves it (with a warning).
      - The request shares the gather's deadline, so a gather still ends within O(retry_timeout) plus
        O(timeout) of its first request. Its failures never fail the gather; instead
        RV(ansible_facts.azure_load_balancer_status) says what was learnt, and a warning says why the load
        balancer metadata could not be read (none for a VM that IMDS says has none).
    type: bool
    default: true
  filter:
    description:
      - Return only the facts whose names match one of these shell-style patterns, as with
        M(ansible.builtin.setup). A pattern matches the name with or without its C(ansible_) prefix,
        so V(azure_*ip*) and V(ansible_azure_*ip*) mean the same. A pattern longer than 200 characters
        is refused before any request.
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
  - Two requests per gather when the api-version is known (the instance document, then the load
    balancer metadata), one with O(load_balancer=false); one more when IMDS refuses the newest version
    and one has to be negotiated.
  - When the asset tag cannot be read (containers, some kernels) and the endpoint is the default,
    the first request waits at most O(probe_timeout) seconds for an answer; no answer then means the
    host is not on Azure, unless O(require_azure=true).
  - IMDS answers only from inside the VM, so this module must run on the VM itself (not delegated
    to the controller).
  - As a gather_facts module beside M(ansible.builtin.setup), set C(ansible_facts_parallel=false).
    Otherwise ansible-core runs the fact modules in parallel through async polling, which costs more
    than it saves for two short modules (see
    R(the performance guide,ansible_collections.imds.azure.docsite.performance.gather_facts)).
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

- name: The public IP, wherever IMDS reports it (instance document or load balancer metadata)
  ansible.builtin.debug:
    msg: "{{ ansible_facts['azure_public_ipv4'] | default('none', true) }} ({{ ansible_facts['azure_public_ipv4_source'] }})"

- name: Only the instance document, one request per gather
  imds.azure.metadata_facts:
    load_balancer: false

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
  description:
    - Facts about the Azure VM. Read them as C(ansible_facts['azure_...']).
    - On a host that is not an Azure VM only RV(ansible_facts.azure_detected), RV(ansible_facts.azure_api_version)
      and RV(ansible_facts.azure_detection_reason) are returned. With O(filter), only the facts it matches.
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
      sample: examplevmname
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
      description: The availability zone, or V(null) when the VM is not zonal.
      returned: when detected
      type: str
      sample: "1"
    azure_resource_group:
      description: The resource group.
      returned: when detected
      type: str
      sample: myrg
    azure_subscription_id:
      description: The subscription id.
      returned: when detected
      type: str
      sample: 8d10da13-8125-4ba9-a717-bf7490507b3d
    azure_os_type:
      description: V(Linux) or V(Windows), spelled so whatever case IMDS sends; another value as IMDS sends it.
      returned: when detected
      type: str
      sample: Linux
    azure_platform_fault_domain:
      description: The fault domain, as an integer; V(null) when IMDS sends none or not a number.
      returned: when detected
      type: int
      sample: 0
    azure_platform_update_domain:
      description: The update domain, as an integer; V(null) when IMDS sends none or not a number.
      returned: when detected
      type: int
      sample: 0
    azure_environment:
      description: The Azure cloud (C(azEnvironment)), or V(null) with api-versions before 2018-10-01.
      returned: when detected
      type: str
      sample: AzurePublicCloud
    azure_tags:
      description:
        - Tags as a dictionary, from C(tagsList) and the C(tags) string (C(tagsList) wins).
        - A C(tagsList) name that is a number, boolean, object or list is kept under its JSON text.
      returned: when detected
      type: dict
      sample: {"environment": "prod", "url": "https://example.com:8443/"}
    azure_missing_by_api_version:
      description:
        - The fields of the instance document that arrived after RV(ansible_facts.azure_api_version) and that the
          document lacks, in IMDS spelling, outermost only (for example V(compute.zone), V(compute.tagsList),
          V(compute.storageProfile.dataDisks[].diskCapacityBytes)). Their facts are null or missing because of the
          api-version, not because the VM lacks them.
        - Empty when the api-version has every field the collection knows.
      returned: when detected
      type: list
      elements: str
      sample: ["compute.zone", "compute.storageProfile", "compute.tagsList"]
    azure_interfaces:
      description: One entry per NIC, in the order of the document (IMDS does not promise one).
      returned: when detected
      type: list
      elements: dict
      contains:
        mac_address:
          description: The MAC address, lowercase with colons; as IMDS sends it when it is not 12 hex digits.
          type: str
          sample: 00:0d:3a:f8:06:ec
        ipv4_addresses:
          description:
            - One entry per IPv4 address, its private address, its public one (V(null) when none) and where the
              public address came from in C(public_source), V(instance) (the instance document),
              V(load_balancer) (the load balancer metadata, matched by private address) or V(null) when there
              is none.
          type: list
          elements: dict
          sample: [{"private": "10.1.0.4", "public": "52.166.222.251", "public_source": "load_balancer"}]
        ipv4_subnets:
          description: The IPv4 subnets, as C(address/prefix).
          type: list
          elements: str
          sample: ["10.1.0.0/24"]
        ipv6_addresses:
          description: The private IPv6 addresses.
          type: list
          elements: str
          sample: ["fd00::4"]
        ipv6_subnets:
          description: The IPv6 subnets, as C(address/prefix).
          type: list
          elements: str
          sample: ["fd00::/64"]
    azure_private_ipv4_addresses:
      description: Every private IPv4 address, in document order.
      returned: when detected
      type: list
      elements: str
    azure_public_ipv4_addresses:
      description:
        - Every public IPv4 address IMDS reports for the VM, in the instance document or in the load
          balancer metadata; the interfaces' first, in document order.
      returned: when detected
      type: list
      elements: str
      sample: ["20.61.15.200"]
    azure_public_ip_addresses:
      description:
        - Every public IP address IMDS reports, IPv4 and IPv6, each with its private address, its C(source)
          (V(instance) or V(load_balancer)) and its C(family) (V(ipv4) or V(ipv6)); in the order of
          RV(ansible_facts.azure_public_ipv4_addresses), then the IPv6 ones.
      returned: when detected
      type: list
      elements: dict
      sample: [{"address": "20.61.15.200", "private": "10.0.0.4", "source": "load_balancer", "family": "ipv4"}]
    azure_public_ipv4_source:
      description: Where RV(ansible_facts.azure_public_ipv4) came from, V(instance) or V(load_balancer); V(null) without one.
      returned: when detected
      type: str
      sample: load_balancer
    azure_load_balancer:
      description:
        - The load balancer metadata, typed. C(public_ip_addresses) (the VM's instance-level addresses,
          C(frontend_ip_address) and C(private_ip_address)), C(inbound_rules) (load-balancing and inbound NAT
          rules; C(frontend_ip_address), C(protocol) as IMDS writes it, C(frontend_port) and C(backend_port) as
          integers, C(private_ip_address)) and C(outbound_rules) (C(frontend_ip_address), C(private_ip_address)).
        - V(null) unless RV(ansible_facts.azure_load_balancer_status) is V(found).
      returned: when detected
      type: dict
      sample: {"public_ip_addresses": [{"frontend_ip_address": "20.61.15.200", "private_ip_address": "10.0.0.4"}],
               "inbound_rules": [{"frontend_ip_address": "20.61.15.200", "protocol": "tcp", "frontend_port": 443,
                                  "backend_port": 8443, "private_ip_address": "10.0.0.4"}], "outbound_rules": []}
    azure_load_balancer_metadata:
      description:
        - The load balancer document as IMDS returned it, or V(null). The lookup P(imds.azure.metadata#lookup)
          answers C(loadbalancer) paths from it.
      returned: when detected
      type: dict
    azure_load_balancer_status:
      description:
        - What the gather learnt of the load balancer metadata. V(found) (read), V(not_found) (IMDS answered that
          it has none for this VM, which has no Standard SKU load balancer and no Standard SKU public IP),
          V(not_requested) (O(load_balancer=false), a O(filter) that needs none of it, or an api-version
          before 2020-10-01) or V(failed) (a warning said why). Only with V(found) or V(not_found) do the public
          IP facts say all that IMDS knows.
      returned: when detected
      type: str
      sample: found
    azure_ipv6_addresses:
      description: Every private IPv6 address.
      returned: when detected
      type: list
      elements: str
    azure_mac_addresses:
      description: Every NIC's MAC address, lowercase with colons.
      returned: when detected
      type: list
      elements: str
      sample: ["00:0d:3a:f8:06:ec"]
    azure_private_ipv4:
      description: The first private IPv4 address, or V(null).
      returned: when detected
      type: str
      sample: 10.0.1.10
    azure_public_ipv4:
      description: The first of RV(ansible_facts.azure_public_ipv4_addresses), or V(null).
      returned: when detected
      type: str
      sample: 20.61.15.200
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.imds.azure.plugins.module_utils._bytecode import kept_code

with kept_code(__name__ == "__main__"):  # run on the host: compiled once per host, not per run
    from ansible_collections.imds.azure.plugins.module_utils._detect import DMI_ASSET_TAG_PATH
    from ansible_collections.imds.azure.plugins.module_utils._gather import run
    from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport
    from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_PROBE_TIMEOUT, imds_argument_spec


def argument_spec() -> dict[str, t.Any]:
    return dict(
        **imds_argument_spec(),
        include_user_data=dict(type="bool", default=False),
        load_balancer=dict(type="bool", default=True),
        filter=dict(type="list", elements="str", default=["*"]),
        require_azure=dict(type="bool", default=False),
        dmi_path=dict(type="path", default=DMI_ASSET_TAG_PATH),
        probe_timeout=dict(type="float", default=DEFAULT_PROBE_TIMEOUT),
        fact_path=dict(type="path"),  # passed by gather_facts with a play-level fact_path; not used
    )


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
