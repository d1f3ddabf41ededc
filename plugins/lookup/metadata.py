# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: metadata
short_description: Read Azure Instance Metadata Service paths for the host a template is rendered for
version_added: 1.0.0
description:
  - Answers IMDS paths such as V(compute/vmId) or V(network/interface/0/ipv4/ipAddress/0/publicIpAddress)
    exactly as the Azure Instance Metadata Service (IMDS) of that host would, as data (dictionaries and lists)
    or as the text IMDS returns with C(format=text).
  - A lookup runs on the controller, but IMDS answers only for the machine that asks it. Asking IMDS from
    the controller therefore describes the controller, whatever host the template is rendered for. This
    lookup answers for the right host instead, from one of two sources (see O(source)).
  - The V(facts) source reads the host's gathered instance document, C(ansible_facts['azure_metadata']),
    which M(imds.azure.metadata_facts) collects on the host itself, and for V(loadbalancer) paths its load balancer
    document, C(ansible_facts['azure_load_balancer_metadata']). No network at all.
  - The V(live) source asks IMDS from the controller, which is right only when the host is the
    controller itself (C(localhost), a C(local) connection, C(ansible-pull), an execution node on Azure
    running a play for itself). The document is fetched once per run and answers every later term and
    lookup (see O(cache_ttl)).
  - The host is the controller when its connection is C(local), or C(ssh) or C(paramiko) to a loopback
    address (C(localhost), C(127.0.0.0/8), C(::1)) on port 22 without a proxy or jump host. A loopback
    address with another port (Vagrant's C(127.0.0.1:2222), a container's forwarded port, a tunnel), a
    C(ProxyJump), C(ProxyCommand), C(-J), C(-W), C(HostName) or C(-F) in the ssh arguments, or a proxy
    command reaches another machine, and so do C(winrm), C(psrp) and every other connection (containers,
    network devices, cloud connections). The host's variables are read templated, with the settings of
    its connection plugin from C(ansible.cfg) and the environment.
  - The host variable C(imds_azure_lookup_host_is_controller) (V(true) or V(false)), set in the inventory
    for that host, overrides that decision, for example for a host reached through C(127.0.0.1:2222) that
    is the controller's own sshd on another port.
  - The categories that are never part of facts are read live only, and answered whole,
    V(attested/document) (with O(nonce)), V(versions), and V(identity/oauth2/token), a
    managed identity access token for O(resource).
extends_documentation_fragment:
  - imds.azure.imds
  - imds.azure.imds.detection
  - imds.azure.imds.plugin_sources
