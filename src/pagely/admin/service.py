"""Managing the outbox (the admin API): counts, listing and a retry."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.core.errors import Conflict, NotFound
from pagely.core.outbox.enqueue import dispatch_after_commit
from pagely.models.base import utcnow
from pagely.models.outbox import OutboxMessage, OutboxStatus


class OutboxMessageNotFound(NotFound):
    type, message = "outbox_message_not_found", "No outbox message with this id"


class AlreadySent(Conflict):
    type, message = "already_sent", "This message was sent already"


class MessageBusy(Conflict):
    type, message = "outbox_busy", "This message is being sent right now; try again shortly"


async def stats(session: AsyncSession) -> dict[str, Any]:
    now = utcnow()
    counts: dict[str, int] = dict(
        (
            await session.execute(
                select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))
            )
        ).all()
    )
    oldest_pending: datetime | None = await session.scalar(
        select(func.min(col(OutboxMessage.created_at))).where(
            col(OutboxMessage.status) == OutboxStatus.pending
        )
    )
    failed_last_hour = await session.scalar(
        select(func.count()).where(
            col(OutboxMessage.status) == OutboxStatus.failed,
            col(OutboxMessage.failed_at) >= now - timedelta(hours=1),
        )
    )
    return {
        "counts": {status.value: int(counts.get(status.value, 0)) for status in OutboxStatus},
        "oldest_pending_age_seconds": (
            round((now - oldest_pending).total_seconds(), 3) if oldest_pending else None
        ),
        "failed_last_hour": int(failed_last_hour or 0),
    }


async def list_messages(
    session: AsyncSession,
    *,
    status: OutboxStatus | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[OutboxMessage]:
    """Newest first; `after` is the (created_at, id) of the previous page's last row."""
    query = select(OutboxMessage)
    if status is not None:
        query = query.where(col(OutboxMessage.status) == status)
    if after is not None:
        created_at, last_id = after
        query = query.where(
            tuple_(col(OutboxMessage.created_at), col(OutboxMessage.id))
            < tuple_(created_at, last_id)
        )
    query = query.order_by(
        col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc()
    ).limit(limit)
    return list((await session.scalars(query)).all())


async def retry(session: AsyncSession, outbox_id: uuid.UUID) -> OutboxMessage:
    """Give a failed (or stuck pending) message a fresh set of attempts, now."""
    try:
        row = await session.get(
            OutboxMessage, outbox_id, with_for_update={"nowait": True}, populate_existing=True
        )
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise MessageBusy() from None
        raise
    if row is None:
        raise OutboxMessageNotFound()
    if row.status == OutboxStatus.sent:
        raise AlreadySent()
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.failed_at = None
    await session.flush()
    dispatch_after_commit(session, row.id)
    return row
