"""SQL of books: reads by id and ISBN, the listing's pages (filters, sorts, search, cursors),
and the conditional writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    String,
    and_,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.catalog.books import search
from pagely.catalog.books.schemas import BookSort, Filters
from pagely.core.db import Reader, affected
from pagely.core.pagination import (
    cursor_date,
    cursor_datetime,
    cursor_decimal,
    cursor_float,
    cursor_literal,
    cursor_text,
    cursor_uuid,
    decode_fields,
    encode_cursor,
    paginate,
)
from pagely.models import Book
from pagely.models.base import table, utcnow

# The descriptive fields of a book: what a client sends (`isbn` becomes isbn13 and isbn10) and
# what an import writes. Every other list of book columns is built from this one.
CATALOG_FIELDS: tuple[str, ...] = (
    "title",
    "subtitle",
    "authors",
    "isbn13",
    "isbn10",
    "publisher",
    "published_date",
    "page_count",
    "language",
    "description",
    "tags",
)
BOOKS = table(Book)
# What a book's response is built from.
BOOK_COLUMNS: tuple[ColumnElement[Any], ...] = (
    BOOKS.c.id,
    *(BOOKS.c[name] for name in CATALOG_FIELDS),
    *(BOOKS.c[name] for name in ("owner_id", "rating_avg", "rating_count", "rating_hist")),
    *(BOOKS.c[name] for name in ("version", "created_at", "updated_at")),
)


async def get(reader: Reader, book_id: uuid.UUID) -> RowMapping | None:
    result = await reader.execute(select(*BOOK_COLUMNS).where(BOOKS.c.id == book_id))
    return result.mappings().first()


async def get_by_isbn(reader: Reader, isbn13: str) -> RowMapping | None:
    result = await reader.execute(select(*BOOK_COLUMNS).where(BOOKS.c.isbn13 == isbn13))
    return result.mappings().first()


# --- sorts and their cursors -------------------------------------------------------------

_EARLIEST: ColumnElement[Any] = literal_column("'0001-01-01'::date")
_LATEST: ColumnElement[Any] = literal_column("'9999-12-31'::date")


# `rating_avg` is numeric(3, 2), checked to 0..5.
_RATING_AVG = (Decimal(0), Decimal(5), 2)


@dataclass(frozen=True)
class Sort:
    """One sort of the listing: its key expression and direction (the id breaks ties in the
    same direction), and the cursor codec of that key (a row's key to JSON, and back: `decode`
    accepts only what the key's column can hold, and raises InvalidCursor otherwise)."""

    key: Callable[[ColumnElement[str] | None], ColumnElement[Any]]
    descending: bool
    encode: Callable[[RowMapping], Any]
    decode: Callable[[Any], Any]


def _relevance(query: ColumnElement[str] | None) -> ColumnElement[Any]:
    assert query is not None  # list_page refuses relevance without search words
    return search.score(query)


SORTS: dict[str, Sort] = {
    "relevance": Sort(_relevance, True, lambda row: row["sort_key"], cursor_float),
    "title": Sort(lambda _: BOOKS.c.title, False, lambda row: row["title"], cursor_text),
    "-published_date": Sort(
        lambda _: func.coalesce(BOOKS.c.published_date, _EARLIEST),
        True,
        lambda row: (row["published_date"] or date(1, 1, 1)).isoformat(),
        cursor_date,
    ),
    "published_date": Sort(
        lambda _: func.coalesce(BOOKS.c.published_date, _LATEST),
        False,
        lambda row: (row["published_date"] or date(9999, 12, 31)).isoformat(),
        cursor_date,
    ),
    "-rating": Sort(
        lambda _: BOOKS.c.rating_avg,
        True,
        lambda row: str(row["rating_avg"]),
        lambda raw: cursor_decimal(raw, *_RATING_AVG),
    ),
    "-created_at": Sort(
        lambda _: BOOKS.c.created_at,
        True,
        lambda row: row["created_at"].isoformat(),
        cursor_datetime,
    ),
}


def decode_position(sort: str, cursor: str | None) -> tuple[Any, uuid.UUID] | None:
    """(sort key, id) of the last row of the previous page; InvalidCursor for a cursor of
    another sort or with a value its column cannot hold."""
    if cursor is None:
        return None
    _, key, last_id = decode_fields(cursor, cursor_literal(sort), SORTS[sort].decode, cursor_uuid)
    return key, last_id


# --- the listing -------------------------------------------------------------------------


def filter_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """Every filter but the search words."""
    conditions: list[ColumnElement[bool]] = []
    if filters.author:
        # The index narrows to books whose text mentions the name; then the name must be
        # part of one of the authors.
        conditions.append(
            BOOKS.c.search_vector.op("@@")(func.plainto_tsquery(search.ENGLISH, filters.author))
        )
        author = func.unnest(BOOKS.c.authors).table_valued("name").alias("a")
        conditions.append(
            exists(
                select(1)
                .select_from(author)
                .where(func.strpos(func.lower(author.c.name), filters.author.lower()) > 0)
            )
        )
    if filters.tags:
        wanted = literal(list(filters.tags), type_=PG_ARRAY(String(50)))
        conditions.append(BOOKS.c.tags.op("@>")(wanted))
    if filters.language:
        conditions.append(BOOKS.c.language == filters.language)
    if filters.publisher:
        conditions.append(func.lower(BOOKS.c.publisher) == filters.publisher.lower())
    if filters.published_from:
        conditions.append(BOOKS.c.published_date >= filters.published_from)
    if filters.published_to:
        conditions.append(BOOKS.c.published_date <= filters.published_to)
    if filters.min_rating is not None:
        conditions.append(BOOKS.c.rating_avg >= Decimal(str(filters.min_rating)))
    if filters.owner_id:
        conditions.append(BOOKS.c.owner_id == filters.owner_id)
    return conditions


def page_statement(
    sort: str,
    query: ColumnElement[str] | None,
    filters: list[ColumnElement[bool]],
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
) -> Select[Any]:
    """The SELECT behind a page: up to limit + 1 rows after `after` in `sort` order (the
    extra row says "more"). Also what `make bench-scale` EXPLAINs."""
    order = SORTS[sort]
    key = order.key(query)
    conditions = list(filters)
    if after is not None:
        position = tuple_(key, BOOKS.c.id)
        after_key = tuple_(*after)
        conditions.append(position < after_key if order.descending else position > after_key)
    direction = (
        (key.desc(), BOOKS.c.id.desc()) if order.descending else (key.asc(), BOOKS.c.id.asc())
    )
    statement = select(*BOOK_COLUMNS, key.label("sort_key"))
    if sort == "relevance":
        assert query is not None
        found = search.candidates(query, conditions, limit + 1)
        statement = statement.where(BOOKS.c.id.in_(found))
    elif query is not None:
        statement = statement.where(BOOKS.c.search_vector.op("@@")(query), *conditions)
    else:
        statement = statement.where(and_(True, *conditions))
    return statement.order_by(*direction).limit(limit + 1)


async def page(
    reader: Reader,
    filters: Filters,
    *,
    sort: BookSort,
    words: list[str],
    limit: int,
    cursor: str | None,
    typo_tolerance: bool,
) -> tuple[list[RowMapping], str | None]:
    """One page of the listing and the cursor of the next (None at the end)."""
    after = decode_position(sort, cursor)
    conditions = filter_conditions(filters)
    query = search.ts_query(words, {}) if words else None
    statement = page_statement(sort, query, conditions, after, limit)
    rows = list((await reader.execute(statement)).mappings().all())
    # Typo correction only when the words as typed match nothing at all: a common word is
    # never "corrected" (that widened the search and cost a trigram lookup), and the choice
    # depends on the catalog only, so every page agrees on it. A page with rows proves the
    # words match, so the check costs a query only when a page comes back empty.
    if (
        not rows
        and query is not None
        and typo_tolerance
        and not await search.matches_any(reader, query)
    ):
        fixes = await search.corrections(reader, words)
        if fixes:
            query = search.ts_query(words, fixes)
            statement = page_statement(sort, query, conditions, after, limit)
            rows = list((await reader.execute(statement)).mappings().all())
    encode = SORTS[sort].encode
    return paginate(rows, limit, lambda row: encode_cursor(sort, encode(row), str(row["id"])))


# --- writes --------------------------------------------------------------------------------


async def insert_book(
    session: AsyncSession, owner_id: uuid.UUID, values: dict[str, Any]
) -> RowMapping | None:
    """The new book, or None when its ISBN is taken."""
    statement = (
        insert(BOOKS)
        .values(id=uuid.uuid4(), owner_id=owner_id, **values)
        .on_conflict_do_nothing(index_elements=["isbn13"])
        .returning(*BOOK_COLUMNS)
    )
    return (await session.execute(statement)).mappings().first()


async def owner_and_version(
    session: AsyncSession, book_id: uuid.UUID
) -> tuple[uuid.UUID | None, int] | None:
    row = (
        await session.execute(
            select(BOOKS.c.owner_id, BOOKS.c.version).where(BOOKS.c.id == book_id)
        )
    ).first()
    return None if row is None else (row[0], int(row[1]))


async def update_at_version(
    session: AsyncSession, book_id: uuid.UUID, version: int, values: dict[str, Any]
) -> RowMapping | None:
    """The changed book, or None when it is no longer at `version` (one conditional UPDATE,
    so of N writers holding the same version exactly one succeeds). Raises IntegrityError
    for an ISBN another book has."""
    statement = (
        update(BOOKS)
        .where(BOOKS.c.id == book_id, BOOKS.c.version == version)
        .values(**values, version=BOOKS.c.version + 1, updated_at=utcnow())
        .returning(*BOOK_COLUMNS)
    )
    return (await session.execute(statement)).mappings().first()


async def delete_at_version(session: AsyncSession, book_id: uuid.UUID, version: int) -> bool:
    """Deletes the book with its reviews, tags and notifications (foreign-key cascades);
    False when it is no longer at `version`."""
    deleted = await session.execute(
        delete(BOOKS).where(BOOKS.c.id == book_id, BOOKS.c.version == version)
    )
    return affected(deleted) > 0
