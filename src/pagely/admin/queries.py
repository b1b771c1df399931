"""SQL of the outbox admin API: the numbers of the stats and the newest-first list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


async def outbox_gauges(conn: AsyncConnection) -> tuple[int, int, datetime | None]:
    """(pending, failed, the oldest pending message's created_at), each through the
    (status, created_at) index: a scrape never scans the table."""

    def count(status: OutboxStatus) -> Any:
        return select(func.count()).select_from(OUTBOX).where(OUTBOX.c.status == status)

    oldest = select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == OutboxStatus.pending)
    row = (
        await conn.execute(
            select(
                count(OutboxStatus.pending).scalar_subquery(),
                count(OutboxStatus.failed).scalar_subquery(),
                oldest.scalar_subquery(),
            )
        )
    ).one()
    return int(row[0]), int(row[1]), row[2]