options:
  _terms:
    description:
      - IMDS paths as Microsoft writes them, case-sensitive, for example V(compute/vmId),
        V(compute/tagsList), V(network/interface/0/macAddress). A leading V(instance/) or
        V(/metadata/instance/) is allowed; V(instance) alone is the whole instance document.
      - Or V(loadbalancer), the whole load balancer document (C(/metadata/loadbalancer)), or a path in it from its
        root, for example V(loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress).
      - Or one of the live-only categories V(attested/document), V(versions), V(identity/oauth2/token)
        (a leading V(/metadata/) is allowed).
      - Several terms give several results, in order. A list of paths counts as that many terms.
    type: list
    elements: str
    required: true
  source:
    description:
      - Where the answer comes from.
      - V(facts) reads the host's C(ansible_facts['azure_metadata']), gathered by M(imds.azure.metadata_facts)
        (for V(loadbalancer) paths, C(ansible_facts['azure_load_balancer_metadata']), which it gathers unless
        O(imds.azure.metadata_facts#module:load_balancer=false)). A host without those facts is an error.
      - V(live) asks IMDS from the controller. Allowed only when the host is the controller, or with
        O(allow_live_for_remote_hosts=true).
      - V(auto) uses the facts when the host has them, else asks IMDS live when the host is the controller,
        else fails with a message that says to gather M(imds.azure.metadata_facts) first.
      - For V(loadbalancer) paths, V(auto) uses the facts when they hold IMDS's answer (the document, or that there
        is none), else asks IMDS live when the host is the controller.
      - The live-only categories (V(attested/document), V(versions), V(identity/oauth2/token))
        are read live with V(auto) and V(live), and are an error with V(facts).
    type: str
    choices: [auto, facts, live]
    default: auto
    env:
      - name: ANSIBLE_IMDS_AZURE_LOOKUP_SOURCE
    ini:
      - section: imds_azure_lookup
        key: source
    vars:
      - name: imds_azure_lookup_source
  format:
    description:
      - V(json) returns dictionaries and lists as data and a leaf as its string, as IMDS's JSON has them.
      - V(text) returns what IMDS returns with C(format=text) for that path. For a leaf that is its value;
        for a dictionary its keys and for a list its indexes, one per line, with C(/) after those that hold
        more. Only instance paths have a text form (IMDS serves the other categories as JSON only).
    type: str
    choices: [json, text]
    default: json
  default:
    description:
      - What to return instead of failing when the path does not exist in the document (a field newer than
        the api-version, a NIC that is not there) or when the host is not an Azure VM (its facts say so, or,
        live, the controller is not on Azure).
      - Without it, a missing path is an error that names the path and the api-version.
      - It does not hide mistakes in the play, such as a host without facts, a live query refused for a
        remote host, or IMDS failing.
    type: raw
  host:
    description:
      - The inventory host to answer for. Defaults to the host the template is rendered for
        (C(inventory_hostname)); C(delegate_to) does not change that host.
      - Set it to read another host's facts, for example in a C(run_once) task that writes one file about
        every host, or to V(localhost) to ask about the controller in a task rendered for a remote host.
    type: str
  allow_live_for_remote_hosts:
    description:
      - Let the live source answer for a host that is not the controller. IMDS then describes the VM the
        controller runs on, not that host.
      - Set it only when the controller's own metadata is what you want, for example a managed identity
        token of the controller (an execution node on Azure) to call Key Vault in a play for other hosts.
    type: bool
    default: false
    env:
      - name: ANSIBLE_IMDS_AZURE_LOOKUP_ALLOW_LIVE_FOR_REMOTE_HOSTS
    ini:
      - section: imds_azure_lookup
        key: allow_live_for_remote_hosts
    vars:
      - name: imds_azure_lookup_allow_live_for_remote_hosts
  cache_ttl:
    description:
      - Seconds that the instance document fetched live answers later terms and lookups of the same
        C(ansible-playbook) run, in every fork. A failure (the controller not on Azure, IMDS not answering)
        is remembered as long, so that many lookups with a O(default) do not wait many times.
      - The document is kept in the run's private local temp folder (mode 0700, removed when the run ends),
        without C(userData). Tokens and the other live-only categories are never cached.
      - V(0) asks IMDS for every lookup call (the terms of one call still share one request).
    type: float
    default: 300
    env:
      - name: ANSIBLE_IMDS_AZURE_LOOKUP_CACHE_TTL
    ini:
      - section: imds_azure_lookup
        key: cache_ttl
    vars:
      - name: imds_azure_lookup_cache_ttl
  nonce:
    description:
      - For V(attested/document) only; IMDS puts it into the signed document, so that the verifier can tell
        a fresh document from a replayed one. At most 32 letters and digits; IMDS uses a time stamp when
        it is not set.
    type: str
  resource:
    description:
      - For V(identity/oauth2/token) only, and required there; the resource the token is for, for example
        V(https://vault.azure.net) or V(https://management.azure.com/).
    type: str
  client_id:
    description:
      - For V(identity/oauth2/token) only; the client id of the user-assigned identity to use. At most one of
        O(client_id), O(object_id) and O(msi_res_id); none uses the system-assigned identity.
    type: str
  object_id:
    description:
      - For V(identity/oauth2/token) only; the object id of the user-assigned identity to use.
    type: str
  msi_res_id:
    description:
      - For V(identity/oauth2/token) only; the Azure resource id of the user-assigned identity to use.
    type: str
notes:
  - Answers equal IMDS's for the same path and api-version. IMDS refuses JSON for a leaf; with O(format=json)
    this lookup returns the leaf's string, which is what IMDS returns with C(format=text).
  - With the V(facts) source the answer comes from the document gathered with the api-version in
    C(ansible_facts['azure_api_version']); O(api_version) applies to live requests.
  - The live source keeps to IMDS's limit of 5 requests per second across all forks and concurrent runs of
    the same user, counting a request while it is under way. That also keeps within the separate limit of
    managed identity tokens (V(identity/oauth2/token)), 20 requests per second and 5 at a time. With the
    default O(endpoint), a controller whose DMI data says it is not an Azure VM is recognised without any
    request.
  - The managed identity token is fetched with api-version V(2018-02-01), the one Microsoft documents for
    it, whatever O(api_version) says. Its value is never cached nor written by this lookup, but a task that
    uses it shows it in its result and in C(-v) output; give such tasks C(no_log=true).
  - Ansible's C(lookup()) joins several string results with commas; use C(query()) or C(wantlist=true) to get
    a list.
seealso:
  - module: imds.azure.metadata_facts
author:
  - imds.azure maintainers (@imds-azure)
"""

EXAMPLES = r"""
# The facts source: gather on the VMs, then render templates for them anywhere.
- name: Configure the Azure VMs
  hosts: azure_vms
  tasks:
    - name: Gather the instance document on each VM
      imds.azure.metadata_facts:

    - name: Render a file that names the VM and its public IP (Standard SKU ones are in the load balancer document)
      ansible.builtin.copy:
        dest: /etc/motd
        content: |
          {{ lookup('imds.azure.metadata', 'compute/name') }} ({{ lookup('imds.azure.metadata', 'compute/vmSize') }})
          public IP: {{ lookup('imds.azure.metadata', 'loadbalancer/loadbalancer/publicIpAddresses/0/frontendIpAddress', default='none') }}
        mode: "0644"

    - name: The inbound rules of the VM's load balancer, from its facts (one list of dictionaries)
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'loadbalancer/loadbalancer/inboundRules', default=[]) }}"

    - name: The same with source=facts spelled out; tagsList comes back as a list of dictionaries
      ansible.builtin.debug:
        msg: "{{ query('imds.azure.metadata', 'compute/tagsList', source='facts') | items2dict(key_name='name', value_name='value') }}"

