"""Books: reads, listing and search, and the writes (with ownership and If-Match)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    ColumnElement,
    RowMapping,
    String,
    and_,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.catalog.books import search
from pagely.catalog.books.search import add_search_words
from pagely.catalog.schemas import BookIn, BookOut, SortKey
from pagely.catalog.tags.queries import set_tags
from pagely.core.db import Reader
from pagely.core.errors import AppError, Conflict, Forbidden, NotFound
from pagely.core.isbn import parse_isbn
from pagely.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from pagely.models import Book, Role, User
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
_BOOKS = table(Book).c
# What a book's response is built from.
BOOK_COLUMNS: tuple[ColumnElement[Any], ...] = (
    _BOOKS.id,
    *(_BOOKS[name] for name in CATALOG_FIELDS),
    *(_BOOKS[name] for name in ("owner_id", "rating_avg", "rating_count", "rating_hist")),
    *(_BOOKS[name] for name in ("version", "created_at", "updated_at")),
)

_BOOK_JSON = TypeAdapter(BookOut)


class BookNotFound(NotFound):
    type, message = "book_not_found", "No such book"


class IsbnExists(Conflict):
    type, message = "isbn_exists", "A book with this ISBN is already in the catalog"


class NotBookOwner(Forbidden):
    type, message = "not_book_owner", "Only the book's owner or an admin can change it"


class PreconditionRequired(AppError):
    status_code, type = 428, "precondition_required"
    message = "Send If-Match with the book's current ETag (from GET)"


class PreconditionFailed(AppError):
    status_code, type = 412, "precondition_failed"
    message = "The book changed since you read it; GET it again and retry"


class RelevanceNeedsQuery(AppError):
    status_code, type = 422, "validation_error"
    message = "sort=relevance needs a search query (q)"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "query.sort", "message": self.message}])


# --- representation --------------------------------------------------------------------


# Public catalog data: a client may keep it, but revalidates (cheap 304s via the ETag).
REVALIDATE = "public, no-cache"


def etag(version: int) -> str:
    return f'"v{version}"'


def none_match(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (weak comparison) or is `*`: a 304."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or tag.removeprefix("W/") in tags


def if_match_ok(header: str, version: int) -> bool:
    """Strong comparison (RFC 9110): a weak tag never matches; `*` matches any book."""
    current = etag(version)
    return any(tag.strip() in ("*", current) for tag in header.split(","))


def book_out(row: RowMapping | dict[str, Any]) -> BookOut:
    return BookOut.model_validate(dict(row))


def book_json(row: RowMapping | dict[str, Any]) -> bytes:
    return _BOOK_JSON.dump_json(book_out(row))


# --- reads -------------------------------------------------------------------------------


async def get(session: Reader, book_id: uuid.UUID) -> RowMapping | None:
    return (
        (await session.execute(select(*BOOK_COLUMNS).where(col(Book.id) == book_id)))
        .mappings()
        .first()
    )


async def get_by_isbn(session: Reader, isbn13: str) -> RowMapping | None:
    return (
        (await session.execute(select(*BOOK_COLUMNS).where(col(Book.isbn13) == isbn13)))
        .mappings()
        .first()
    )


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    publisher: str | None = None
    published_from: date | None = None
    published_to: date | None = None
    min_rating: float | None = None
    owner_id: uuid.UUID | None = None

    @property
    def empty(self) -> bool:
        return self == Filters()


_EARLIEST: ColumnElement[Any] = literal_column("'0001-01-01'::date")
_LATEST: ColumnElement[Any] = literal_column("'9999-12-31'::date")


def _sort_key(sort: str, query: ColumnElement[Any] | None) -> tuple[Any, bool]:
    """(the key expression, descending). The id breaks ties in the same direction."""
    if sort == "relevance":
        assert query is not None
        return search.score(query), True
    if sort == "title":
        return col(Book.title), False
    if sort == "-published_date":
        return func.coalesce(col(Book.published_date), _EARLIEST), True
    if sort == "published_date":
        return func.coalesce(col(Book.published_date), _LATEST), False
    if sort == "-rating":
        return col(Book.rating_avg), True
    return col(Book.created_at), True


def _cursor_value(sort: str, raw: Any) -> Any:
    if sort == "-created_at":
        return datetime.fromisoformat(raw)
    if sort in ("-published_date", "published_date"):
        return date.fromisoformat(raw)
    if sort == "-rating":
        return Decimal(str(raw))
    if sort == "relevance":
        return float(raw)
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


def _key_for_cursor(sort: str, row: RowMapping, relevance: float | None) -> Any:
    if sort == "-created_at":
        return row["created_at"].isoformat()
    if sort == "-published_date":
        return (row["published_date"] or date(1, 1, 1)).isoformat()
    if sort == "published_date":
        return (row["published_date"] or date(9999, 12, 31)).isoformat()
    if sort == "-rating":
        return str(row["rating_avg"])
    if sort == "relevance":
        return relevance
    return row["title"]


async def list_books(
    session: Reader,
    filters: Filters,
    *,
    sort: SortKey | None,
    limit: int,
    cursor: str | None,
    typo_tolerance: bool,
) -> tuple[list[RowMapping], str | None]:
    sort = sort or ("relevance" if filters.q else "-created_at")
    words = search.query_words(filters.q) if filters.q else []
    if sort == "relevance" and not words:
        raise RelevanceNeedsQuery()
    after = _decode_position(sort, cursor)
    conditions = filter_conditions(filters)
    query = search.ts_query(words, {}) if words else None
    rows = await _page(session, sort, query, conditions, after, limit)
    # Typo correction only when the words as typed match nothing at all: a common word is
    # never "corrected" (that widened the search and cost a trigram lookup), and the choice
    # depends on the catalog only, so every page agrees on it. A page with rows proves the
    # words match, so the check costs a query only when a page comes back empty.
    if (
        not rows
        and query is not None
        and typo_tolerance
        and not await search.matches_any(session, query)
    ):
        fixes = await search.corrections(session, words)
        if fixes:
            query = search.ts_query(words, fixes)
            rows = await _page(session, sort, query, conditions, after, limit)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        relevance = last["sort_key"] if sort == "relevance" else None
        next_cursor = encode_cursor(sort, _key_for_cursor(sort, last, relevance), str(last["id"]))
    return rows, next_cursor


def _decode_position(sort: str, cursor: str | None) -> tuple[Any, uuid.UUID] | None:
    """(sort key, id) of the last row of the previous page."""
    if cursor is None:
        return None
    cursor_sort, raw_key, raw_id = decode_cursor(cursor, 3)
    if cursor_sort != sort:
        raise InvalidCursor()
    try:
        return _cursor_value(sort, raw_key), uuid.UUID(str(raw_id))
    except (TypeError, ValueError, ArithmeticError):
        raise InvalidCursor() from None


def filter_conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """Every filter but the search words."""
    conditions: list[ColumnElement[bool]] = []
    if filters.author:
        # The index narrows to books whose text mentions the name; then the name must be
        # part of one of the authors.
        conditions.append(
            col(Book.search_vector).op("@@")(func.plainto_tsquery(search.ENGLISH, filters.author))
        )
        author = func.unnest(col(Book.authors)).table_valued("name").alias("a")
        conditions.append(
            exists(
                select(1)
                .select_from(author)
                .where(func.strpos(func.lower(author.c.name), filters.author.lower()) > 0)
            )
        )
    if filters.tags:
        wanted = literal(list(filters.tags), type_=PG_ARRAY(String(50)))
        conditions.append(col(Book.tags).op("@>")(wanted))
    if filters.language:
        conditions.append(col(Book.language) == filters.language)
    if filters.publisher:
        conditions.append(func.lower(col(Book.publisher)) == filters.publisher.lower())
    if filters.published_from:
        conditions.append(col(Book.published_date) >= filters.published_from)
    if filters.published_to:
        conditions.append(col(Book.published_date) <= filters.published_to)
    if filters.min_rating is not None:
        conditions.append(col(Book.rating_avg) >= Decimal(str(filters.min_rating)))
    if filters.owner_id:
        conditions.append(col(Book.owner_id) == filters.owner_id)
    return conditions


async def _page(
    session: Reader,
    sort: str,
    query: ColumnElement[str] | None,
    filters: list[ColumnElement[bool]],
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
) -> list[RowMapping]:
    """Up to limit + 1 rows after `after` in `sort` order (the extra row says "more")."""
    result = await session.execute(page_statement(sort, query, filters, after, limit))
    return list(result.mappings().all())


def page_statement(
    sort: str,
    query: ColumnElement[str] | None,
    filters: list[ColumnElement[bool]],
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
) -> Any:
    """The SELECT behind a page (also what `make bench-scale` EXPLAINs)."""
    key, descending = _sort_key(sort, query)
    conditions = list(filters)
    if after is not None:
        position = tuple_(key, col(Book.id))
        conditions.append(position < tuple_(*after) if descending else position > tuple_(*after))
    order = (key.desc(), col(Book.id).desc()) if descending else (key.asc(), col(Book.id).asc())
    statement = select(*BOOK_COLUMNS, key.label("sort_key"))
    if sort == "relevance":
        assert query is not None
        found = search.candidates(query, conditions, limit + 1)
        statement = statement.where(col(Book.id).in_(found))
    elif query is not None:
        statement = statement.where(col(Book.search_vector).op("@@")(query), *conditions)
    else:
        statement = statement.where(and_(True, *conditions))
    return statement.order_by(*order).limit(limit + 1)


_TAG_COUNTS = text(
    """
    SELECT tags.slug, count(*) AS book_count
    FROM book_tags JOIN tags ON tags.id = book_tags.tag_id
    GROUP BY tags.slug ORDER BY count(*) DESC, tags.slug LIMIT :limit
    """
)


async def tag_counts(session: Reader, limit: int) -> list[dict[str, Any]]:
    result = await session.execute(_TAG_COUNTS, {"limit": limit})
    return [{"slug": slug, "book_count": count} for slug, count in result.all()]


# --- writes ------------------------------------------------------------------------------


def _stored_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields to columns: `isbn` becomes isbn13 and isbn10."""
    values = dict(fields)
    if "isbn" in values:
        raw = values.pop("isbn")
        values["isbn13"], values["isbn10"] = parse_isbn(raw) if raw else (None, None)
    return values


