"""imds.azure.metadata through real ansible-playbook runs, against IMDS emulators.

Two emulators play two machines: ``vm_imds`` is the IMDS of the remote VM vm1 (profile
linux), ``controller_imds`` the IMDS of the controller (profile windows). Answers that
come from the wrong machine therefore show as the wrong vmId, and every run's request
logs say which IMDS was asked, and how often.
"""
from __future__ import annotations

import importlib.util

import json
import re
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils.paths import REPO

HERE = Path(__file__).resolve().parent / "lookup"
DOCS = REPO / "docs" / "docsite" / "rst" / "lookup.rst"
NEWEST = "2025-04-07"
LEAVES = ["compute/vmId", "compute/name", "compute/location", "compute/vmSize", "compute/osType", "compute/zone",
          "network/interface/0/macAddress", "network/interface/0/ipv4/ipAddress/0/privateIpAddress",
          "compute/sku", "compute/resourceGroupName", "compute/tagsList/0/value"]


def inventory(*extra: str) -> str:
    return "\n".join([
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
        "[vms]",
        # Remote hosts by every sign: ssh to TEST-NET-1 addresses. /bin/false as ssh makes any
        # connection attempt fail on this machine instead of sending a packet.
        "vm1 ansible_host=192.0.2.10 ansible_connection=ssh ansible_ssh_executable=/bin/false",
        "vm2 ansible_host=192.0.2.11 ansible_connection=ssh ansible_ssh_executable=/bin/false",
        *extra,
    ]) + "\n"


CONTROLLERS = ("[controllers]\nlocalhost\n"
               "ctl-a ansible_connection=local\nctl-b ansible_connection=local\n")


def ask(emu, path: str, api_version: str | None = NEWEST, **params: str) -> tuple[int, bytes]:
    """Ask an emulator over HTTP, as IMDS would be asked (no proxy)."""
    query = {**({"api-version": api_version} if api_version else {}), **params}
    url = f"{emu.url}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers={"Metadata": "true"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def text(emu, path: str, api_version: str = NEWEST) -> str:
    status, body = ask(emu, f"/metadata/instance/{path}".rstrip("/"), api_version, format="text")
    assert status == 200, (path, body)
    return body.decode("utf-8")


def data(emu, path: str, api_version: str = NEWEST):
    status, body = ask(emu, f"/metadata/instance/{path}".rstrip("/"), api_version)
    assert status == 200, (path, body)
    return json.loads(body)


def imds_requests(emu) -> list[dict]:
    return [r for r in emu.requests if r["path"].startswith("/metadata/")]


def all_paths(node, prefix=""):
    """Every path of a document: the root, each object, list and leaf."""
    yield prefix or "instance"
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield from all_paths(value, f"{prefix}/{key}" if prefix else str(key))


@pytest.fixture
def machines(emulator):
    return emulator(profile="linux"), emulator(profile="windows")


def test_facts_source_answers_for_the_remote_host(machines, playbook, tmp_path):
    vm_imds, controller_imds = machines
    tag = tmp_path / "asset_tag"
    tag.write_text("not-azure\n")
    result = playbook(HERE / "facts.yml", inventory=inventory(),
                      extra_vars={"vm_imds": vm_imds.url, "not_azure_tag": str(tag)},
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    # the controller's IMDS was never asked: every answer came from facts
    assert imds_requests(controller_imds) == []
    # the facts module, once: the instance document and the load balancer metadata
    assert [r["path"] for r in imds_requests(vm_imds)] == ["/metadata/instance", "/metadata/loadbalancer"]

    vm1 = result.read_json("vm1.json")
    assert vm1["vm_id"] == data(vm_imds, "compute")["vmId"] != data(controller_imds, "compute")["vmId"]
    assert vm1["name"] == "web-linux-01"
    assert vm1["private_ip"] == "10.0.0.4"
    assert vm1["network"] == data(vm_imds, "network")
    assert vm1["tags"] == data(vm_imds, "compute/tagsList")
    assert vm1["compute_text"] == text(vm_imds, "compute")
    assert vm1["interface_text"] == text(vm_imds, "network/interface/0")
    assert vm1["several"] == [text(vm_imds, "compute/location"), text(vm_imds, "compute/vmSize"),
                              text(vm_imds, "compute/zone")]
    assert vm1["missing"] == "fallback"

    # vm2 is not an Azure VM (its facts say so): every lookup with a default gives the default
    vm2 = result.read_json("vm2.json")
    expected = {"vm_id": None, "name": None, "private_ip": None, "network": None, "tags": [],
                "compute_text": "", "interface_text": "", "several": ["?", "?", "?"], "missing": "fallback"}
    assert {k: v for k, v in vm2.items() if k != "missing_message"} == expected
    assert (result.out_dir / "all.txt").read_text() == f"vm1 {vm1['vm_id']}\nvm2 -\n"

    missing = vm1["missing_message"]
    assert "The IMDS path 'compute/noSuchField' does not exist in the facts of host vm1" in missing
    assert f"(api-version {NEWEST})" in missing
    not_azure = vm2["missing_message"]
    assert "Cannot answer the IMDS path 'compute/noSuchField' for host vm2" in not_azure
    assert "not an Azure VM according to its facts" in not_azure


def test_remote_host_without_facts(machines, playbook):
    vm_imds, controller_imds = machines
    result = playbook(HERE / "errors.yml", inventory=inventory(), extra_vars={"vm_imds": vm_imds.url},
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url})
    assert result.returncode == 2, result.output
    # what the user reads: the reason and what to do, no traceback
    assert "There are no IMDS facts for host vm1, and it is not the controller" in result.output
    assert "its ansible_connection is ssh to 192.0.2.10" in result.output
    assert "Gather them first with the imds.azure.metadata_facts module" in result.output
    assert "Traceback" not in result.output
    refused = (result.out_dir / "live-refused.txt").read_text()
    assert "host vm1 is not the controller" in refused and "allow_live_for_remote_hosts=true" in refused
    assert [r["path"] for r in imds_requests(controller_imds)] == ["/metadata/instance"]
    assert imds_requests(vm_imds) == []
    # allowed explicitly, the live answer is the controller's own vmId
    assert (result.out_dir / "live-allowed.txt").read_text() == data(controller_imds, "compute")["vmId"]


