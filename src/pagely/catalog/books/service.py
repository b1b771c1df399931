"""Books: the rules (who may change a book, If-Match, Idempotency-Key, what is cached) and
the side effects of a write (tag rows, the search lexicon, the cache refresh after commit).
Services flush; the request's session commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pagely.catalog.books import queries, search
from pagely.catalog.books.errors import (
    BookNotFound,
    IsbnExists,
    IsbnNotValid,
    NotBookOwner,
    PreconditionFailed,
    PreconditionRequired,
    RelevanceNeedsQuery,
)
from pagely.catalog.books.schemas import BookIn, BookOut, BookPage, BookSort, Filters
from pagely.catalog.cache import GENERATION_KEY, book_key, first_page_name, refresh_after_commit
from pagely.catalog.tags.queries import set_tags
from pagely.core import idempotency
from pagely.core.cache import VersionedCache
from pagely.core.db import reading
from pagely.core.http import Representation, body_etag, if_match, version_etag
from pagely.core.isbn import InvalidISBN, parse_isbn
from pagely.identity.schemas import Actor
from pagely.models import User

_BOOK_JSON = TypeAdapter(BookOut)


@dataclass(frozen=True)
class Created:
    """A create's answer: the new book, or (`replayed`) the first answer to the same
    Idempotency-Key."""

    body: bytes
    status_code: int
    replayed: bool = False
    book_id: uuid.UUID | None = None
    etag: str | None = None


def book_out(row: RowMapping | dict[str, Any]) -> BookOut:
    return BookOut.model_validate(dict(row))


def book_json(row: RowMapping | dict[str, Any]) -> bytes:
    """The one serialisation of a book: the route, the cache and the fast path send these."""
    return _BOOK_JSON.dump_json(book_out(row))


def _written(session: AsyncSession, cache: VersionedCache, row: RowMapping) -> Representation:
    body = book_json(row)
    refresh_after_commit(session, cache, row["id"], row["version"], body)
    return Representation(body, version_etag(row["version"]))


# --- reads -------------------------------------------------------------------------------


async def list_books(
    engine: AsyncEngine,
    cache: VersionedCache,
    filters: Filters,
    *,
    sort: BookSort | None,
    limit: int,
    cursor: str | None,
    typo_tolerance: bool,
) -> Representation:
    """A page of the listing. The first page of the default listing (newest first, no
    filters) is served from the cache and filled on a miss; other pages come from
    PostgreSQL on an autocommit connection."""
    sort = sort or (BookSort.relevance if filters.q else BookSort.created_at_desc)
    words = search.query_words(filters.q) if filters.q else []
    if sort == "relevance" and not words:
        raise RelevanceNeedsQuery()
    cacheable = filters.empty and sort == "-created_at" and cursor is None
    generation = None
    if cacheable:
        generation, cached = await cached_first_page(cache, limit)
        if cached is not None:
            return Representation(cached, body_etag(cached))
    async with reading(engine) as conn:
        rows, next_cursor = await queries.page(
            conn,
            filters,
            sort=sort,
            words=words,
            limit=limit,
            cursor=cursor,
            typo_tolerance=typo_tolerance,
        )
    page = BookPage(items=[book_out(row) for row in rows], next_cursor=next_cursor)
    body = page.model_dump_json().encode()
    if cacheable:
        await cache.put_listed(GENERATION_KEY, generation, first_page_name(limit), body)
    return Representation(body, body_etag(body))


async def cached_first_page(cache: VersionedCache, limit: int) -> tuple[str | None, bytes | None]:
    """(generation, body) of the default listing's first page; body None on a miss (fill it
    under that generation)."""
    return await cache.get_listed(GENERATION_KEY, first_page_name(limit))


async def cached_book(
    cache: VersionedCache, book_id: uuid.UUID | str, *, unless_key: str | None = None
) -> tuple[int, bytes] | None:
    """(version, body) from the cache, body b"" for a deleted book; None on a miss (or
    when `unless_key`, a denylist entry, exists: checked in the same round trip)."""
    return await cache.get(book_key(book_id), unless_key=unless_key)


async def get_book(
    engine: AsyncEngine, cache: VersionedCache, book_id: uuid.UUID
) -> Representation:
    cached = await cached_book(cache, book_id)
    if cached is not None:
        version, body = cached
        if not body:
            raise BookNotFound()
        return Representation(body, version_etag(version))
    async with reading(engine) as conn:  # only on a miss: a hit never touches PostgreSQL
        row = await queries.get(conn, book_id)
    if row is None:
        raise BookNotFound()
    body = book_json(row)
    await cache.fill(book_key(book_id), row["version"], body)
    return Representation(body, version_etag(row["version"]))


async def get_by_isbn(session: AsyncSession, isbn: str) -> Representation:
    try:
        isbn13, _ = parse_isbn(isbn)
    except InvalidISBN as exc:
        raise IsbnNotValid(details=[{"field": "path.isbn", "message": str(exc)}]) from None
    row = await queries.get_by_isbn(session, isbn13)
    if row is None:
        raise BookNotFound()
    return Representation(book_json(row), version_etag(row["version"]))


# --- writes --------------------------------------------------------------------------------


def _stored_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields to columns: `isbn` becomes isbn13 and isbn10."""
    values = dict(fields)
    if "isbn" in values:
        raw = values.pop("isbn")
        values["isbn13"], values["isbn10"] = parse_isbn(raw) if raw else (None, None)
    return values


