"""SQL of reviews: reads, writes, the keyset pages, and the one place the rating aggregates
are computed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Update,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.catalog.books import queries as books
from pagely.core.db import affected
from pagely.core.pagination import (
    cursor_datetime,
    cursor_int,
    cursor_literal,
    cursor_uuid,
    decode_created_cursor,
    decode_fields,
    encode_cursor,
    paginate,
)
from pagely.models import Book, Review, User
from pagely.models.base import table, utcnow

_BOOKS = table(Book)
_REVIEWS = table(Review)
_USERS = table(User)


def recompute_ratings(book_ids: Sequence[uuid.UUID] | None = None) -> Update:
    """An UPDATE that sets these books' (every book's, for None) count, sum, 1..5 histogram
    and average from their reviews, and moves their version. A book without reviews gets
    zeros. Review writes run it for their book under the book's row lock; the benchmark's
    data loader runs it for the books it gave reviews."""
    rating = _REVIEWS.c.rating
    aggregates = (
        select(
            _BOOKS.c.id.label("book_id"),
            func.count(rating).label("count"),
            func.coalesce(func.sum(rating), 0).label("sum"),
            array([func.count(rating).filter(rating == stars) for stars in range(1, 6)]).label(
                "hist"
            ),
            func.coalesce(func.round(func.avg(rating), 2), 0).label("avg"),
        )
        .select_from(_BOOKS.outerjoin(_REVIEWS, _REVIEWS.c.book_id == _BOOKS.c.id))
        .group_by(_BOOKS.c.id)
    )
    if book_ids is not None:
        aggregates = aggregates.where(_BOOKS.c.id.in_(book_ids))
    computed = aggregates.subquery("computed")
    return (
        update(_BOOKS)
        .where(_BOOKS.c.id == computed.c.book_id)
        .values(
            rating_count=computed.c["count"],
            rating_sum=computed.c["sum"],
            rating_hist=computed.c.hist,
            rating_avg=computed.c.avg,
            version=_BOOKS.c.version + 1,
            updated_at=func.now(),
        )
    )


async def recompute(session: AsyncSession, book_id: uuid.UUID) -> RowMapping:
    """The book's aggregates recomputed; the book row after it (locked by the caller)."""
    await session.execute(recompute_ratings([book_id]))
    book = await books.get(session, book_id)
    assert book is not None  # locked by this transaction
    return book


REVIEW_COLUMNS: tuple[ColumnElement[Any], ...] = (
    _REVIEWS.c.book_id,
    _REVIEWS.c.user_id,
    _USERS.c.name.label("user_name"),
    _REVIEWS.c.rating,
    _REVIEWS.c.title,
    _REVIEWS.c.body,
    _REVIEWS.c.created_at,
    _REVIEWS.c.updated_at,
)
_WITH_AUTHOR = _REVIEWS.join(_USERS, _USERS.c.id == _REVIEWS.c.user_id)


def _one(book_id: uuid.UUID, user_id: uuid.UUID) -> ColumnElement[bool]:
    return (_REVIEWS.c.book_id == book_id) & (_REVIEWS.c.user_id == user_id)


async def lock_book(session: AsyncSession, book_id: uuid.UUID) -> RowMapping | None:
    """The book's owner_id and title, its row locked (`FOR UPDATE`) until the transaction
    ends: review writes of one book run one at a time."""
    statement = (
        select(_BOOKS.c.owner_id, _BOOKS.c.title).where(_BOOKS.c.id == book_id).with_for_update()
    )
    return (await session.execute(statement)).mappings().first()


async def get(session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID) -> RowMapping | None:
    statement = select(*REVIEW_COLUMNS).select_from(_WITH_AUTHOR).where(_one(book_id, user_id))
    return (await session.execute(statement)).mappings().first()


