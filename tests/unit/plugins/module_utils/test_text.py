"""printable(): text from a server, fit for one line of a message."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.module_utils._text import printable


@pytest.mark.parametrize("text", ["\x1b[2J\x1b]0;title\x07", "line\r\nFAKE: ok", "\u202eevil", "a\u2028b\x00c"])
def test_escapes_everything_invisible(text):
    assert printable(text).isprintable() and "\n" not in printable(text)


def test_numbers_too_long_to_print_are_named_not_written():
    assert printable(10 ** 5000) == "a number of about 5000 digits"
    assert printable([10 ** 5000]) == "a list"
