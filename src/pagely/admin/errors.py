"""Why an outbox admin request is refused."""

from __future__ import annotations

from pagely.core.errors import Conflict, NotFound


class OutboxMessageNotFound(NotFound):
    type, message = "outbox_message_not_found", "No outbox message with this id"


class AlreadySent(Conflict):
    type, message = "already_sent", "This message was sent already"


class MessageBusy(Conflict):
    type, message = "outbox_busy", "This message is being sent right now; try again shortly"