async def create(session: AsyncSession, owner: User, data: BookIn) -> RowMapping:
    values = _stored_values(data.model_dump())
    statement = (
        insert(Book)
        .values(id=uuid.uuid4(), owner_id=owner.id, **values)
        .on_conflict_do_nothing(index_elements=["isbn13"])
        .returning(*BOOK_COLUMNS)
    )
    row = (await session.execute(statement)).mappings().first()
    if row is None:
        raise IsbnExists()
    await set_tags(session, {row["id"]: row["tags"]})
    await add_search_words(session, [row["id"]])
    return row


def _may_change(user: User, owner_id: uuid.UUID | None) -> bool:
    return user.role == Role.admin or (owner_id is not None and owner_id == user.id)


async def _current_for_write(
    session: AsyncSession, user: User, book_id: uuid.UUID, if_match: str | None, *, required: bool
) -> int:
    current = (
        await session.execute(
            select(col(Book.owner_id), col(Book.version)).where(col(Book.id) == book_id)
        )
    ).first()
    if current is None:
        raise BookNotFound()
    owner_id, version = current
    if not _may_change(user, owner_id):
        raise NotBookOwner()
    if if_match is None:
        if required:
            raise PreconditionRequired()
    elif not if_match_ok(if_match, version):
        raise PreconditionFailed()
    return int(version)