async def insert_review(
    session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    """False when this user has reviewed this book already."""
    statement = (
        insert(_REVIEWS)
        .values(user_id=user_id, book_id=book_id, **values)
        .on_conflict_do_nothing()
        .returning(_REVIEWS.c.user_id)
    )
    return (await session.execute(statement)).first() is not None


async def update_review(
    session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    """False when there is no such review."""
    statement = update(_REVIEWS).where(_one(book_id, user_id))
    result = await session.execute(statement.values(**values, updated_at=utcnow()))
    return affected(result) > 0


async def delete_review(session: AsyncSession, book_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """False when there is no such review."""
    result = await session.execute(delete(_REVIEWS).where(_one(book_id, user_id)))
    return affected(result) > 0


async def rating_summary(session: AsyncSession, book_id: uuid.UUID) -> RowMapping | None:
    statement = select(_BOOKS.c.rating_avg, _BOOKS.c.rating_count, _BOOKS.c.rating_hist).where(
        _BOOKS.c.id == book_id
    )
    return (await session.execute(statement)).mappings().first()


# --- lists and their cursors ---------------------------------------------------------------

_NEWEST = (_REVIEWS.c.created_at.desc(), _REVIEWS.c.user_id.desc())
_ORDERS: dict[str, tuple[Any, ...]] = {
    "newest": _NEWEST,
    "rating": (_REVIEWS.c.rating.asc(), *_NEWEST),
    "-rating": (_REVIEWS.c.rating.desc(), *_NEWEST),
}


def _book_cursor(sort: str, row: RowMapping) -> str:
    return encode_cursor(sort, row["rating"], row["created_at"].isoformat(), str(row["user_id"]))


def _stars(raw: Any) -> int:
    return cursor_int(raw, 1, 5)  # reviews.rating is a smallint checked to 1..5


def decode_book_cursor(sort: str, cursor: str) -> tuple[int, datetime, uuid.UUID]:
    """(rating, created_at, user_id) of the previous page's last review; InvalidCursor for a
    cursor of another sort or with a value its column cannot hold."""
    _, stars, at, who = decode_fields(
        cursor, cursor_literal(sort), _stars, cursor_datetime, cursor_uuid
    )
    return stars, at, who


def _after_in_book(sort: str, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's review, in `sort` order."""
    stars, at, who = decode_book_cursor(sort, cursor)
    later = tuple_(_REVIEWS.c.created_at, _REVIEWS.c.user_id) < tuple_(at, who)
    if sort == "newest":
        return later
    beyond = _REVIEWS.c.rating > stars if sort == "rating" else _REVIEWS.c.rating < stars
    return beyond | ((_REVIEWS.c.rating == stars) & later)


async def page_for_book(
    session: AsyncSession, book_id: uuid.UUID, sort: str, limit: int, cursor: str | None
) -> tuple[list[RowMapping], str | None]:
    statement = (
        select(*REVIEW_COLUMNS).select_from(_WITH_AUTHOR).where(_REVIEWS.c.book_id == book_id)
    )
    if cursor is not None:
        statement = statement.where(_after_in_book(sort, cursor))
    statement = statement.order_by(*_ORDERS[sort]).limit(limit + 1)
    rows = (await session.execute(statement)).mappings().all()
    return paginate(rows, limit, lambda row: _book_cursor(sort, row))


def _user_cursor(row: RowMapping) -> str:
    return encode_cursor(row["created_at"].isoformat(), str(row["book_id"]))


async def page_for_user(
    session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[RowMapping], str | None]:
    """A user's reviews, newest first."""
    statement = (
        select(*REVIEW_COLUMNS).select_from(_WITH_AUTHOR).where(_REVIEWS.c.user_id == user_id)
    )
    after = decode_created_cursor(cursor)  # (created_at, book_id)
    if after is not None:
        position = tuple_(_REVIEWS.c.created_at, _REVIEWS.c.book_id)
        statement = statement.where(position < tuple_(*after))
    statement = statement.order_by(_REVIEWS.c.created_at.desc(), _REVIEWS.c.book_id.desc())
    rows = (await session.execute(statement.limit(limit + 1))).mappings().all()
    return paginate(rows, limit, _user_cursor)
