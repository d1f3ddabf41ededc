"""Security properties, through real ansible-playbook against the emulator.

- IMDS refuses a request without ``Metadata: true`` or with ``X-Forwarded-For`` (shown
  on the emulator with raw requests); every request the collection sends has the one
  and not the other.
- userData appears nowhere (facts, -vvv output, fact cache, the lookup's run cache)
  unless ``include_user_data`` asks for it.
- The facts are a function of the instance document alone: nothing from the
  environment or the filesystem gets in, beyond the DMI file read for detection.
- A managed identity token read with the lookup under ``no_log`` is in no -v output and
  in no file the run leaves or keeps while it runs.
"""
from __future__ import annotations

import base64
import json
import socket
import uuid
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.utils import netns
from ansible_collections.imds.azure.tests.utils.paths import REPO

NEWEST = "2025-04-07"
PROFILE = REPO / "tools" / "imds_emulator" / "profiles" / "linux.json"
# The header of every token the emulator signs ({"typ":"JWT","alg":"none"}, base64url): a
# token in any text starts with it.
JWT_HEADER = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"none"}').rstrip(b"=").decode()


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    """One GET on a bare socket (no library, no proxy): the status and the JSON body."""
    host, port = url.split("//", 1)[1].split(":")
    lines = [f"GET /metadata/instance?api-version={NEWEST} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_imds_refuses_requests_without_metadata_header_or_with_x_forwarded_for(emulator, playbook):
    emu = emulator(profile="linux")
    status, body = raw_get(emu.url, {})
    assert status == 400 and "metadata header" in body["error"].lower()
    status, body = raw_get(emu.url, {"Metadata": "false"})
    assert status == 400
    status, body = raw_get(emu.url, {"Metadata": "true", "X-Forwarded-For": "10.0.0.1"})
    assert status == 400 and "X-Forwarded-For" in body["error"]
    status, body = raw_get(emu.url, {"Metadata": "true"})
    assert status == 200 and "compute" in body
    emu.clear_log()

    pb = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
    - name: Live lookups
      ansible.builtin.debug:
        msg: "{{ query('imds.azure.metadata', 'compute/vmId', 'versions', 'attested/document', source='live',
                       endpoint=endpoint) }}"
"""
    result = playbook(pb, extra_vars={"endpoint": emu.url}, inventory="localhost ansible_connection=local\n").check()
    assert "Traceback" not in result.output
    sent = emu.requests
    assert {r["path"] for r in sent} == {"/metadata/instance", "/metadata/loadbalancer", "/metadata/versions",
                                         "/metadata/attested/document"}
    for request in sent:
        assert request["headers"]["metadata"] == "true", request
        assert "x-forwarded-for" not in request["headers"] and "forwarded" not in request["headers"], request
        assert request["status"] == 200


def canary_profile(tmp_path: Path) -> tuple[Path, str, str]:
    """The linux profile with a userData whose text and base64 occur nowhere else."""
    secret = f"#cloud-config\npassword: imds-canary-{uuid.uuid4().hex}\n"
    encoded = base64.b64encode(secret.encode()).decode()
    document = json.loads(PROFILE.read_text(encoding="utf-8"))
    document["compute"]["userData"] = encoded
    path = tmp_path / "canary-profile.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path, secret, encoded


def texts_under(*roots: Path) -> str:
    """Every file under the roots, as text, for searching."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else ():
            if path.is_file():
                found.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(found)


USER_DATA_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
        include_user_data: "{{ opt_in }}"
      register: gathered
    - name: Show everything, as a curious user would
      ansible.builtin.debug:
        var: gathered
    - name: Save the facts
      ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out_dir }}/facts.json"
        mode: "0600"
