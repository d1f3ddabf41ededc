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
    if not isinstance(text, str):
        text = repr(text)
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")
