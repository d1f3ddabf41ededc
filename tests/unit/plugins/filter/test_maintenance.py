"""The imds.azure.maintenance_plan filter: the decision of plugin_utils/_maintenance.py, errors as filter errors."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.filter.maintenance import FilterModule, maintenance_plan


def test_the_filter_names_itself_in_errors():
    with pytest.raises(AnsibleFilterError, match=r"^imds.azure.maintenance_plan: the hosts must be"):
        maintenance_plan([])
    with pytest.raises(AnsibleFilterError, match=r"imds_azure_maintenance_approve_rules rule 1 names nothing"):
        maintenance_plan([{"host": "a", "vm_name": "a", "events": []}], approve_rules=[{}])


def test_the_filter_plans():
    hosts = [{"host": "web1", "vm_name": "web1", "fault_domain": "0", "update_domain": "0", "events": [
        {"event_id": "R", "event_type": "Reboot", "event_status": "Scheduled", "resources": ["web1"],
         "not_before_utc": "2026-01-01T00:00:00Z"}]}]
    result = FilterModule().filters()["maintenance_plan"](hosts, drain_rules=[{"event_types": ["Reboot"]}])
    assert [(e["event_id"], e["action"], e["hosts"], e["fault_domains"]) for e in result["act_on"]] == [
        ("R", "drain", ["web1"], [0])]