async def create_book(
    session: AsyncSession,
    cache: VersionedCache,
    owner: User,
    data: BookIn,
    *,
    idempotency_key: str | None,
    key_hours: int,
) -> Created:
    """The new book, owned by `owner`. With an Idempotency-Key, the key is claimed in this
    transaction: a retry (also a concurrent one) gets the first answer and creates nothing."""
    if idempotency_key is not None:
        key = idempotency.check_key(idempotency_key)
        digest = idempotency.request_hash(data.model_dump(mode="json"))
        stored = await idempotency.claim(session, owner.id, key, digest, key_hours)
        if stored is not None:
            first = BookOut.model_validate(stored.response)
            # The first answer again, headers included: the ETag and Location it carried.
            return Created(first.model_dump_json().encode(), stored.status_code, replayed=True,
                           book_id=first.id, etag=version_etag(first.version))  # fmt: skip
    row = await queries.insert_book(session, owner.id, _stored_values(data.model_dump()))
    if row is None:
        raise IsbnExists()
    await set_tags(session, {row["id"]: row["tags"]})
    await search.add_search_words(session, [row["id"]])
    created = book_out(row)
    if idempotency_key is not None:
        await idempotency.record(
            session, owner.id, idempotency_key, 201, created.model_dump(mode="json")
        )
    written = _written(session, cache, row)
    return Created(written.body, 201, book_id=row["id"], etag=written.etag)


async def _writable_version(
    session: AsyncSession, actor: Actor, book_id: uuid.UUID, header: str | None, *, required: bool
) -> int:
    """The version the write applies to, once the actor may change the book (its owner, or
    holding the route's permission) and If-Match (when sent, or `required`) names its
    current ETag."""
    current = await queries.owner_and_version(session, book_id)
    if current is None:
        raise BookNotFound()
    owner_id, version = current
    if not actor.may_change(owner_id):
        raise NotBookOwner(f"Only the book's owner or a holder of {actor.permission} can do this")
    if header is None:
        if required:
            raise PreconditionRequired()
    elif not if_match(header, version_etag(version)):
        raise PreconditionFailed()
    return version


async def change_book(
    session: AsyncSession,
    cache: VersionedCache,
    actor: Actor,
    book_id: uuid.UUID,
    header: str | None,
    fields: dict[str, Any],
) -> Representation:
    """PUT (every field given) and PATCH (some): of N writers holding the same ETag exactly
    one succeeds and the rest get 412."""
    version = await _writable_version(session, actor, book_id, header, required=True)
    values = _stored_values(fields)
    try:
        row = await queries.update_at_version(session, book_id, version, values)
    except IntegrityError as exc:
        if "isbn13" in str(exc.orig):
            raise IsbnExists() from None
        raise
    if row is None:
        raise PreconditionFailed()
    if "tags" in values:
        await set_tags(session, {book_id: row["tags"]})
    if "title" in values or "authors" in values:
        await search.add_search_words(session, [book_id])
    return _written(session, cache, row)


async def delete_book(
    session: AsyncSession,
    cache: VersionedCache,
    actor: Actor,
    book_id: uuid.UUID,
    header: str | None,
) -> None:
    """If-Match is optional here; when sent it must be current."""
    version = await _writable_version(session, actor, book_id, header, required=False)
    if not await queries.delete_at_version(session, book_id, version):
        raise PreconditionFailed()  # changed (or deleted) between our read and the delete
    refresh_after_commit(session, cache, book_id, None, None)
