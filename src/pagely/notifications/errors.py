"""Why a notifications request is refused."""

from __future__ import annotations

from pagely.core.errors import NotFound


class NotificationNotFound(NotFound):
    type, message = "notification_not_found", "No such notification"