"""


@pytest.mark.parametrize("opt_in", [False, True], ids=["without include_user_data", "with include_user_data"])
def test_user_data_only_with_the_opt_in(emulator, playbook, tmp_path, opt_in):
    profile, secret, encoded = canary_profile(tmp_path)
    emu = emulator(profile_file=profile)
    cache = tmp_path / "fact-cache"
    cfg = f"gathering = explicit\nfact_caching = jsonfile\nfact_caching_connection = {cache}\n"
    result = playbook(USER_DATA_PLAY, extra_vars={"endpoint": emu.url, "opt_in": opt_in}, cfg=cfg,
                      inventory="localhost ansible_connection=local\n", args=("-vvv",)).check()
    facts = result.read_json("facts.json")
    everything = "\n".join((result.output, json.dumps(facts), texts_under(cache)))
    marker = secret.split("imds-canary-")[1].strip()
    assert texts_under(cache), "the fact cache was written"
    if opt_in:
        assert facts["azure_compute"]["user_data"] == secret
        assert facts["azure_metadata"]["compute"]["userData"] == encoded
        assert encoded in texts_under(cache)  # the control: the search finds it when it is there
    else:
        assert encoded not in everything and marker not in everything and "imds-canary-" not in everything
        assert "user_data" not in facts["azure_compute"] and "userData" not in facts["azure_metadata"]["compute"]
    # and the module asked IMDS once for the whole document, userData included (the opt-in
    # is applied by the collection, not by the question), then for the load balancer
    assert [r["path"] for r in emu.requests] == ["/metadata/instance", "/metadata/loadbalancer"]


def expected_facts(profile_path: Path = PROFILE) -> dict:
    """What normalize() makes of the documents the emulator serves for NEWEST (the instance and the
    load balancer document), as ansible_facts names it."""
    from imds_emulator import document_for_version, public_document  # the oracle's own view of the document

    from ansible_collections.imds.azure.plugins.module_utils._normalize import (
        LB_NOT_FOUND, LoadBalancer, load_balancer, normalize)

    profile = json.loads(profile_path.read_text(encoding="utf-8"))
    document = document_for_version(public_document(profile), NEWEST)
    served = profile.get("_loadbalancer")  # the emulator answers 404 without it
    lb = load_balancer({"loadbalancer": served}) if isinstance(served, dict) else LoadBalancer(LB_NOT_FOUND)
    return {name[len("ansible_"):]: value for name, value in normalize(document, NEWEST, load_balancer=lb).items()}


CANARY_ENV = {name: f"imds-canary-env-{uuid.uuid4().hex}" for name in (
    "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "ARM_CLIENT_SECRET", "IMDS_AZURE_CANARY",
    "MSI_SECRET", "IDENTITY_HEADER", "HOSTNAME")}

FACTS_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint | default(omit) }}"
        dmi_path: "{{ dmi | default(omit) }}"
      register: gathered
    - name: Save what the module returned
      ansible.builtin.copy:
        content: "{{ gathered.ansible_facts | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def module_facts(saved: dict) -> dict:
    return {name[len("ansible_"):] if name.startswith("ansible_") else name: value for name, value in saved.items()}


def test_facts_hold_nothing_from_the_environment(emulator, playbook, tmp_path):
    emu = emulator(profile="linux")
    out = tmp_path / "facts.json"
    playbook(FACTS_PLAY, extra_vars={"endpoint": emu.url, "out": str(out)}, env=CANARY_ENV,
             inventory="localhost ansible_connection=local\n").check()
    facts = module_facts(json.loads(out.read_text(encoding="utf-8")))
    reason = facts.pop("azure_detection_reason")
    assert reason == f"the endpoint {emu.url} was given explicitly and answered"
    assert facts == expected_facts()
    text = json.dumps(facts)
    assert not [value for value in CANARY_ENV.values() if value in text]


needs_root = netns.skip_unless_possible()


@pytest.mark.netns
@needs_root
def test_facts_hold_nothing_from_the_filesystem_beyond_the_dmi_file(tmp_path):
    """The default endpoint (so the DMI file is read), inside a network namespace of our own.

    Beside the DMI file lie the other DMI files a careless module might read (the VM's
    UUID, serial numbers), and the environment holds canaries; none reaches the facts.
    """
    from ansible_collections.imds.azure.tests.utils.playbook import ansible_env

    dmi_dir = tmp_path / "dmi"
    dmi_dir.mkdir()
    dmi = dmi_dir / "chassis_asset_tag"
    dmi.write_text("7783-7084-3265-9085-8269-3286-77\n")
    canaries = {name: f"imds-canary-file-{uuid.uuid4().hex}" for name in (
        "product_uuid", "product_serial", "board_serial", "chassis_serial", "sys_vendor")}
    for name, value in canaries.items():
        (dmi_dir / name).write_text(value + "\n")
    pb = tmp_path / "pb.yml"
    pb.write_text(FACTS_PLAY)
    out = tmp_path / "facts.json"
    script = f"""{netns.serve_imds(tmp_path / "port", profile="linux")}
{netns.exports(ansible_env(tmp_path, CANARY_ENV), CANARY_ENV)}
ansible-playbook -i localhost, -c local {pb} -e dmi={dmi} -e out={out}
kill %1
"""
    proc = netns.run_unshared(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = module_facts(json.loads(out.read_text(encoding="utf-8")))
    reason = facts.pop("azure_detection_reason")
    assert str(dmi) in reason and "Azure's" in reason
    assert facts == expected_facts()
    text = json.dumps(facts) + reason
    assert not [v for v in (*canaries.values(), *CANARY_ENV.values()) if v in text]
    assert "7783-7084" not in text  # the DMI file decides, its content is not a fact


TOKEN_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the instance document live (the run cache keeps it)
      ansible.builtin.debug:
        msg: "{{ lookup('imds.azure.metadata', 'compute/vmId', source='live', endpoint=endpoint) }}"
    - name: Get a managed identity token
      ansible.builtin.set_fact:
        token: "{{ lookup('imds.azure.metadata', 'identity/oauth2/token', resource='https://vault.azure.net',
                          endpoint=endpoint) }}"
      no_log: "{{ hide }}"
    - name: Use it
      ansible.builtin.debug:
        msg: "Authorization: Bearer {{ token.access_token }}"
      no_log: "{{ hide }}"
    - name: Copy the run's temp folders while the run is alive (the lookup's cache lives there)
      ansible.builtin.command: cp -a {{ run_dir }}/ansible-local {{ run_dir }}/ansible-remote {{ out_dir }}/snapshot/
      changed_when: false
    - name: Say what the token looked like, without the token
      ansible.builtin.copy:
        content: "{{ {'jwt': token.access_token.startswith(jwt_header), 'length': token.access_token | length} | to_json }}"
        dest: "{{ out_dir }}/token.json"
        mode: "0600"
"""