# The live source: the play is for the controller itself (an Azure VM, ansible-pull, ...).
- name: Describe the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Several paths, one IMDS request for the whole run
      ansible.builtin.debug:
        msg: "{{ query('imds.azure.metadata', 'compute/vmId', 'compute/location', 'network/interface/0/macAddress') }}"

    - name: What IMDS answers with format=text (the keys of compute, one per line)
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'compute', format='text') }}"

    - name: Pin an api-version that an older region serves
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'compute/sku', api_version='2019-06-01') }}"

    - name: Attested document with a nonce (read live, never cached)
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'attested/document', nonce='1234567890').signature }}"

    - name: Read a Key Vault secret with the VM's managed identity; no_log keeps the token out of logs
      ansible.builtin.uri:
        url: https://myvault.vault.azure.net/secrets/db-password?api-version=7.4
        headers:
          Authorization: "Bearer {{ lookup('imds.azure.metadata', 'identity/oauth2/token', resource='https://vault.azure.net').access_token }}"
      register: secret
      no_log: true

# The auto source (default): facts when the host has them, else live on the controller.
- name: Works on VMs with facts and on localhost alike
  hosts: all
  tasks:
    - name: Show the region, or "unknown" on hosts that are not Azure VMs
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'compute/location', default='unknown') }}"

    - name: One file on the controller about every VM, from each VM's facts
      ansible.builtin.copy:
        dest: /tmp/vm-ids.txt
        content: |
          {% for h in ansible_play_hosts %}
          {{ h }} {{ lookup('imds.azure.metadata', 'compute/vmId', host=h, default='-') }}
          {% endfor %}
        mode: "0644"
      delegate_to: localhost
      run_once: true