async def change(
    session: AsyncSession,
    user: User,
    book_id: uuid.UUID,
    if_match: str | None,
    fields: dict[str, Any],
) -> RowMapping:
    """PUT (every field given) and PATCH (some): one conditional UPDATE on the version, so of
    N writers holding the same ETag exactly one succeeds and the rest get 412."""
    version = await _current_for_write(session, user, book_id, if_match, required=True)
    values = _stored_values(fields)
    statement = (
        update(Book)
        .where(col(Book.id) == book_id, col(Book.version) == version)
        .values(**values, version=col(Book.version) + 1, updated_at=utcnow())
        .returning(*BOOK_COLUMNS)
    )
    try:
        row = (await session.execute(statement)).mappings().first()
    except IntegrityError as exc:
        if "isbn13" in str(exc.orig):
            raise IsbnExists() from None
        raise
    if row is None:
        raise PreconditionFailed()
    if "tags" in values:
        await set_tags(session, {book_id: row["tags"]})
    if "title" in values or "authors" in values:
        await add_search_words(session, [book_id])
    return row


async def remove(
    session: AsyncSession, user: User, book_id: uuid.UUID, if_match: str | None
) -> None:
    """Deletes the book with its reviews, tags and notifications (foreign-key cascades).
    If-Match is optional here; when sent it must be current."""
    version = await _current_for_write(session, user, book_id, if_match, required=False)
    deleted = await session.execute(
        delete(Book).where(col(Book.id) == book_id, col(Book.version) == version)
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise PreconditionFailed()  # changed (or deleted) between our read and the delete
