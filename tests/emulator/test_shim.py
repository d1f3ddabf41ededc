"""The old path tests/emulator/imds_emulator.py, kept for one release: imported, it is the package."""
from __future__ import annotations

import subprocess
import sys

from ansible_collections.imds.azure.tests.utils.paths import REPO

SCRIPT = """
import sys, urllib.request
sys.path.insert(0, sys.argv[1])  # only the old folder, as old test suites had it
from imds_emulator import Emulator
import imds_emulator
print(imds_emulator.__file__)
with Emulator(profile="windows") as emu:
    request = urllib.request.Request(emu.url + "/metadata/instance/compute/osType?api-version=2021-02-01&format=text",
                                     headers={"Metadata": "true"})
    print(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5).read().decode())
"""


def test_importing_the_old_module_gives_the_package():
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO / "tests" / "emulator")], capture_output=True,
                          text=True, timeout=60, check=False, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(REPO / "tools" / "imds_emulator" / "__init__.py"), "Windows"]
    assert done.stderr == ""  # the notice is for the command line only