"""

RETURN = r"""
_raw:
  description:
    - One answer per term. With O(format=json), a string for a leaf and dictionaries and lists as IMDS's JSON
      has them; with O(format=text), a string.
    - For V(attested/document), V(loadbalancer), V(versions) and V(identity/oauth2/token), the JSON document
      IMDS returns (the token's is C(access_token), C(expires_on), C(resource), C(token_type)...); for a path
      below V(loadbalancer), what it leads to in the load balancer document.
  type: list
  elements: raw
"""

import copy
import dataclasses
import typing as t

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.imds.azure.plugins.module_utils._client import TOKEN_RETRY, ImdsClient
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport
from ansible_collections.imds.azure.plugins.plugin_utils._lookup_host import (
    HOST_IS_CONTROLLER, Verdict, connection_of, controller_verdict, explicit_verdict)
from ansible_collections.imds.azure.plugins.module_utils._detect import NotOnAzure, request_on_azure
from ansible_collections.imds.azure.plugins.module_utils._options import MAX_TIMEOUT, OptionError, endpoint, seconds
from ansible_collections.imds.azure.plugins.plugin_utils._lookup_live import (
    InstanceCache, InstanceEntry, LiveSettings, fetch_instance)
from ansible_collections.imds.azure.plugins.module_utils._normalize import (
    LB_FAILED, LB_FOUND, LB_NOT_FOUND, LB_NOT_REQUESTED, ImdsDocumentError, check_tree)
from ansible_collections.imds.azure.plugins.module_utils._text import printable
from ansible_collections.imds.azure.plugins.module_utils._versions import IDENTITY_API_VERSION, LOAD_BALANCER_SINCE
from ansible_collections.imds.azure.plugins.plugin_utils._paths import (
    ATTESTED, LOADBALANCER, TOKEN, VERSIONS, ImdsPath, PathError, PathNotFound, parse_path, text_of, walk)

display = Display()

FACTS_HINT = ("Gather them first with the imds.azure.metadata_facts module on that host (a task before this "
              "one, or facts_modules = ansible.builtin.setup, imds.azure.metadata_facts in ansible.cfg)")
IDENTITY_CHOICES = ("client_id", "object_id", "msi_res_id")
USER_DATA = ("compute", "userData")


@dataclasses.dataclass
class Target:
    """The host the lookup answers for; whether it is the controller is decided when first asked."""

    name: str | None  # None: no inventory host at all (the controller)
    facts: t.Mapping[str, t.Any] | None
    decide: t.Callable[[], Verdict]
    _verdict: Verdict | None = None

    @property
    def verdict(self) -> Verdict:
        if self._verdict is None:
            self._verdict = self.decide()
        return self._verdict

    @property
    def is_controller(self) -> bool:
        return self.verdict.is_controller

    @property
    def why(self) -> str:
        return self.verdict.why

    @property
    def label(self) -> str:
        return f"host {printable(self.name, 120)}" if self.name else "the controller"


class Answer(t.NamedTuple):
    """A document to walk and where it came from (for messages)."""

    document: t.Any
    api_version: str | None
    origin: str
    live: InstanceEntry | None


class LookupModule(LookupBase):

    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[t.Any]:
        unknown = sorted(set(kwargs) - set(self.option_definitions) - {"_terms"})
        if unknown:
            known = ", ".join(sorted(name for name in self.option_definitions if not name.startswith("_")))
            raise AnsibleLookupError(f"imds.azure.metadata has no option {', '.join(unknown)}; its options are {known}.")
        try:
            self.set_options(var_options=variables, direct=kwargs)
        except AnsibleError as exc:
            raise AnsibleLookupError(f"imds.azure.metadata: {exc.message}") from None
        variables = variables or {}
        # get_option_and_origin() re-reads the configuration on ansible-core 2.17 and loses a
        # value given directly, so the value comes from get_option(); whether one was given
        # comes from the call itself (an explicit default=None is a default too).
        self._default = self.get_option("default")
        self._has_default = "default" in kwargs
        self._live: InstanceEntry | None = None
        try:
            paths = [parse_path(term) for term in _flat(terms)]
            self._check_category_options(paths)
            target = self._target(variables)
            return [self._answer(path, target) for path in paths]
        except PathError as exc:
            raise AnsibleLookupError(str(exc)) from None
        except ImdsError as exc:
            raise AnsibleLookupError(str(exc)) from None

    def _check_category_options(self, paths: list[ImdsPath]) -> None:
        """An option meant for a category no term names would silently do nothing: refuse it."""
        categories = {path.category for path in paths}
        for name in ("nonce", "resource") + IDENTITY_CHOICES:
            category = ATTESTED if name == "nonce" else TOKEN
            if self.get_option(name) and category not in categories:
                raise AnsibleLookupError(f"The option {name} applies to the term {category!r} only, and no term "
                                         "names it.")

    # -- whom we answer for -------------------------------------------------------------

    def _target(self, variables: t.Mapping[str, t.Any]) -> Target:
        current = variables.get("inventory_hostname")
        name = self.get_option("host") or current
        if not name:
            itself = Verdict(True, "the lookup runs without an inventory host, on the controller itself")
            return Target(None, None, lambda: itself)
        hostvars = variables.get("hostvars")
        if name == current and not (variables.get("ansible_delegated_vars") and hostvars and name in hostvars):
            host_vars: t.Any = variables
        elif name == current and hostvars is not None:
            # delegate_to: the task's connection variables (ansible_ssh_host, ansible_port...) were filled in
            # for the delegated host; the host's own are in hostvars
            host_vars = hostvars[name]
        else:
            if hostvars is None or name not in hostvars:
                raise AnsibleLookupError(f"host={printable(name, 120)!r}: there is no such host in the inventory.")
            host_vars = hostvars[name]
        facts = host_vars.get("ansible_facts")
        return Target(str(name), facts if isinstance(facts, t.Mapping) else None,
                      lambda: self._verdict(str(name), host_vars))

    def _verdict(self, name: str, host_vars: t.Mapping[str, t.Any]) -> Verdict:
        """Is ``name`` the controller? Decided from its variables, templated (see _lookup_host)."""
        try:
            explicit = self._template(host_vars.get(HOST_IS_CONTROLLER))
            if explicit is not None:
                explicit = boolean(explicit, strict=True)
        except (TypeError, ValueError) as exc:
            raise AnsibleLookupError(f"{HOST_IS_CONTROLLER} of host {printable(name, 120)} must be true or false "
                                     f"({printable(str(exc), 200)}).") from None
        if explicit is not None:
            return explicit_verdict(explicit)
        default_connection = context.CLIARGS.get("connection") or getattr(C, "DEFAULT_TRANSPORT", "ssh")
        try:
            connection = connection_of(name, host_vars, default_connection, self._template)
        except (ValueError, AnsibleError) as exc:
            return Verdict(False, f"its connection settings cannot be read ({printable(str(exc), 200)}), so it "
                                  f"counts as another machine unless its {HOST_IS_CONTROLLER} is true")
        return controller_verdict(name, connection)

    def _template(self, value: t.Any) -> t.Any:
        """A host variable as Ansible would use it: templated (``ansible_host: "{{ address }}"``)."""
        if self._templar is None or value is None:
            return value
        try:
            return self._templar.template(value)
        except AnsibleError as exc:
            raise ValueError(f"a variable does not template: {exc.message}") from None

    # -- answers ------------------------------------------------------------------------

    def _answer(self, path: ImdsPath, target: Target) -> t.Any:
        if path.category == LOADBALANCER:
            return self._load_balancer(path, target)
        if not path.is_instance:
            return self._live_category(path, target)
        try:
            answer = self._instance_document(target)
        except NotOnAzure as exc:
            return self._not_on_azure(path, target, exc)
        hint = ""
        if answer.live is None and path.segments[:2] == USER_DATA:
            hint = (" imds.azure.metadata_facts leaves userData out of the facts unless include_user_data=true;"
                    " or read it live.")
        try:
            node = self._walk(path, answer, hint)
        except _Default:
            return self._default
        fmt = self.get_option("format")
        if answer.live is not None and answer.live.user_data and self._needs_user_data(path, fmt):
            node = self._with_user_data(answer.live, path)
        return text_of(node) if fmt == "text" else copy.deepcopy(node)

    def _walk(self, path: ImdsPath, answer: Answer, hint: str = "") -> t.Any:
        """The node at ``path`` in ``answer``'s document; _Default when it is not there and a default was given."""
        try:
            return walk(answer.document, path.segments)
        except PathNotFound as exc:
            if self._has_default:
                raise _Default() from None
            raise AnsibleLookupError(
                f"The IMDS path {printable(path.display, 200)!r} does not exist in {answer.origin} (api-version "
                f"{printable(answer.api_version, 40)}): {exc.reason}.{hint}") from None

    def _load_balancer(self, path: ImdsPath, target: Target) -> t.Any:
        """``loadbalancer[/...]``: from the host's facts (source facts, or auto when they hold it), else live."""
        if self.get_option("format") == "text":
            raise AnsibleLookupError(f"IMDS serves {path.category} as JSON only; format=text is for instance paths.")
        source = self.get_option("source")
        facts = target.facts or {}
        status = facts.get("azure_load_balancer_status")
        imds_said = status == LB_NOT_FOUND or (status == LB_FOUND
                                               and isinstance(facts.get("azure_load_balancer_metadata"), t.Mapping))
        if source == "facts" or (source == "auto" and (imds_said or facts.get("azure_detected") is False)):
            try:
                answer = self._load_balancer_from_facts(target, facts)
            except NotOnAzure as exc:
                return self._not_on_azure(path, target, exc)
        elif source == "auto" and not (target.is_controller or self.get_option("allow_live_for_remote_hosts")):
            raise AnsibleLookupError(
                f"There is no load balancer metadata in the facts of {target.label} ({_load_balancer_missing(facts)}), "
                f"and it is not the controller ({target.why}), so asking IMDS from here would describe the "
                f"controller instead. {FACTS_HINT}, with load_balancer=true (the default).")
        else:
            return self._live_category(path, target)
        if answer is None:  # IMDS said there is none, and a default was given
            return self._default
        try:
            return copy.deepcopy(self._walk(path, answer))
        except _Default:
            return self._default

    def _load_balancer_from_facts(self, target: Target, facts: t.Mapping[str, t.Any]) -> Answer | None:
        """The load balancer document in the host's facts; None for IMDS's "none here" when a default was given."""
        if facts.get("azure_detected") is False:
            reason = facts.get("azure_detection_reason") or "its facts say azure_detected=false"
            raise NotOnAzure(f"it is not an Azure VM according to its facts ({reason})")
        status = facts.get("azure_load_balancer_status")
        document = facts.get("azure_load_balancer_metadata")
        if status == LB_FOUND and isinstance(document, t.Mapping):
            return Answer(document, facts.get("azure_api_version"),
                          f"the load balancer metadata in the facts of {target.label}", None)
        if status == LB_NOT_FOUND:
            if self._has_default:
                return None
            raise AnsibleLookupError(
                f"IMDS told the gather on {target.label} that it has no load balancer metadata (404 \"No load "
                "balancer metadata is found\"): the VM is behind no Standard SKU load balancer and has no Standard "
                "SKU public IP. Set default= to get a value instead.")
        raise AnsibleLookupError(f"source=facts, and the facts of {target.label} hold no load balancer metadata "
                                 f"({_load_balancer_missing(facts)}). {FACTS_HINT}, with load_balancer=true "
                                 "(the default).")

    def _instance_document(self, target: Target) -> Answer:
        source = self.get_option("source")
        facts = target.facts or {}
        has_document = isinstance(facts.get("azure_metadata"), t.Mapping)
        not_azure = facts.get("azure_detected") is False
        if source == "facts" or (source == "auto" and (has_document or not_azure)):
            return self._from_facts(target, facts, has_document, not_azure)
        if source == "auto" and not (target.is_controller or self.get_option("allow_live_for_remote_hosts")):
            filtered = (" Its facts have no azure_metadata: gather them without a filter that leaves it out."
                        if facts.get("azure_detected") else "")
            raise AnsibleLookupError(
                f"There are no IMDS facts for {target.label}, and it is not the controller ({target.why}), so "
                f"asking IMDS from here would describe the controller instead. {FACTS_HINT}.{filtered}")
        self._check_live_allowed(target, "the instance document")
        live = self._live_instance()
        return Answer(live.document, live.api_version, f"the instance document IMDS at {self._settings().endpoint} "
                      f"returned live for {target.label}", live)

    def _from_facts(self, target: Target, facts: t.Mapping[str, t.Any], has_document: bool,
                    not_azure: bool) -> Answer:
        if not_azure:
            reason = facts.get("azure_detection_reason") or "its facts say azure_detected=false"
            raise NotOnAzure(f"it is not an Azure VM according to its facts ({printable(reason)})")
        if not has_document:
            raise AnsibleLookupError(f"source=facts, and {target.label} has no IMDS facts "
                                     f"(ansible_facts['azure_metadata']). {FACTS_HINT}.")
        version = facts.get("azure_api_version")
        wanted = self.get_option("api_version")
        if wanted and version and wanted != version:
            display.warning(f"imds.azure.metadata: the facts of {target.label} were gathered with api-version "
                            f"{printable(version, 40)}, not the api_version {wanted} asked for; answering from the "
                            "facts.")
        try:
            check_tree(facts["azure_metadata"])
        except ImdsDocumentError as exc:
            raise AnsibleLookupError(f"The facts of {target.label} (ansible_facts['azure_metadata']) are not an IMDS "
                                     f"instance document: {exc}. Gather them again with imds.azure.metadata_facts."
                                     ) from None
        return Answer(facts["azure_metadata"], version, f"the facts of {target.label}", None)

    def _not_on_azure(self, path: ImdsPath, target: Target, exc: NotOnAzure) -> t.Any:
        if self._has_default:
            return self._default
        raise AnsibleLookupError(f"Cannot answer the IMDS path {printable(path.display, 200)!r} for {target.label}: "
                                 f"{exc.reason}. "
                                 f"Set default= to get a value where there is no Azure VM. {exc.hint}".strip())

    # -- live ---------------------------------------------------------------------------

    def _check_live_allowed(self, target: Target, what: str) -> None:
        if target.is_controller or self.get_option("allow_live_for_remote_hosts"):
            return
        raise AnsibleLookupError(
            f"Reading {what} live asks the controller's IMDS, and {target.label} is not the controller "
            f"({target.why}): the answer would describe the controller, not {printable(target.name, 120)}. Use source=facts after "
            "gathering imds.azure.metadata_facts on that host, or set allow_live_for_remote_hosts=true if the "
            "controller's own metadata is what you want.")

    def _settings(self) -> LiveSettings:
        try:
            # imds_azure_endpoint may hold a template ("http://{{ emulator_host }}:8169"), as it may for the modules
            raw = self.get_option("endpoint")
            return LiveSettings(endpoint(self._template(raw) if isinstance(raw, str) else raw), self.get_option("api_version"),
                                self.get_option("timeout"), self.get_option("retry_timeout"))
        except (OptionError, ValueError) as exc:
            raise AnsibleLookupError(f"imds.azure.metadata: {exc}") from None

    def _probe_timeout(self) -> float:
        try:
            return seconds(self.get_option("probe_timeout"), "probe_timeout", above_minimum=True, maximum=MAX_TIMEOUT)
        except OptionError as exc:
            raise AnsibleLookupError(f"imds.azure.metadata: {exc}") from None

    def _client(self, api_version: str | None = None) -> ImdsClient:
        settings = self._settings()
        try:
            return ImdsClient(HttpClientTransport(), endpoint=settings.endpoint,
                              api_version=api_version or settings.api_version, timeout=settings.timeout,
                              retry_timeout=settings.retry_timeout)
        except ImdsError as exc:
            raise AnsibleLookupError(f"imds.azure.metadata: {exc}") from None

    def _live_instance(self) -> InstanceEntry:
        if self._live is None:
            settings = self._settings()
            client = self._client()  # validates the endpoint and timeouts before anything else
            # wait for another fork's fetch at most as long as that fetch may take
            probe = self._probe_timeout()
            wait = client.retry_timeout + client.timeout + probe + 1
            cache = InstanceCache(_run_directory(), float(self.get_option("cache_ttl")), wait)
            try:
                self._live = cache.get(settings, lambda: fetch_instance(client, probe))
            except NotOnAzure as exc:
                raise _controller_not_on_azure(exc) from None
            for warning in self._live.warnings:
                display.warning(warning)
        return self._live

    @staticmethod
    def _needs_user_data(path: ImdsPath, fmt: str) -> bool:
        """Does the answer show userData's value? (A text listing of compute shows only its name.)"""
        if fmt == "text":
            return path.segments == USER_DATA
        return USER_DATA[:len(path.segments)] == path.segments

    def _with_user_data(self, live: InstanceEntry, path: ImdsPath) -> t.Any:
        """Ask IMDS for userData (never cached) and put it into a copy of the answer."""
        client = self._client(live.api_version)
        value = client.instance("compute/userData", fmt="text").data
        if path.segments == USER_DATA:
            return value
        document = copy.deepcopy(live.document)
        document["compute"]["userData"] = value
        return walk(document, path.segments)

    def _live_category(self, path: ImdsPath, target: Target) -> t.Any:
        if self.get_option("source") == "facts":
            raise AnsibleLookupError(f"{path.category} is never part of the facts; it is read live from IMDS "
                                     "(source=auto or source=live).")
        if self.get_option("format") == "text":
            raise AnsibleLookupError(f"IMDS serves {path.category} as JSON only; format=text is for instance paths.")
        self._check_live_allowed(target, path.category)
        try:
            if path.category == TOKEN:
                return self._token(path)
            client = self._client()
            if path.category == VERSIONS:
                response = request_on_azure(client, lambda first: client.get(path.url_path, versioned=False,
                                                                             first_timeout=first),
                                            probe_timeout=self._probe_timeout()).response
            else:
                params = {"nonce": self.get_option("nonce")} if path.category == ATTESTED and self.get_option("nonce") else {}
                response = request_on_azure(client, lambda first: client.get(path.url_path, params,
                                                                             first_timeout=first),
                                            probe_timeout=self._probe_timeout()).response
        except NotOnAzure as exc:
            return self._not_on_azure(path, target, _controller_not_on_azure(exc))
        except ImdsError as exc:
            if exc.status == 404 and self._has_default:
                return self._default
            raise
        for warning in response.warnings:
            display.warning(warning)
        if not path.segments:
            return response.data
        answer = Answer(response.data, response.api_version, f"the {path.category} document IMDS at "
                        f"{self._settings().endpoint} returned live", None)
        try:
            return self._walk(path, answer)
        except _Default:
            return self._default

    def _token(self, path: ImdsPath) -> t.Any:
        resource = self.get_option("resource")
        if not resource:
            raise AnsibleLookupError("identity/oauth2/token needs the resource option, the audience of the token, "
                                     "for example resource='https://vault.azure.net'.")
        chosen = [name for name in IDENTITY_CHOICES if self.get_option(name)]
        if len(chosen) > 1:
            raise AnsibleLookupError(f"Give at most one of client_id, object_id and msi_res_id, not {' and '.join(chosen)}.")
        params = {"resource": resource, **{name: self.get_option(name) for name in chosen}}
        client = self._client(IDENTITY_API_VERSION)
        try:
            response = request_on_azure(client, lambda first: client.get(path.url_path, params, first_timeout=first,
                                                                         policy=TOKEN_RETRY),
                                        probe_timeout=self._probe_timeout()).response
        except ImdsError as exc:
            if exc.status == 400:
                raise AnsibleLookupError(f"{exc} IMDS refuses a token when the VM has no managed identity, or none "
                                         "that matches client_id, object_id or msi_res_id.") from None
            raise
        return response.data


class _Default(Exception):
    """The path is not there and the lookup was given a default: answer it."""


def _load_balancer_missing(facts: t.Mapping[str, t.Any]) -> str:
    """Why a host's facts hold no load balancer document, for a message."""
    status = facts.get("azure_load_balancer_status")
    version = facts.get("azure_api_version")
    if status is None:
        return ("ansible_facts['azure_load_balancer_status'] is missing: they were gathered by an older imds.azure, "
                "with a filter that leaves it out, or not at all")
    if status == LB_NOT_REQUESTED and isinstance(version, str) and version < LOAD_BALANCER_SINCE:
        return (f"they were gathered with api-version {version}, older than {LOAD_BALANCER_SINCE}, the first that "
                "serves /metadata/loadbalancer")
    if status == LB_NOT_REQUESTED:
        return "they were gathered with load_balancer=false, or with a filter that needs none of its facts"
    if status == LB_FAILED:
        return "reading it failed when they were gathered; that task's warning said why"
    return "ansible_facts['azure_load_balancer_metadata'] is missing: gather without a filter that leaves it out"


def _flat(terms: t.Any) -> list[t.Any]:
    """Terms as given, with lists of paths expanded one level: query('...', paths) works as query('...', *paths)."""
    if isinstance(terms, (str, bytes)) or not isinstance(terms, t.Sequence):
        return [terms]
    flat: list[t.Any] = []
    for term in terms:
        if isinstance(term, t.Sequence) and not isinstance(term, (str, bytes)):
            flat.extend(term)
        else:
            flat.append(term)
    return flat


def _controller_not_on_azure(exc: NotOnAzure) -> NotOnAzure:
    return NotOnAzure(f"the controller, whose IMDS the live source asks, is not an Azure VM ({exc.reason})", exc.hint)


def _run_directory() -> str | None:
    """This run's private local temp folder (created by ansible-core per run, mode 0700)."""
    directory = getattr(C, "DEFAULT_LOCAL_TMP", None)
    return directory if isinstance(directory, str) and directory else None