def test_live_source_one_request_for_the_whole_run(machines, playbook):
    controller_imds = machines[1]
    result = playbook(HERE / "live.yml", inventory=inventory(CONTROLLERS), args=("--forks", "3"),
                      extra_vars={"imds_paths": LEAVES},
                      cfg=f"[imds_azure]\nendpoint = {controller_imds.url}\n").check()
    requests = imds_requests(controller_imds)
    # 3 hosts x (100 + 3 + 1) lookups in 3 tasks, in forked workers: one request
    assert [(r["path"], r["query"]) for r in requests] == [("/metadata/instance", {"api-version": NEWEST})]
    expected = [text(controller_imds, path) for path in LEAVES]
    for host in ("localhost", "ctl-a", "ctl-b"):
        lines = (result.out_dir / f"{host}-hundred.txt").read_text().splitlines()
        assert lines == [f"{i} {expected[i % len(LEAVES)]}" for i in range(100)]
        assert (result.out_dir / f"{host}-vm-id.txt").read_text() == expected[0]


def test_every_path_as_json_and_text_equals_imds(machines, playbook):
    controller_imds = machines[1]
    paths = list(all_paths(data(controller_imds, "")))
    assert len(paths) > 80
    result = playbook(HERE / "answers.yml", extra_vars={"imds_paths": paths},
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    answers = result.read_json("answers.json")
    controller_imds.clear_log()
    for path, as_json, as_text in zip(paths, answers["json"], answers["text"], strict=True):
        url_path = "" if path == "instance" else path
        assert as_text == text(controller_imds, url_path), path
        status, body = ask(controller_imds, f"/metadata/instance/{url_path}".rstrip("/"))
        if status == 400:  # IMDS serves a leaf only as text; the lookup gives its string
            assert as_json == as_text, path
        else:
            assert as_json == json.loads(body), path


def test_pinned_old_api_version(machines, playbook):
    controller_imds = machines[1]
    result = playbook(HERE / "pinned.yml", env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    assert [r["query"] for r in imds_requests(controller_imds)] == [{"api-version": "2017-08-01"}]
    pinned = result.read_json("pinned.json")
    assert pinned == {"vm_id": data(controller_imds, "compute")["vmId"],
                      "resource_group": text(controller_imds, "compute/resourceGroupName", "2017-08-01"),
                      "tags_list": "absent at this version",
                      "compute_text": text(controller_imds, "compute", "2017-08-01")}
    assert "tagsList" not in pinned["compute_text"]
    message = (result.out_dir / "pinned-missing.txt").read_text()
    assert "The IMDS path 'compute/tagsList' does not exist" in message and "(api-version 2017-08-01)" in message


def test_token_stays_out_of_the_output(machines, playbook):
    controller_imds = machines[1]
    result = playbook(HERE / "token.yml", args=("-vvv",),
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    token = (result.out_dir / "token.txt").read_text()
    assert token.count(".") == 2 and len(token) > 100  # a JWT
    assert token not in result.output
    assert "censored" in result.output
    [request] = imds_requests(controller_imds)
    assert request["path"] == "/metadata/identity/oauth2/token"
    assert request["query"] == {"resource": "https://vault.azure.net", "api-version": "2018-02-01"}


@pytest.mark.slow
def test_two_runs_at_once_keep_to_five_requests_per_second(machines, playbook):
    controller_imds = machines[1]
    env = {"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}
    results = []
    runs = [threading.Thread(target=lambda: results.append(playbook(HERE / "rate.yml", env=env)))
            for dummy in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(300)
    assert [r.returncode for r in results] == [0, 0], "\n".join(r.output for r in results)
    times = sorted(r["time"] for r in imds_requests(controller_imds))
    assert len(times) == 24  # cache_ttl=0: every lookup asked IMDS
    # The emulator logs arrivals; the limiter admits before the request is built and sent,
    # which may take a few hundred ms under load. So: at most 5 in any 0.7 s window, and
    # 24 requests spread over at least ~4 s (two runs limited apart would need about 2 s).
    relative = [round(t - times[0], 3) for t in times]
    busiest = max(sum(1 for t in times if start <= t < start + 0.7) for start in times)
    assert busiest <= 5, relative
    assert times[-1] - times[0] >= 3.2, relative


def test_a_plays_connection_keyword_is_seen_in_task_arguments_not_in_loops(machines, playbook):
    """What the lookup page says of a play's connection: keyword, on ansible-core 2.17 to 2.19."""
    vm_imds, controller_imds = machines
    vm3 = "vm3 ansible_host=192.0.2.12 ansible_ssh_executable=/bin/false"  # no ansible_connection
    result = playbook(HERE / "connection.yml", inventory=inventory(vm3),
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    assert [r["path"] for r in imds_requests(controller_imds)] == ["/metadata/instance"]
    assert imds_requests(vm_imds) == []
    # connection: local makes vm3 the controller for the task: the live answer is the controller's
    assert (result.out_dir / "arguments.txt").read_text() == data(controller_imds, "compute")["vmId"]
    refused = (result.out_dir / "loop.txt").read_text()
    assert "host vm3 is not the controller (the default connection of this run is ssh to 192.0.2.12)" in refused


def runnable_blocks(kind: str) -> list[str]:
    """The code blocks of the lookup page that follow a ``.. runnable: kind`` comment, dedented."""
    pattern = re.compile(rf"^\.\. runnable: {kind}\n\n\.\. code-block:: [a-z+]+\n\n((?:(?:   .*)?\n)+)", re.M)
    return [textwrap.dedent(block).strip("\n") + "\n" for block in pattern.findall(DOCS.read_text(encoding="utf-8"))]


def test_the_documented_examples_run(emulator, playbook):
    imds = emulator(profile="linux")
    [inventory_text] = runnable_blocks("inventory")
    plays = runnable_blocks("playbook")
    assert len(plays) == 3  # facts, live, auto
    result = playbook("---\n" + "\n".join(plays), extra_vars={"imds_azure_endpoint": imds.url},
                      inventory=inventory_text).check()
    # vm1's facts module (instance and load balancer), the live document for localhost, the pinned
    # old version for compute/sku
    assert [(r["path"], r["query"].get("api-version")) for r in imds_requests(imds)] == [
        ("/metadata/instance", NEWEST), ("/metadata/loadbalancer", NEWEST), ("/metadata/instance", NEWEST),
        ("/metadata/instance", "2019-06-01")]
    compute = data(imds, "compute")
    for expected in (f"name: {compute['name']}", f"size: {compute['vmSize']}", "first private IP: 10.0.0.4",
                     "'Role': 'WebServer'", compute["vmId"], "additionalCapabilities/\\nazEnvironment",
                     f"localhost is in {compute['location']}", f"vm1 is in {compute['location']}",
                     "no second NIC", f"vm1: {compute['vmId']}"):
        assert expected in result.stdout, expected


def test_ansible_doc_renders_the_merged_options(tmp_path):
    import subprocess

    from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

    command = [str(Path(sys.executable).parent / "ansible-doc"), "-t", "lookup", "imds.azure.metadata"]
    shown = subprocess.run(command, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    as_json = subprocess.run([*command, "--json"], env=ansible_env(tmp_path), capture_output=True, text=True,
                             timeout=120, check=False)
    options = json.loads(as_json.stdout)["imds.azure.metadata"]["doc"]["options"]
    # described once in the fragment's DOCUMENTATION, sources added by its PLUGIN_SOURCES
    assert options["endpoint"]["default"] == "http://169.254.169.254"
    assert options["endpoint"]["env"] == [{"name": "ANSIBLE_IMDS_AZURE_ENDPOINT"}]
    assert options["retry_timeout"]["ini"] == [{"key": "retry_timeout", "section": "imds_azure"}]
    assert "ANSIBLE_IMDS_AZURE_LOOKUP_SOURCE" in shown.stdout and "Several terms give several results" in shown.stdout


# -- which hosts are the controller: loopback is not enough ----------------------------------------

NEVER = "ansible_ssh_executable=/bin/false"  # any ssh attempt fails on this machine, no packet leaves
# paramiko_ssh left ansible-core in 2.21: there a host that names it can run no task at all
HAS_PARAMIKO = importlib.util.find_spec("ansible.plugins.connection.paramiko_ssh") is not None
PROXY_PARAMIKO = ("proxy-paramiko ansible_host=127.0.0.1 ansible_connection=paramiko "
                  "ansible_paramiko_proxy_command='ssh -W %h:%p b'\n" if HAS_PARAMIKO else "")
CANDIDATES = f"""
[candidates]
local-one ansible_connection=local
ssh-loopback ansible_host=127.0.0.1 ansible_connection=ssh {NEVER}
vagrant ansible_host=127.0.0.1 ansible_port=2222 ansible_connection=ssh {NEVER}
jump ansible_host=localhost ansible_connection=ssh ansible_ssh_common_args='-o ProxyJump=bastion.example' {NEVER}
jump-extra ansible_host=::1 ansible_connection=ssh ansible_ssh_extra_args='-J bastion' {NEVER}
{PROXY_PARAMIKO}templated ansible_host="{{{{ real_address }}}}" real_address=127.0.0.1 ansible_port="{{{{ real_port }}}}" real_port=2222 {NEVER}
templated-far ansible_host="{{{{ far }}}}" far=192.0.2.77 ansible_connection=ssh {NEVER}
templated-local ansible_connection="{{{{ how }}}}" how=local
marked ansible_host=127.0.0.1 ansible_port=2222 ansible_connection=ssh imds_azure_lookup_host_is_controller=true {NEVER}
unmarked-local ansible_connection=local imds_azure_lookup_host_is_controller=false
container ansible_connection=community.docker.docker ansible_host=localhost
winrm-forwarded ansible_connection=winrm ansible_host=127.0.0.1 ansible_port=55985
"""


def test_which_hosts_get_the_controllers_document_and_token(machines, playbook):
    """Issue 14, defect 4: 127.0.0.1:2222 or localhost behind a jump host got the controller's token."""
    controller_imds = machines[1]
    vm_id = data(controller_imds, "compute")["vmId"]
    result = playbook(HERE / "controller.yml", inventory=inventory(CANDIDATES),
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    got = result.read_json("controller.json")
    controllers = {"local-one", "ssh-loopback", "templated-local", "marked"}
    for host, (live, token) in got.items():
        if host in controllers:
            assert live == {"answer": vm_id} and token == {"answer": "a token"}, (host, live, token)
        else:
            assert set(live) == {"refused"} and set(token) == {"refused"}, (host, live, token)
            assert "is not the controller" in live["refused"] and "is not the controller" in token["refused"]
    why = {host: live["refused"] for host, (live, token) in got.items() if host not in controllers}
    assert "ssh to the loopback address 127.0.0.1, but its port is 2222, not 22" in why["vagrant"]
    assert "imds_azure_lookup_host_is_controller is true" in why["vagrant"]  # says how to override
    assert "its ssh_common_args sets ProxyJump" in why["jump"]
    assert "its ssh_extra_args names a jump host (-J)" in why["jump-extra"]
    if HAS_PARAMIKO:
        assert "its proxy_command is set" in why["proxy-paramiko"]
    assert "127.0.0.1, but its port is 2222" in why["templated"]  # the templates were resolved
    assert "ssh to 192.0.2.77" in why["templated-far"]
    assert "its imds_azure_lookup_host_is_controller is false" in why["unmarked-local"]
    assert "community.docker.docker, which reaches another system" in why["container"]
    assert "a port forwarded to a Windows machine" in why["winrm-forwarded"]
    # one instance document for the whole run, one token per controller host, nothing for the others
    paths = [r["path"] for r in imds_requests(controller_imds)]
    assert paths.count("/metadata/instance") == 1
    assert paths.count("/metadata/identity/oauth2/token") == len(controllers)


def test_ssh_settings_from_ansible_cfg_count_too(machines, playbook):
    controller_imds = machines[1]
    hosts = f"[candidates]\nssh-loopback ansible_host=127.0.0.1 ansible_connection=ssh {NEVER}\n"
    result = playbook(HERE / "controller.yml", inventory=inventory(hosts),
                      cfg="[ssh_connection]\nssh_args = -C -o ProxyJump=bastion.example\n",
                      env={"ANSIBLE_IMDS_AZURE_ENDPOINT": controller_imds.url}).check()
    live, token = result.read_json("controller.json")["ssh-loopback"]
    assert "its ssh_args sets ProxyJump" in live["refused"] and "refused" in token
    assert imds_requests(controller_imds) == []
