"""Why a development mail page is not found."""

from __future__ import annotations

from pagely.core.errors import NotFound


class CapturedMailNotFound(NotFound):
    message = "No such message"
