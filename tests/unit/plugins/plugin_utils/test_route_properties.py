"""Property tests: whatever table comes in, the route filters plan or say why in one line, in bounded time."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.filter.route import route_plan_linux, route_plan_windows
from ansible_collections.imds.azure.tests.utils.properties import assert_one_line, bounded
from ansible_collections.imds.azure.tests.utils.strategies import hostile_values, ip_addr_outputs, ip_route_outputs, route_print_texts

pytestmark = pytest.mark.property

BOUNDED = bounded(150)
OPTIONS = st.fixed_dictionaries({}, optional={
    "state": st.sampled_from(["present", "absent", "gone"]),
    "metric": st.one_of(st.integers(-1, 10 ** 10), hostile_values(1)),
    "force": st.sampled_from([True, False, "yes", "maybe"]), "interface": st.sampled_from(["", "eth0", "10.0.1.10"]),
    "gateway": st.sampled_from(["", "10.0.1.1", "nowhere"])})


def check(plan_or_error) -> None:
    try:
        plan = plan_or_error()
    except AnsibleFilterError as error:
        assert_one_line(str(error))
        assert str(error).startswith("imds.azure.route_plan_")
        return
    assert plan["action"] in ("add", "remove", "replace", "none")
    for line in [plan["reason"], *plan["warnings"]]:
        assert isinstance(line, str) and "\n" not in line


@BOUNDED
@given(ip_route_outputs(), ip_addr_outputs(), OPTIONS)
def test_any_ip_output_gives_a_plan_or_one_line(routes, addresses, options):
    check(lambda: route_plan_linux(routes, addresses, **options))


@BOUNDED
@given(route_print_texts(), OPTIONS)
def test_any_route_print_gives_a_plan_or_one_line(text, options):
    check(lambda: route_plan_windows(text, **options))
