"""printable(): server text made safe for a one-line message."""
from __future__ import annotations

import pytest

from ansible_collections.imds.azure.plugins.module_utils._text import SERVER_TEXT_LIMIT, printable


@pytest.mark.parametrize("text, shown", [
    ("Bad request", "Bad request"),
    ("two\nlines\r", "two\\nlines\\r"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # no colours forged on the terminal
    ("abc\u202eevil", "abc\\u202eevil"),  # no right-to-left override
    ("tab\there", "tab\\there"),
    ("zwsp\u200b", "zwsp\\u200b"),
    ("Grüße, 東京", "Grüße, 東京"),  # visible text stays as it is
    (b"bytes", "b'bytes'"),
    (None, "None"),
    (404, "404"),
])
def test_invisible_characters_are_escaped(text, shown):
    assert printable(text) == shown


def test_long_text_is_cut_and_says_so():
    shown = printable("x" * (SERVER_TEXT_LIMIT + 1))
    assert shown == "x" * SERVER_TEXT_LIMIT + "..."
    assert printable("y" * 10, limit=4) == "yyyy..."
    assert printable("z" * 4, limit=4) == "zzzz"


def test_the_result_is_always_one_printable_line():
    hostile = "".join(chr(code) for code in range(0, 0x2100))
    assert printable(hostile, limit=len(hostile)).isprintable()


def test_numbers_too_long_to_print_are_named_not_written():
    assert printable(10 ** 5000) == "a number of about 5000 digits"
    assert printable([10 ** 5000]) == "a list"
