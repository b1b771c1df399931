"""SQL of the outbox admin API: the numbers of the stats and the newest-first list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.outbox.queries import OUTBOX
from pagely.core.pagination import created_cursor, decode_created_cursor, paginate
from pagely.models.outbox import OutboxMessage, OutboxStatus


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Only the statuses that have messages."""
    rows = await session.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    return {status: int(count) for status, count in rows.all()}


async def oldest_pending_created_at(session: AsyncSession) -> datetime | None:
    oldest: datetime | None = await session.scalar(
        select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == OutboxStatus.pending)
    )
    return oldest


async def count_failed_since(session: AsyncSession, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(OUTBOX)
        .where(OUTBOX.c.status == OutboxStatus.failed, OUTBOX.c.failed_at >= since)
    )
    return int(count or 0)


async def page(
    session: AsyncSession, *, status: OutboxStatus | None, limit: int, cursor: str | None
) -> tuple[list[OutboxMessage], str | None]:
    """One page, newest first, and the cursor of the next (None on the last)."""
    statement = select(OutboxMessage)
    if status is not None:
        statement = statement.where(OUTBOX.c.status == status)
    after = decode_created_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(OUTBOX.c.created_at, OUTBOX.c.id) < tuple_(*after))
    statement = statement.order_by(OUTBOX.c.created_at.desc(), OUTBOX.c.id.desc()).limit(limit + 1)
    return paginate((await session.scalars(statement)).all(), limit, created_cursor)
