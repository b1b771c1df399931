"""SQL of notifications: a recipient's newest-first list, the unread count, marking read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.db import affected
from pagely.core.pagination import created_cursor, decode_created_cursor, paginate
from pagely.models.base import table, utcnow
from pagely.models.catalog import Notification

NOTIFICATIONS = table(Notification)


def _theirs(user_id: uuid.UUID, kinds: Sequence[str]) -> ColumnElement[bool]:
    """The user's notifications of the kinds this build shows."""
    return and_(NOTIFICATIONS.c.user_id == user_id, NOTIFICATIONS.c.kind.in_(kinds))


async def page(
    session: AsyncSession,
    user_id: uuid.UUID,
    kinds: Sequence[str],
    *,
    unread_only: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Notification], str | None]:
    """One page of the user's notifications, newest first, and the cursor of the next (None
    on the last)."""
    statement = select(Notification).where(_theirs(user_id, kinds))
    if unread_only:
        statement = statement.where(NOTIFICATIONS.c.read_at.is_(None))
    after = decode_created_cursor(cursor)
    if after is not None:
        position = tuple_(NOTIFICATIONS.c.created_at, NOTIFICATIONS.c.id)
        statement = statement.where(position < tuple_(*after))
    statement = statement.order_by(
        NOTIFICATIONS.c.created_at.desc(), NOTIFICATIONS.c.id.desc()
    ).limit(limit + 1)
    return paginate((await session.scalars(statement)).all(), limit, created_cursor)


async def count_unread(session: AsyncSession, user_id: uuid.UUID, kinds: Sequence[str]) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(NOTIFICATIONS)
        .where(_theirs(user_id, kinds), NOTIFICATIONS.c.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID, kinds: Sequence[str]
) -> Notification | None:
    """The notification, read (at the first time it was marked); None when the user has no
    notification with this id."""
    statement = (
        update(Notification)
        .where(NOTIFICATIONS.c.id == notification_id, _theirs(user_id, kinds))
        .values(read_at=func.coalesce(NOTIFICATIONS.c.read_at, utcnow()))
        .returning(Notification)
        # The returned row replaces whatever this session already held for it.
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(statement)).one_or_none()


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID, kinds: Sequence[str]) -> int:
    """How many were unread."""
    result = await session.execute(
        update(NOTIFICATIONS)
        .where(_theirs(user_id, kinds), NOTIFICATIONS.c.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return affected(result)
