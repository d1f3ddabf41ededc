"""The route_plan_linux / route_plan_windows filters: arguments, errors, and what Ansible shows."""
from __future__ import annotations

import json
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.filter.route import FilterModule
from ansible_collections.imds.azure.tests.unit.plugins.plugin_utils.test_route import SEED_ADDRS, SEED_ROUTES, SEED_TABLE

FILTERS = FilterModule().filters()
plan_linux = FILTERS["route_plan_linux"]
plan_windows = FILTERS["route_plan_windows"]


def test_filters_are_registered():
    assert sorted(FILTERS) == ["route_plan_linux", "route_plan_windows"]


def test_windows_filter_returns_the_plan_for_the_seed_table():
    plan = plan_windows(SEED_TABLE)
    assert plan["action"] == "add"
    assert plan["add"]["gateway"] == "10.0.1.10"
    assert plan["commands"] == ["route add 169.254.169.254/32 10.0.1.10 metric 1 -p"]
    json.dumps(plan)  # plain data, safe to register and print


def test_linux_filter_accepts_text_or_parsed_json():
    from_text = plan_linux(json.dumps(SEED_ROUTES), json.dumps(SEED_ADDRS))
    assert from_text == plan_linux(SEED_ROUTES, SEED_ADDRS)
    assert from_text["add"]["source"] == "10.0.1.10"


def test_role_defaults_mean_not_set():
    # The role passes its variables through unchanged: '' for "find it yourself", and
    # booleans that may arrive as strings from -e.
    plan = plan_linux(SEED_ROUTES, SEED_ADDRS, state="present", metric="1", force="no", interface="", gateway="")
    assert plan["action"] == "add" and plan["add"]["metric"] == 1
    assert plan_windows(SEED_TABLE.replace("169.254.0.0", "169.253.0.0"), force="yes")["action"] == "add"


@pytest.mark.parametrize("call, message", [
    (lambda: plan_windows("not a routing table"),
     "imds.azure.route_plan_windows: found no IPv4 Active Routes in the `route print` output"),
    (lambda: plan_linux("Error: something", SEED_ADDRS),
     "imds.azure.route_plan_linux: the output of `ip -j route` is not JSON"),
    (lambda: plan_linux(SEED_ROUTES, SEED_ADDRS, metric="high"),
     "imds.azure.route_plan_linux: metric must be an integer"),
    (lambda: plan_windows(SEED_TABLE, state="deleted"),
     "imds.azure.route_plan_windows: state must be 'present' or 'absent'"),
    (lambda: plan_windows(SEED_TABLE, force="maybe"), "force must be a boolean, got 'maybe'"),
    (lambda: plan_linux(SEED_ROUTES, SEED_ADDRS, interface=["eth0"]), "interface must be a string, got list"),
])
def test_errors_are_filter_errors_that_name_the_filter(call, message):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert message in str(caught.value)


def test_filters_through_ansible(playbook):
    """The FQCNs resolve in a real play, and a bad table fails the task with the message."""
    result = playbook(f"""
- hosts: localhost
  gather_facts: false
  vars:
    table: {json.dumps(SEED_TABLE)}
    routes: {json.dumps(json.dumps(SEED_ROUTES))}
    addrs: {json.dumps(json.dumps(SEED_ADDRS))}
  tasks:
    - name: Plan both
      ansible.builtin.copy:
        dest: "{{{{ out_dir }}}}/plans.json"
        content: "{{{{ {{'windows': table | imds.azure.route_plan_windows(metric=3),
                       'linux': routes | imds.azure.route_plan_linux(addrs, force=true)}} | to_json }}}}"
        mode: "0600"
    - name: Garbage in
      ansible.builtin.debug:
        msg: "{{{{ 'Cannot find device' | imds.azure.route_plan_linux('[]') }}}}"
""")
    plans = result.read_json("plans.json")
    assert plans["windows"]["commands"] == ["route add 169.254.169.254/32 10.0.1.10 metric 3 -p"]
    assert plans["linux"]["add"]["interface"] == "eth0"
    assert result.returncode != 0
    assert "imds.azure.route_plan_linux: the output of `ip -j route` is not JSON" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["route_plan_linux", "route_plan_windows"])
def test_ansible_doc_renders(name, tmp_path):
    from ansible_collections.imds.azure.tests.utils.playbook import ansible_command, ansible_env

    proc = subprocess.run([ansible_command("ansible-doc"), "-t", "filter", "--json",
                           f"imds.azure.{name}"], env=ansible_env(tmp_path), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[f"imds.azure.{name}"]
    assert doc["doc"]["name"] == name
    assert {"state", "metric", "force", "interface", "gateway"} <= set(doc["doc"]["options"])
    assert "action" in doc["return"]["_value"]["contains"]
    assert f"imds.azure.{name}" in doc["examples"]
