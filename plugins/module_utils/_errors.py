# This file is private to imds.azure; it is not a public API.
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one exception every IMDS failure becomes."""

from __future__ import annotations

import typing as t


class ImdsError(Exception):
    """Any failure to get an answer from IMDS; the message is for the user, one line.

    ``kind`` is ``http`` (IMDS answered with an error status), ``body`` (the answer
    cannot be read), ``config`` (an option value), ``rate_limit``, or the kind of the
    transport failure (``timeout``, ``refused``, ``reset``, ``unreachable``,
    ``truncated``, ``too_large``, ``protocol``, ``error``). ``text`` is the ``error``
    text of IMDS's error body, as sent (escape it before showing it), or None.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 api_version: str | None = None, kind: str = "http", text: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.api_version = api_version
        self.kind = kind
        self.text = text

    def to_result(self) -> dict[str, t.Any]:
        """The fields a module adds to fail_json beside msg."""
        return {"url": self.url, "status": self.status, "api_version": self.api_version}
