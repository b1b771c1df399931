"""Reviews: one per user per book, and the book's rating aggregates kept exact.

Every review write first locks the book row (`FOR UPDATE`), then changes the review, then
recomputes count, sum, histogram and average from the reviews in a new statement. Under READ
COMMITTED that statement sees every review committed before the lock was granted, so
concurrent writers serialise per book and the aggregates always equal a fresh count/avg.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import RowMapping, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.catalog.books import queries as books
from pagely.catalog.books.queries import BookNotFound
from pagely.catalog.reviews.queries import recompute_ratings
from pagely.catalog.schemas import ReviewIn
from pagely.core.errors import Conflict, Forbidden, NotFound
from pagely.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from pagely.models import Book, Review, User
from pagely.models.base import utcnow
from pagely.notifications.service import notify_review

log = structlog.get_logger("pagely.catalog")

ReviewSort = Literal["newest", "rating", "-rating"]


class ReviewExists(Conflict):
    type, message = "review_exists", "You have already reviewed this book; edit your review"


class CannotReviewOwnBook(Forbidden):
    type, message = "cannot_review_own_book", "You cannot review a book you added"


class ReviewNotFound(NotFound):
    type, message = "review_not_found", "No such review"


REVIEW_COLUMNS: tuple[Any, ...] = (
    col(Review.book_id),
    col(Review.user_id),
    col(User.name).label("user_name"),
    col(Review.rating),
    col(Review.title),
    col(Review.body),
    col(Review.created_at),
    col(Review.updated_at),
)


async def _lock_book(session: AsyncSession, book_id: uuid.UUID) -> tuple[uuid.UUID | None, str]:
    row = (
        await session.execute(
            select(col(Book.owner_id), col(Book.title))
            .where(col(Book.id) == book_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise BookNotFound()
    return row[0], row[1]


async def _recompute(session: AsyncSession, book_id: uuid.UUID) -> RowMapping:
    await session.execute(recompute_ratings([book_id]))
    book = await books.get(session, book_id)
    assert book is not None  # locked by this transaction
    return book


async def _one(session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID) -> RowMapping:
    row = (
        (
            await session.execute(
                select(*REVIEW_COLUMNS)
                .join(User, col(User.id) == col(Review.user_id))
                .where(col(Review.book_id) == book_id, col(Review.user_id) == user_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ReviewNotFound()
    return row


async def create(
    session: AsyncSession, user: User, book_id: uuid.UUID, data: ReviewIn
) -> tuple[RowMapping, RowMapping]:
    """(the review, the book after it). A second review of the same book is 409, also when
    both arrive at once: the book lock orders them and the primary key refuses the second."""
    owner_id, title = await _lock_book(session, book_id)
    if owner_id == user.id:
        raise CannotReviewOwnBook()
    inserted = await session.execute(
        insert(Review)
        .values(user_id=user.id, book_id=book_id, **data.model_dump())
        .on_conflict_do_nothing()
        .returning(col(Review.user_id))
    )
    if inserted.first() is None:
        raise ReviewExists()
    book = await _recompute(session, book_id)
    if owner_id is not None:
        owner = await session.get(User, owner_id)
        if owner is not None:
            await notify_review(
                session,
                owner=owner,
                book_id=book_id,
                book_title=title,
                reviewer=user,
                rating=data.rating,
                review_title=data.title,
            )
    return await _one(session, book_id, user.id), book


async def change(
    session: AsyncSession, user: User, book_id: uuid.UUID, fields: dict[str, Any]
) -> tuple[RowMapping, RowMapping | None]:
    """(the review, the book when its aggregates changed)."""
    await _lock_book(session, book_id)
    if fields:
        updated = await session.execute(
            Review.__table__.update()  # type: ignore[attr-defined]
            .where(Review.__table__.c.book_id == book_id)  # type: ignore[attr-defined]
            .where(Review.__table__.c.user_id == user.id)  # type: ignore[attr-defined]
            .values(**fields, updated_at=utcnow())
        )
        if not updated.rowcount:  # type: ignore[attr-defined]
            raise ReviewNotFound()
    book = await _recompute(session, book_id) if "rating" in fields else None
    return await _one(session, book_id, user.id), book


async def remove(session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID) -> RowMapping:
    """Deletes one review; answers the book after it."""
    await _lock_book(session, book_id)
    deleted = await session.execute(
        Review.__table__.delete()  # type: ignore[attr-defined]
        .where(Review.__table__.c.book_id == book_id)  # type: ignore[attr-defined]
        .where(Review.__table__.c.user_id == user_id)  # type: ignore[attr-defined]
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise ReviewNotFound()
    return await _recompute(session, book_id)


async def summary(session: AsyncSession, book_id: uuid.UUID) -> RowMapping:
    row = (
        (
            await session.execute(
                select(col(Book.rating_avg), col(Book.rating_count), col(Book.rating_hist)).where(
                    col(Book.id) == book_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise BookNotFound()
    return row


def _order(sort: ReviewSort) -> tuple[Any, ...]:
    if sort == "newest":
        return (col(Review.created_at).desc(), col(Review.user_id).desc())
    if sort == "rating":
        return (col(Review.rating).asc(), col(Review.created_at).desc(), col(Review.user_id).desc())
    return (col(Review.rating).desc(), col(Review.created_at).desc(), col(Review.user_id).desc())


async def list_for_book(
    session: AsyncSession, book_id: uuid.UUID, sort: ReviewSort, limit: int, cursor: str | None
) -> tuple[list[RowMapping], str | None]:
    query = (
        select(*REVIEW_COLUMNS)
        .join(User, col(User.id) == col(Review.user_id))
        .where(col(Review.book_id) == book_id)
    )
    if cursor is not None:
        cursor_sort, rating, created_at, user_id = decode_cursor(cursor, 4)
        try:
            if cursor_sort != sort:
                raise ValueError(cursor_sort)
            at, who = datetime.fromisoformat(created_at), uuid.UUID(user_id)
            stars = int(rating)
        except (TypeError, ValueError):
            raise InvalidCursor() from None
        later = tuple_(col(Review.created_at), col(Review.user_id)) < tuple_(at, who)
        if sort == "newest":
            query = query.where(later)
        else:
            beyond = col(Review.rating) > stars if sort == "rating" else col(Review.rating) < stars
            query = query.where(beyond | ((col(Review.rating) == stars) & later))
    rows = (await session.execute(query.order_by(*_order(sort)).limit(limit + 1))).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            sort, last["rating"], last["created_at"].isoformat(), str(last["user_id"])
        )
    return list(rows), next_cursor


async def list_for_user(
    session: AsyncSession, user: User, limit: int, cursor: str | None
) -> tuple[list[RowMapping], str | None]:
    query = (
        select(*REVIEW_COLUMNS)
        .join(User, col(User.id) == col(Review.user_id))
        .where(col(Review.user_id) == user.id)
    )
    if cursor is not None:
        created_at, book_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(created_at), uuid.UUID(book_id))
        except (TypeError, ValueError):
            raise InvalidCursor() from None
        query = query.where(tuple_(col(Review.created_at), col(Review.book_id)) < tuple_(*after))
    query = query.order_by(col(Review.created_at).desc(), col(Review.book_id).desc())
    rows = (await session.execute(query.limit(limit + 1))).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), str(last["book_id"]))
    return list(rows), next_cursor


def log_moderation(moderator: User, book_id: uuid.UUID, user_id: uuid.UUID) -> None:
    log.info(
        "review_moderated",
        moderator_id=str(moderator.id),
        book_id=str(book_id),
        user_id=str(user_id),
    )
