# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""Validators for every value a user sets: faults, events, timelines, fleets, options.

Each returns the value (normalized) or raises EmulatorError with one line that names
the setting and says what it accepts. A value is checked once, when it is set: a bad
one never reaches a request (NaN, infinities and 1e308 included).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

MAX_SECONDS = 86400.0 * 366
"""The longest duration any switch accepts (a year): more is a typo, and would overflow waits."""

MAX_COUNT = 1_000_000_000


def _show(limit: float) -> str:
    return f"{limit:.0f}" if float(limit).is_integer() else f"{limit:g}"


class EmulatorError(ValueError):
    """A bad profile, fault, event, timeline or fleet; the message says what to fix."""


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def number(value: Any, what: str, *, positive: bool = False, maximum: float = MAX_SECONDS) -> float:
    """A finite number, >= 0 (> 0 with ``positive``), at most ``maximum``."""
    kind = "positive" if positive else "non-negative"
    if not _is_number(value) or isinstance(value, float) and not math.isfinite(value) \
            or value < 0 or (positive and value == 0) or value > maximum:
        raise EmulatorError(f"{what} must be a {kind} number of at most {_show(maximum)}, not {value!r}")
    return value


def signed_number(value: Any, what: str, *, maximum: float = MAX_SECONDS) -> float:
    """A finite number between -maximum and maximum."""
    if not _is_number(value) or isinstance(value, float) and not math.isfinite(value) or abs(value) > maximum:
        raise EmulatorError(f"{what} must be a number between -{_show(maximum)} and {_show(maximum)}, "
                            f"not {value!r}")
    return value


def count(value: Any, what: str, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise EmulatorError(f"{what} must be an integer >= {minimum} and <= {maximum}, not {value!r}")
    return value


def status(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise EmulatorError(f"{what} must be an HTTP status (100-599), not {value!r}")
    return value


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise EmulatorError(f"{what} must be true or false, not {value!r}")
    return value


def text(value: Any, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise EmulatorError(f"{what} must be a {'' if empty else 'non-empty '}string, not {value!r}")
    return value


def header_value(value: Any, what: str) -> str:
    """A string that can go into an HTTP header: no line breaks or other control characters."""
    if not isinstance(value, str) or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise EmulatorError(f"{what} must be a string without control characters (it is sent as a header), "
                            f"not {value!r}")
    return value


def choice(value: Any, what: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        names = ", ".join(repr(name) for name in allowed)
        if len(allowed) > 1:
            names = f"{', '.join(repr(name) for name in allowed[:-1])} or {allowed[-1]!r}"
        raise EmulatorError(f"{what} must be {names}, not {value!r}")
    return value


def table(value: Any, what: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
    """An object whose keys are among ``allowed`` and include ``required``."""
    allowed, required = set(allowed), set(required)
    if not isinstance(value, dict):
        raise EmulatorError(f"{what} must be an object with {', '.join(sorted(allowed))}")
    unknown = set(value) - allowed
    if unknown:
        raise EmulatorError(f"{what} has unknown keys {', '.join(sorted(map(str, unknown)))}; "
                            f"allowed: {', '.join(sorted(allowed))}")
    missing = required - set(value)
    if missing:
        raise EmulatorError(f"{what} needs {', '.join(sorted(missing))}")
    return value


def string_list(value: Any, what: str, *, empty: bool = False) -> list[str]:
    if not isinstance(value, list) or (not empty and not value) \
            or not all(isinstance(item, str) and item for item in value):
        raise EmulatorError(f"{what} must be a {'' if empty else 'non-empty '}list of non-empty strings, "
                            f"not {value!r}")
    return list(value)


def read_json_file(path: str | Path, label: str) -> Any:
    """A JSON file's value; unreadable or invalid is an EmulatorError that names ``label``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EmulatorError(f"cannot read {label}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EmulatorError(f"{label} is not valid JSON: {str(exc)[:200]}") from None
