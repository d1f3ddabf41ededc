# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run imds.azure.metadata_facts once, as AnsiballZ runs it, and time its phases.

Usage: python -B -X importtime _profile_driver.py PAYLOAD_DIR ARGS_JSON OUT_JSON DMI_FILE

PAYLOAD_DIR is an exploded AnsiballZ payload (the module and every module_util it ships);
with -B and no __pycache__ there, Python compiles each file as it does from the payload's
zip. Wrappers around the collection's functions record where the time goes; the imports
that the first request makes are told apart from its network time by markers in the
-X importtime output (stderr), which profile_module.py reads.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

START = time.perf_counter()
PHASES: dict[str, float] = {}


def timed(key, function):
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES[key] = PHASES.get(key, 0.0) + time.perf_counter() - began
    return wrapper


def compile_time() -> float:
    """Seconds to compile, from source, every file of the collection that this run imported."""
    total = 0.0
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name.startswith("ansible_collections.imds.azure.") and path.endswith(".py"):
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
            began = time.perf_counter()
            compile(source, path, "exec")
            total += time.perf_counter() - began
    return total


def main() -> None:
    payload, args_json, out_json, dmi_file = sys.argv[1:5]
    sys.path.insert(0, payload)
    began = time.perf_counter()
    from ansible.module_utils import basic
    from ansible.module_utils._internal._ansiballz import _loader
    PHASES["import basic"] = time.perf_counter() - began

    os.write(2, b"BENCH imports start\n")
    began = time.perf_counter()
    from ansible_collections.imds.azure.plugins.modules import metadata_facts  # noqa: F401  what the module imports
    PHASES["import the module and its module_utils"] = time.perf_counter() - began
    os.write(2, b"BENCH imports end\n")
    from ansible_collections.imds.azure.plugins.module_utils import _client, _detect, _gather, _http, _ratelimit

    # detection as the default endpoint does it (an explicit endpoint skips it)
    began = time.perf_counter()
    _detect.dmi_evidence(dmi_file)
    PHASES["detection"] = time.perf_counter() - began

    request = _http.HttpClientTransport.request

    def request_marked(self, *args, **kwargs):
        # -X importtime lines between the markers are the imports the first request makes
        os.write(2, b"BENCH request start\n")
        began = time.perf_counter()
        try:
            return request(self, *args, **kwargs)
        finally:
            PHASES["request"] = PHASES.get("request", 0.0) + time.perf_counter() - began
            os.write(2, b"BENCH request end\n")

    _http.HttpClientTransport.request = request_marked  # type: ignore[method-assign]
    _ratelimit.RateLimiter.acquire = timed("rate limiter", _ratelimit.RateLimiter.acquire)  # type: ignore[method-assign]
    _client.ImdsClient.instance = timed("_client total", _client.ImdsClient.instance)  # type: ignore[method-assign]
    _gather.normalize = timed("normalization", _gather.normalize)  # the name the gather calls
    basic.AnsibleModule.__init__ = timed("AnsibleModule()", basic.AnsibleModule.__init__)  # type: ignore[method-assign]
    basic.AnsibleModule.exit_json = timed("exit_json", basic.AnsibleModule.exit_json)  # type: ignore[method-assign]

    began = time.perf_counter()
    try:
        _loader.run_module(json_params=Path(args_json).read_bytes(), profile="legacy",
                           module_fqn="ansible_collections.imds.azure.plugins.modules.metadata_facts",
                           modlib_path=payload, extensions={})
    except SystemExit:
        pass
    PHASES["module run"] = time.perf_counter() - began
    client_total = PHASES.pop("_client total", 0.0)
    PHASES["client glue"] = client_total - PHASES.get("rate limiter", 0.0) - PHASES.get("request", 0.0)
    PHASES["module glue"] = PHASES["module run"] - client_total - sum(
        PHASES.get(key, 0.0) for key in ("AnsibleModule()", "exit_json", "normalization"))
    PHASES["total"] = time.perf_counter() - START
    PHASES["compile the collection's files that ran"] = compile_time()
    with open(out_json, "w", encoding="utf-8") as handle:
        json.dump(PHASES, handle)


if __name__ == "__main__":
    main()
