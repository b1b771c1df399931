"""Notifications: written by other features inside their transaction, read and marked read
by their recipient. Emails go through the outbox, so they exist exactly when the change that
caused them was committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.outbox import enqueue_email
from pagely.identity.queries import update_user
from pagely.models.catalog import Notification
from pagely.models.user import User
from pagely.notifications import queries
from pagely.notifications.errors import NotificationNotFound

REVIEW_CREATED = "review_created"
# The kinds this build makes and shows, each a member of the contract's `Notification` union.
# Rows of another kind (written by a newer build during a rolling deploy) are left out of
# lists and counts rather than failing the whole page.
KINDS = (REVIEW_CREATED,)
REVIEW_EMAIL_TEMPLATE = "review_received"


@dataclass(frozen=True)
class NotificationList:
    items: list[Notification]
    next_cursor: str | None
    # All of the user's unread notifications, whatever the page.
    unread_count: int


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
) -> NotificationList:
    """One page, newest first, with the cursor of the next page (None on the last)."""
    items, next_cursor = await queries.page(
        session, user_id, KINDS, unread_only=unread_only, limit=limit, cursor=cursor
    )
    unread_count = await queries.count_unread(session, user_id, KINDS)
    return NotificationList(items, next_cursor, unread_count)


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """Idempotent: a notification read already keeps its first `read_at`. Someone else's
    notification is as missing as one that does not exist."""
    row = await queries.mark_read(session, user_id, notification_id, KINDS)
    if row is None:
        raise NotificationNotFound()
    return row


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    """How many notifications were unread."""
    return await queries.mark_all_read(session, user_id, KINDS)


async def update_preferences(
    session: AsyncSession, user: User, *, email_on_review: bool | None = None
) -> User:
    """None leaves a preference as it is."""
    if email_on_review is not None and email_on_review != user.email_on_review:
        await update_user(session, user.id, email_on_review=email_on_review)
    return user
