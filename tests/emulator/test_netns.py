"""The emulator binds the real IMDS address, 169.254.169.254:80, inside a network namespace.

The namespace is ours: created for the test, its loopback holds 169.254.169.254/32, and it
is deleted afterwards. Nothing leaves it. Needs root and iproute2; skipped otherwise.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.imds.azure.tests.utils import netns
from ansible_collections.imds.azure.tests.utils.paths import EMULATOR

pytestmark = [pytest.mark.netns, netns.skip_unless_possible()]

CLIENT = textwrap.dedent("""
    import json, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        "http://169.254.169.254/metadata/instance/compute/vmId?api-version=2021-02-01&format=text",
        headers={"Metadata": "true"})
    print(json.dumps({"vmId": opener.open(request, timeout=5).read().decode()}))
""")


@pytest.fixture
def namespace():
    reason = netns.why_not(named=True)
    if reason:
        pytest.skip(reason)
    with netns.named("imdsemu") as made:
        yield made


def test_serves_169_254_169_254_port_80_in_a_namespace(namespace, tmp_path):
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        namespace.command(sys.executable, str(EMULATOR), "--bind", "169.254.169.254",
                          "--port", "80", "--profile", "spot", "--port-file", str(port_file), "--lifetime", "30"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.02)
        assert port_file.read_text().strip() == "80"
        assert server.stdout.readline() == "imds-emulator listening on http://169.254.169.254:80\n"
        answer = namespace.exec(sys.executable, "-c", CLIENT)
        assert json.loads(answer.stdout) == {"vmId": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0"}
        server.terminate()
        assert server.wait(timeout=5) == 0
    finally:
        server.kill()
        server.communicate()
