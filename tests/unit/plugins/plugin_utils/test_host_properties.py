"""Property tests: the lookup's path walker and its "is this host the controller" decision, on any input."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.imds.azure.plugins.plugin_utils._lookup_host import (
    SSH_PLUGINS, connection_of, controller_verdict, is_loopback, plugin_name)
from ansible_collections.imds.azure.plugins.plugin_utils._paths import (
    PathError, PathNotFound, parse_path, text_of, walk)
from ansible_collections.imds.azure.tests.utils.properties import assert_one_line, bounded
from ansible_collections.imds.azure.tests.utils.strategies import hostile_text, hostile_values, host_variables

pytestmark = pytest.mark.property

BOUNDED = bounded(150)


@BOUNDED
@given(hostile_values(), st.lists(st.one_of(st.sampled_from(["compute", "network", "0", "1", "k", "x"]),
                                            hostile_text(10)), max_size=8))
def test_walk_gives_a_node_or_one_line(document, segments):
    try:
        node = walk({"compute": document, "network": document}, segments)
    except PathNotFound as missing:
        assert_one_line(missing.reason)
        return
    if isinstance(node, (dict, list)):
        text_of(node)  # one level: never a recursion into the node


@BOUNDED
@given(st.one_of(hostile_text(), hostile_values(2)))
def test_parse_path_gives_a_path_or_path_error(term):
    try:
        parse_path(term)
    except PathError as error:
        assert "\n" not in str(error)


@BOUNDED
@given(host_variables(), st.sampled_from(["localhost", "vm1", "127.0.0.1"]), st.sampled_from(["ssh", "local", None]))
def test_the_decision_is_a_verdict_or_a_value_error_and_never_too_generous(host_vars, name, default):
    try:
        connection = connection_of(name, host_vars, default, lambda value: value)
    except ValueError as error:
        assert_one_line(str(error))
        return
    verdict = controller_verdict(name, connection)
    assert_one_line(verdict.why)
    if verdict.is_controller:  # only local, or ssh/paramiko to loopback on port 22 without a detour
        plugin = plugin_name(connection.plugin)
        assert plugin == "local" or (plugin in SSH_PLUGINS and is_loopback(str(connection.address or name))
                                     and connection.port in (None, 22, "22"))
