"""SQL of the outbox mechanism: writing a message, locking one for delivery or a retry, and
claiming the stale ones for the sweep."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.models.base import table, utcnow
from pagely.models.outbox import OutboxMessage, OutboxStatus

OUTBOX = table(OutboxMessage)


async def insert_pending(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    key: str,
    trace_context: dict[str, str] | None = None,
) -> uuid.UUID | None:
    """The new message's id, due now; None when a message with this idempotency key exists."""
    statement = (
        insert(OUTBOX)
        .values(
            id=uuid.uuid4(),
            kind=kind,
            payload=payload,
            idempotency_key=key,
            trace_context=trace_context,
            status=OutboxStatus.pending,
            attempts=0,
            next_attempt_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[OUTBOX.c.idempotency_key])
        .returning(OUTBOX.c.id)
    )
    outbox_id: uuid.UUID | None = (await session.execute(statement)).scalar_one_or_none()
    return outbox_id


async def lock(
    session: AsyncSession, outbox_id: uuid.UUID, *, nowait: bool = False
) -> OutboxMessage | None:
    """The message, locked FOR UPDATE until the transaction ends (as loaded now, whatever the
    session held). A lock another transaction holds is waited for, or with `nowait` raises
    at once (DBAPIError, SQLSTATE 55P03)."""
    return await session.get(
        OutboxMessage, outbox_id, with_for_update={"nowait": nowait}, populate_existing=True
    )


async def claim_due_before(
    session: AsyncSession, cutoff: datetime, *, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` pending messages due at or before `cutoff`, longest overdue first, stamped
    as due now. Rows locked by a delivery in progress are skipped, not waited for."""
    due = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.status == OutboxStatus.pending, OUTBOX.c.next_attempt_at <= cutoff)
        .order_by(OUTBOX.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids: list[uuid.UUID] = list((await session.scalars(due)).all())
    if ids:
        await session.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(next_attempt_at=utcnow())
        )
    return ids
