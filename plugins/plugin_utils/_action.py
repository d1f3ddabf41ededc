# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the action plugins of metadata_facts and scheduled_events share: the switch, and where the module runs.

- The switch: ``imds_azure_endpoint`` (variable), ``ANSIBLE_IMDS_AZURE_ENDPOINT``
  (environment) and ``[imds_azure] endpoint`` (ansible.cfg), the same sources the
  lookup reads, defined once in the doc fragment ``imds.azure.imds.plugin_sources``
  and resolved by ansible-core's configuration manager. It fills ``endpoint`` when the
  task (or module_defaults) does not set it, which makes it an explicit endpoint:
  always asked, never the DMI check or the probe.
- A POSIX host runs the module as a module would run without this plugin: one
  ``_execute_module``, nothing else.
- A host whose shell is PowerShell runs the module's own ``run()`` here on the
  controller, with the module's argument spec, and each HTTP attempt goes through
  ``ansible.windows.win_uri`` on the host (plugin_utils/_win_uri.py).
"""

from __future__ import annotations

import functools
import types
import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

SWITCH = "endpoint"
_SWITCH_OWNER = "imds.azure.endpoint_switch"  # the name its definition is registered under
WINDOWS_EVIDENCE = ("the host runs Windows, whose SMBIOS asset tag the controller does not read (that would be "
                    "another round trip)")
ROUND_TRIP_HOLD = 30.0  # seconds a win_uri run may add to a request's place in the rate limit


class Switch(t.NamedTuple):
    """The endpoint the switch names, and where it was set (``var: imds_azure_endpoint``...)."""

    endpoint: str
    origin: str


@functools.lru_cache(maxsize=1)
def _switch_definition() -> dict[str, t.Any]:
    """Where the switch is read: the endpoint's sources in the doc fragment imds.azure.imds.plugin_sources."""
    import yaml

    from ansible_collections.imds.azure.plugins.doc_fragments.imds import ModuleDocFragment

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sources = yaml.load(ModuleDocFragment.PLUGIN_SOURCES, Loader=loader)["options"][SWITCH]  # nosec: a safe loader
    return dict(sources, type="raw")


def switch_endpoint(variables: t.Mapping[str, t.Any], templar: t.Any) -> Switch | None:
    """The endpoint set by the switch for a host with these variables, or None when it is not set."""
    from ansible import constants as C

    C.config.initialize_plugin_configuration_definitions("action", _SWITCH_OWNER, {SWITCH: _switch_definition()})
    value, origin = C.config.get_config_value_and_origin(SWITCH, plugin_type="action", plugin_name=_SWITCH_OWNER,
                                                         variables=variables)
    if origin == "default" or value is None:
        return None
    if origin.startswith("var"):
        value = templar.template(value)
    return Switch(value if isinstance(value, str) else str(value), str(origin))


# Parsed when the plugin is imported: ansible-core imports action plugins in the process that runs
# the play, so the worker it forks for each task inherits the definition instead of parsing it again.
_switch_definition()


class ImdsAction(ActionBase):
    """Run ``MODULE`` on a POSIX host, or its client here with win_uri as transport for a Windows host."""

    _supports_check_mode = True
    _supports_async = True  # on POSIX hosts, as the module itself; refused for Windows hosts

    MODULE = ""  # the module's leaf name in imds.azure

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if args.get(SWITCH) is None:
            switch = switch_endpoint(task_vars, self._templar)
            if switch is not None:
                args[SWITCH] = switch.endpoint
        if not getattr(self._connection._shell, "_IS_WINDOWS", False):
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(module_args=args, task_vars=task_vars,
                                                             wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        return merge_hash(result, self._run_for_windows(args, task_vars))

    # -- Windows hosts ----------------------------------------------------------------------

    def module(self) -> types.ModuleType:
        import importlib

        return importlib.import_module(f"ansible_collections.imds.azure.plugins.modules.{self.MODULE}")

    def run_module(self, module: types.ModuleType, params: dict[str, t.Any], transport: t.Any, evidence: t.Any,
                   limiter: t.Any) -> dict[str, t.Any]:
        """The module's ``run()`` with what the controller knows of the host."""
        raise NotImplementedError

    def _run_for_windows(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
        from ansible.module_utils.errors import UnsupportedError

        from ansible_collections.imds.azure.plugins.module_utils._detect import Evidence
        from ansible_collections.imds.azure.plugins.plugin_utils._win_uri import WIN_URI, WinUriTransport

        name = self._task.action
        if self._task.async_val:
            return {"failed": True, "msg": f"{name} does not support async on Windows hosts: its requests run through "
                                           f"{WIN_URI}, one module run each. Remove async from the task."}
        module = self.module()
        validated = ArgumentSpecValidator(module.argument_spec(), **getattr(module, "ARGUMENT_SPEC_KWARGS", {})
                                          ).validate(args)
        if validated.errors.errors:  # as AnsibleModule reports them
            msg = validated.errors.msg
            if isinstance(validated.errors.errors[0], UnsupportedError):
                msg = f"Unsupported parameters for ({name}) module: {msg}"
            return {"failed": True, "msg": msg}
        missing = self._missing_win_uri()
        if missing:
            return {"failed": True, "msg": missing}
        params = validated.validated_parameters

        def execute(module_name: str, module_args: dict[str, t.Any]) -> dict[str, t.Any]:
            return self._execute_module(module_name=module_name, module_args=dict(module_args), task_vars=task_vars)

        host = self._task.delegate_to or task_vars.get("inventory_hostname", "")  # the host win_uri runs on
        limiter = _host_limiter(params.get(SWITCH), str(host))
        result = self.run_module(module, params, WinUriTransport(execute), Evidence(None, WINDOWS_EVIDENCE), limiter)
        result["invocation"] = {"module_args": params}
        if not result.get("warnings"):
            result.pop("warnings", None)
        return result

    def _missing_win_uri(self) -> str | None:
        """A message naming the fix when ansible.windows (and so win_uri) is not installed."""
        from ansible.plugins.loader import module_loader

        from ansible_collections.imds.azure.plugins.plugin_utils._win_uri import WIN_URI

        if module_loader.find_plugin_with_context(WIN_URI, mod_type=".ps1").resolved:
            return None
        return (f"{self._task.action} on a Windows host sends its requests through {WIN_URI}, and the ansible.windows "
                "collection is not installed: run ansible-galaxy collection install ansible.windows.")


def _host_limiter(endpoint: t.Any, host: str) -> t.Any:
    """IMDS's 5 requests per second for one host, kept on the controller for every process of this user."""
    from ansible_collections.imds.azure.plugins.module_utils import _options
    from ansible_collections.imds.azure.plugins.module_utils._ratelimit import RateLimiter

    class HostLimiter(RateLimiter):
        def acquire(self, deadline: float, hold: float | None = None) -> str:
            return super().acquire(deadline, (self.hold if hold is None else hold) + ROUND_TRIP_HOLD)

    try:
        key = _options.endpoint(endpoint)
    except _options.OptionError:
        key = str(endpoint)  # the client refuses it before any request
    return HostLimiter(f"{key}@{host}")
