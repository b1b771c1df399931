"""Managing the outbox (the admin API): its numbers, the list and a retry."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.admin import queries
from pagely.admin.errors import AlreadySent, MessageBusy, OutboxMessageNotFound
from pagely.core import metrics
from pagely.core.outbox import queries as outbox
from pagely.core.outbox.dispatch import Dispatcher
from pagely.core.outbox.enqueue import dispatch_after_commit
from pagely.models.base import utcnow
from pagely.models.outbox import OutboxMessage, OutboxStatus

_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a NOWAIT lock that another transaction holds


@dataclass(frozen=True)
class OutboxReport:
    counts: dict[str, int]  # every status, zero included
    oldest_pending_age_seconds: float | None
    failed_last_hour: int
    broker_queue_depth: int | None
    counters: dict[str, int]


async def report(session: AsyncSession, redis: Redis, dispatcher: Dispatcher) -> OutboxReport:
    """The outbox from the database, the broker's queue (best effort) and the delivery
    counters every process adds to in Redis."""
    now = utcnow()
    counts = await queries.count_by_status(session)
    oldest_pending = await queries.oldest_pending_created_at(session)
    failed_last_hour = await queries.count_failed_since(session, now - timedelta(hours=1))
    depth, counters = await asyncio.gather(dispatcher.queue_depth(), metrics.read_counters(redis))
    return OutboxReport(
        counts={status.value: counts.get(status.value, 0) for status in OutboxStatus},
        oldest_pending_age_seconds=(
            round((now - oldest_pending).total_seconds(), 3) if oldest_pending else None
        ),
        failed_last_hour=failed_last_hour,
        broker_queue_depth=depth,
        counters=counters,
    )


async def list_messages(
    session: AsyncSession, *, status: OutboxStatus | None, limit: int, cursor: str | None
) -> tuple[list[OutboxMessage], str | None]:
    """Newest first: one page and the cursor of the next (None on the last)."""
    return await queries.page(session, status=status, limit=limit, cursor=cursor)


async def retry(session: AsyncSession, outbox_id: uuid.UUID) -> OutboxMessage:
    """Give a failed (or stuck pending) message a fresh set of attempts, now. A message being
    delivered right now is refused rather than waited for: its delivery holds the row lock
    for as long as SMTP takes."""
    try:
        row = await outbox.lock(session, outbox_id, nowait=True)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
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
