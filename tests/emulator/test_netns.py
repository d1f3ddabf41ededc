"""The emulator binds the real IMDS address, 169.254.169.254:80, inside a network namespace.

The namespace is ours: created for the test, its loopback holds 169.254.169.254/32, and it
is deleted afterwards. Nothing leaves it. Needs root and iproute2; skipped otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "imds_emulator"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (ip)"),
]

CLIENT = textwrap.dedent("""
    import json, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        "http://169.254.169.254/metadata/instance/compute/vmId?api-version=2021-02-01&format=text",
        headers={"Metadata": "true"})
    print(json.dumps({"vmId": opener.open(request, timeout=5).read().decode()}))
""")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace():
    name = f"imdsemu{os.getpid()}"
    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        ip("netns", "exec", name, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10, check=False)


def test_serves_169_254_169_254_port_80_in_a_namespace(namespace, tmp_path):
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, str(SCRIPT), "--bind", "169.254.169.254",
         "--port", "80", "--profile", "spot", "--port-file", str(port_file), "--lifetime", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.02)
        assert port_file.read_text().strip() == "80"
        assert server.stdout.readline() == "imds-emulator listening on http://169.254.169.254:80\n"
        answer = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT],
                                capture_output=True, text=True, timeout=20, check=True)
        assert json.loads(answer.stdout) == {"vmId": "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0"}
        server.terminate()
        assert server.wait(timeout=5) == 0
    finally:
        server.kill()
        server.communicate()