@pytest.mark.parametrize("hide", [True, False], ids=["no_log", "control without no_log"])
def test_token_from_the_lookup_stays_out_of_output_and_disk(emulator, playbook, tmp_path, hide):
    profile, secret, encoded = canary_profile(tmp_path)
    emu = emulator(profile_file=profile)
    run_dir = tmp_path / "run0"  # where the playbook fixture runs its first playbook
    (run_dir / "out" / "snapshot").mkdir(parents=True)
    result = playbook(TOKEN_PLAY, extra_vars={"endpoint": emu.url, "hide": hide, "run_dir": str(run_dir),
                                              "jwt_header": JWT_HEADER},
                      inventory="localhost ansible_connection=local\n", args=("-v",)).check()
    token = result.read_json("token.json")
    assert token["jwt"] is True and token["length"] > 200  # a real token was there to leak
    snapshot = texts_under(run_dir / "out" / "snapshot")
    document = json.loads(profile.read_text(encoding="utf-8"))
    assert document["compute"]["vmId"] in snapshot, "the snapshot holds the lookup's run cache"
    assert encoded not in snapshot and secret not in snapshot, "userData is never cached"
    assert JWT_HEADER not in snapshot, "the token is never written to disk"
    if hide:
        assert JWT_HEADER not in result.output
        assert "the output has been hidden" in result.output
    else:  # the control: without no_log the token shows, so the search above would have found it
        assert JWT_HEADER in result.output
    assert "/metadata/identity/oauth2/token" in [r["path"] for r in emu.requests]


INJECTION_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather
      imds.azure.metadata_facts:
        endpoint: "{{ endpoint }}"
    - name: Use the facts in templates, as plays do
      ansible.builtin.debug:
        msg: "name={{ ansible_facts['azure_name'] }} tag={{ ansible_facts['azure_tags']['owner'] }}"
    - name: And the lookup, live on the controller
      ansible.builtin.debug:
        msg: "live={{ lookup('imds.azure.metadata', 'compute/name', source='live', endpoint=endpoint) }}"
    - name: Save the facts
      ansible.builtin.copy:
        content: "{{ {'name': ansible_facts['azure_name'], 'tags': ansible_facts['azure_tags']} | to_json }}"
        dest: "{{ out_dir }}/facts.json"
        mode: "0600"
"""


def test_a_malicious_document_sets_values_but_runs_nothing(emulator, playbook, tmp_path):
    """Fact values that are Jinja templates stay text: neither the module's facts nor the lookup's answer
    is ever rendered as a template, so IMDS (or whoever answers in its place) cannot run code."""
    canary = tmp_path / "pwned"
    payload = "{{ lookup('ansible.builtin.pipe', 'touch " + str(canary) + "') }}"
    document = json.loads(PROFILE.read_text(encoding="utf-8"))
    document["compute"]["name"] = payload
    document["compute"]["tagsList"] = [{"name": "owner", "value": payload}]
    document["compute"]["tags"] = "owner:" + payload
    path = tmp_path / "malicious.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    emu = emulator(profile_file=path)
    result = playbook(INJECTION_PLAY, extra_vars={"endpoint": emu.url},
                      inventory="localhost ansible_connection=local\n").check()
    assert not canary.exists(), "a fact value was rendered as a template"
    facts = result.read_json("facts.json")
    assert facts["name"] == payload and facts["tags"] == {"owner": payload}
    assert f"name={payload} tag={payload}" in result.stdout
    assert f"live={payload}" in result.stdout
