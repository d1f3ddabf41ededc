"""Running a module's main() in-process, as ansible-core's own module tests do."""
from __future__ import annotations

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class Exit(Exception):
    """Raised in place of exit_json/fail_json; ``result`` holds what the module returned."""

    def __init__(self, kwargs):
        super().__init__(kwargs)
        self.result = kwargs


@contextlib.contextmanager
def module_args(args):
    """Give ``args`` to the next AnsibleModule (patch_module_args on 2.19+, _ANSIBLE_ARGS before)."""
    try:
        from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19+
    except ImportError:
        serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(basic, "_ANSIBLE_ARGS", serialized)
            yield
    else:
        with patch_module_args(args):
            yield


def run_module(monkeypatch, module, args, transport=None, *, sleep=None):
    """Run ``module.main()`` with ``args``; return its result with ``failed`` and ``warnings``.

    Every HTTP attempt goes to ``transport`` (a ScriptedTransport or anything with
    ``request(method, url, headers, data, timeout, max_bytes)``) instead of the network.
    ``sleep`` replaces time.sleep for the client's back-off (default: no wait at all).
    """
    from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport

    warnings = []

    def exit_json(self, **kwargs):
        raise Exit(dict(kwargs, failed=False))

    def fail_json(self, **kwargs):
        raise Exit(dict(kwargs, failed=True))

    def request(self, method, url, headers, data, timeout, max_bytes):
        if transport is None:
            raise AssertionError(f"unexpected request to {url}")
        return transport.request(method, url, headers, data, timeout, max_bytes)

    monkeypatch.setattr(HttpClientTransport, "request", request)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    if sleep is not False:
        import time

        monkeypatch.setattr(time, "sleep", sleep or (lambda seconds: None))
    with module_args(args), pytest.raises(Exit) as exc:
        module.main()
    result = exc.value.result
    result["warnings"] = warnings
    return result
