"""Property tests: whatever a scheduled-events answer holds, parse_document() reads it or says why in one line."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.module_utils._events import (
    EventsDocumentError, describe, not_before, parse_document, plan_approval)
from ansible_collections.imds.azure.tests.utils.properties import assert_one_line, bounded
from ansible_collections.imds.azure.tests.utils.strategies import RFC1123_LOOKING, events_documents, hostile_text

pytestmark = pytest.mark.property

BOUNDED = bounded(150)


@BOUNDED
@given(events_documents(), st.floats(0, 4e9), st.one_of(st.none(), st.sampled_from(["vm1", "VM1"]), hostile_text()))
def test_any_document_gives_events_or_one_line(document, now, vm_name):
    try:
        parsed = parse_document(document, now, vm_name)
    except EventsDocumentError as error:
        assert_one_line(str(error))
        return
    assert isinstance(parsed.incarnation, int) and parsed.incarnation >= 0
    for warning in parsed.warnings:
        assert_one_line(warning)
    for item in parsed.events:
        assert item["duration_in_seconds"] is None or 0 <= item["duration_in_seconds"] <= 10 ** 9
        assert (item["not_before_utc"] is None) == (item["seconds_until_not_before"] is None)
        if item["not_before_utc"] is not None:
            assert item["not_before_utc"].endswith("Z") and len(item["not_before_utc"]) == 20
    ids = [item["event_id"] for item in parsed.events]
    if ids:
        assert_one_line(describe(ids, parsed.events))
        plan = plan_approval(parsed.events, ids)
        assert len(plan.approve) + len(plan.already_started) <= len(ids)


@BOUNDED
@given(st.one_of(RFC1123_LOOKING, hostile_text()), st.floats(-1e10, 1e10))
def test_not_before_is_a_date_in_range_or_a_value_error(value, now):
    try:
        iso, seconds = not_before(value, now)
    except ValueError as error:
        assert_one_line(str(error))
        return
    assert (iso is None) == (seconds is None) == (not value.strip())
