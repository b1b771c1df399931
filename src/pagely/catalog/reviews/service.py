"""Reviews: one per user per book, and the book's rating aggregates kept exact.

Every review write first locks the book row (`FOR UPDATE`), then changes the review, then
recomputes count, sum, histogram and average from the reviews in a new statement. Under READ
COMMITTED that statement sees every review committed before the lock was granted, so
concurrent writers serialise per book and the aggregates always equal a fresh count/avg. A
write that changes the aggregates refreshes the book's cache entry after its commit.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.catalog.books.errors import BookNotFound
from pagely.catalog.books.service import book_json
from pagely.catalog.cache import refresh_after_commit
from pagely.catalog.reviews import queries
from pagely.catalog.reviews.errors import CannotReviewOwnBook, ReviewExists, ReviewNotFound
from pagely.catalog.reviews.schemas import (
    RatingSummary,
    ReviewCreated,
    ReviewIn,
    ReviewOut,
    ReviewPage,
    ReviewSort,
)
from pagely.core.cache import VersionedCache
from pagely.core.pagination import Page
from pagely.identity.queries import user_by_id
from pagely.models import User
from pagely.notifications.service import notify_review

log = structlog.get_logger("pagely.catalog")


async def _lock_book(session: AsyncSession, book_id: uuid.UUID) -> RowMapping:
    book = await queries.lock_book(session, book_id)
    if book is None:
        raise BookNotFound()
    return book


def _refresh(session: AsyncSession, cache: VersionedCache, book: RowMapping) -> None:
    """The book's cache entry follows its new aggregates after the commit."""
    refresh_after_commit(session, cache, book["id"], book["version"], book_json(book))


async def _review(session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID) -> ReviewOut:
    row = await queries.get(session, book_id, user_id)
    if row is None:
        raise ReviewNotFound()
    return ReviewOut.model_validate(dict(row))


def _summary(book: RowMapping) -> RatingSummary:
    hist = book["rating_hist"]
    return RatingSummary(
        rating_avg=float(book["rating_avg"]),
        rating_count=book["rating_count"],
        histogram={str(stars): hist[stars - 1] for stars in range(1, 6)},
    )


async def create_review(
    session: AsyncSession, cache: VersionedCache, user: User, book_id: uuid.UUID, data: ReviewIn
) -> ReviewCreated:
    """The review with the book's new aggregates; the owner is notified. A second review of
    the same book is 409, also when both arrive at once: the book lock orders them and the
    primary key refuses the second."""
    book = await _lock_book(session, book_id)
    owner_id = book["owner_id"]
    if owner_id == user.id:
        raise CannotReviewOwnBook()
    if not await queries.insert_review(session, book_id, user.id, data.model_dump()):
        raise ReviewExists()
    rated = await queries.recompute(session, book_id)
    if owner_id is not None:
        owner = await user_by_id(session, owner_id)
        if owner is not None:
            await notify_review(
                session,
                owner=owner,
                book_id=book_id,
                book_title=book["title"],
                reviewer=user,
                rating=data.rating,
                review_title=data.title,
            )
    review = await _review(session, book_id, user.id)
    _refresh(session, cache, rated)
    return ReviewCreated(**review.model_dump(), book=_summary(rated))


async def change_review(
    session: AsyncSession,
    cache: VersionedCache,
    user: User,
    book_id: uuid.UUID,
    fields: dict[str, Any],
) -> ReviewOut:
    """Only the fields given change; a new rating updates the book's aggregates."""
    await _lock_book(session, book_id)
    if fields and not await queries.update_review(session, book_id, user.id, fields):
        raise ReviewNotFound()
    if "rating" in fields:
        _refresh(session, cache, await queries.recompute(session, book_id))
    return await _review(session, book_id, user.id)


async def delete_review(
    session: AsyncSession, cache: VersionedCache, book_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await _lock_book(session, book_id)
    if not await queries.delete_review(session, book_id, user_id):
        raise ReviewNotFound()
    _refresh(session, cache, await queries.recompute(session, book_id))


async def moderate(
    session: AsyncSession,
    cache: VersionedCache,
    moderator: User,
    book_id: uuid.UUID,
    user_id: uuid.UUID,
) -> None:
    """A moderator removes someone's review; the removal is logged."""
    await delete_review(session, cache, book_id, user_id)
    log.info(
        "review_moderated",
        moderator_id=str(moderator.id),
        book_id=str(book_id),
        user_id=str(user_id),
    )


async def list_for_book(
    session: AsyncSession, book_id: uuid.UUID, sort: ReviewSort, limit: int, cursor: str | None
) -> ReviewPage:
    book = await queries.rating_summary(session, book_id)
    if book is None:
        raise BookNotFound()
    rows, next_cursor = await queries.page_for_book(session, book_id, sort, limit, cursor)
    return ReviewPage(
        items=[ReviewOut.model_validate(dict(row)) for row in rows],
        next_cursor=next_cursor,
        **_summary(book).model_dump(),
    )


async def list_for_user(
    session: AsyncSession, user: User, limit: int, cursor: str | None
) -> Page[ReviewOut]:
    rows, next_cursor = await queries.page_for_user(session, user.id, limit, cursor)
    return Page[ReviewOut](
        items=[ReviewOut.model_validate(dict(row)) for row in rows], next_cursor=next_cursor
    )
