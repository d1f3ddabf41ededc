# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Text from a server, made safe for a one-line message: the one place that does it."""

from __future__ import annotations

import typing as t

SERVER_TEXT_LIMIT = 300


def printable(text: t.Any, limit: int = SERVER_TEXT_LIMIT) -> str:
    """``text`` fit for a one-line message.

    Line breaks, terminal escape sequences and every other invisible or formatting
    character are shown escaped (``\\n``, ``\\x1b``, ``\\u202e``), so a server cannot
    forge lines or colours on the user's terminal; at most ``limit`` characters are
    kept. Anything that is not a string is shown as its ``repr`` first.
    """
    if isinstance(text, int) and not isinstance(text, bool) and text.bit_length() > 64:
        text = f"a number of about {int(text.bit_length() * 0.30103)} digits"  # repr() refuses the longest
    elif not isinstance(text, str):
        try:
            text = repr(text)
        except (ValueError, RecursionError):  # a container holding a huge number, or nested too deep
            text = f"a {type(text).__name__}"
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def shown(value: t.Any, limit: int = 80) -> str:
    """``value`` named for a message, through ``printable()``: strings quoted, numbers as they are.

    A list or an object is named by its type and size, never written out (it may be huge,
    or nested too deep to write), and so is a number too long to print.
    """
    if isinstance(value, str):
        return f"'{printable(value, limit)}'"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with {len(value)} key{'' if len(value) == 1 else 's'}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    if value is None or isinstance(value, (bool, int, float)):
        return printable(value, limit)
    return f"a {printable(type(value).__name__, 40)}"


def whole_number(value: t.Any, max_digits: int = 18) -> int | None:
    """The int that ``value`` is or spells in ASCII decimal digits, else None.

    A JSON number that is whole (not a bool, not a fraction) counts; so does a string
    of at most ``max_digits`` digits 0-9 with an optional sign, without spaces.
    ``str.isdigit()`` and ``int()`` accept other scripts' digits (``"²"``, ``"١٢"``),
    which no server of ours sends as a number: those are no number here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    digits = value[1:] if value[:1] in "+-" else value
    if not 0 < len(digits) <= max_digits or not all("0" <= c <= "9" for c in digits):
        return None
    return int(value)
