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
