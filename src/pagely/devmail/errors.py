"""Why a development mail page is not found."""

from __future__ import annotations

from pagely.core.errors import NotFound


class CapturedMailNotFound(NotFound):
    message = "No such message"


class NotOnLoopback(NotFound):
    """Asked for by a Host that is not this machine's loopback name: a page on another site
    could otherwise read the mailbox through DNS rebinding. A 404, as if not mounted."""
