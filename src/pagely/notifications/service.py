"""Notifications: written by other features inside their transaction, read and marked read
by their recipient. Emails go through the outbox, so they exist exactly when the change that
caused them was committed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.core.errors import NotFound
from pagely.core.outbox import enqueue_email
from pagely.core.pagination import created_cursor, decode_created_cursor, paginate
from pagely.models.base import utcnow
from pagely.models.catalog import Notification
from pagely.models.user import User

REVIEW_CREATED = "review_created"
REVIEW_EMAIL_TEMPLATE = "review_received"


class NotificationNotFound(NotFound):
    type, message = "notification_not_found", "No such notification"


async def notify_review(
    session: AsyncSession,
    *,
    owner: User,
    book_id: uuid.UUID,
    book_title: str,
    reviewer: User,
    rating: int,
    review_title: str | None,
) -> None:
    """Tell a book's owner that `reviewer` reviewed it: an in-app notification, and an email
    when the owner wants one and can receive it (active, verified address).

    Call it inside the review's transaction; it only flushes. Nobody is told about their own
    review.
    """
    if owner.id == reviewer.id:
        return
    notification = Notification(
        user_id=owner.id,
        kind=REVIEW_CREATED,
        book_id=book_id,
        actor_id=reviewer.id,
        data={
            "book_title": book_title,
            "reviewer_name": reviewer.name,
            "rating": rating,
            "review_title": review_title,
        },
    )
    session.add(notification)
    await session.flush()
    if not (owner.email_on_review and owner.is_active and owner.is_verified):
        return
    await enqueue_email(
        session,
        template=REVIEW_EMAIL_TEMPLATE,
        to=owner.email,
        context={
            "name": owner.name,
            "book_id": str(book_id),
            "book_title": book_title,
            "reviewer_name": reviewer.name,
            "rating": rating,
            "review_title": review_title,
        },
        # One email per reviewer per book, ever: deleting and re-posting a review does not
        # mail the owner again (the in-app notification still appears).
        key=f"review:{book_id}:{reviewer.id}",
    )


async def list_notifications(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    unread_only: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Notification], str | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    query = select(Notification).where(col(Notification.user_id) == user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    after = decode_created_cursor(cursor)
    if after is not None:
        query = query.where(
            tuple_(col(Notification.created_at), col(Notification.id)) < tuple_(*after)
        )
    query = query.order_by(col(Notification.created_at).desc(), col(Notification.id).desc()).limit(
        limit + 1
    )
    return paginate((await session.scalars(query)).all(), limit, created_cursor)


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).where(
            col(Notification.user_id) == user_id, col(Notification.read_at).is_(None)
        )
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """Idempotent: a notification read already keeps its first `read_at`. Someone else's
    notification is as missing as one that does not exist."""
    statement = (
        update(Notification)
        .where(col(Notification.id) == notification_id, col(Notification.user_id) == user_id)
        .values(read_at=func.coalesce(col(Notification.read_at), utcnow()))
        .returning(Notification)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    row = (await session.scalars(statement)).one_or_none()
    if row is None:
        raise NotificationNotFound()
    return row


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    result: Any = await session.execute(
        update(Notification)
        .where(col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def update_preferences(
    session: AsyncSession, user: User, *, email_on_review: bool | None = None
) -> User:
    """None leaves a preference as it is."""
    if email_on_review is not None:
        user.email_on_review = email_on_review
    await session.flush()
    return user
