"""/books, /tags and reviews."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import TypeAdapter
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.catalog.books import queries as books
from pagely.catalog.cache import body_tag, cache_of, first_page_name
from pagely.catalog.reviews import service as reviews
from pagely.catalog.schemas import (
    BookIn,
    BookOut,
    BookPage,
    BookPatch,
    RatingSummary,
    ReviewIn,
    ReviewOut,
    ReviewPage,
    ReviewPatch,
    SortKey,
    TagOut,
)
from pagely.catalog.tags.service import normalise_tags
from pagely.core import idempotency
from pagely.core.db import SessionDep, after_commit, reading
from pagely.core.errors import AppError, documented
from pagely.core.isbn import InvalidISBN, parse_isbn
from pagely.core.pagination import CursorQuery, LimitQuery, Page
from pagely.core.resources import Resources, ResourcesDep
from pagely.identity.dependencies import (
    OPTIONAL_BEARER,
    CurrentUser,
    ModeratorUser,
    OptionalReader,
    VerifiedUser,
)

router = APIRouter(tags=["books"])
reviews_router = APIRouter(tags=["reviews"])

JSON = "application/json"
_TAGS_JSON = TypeAdapter(list[TagOut])


def _json(request: Request, body: bytes, tag: str) -> Response:
    headers = {"ETag": tag, "Cache-Control": books.REVALIDATE}
    if books.none_match(request.headers.get("if-none-match"), tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type=JSON, headers=headers)


def _refresh_after_commit(
    session: AsyncSession, resources: Resources, book: RowMapping | None, book_id: uuid.UUID
) -> None:
    """After the commit: the cached book moves to the new version (or a tombstone), and every
    cached list is dropped by moving the catalog generation."""
    cache = cache_of(resources)
    body = books.book_json(book) if book is not None else None
    version = int(book["version"]) if book is not None else 0

    async def refresh() -> None:
        if body is None:
            await cache.forget_book(book_id)
        else:
            await cache.put_book(book_id, version, body)
        await cache.catalog_changed()

    after_commit(session, f"catalog:book:{book_id}", refresh)


# --- books ---------------------------------------------------------------------------------


class QueryTooLong(AppError):
    status_code, type = 422, "validation_error"

    def __init__(self, limit: int) -> None:
        message = f"The search query is longer than {limit} characters"
        super().__init__(message, details=[{"field": "query.q", "message": message}])


@router.get(
    "/books",
    operation_id="books_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="List and search books",
    description="Cursor-paginated. `q` is a full-text search (typo-tolerant where pg_trgm is "
    "installed) over title, authors, subtitle, tags and description; filters combine with "
    "AND; `tag` may repeat (a book must have all). Sort defaults to relevance with `q`, "
    "else newest first. The cursor belongs to the sort and filters it came from.",
    response_model=BookPage,
    responses=documented(401, 422, 503),
)
async def list_books(
    request: Request,
    resources: ResourcesDep,
    _reader: OptionalReader,
    q: Annotated[str | None, Query(max_length=1000, description="Search words.")] = None,
    author: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    tag: Annotated[list[str] | None, Query(max_length=10)] = None,
    language: Annotated[str | None, Query(pattern=r"^[a-zA-Z]{2}$")] = None,
    publisher: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    published_from: date | None = None,
    published_to: date | None = None,
    min_rating: Annotated[float | None, Query(ge=0, le=5)] = None,
    owner_id: uuid.UUID | None = None,
    sort: SortKey | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Response:
    settings = resources.settings
    if q is not None and len(q) > settings.search_max_query_length:
        raise QueryTooLong(settings.search_max_query_length)
    filters = books.Filters(
        q=q.strip() or None if q else None,
        author=author.strip() or None if author else None,
        tags=tuple(normalise_tags(tag or [])),
        language=language.lower() if language else None,
        publisher=publisher,
        published_from=published_from,
        published_to=published_to,
        min_rating=min_rating,
        owner_id=owner_id,
    )
    cache = cache_of(resources)
    cacheable = filters.empty and sort in (None, "-created_at") and cursor is None
    generation = None
    if cacheable:
        generation, body = await cache.get_listed(first_page_name(limit))
        if body is not None:
            return _json(request, body, body_tag(body))
    async with reading(resources.engine) as conn:  # only on a cache miss
        rows, next_cursor = await books.list_books(
            conn,
            filters,
            sort=sort,
            limit=limit,
            cursor=cursor,
            typo_tolerance=request.app.state.typo_tolerance,
        )
    page = BookPage(items=[books.book_out(r) for r in rows], next_cursor=next_cursor)
    raw = page.model_dump_json().encode()
    if cacheable:
        await cache.put_listed(generation, first_page_name(limit), raw)
    return _json(request, raw, body_tag(raw))


class InvalidIsbn(AppError):
    status_code, type, message = 422, "validation_error", "Invalid ISBN"


@router.get(
    "/books/isbn/{isbn}",
    operation_id="books_get_by_isbn",
    openapi_extra=OPTIONAL_BEARER,
    summary="Find a book by ISBN",
    description="ISBN-10 or ISBN-13, hyphens allowed.",
    response_model=BookOut,
    responses=documented(401, 404, 422, 503),
)
async def get_by_isbn(
    isbn: str, request: Request, session: SessionDep, _reader: OptionalReader
) -> Response:
    try:
        isbn13, _ = parse_isbn(isbn)
    except InvalidISBN as exc:
        raise InvalidIsbn(details=[{"field": "path.isbn", "message": str(exc)}]) from None
    row = await books.get_by_isbn(session, isbn13)
    if row is None:
        raise books.BookNotFound()
    return _json(request, books.book_json(row), books.etag(row["version"]))


@router.get(
    "/books/{book_id}",
    operation_id="books_get",
    openapi_extra=OPTIONAL_BEARER,
    summary="One book",
    description="Carries an `ETag`; send it back in `If-None-Match` for a 304, or in "
    "`If-Match` to change the book. Public: a bearer token is optional, but one that is sent "
    "must be valid and not logged out (else 401).",
    response_model=BookOut,
    responses={304: {"description": "Not modified"}, **documented(401, 404, 422, 503)},
)
async def get_book(
    book_id: uuid.UUID, request: Request, resources: ResourcesDep, _reader: OptionalReader
) -> Response:
    # Cache hits are normally answered before routing, by catalog/fastpath.py, with the same
    # bytes. No request-scoped session here: a hit never touches PostgreSQL.
    cache = cache_of(resources)
    cached = await cache.get_book(book_id)
    if cached is not None:
        version, body = cached
        if not body:
            raise books.BookNotFound()
        return _json(request, body, books.etag(version))
    async with reading(resources.engine) as conn:
        row = await books.get(conn, book_id)
    if row is None:
        raise books.BookNotFound()
    body = books.book_json(row)
    await cache.fill_book(book_id, row["version"], body)
    return _json(request, body, books.etag(row["version"]))


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (a UUID): a retry with the same key and body gets the "
        "first response again, and creates nothing.",
    ),
]


@router.post(
    "/books",
    operation_id="books_create",
    summary="Add a book",
    description="Needs a verified account; you become the book's owner. Honours `Idempotency-Key`.",
    status_code=status.HTTP_201_CREATED,
    response_model=BookOut,
    responses=documented(401, 403, 409, 422, 503, d409="A book with this ISBN exists"),
)
async def create_book(
    body: BookIn,
    request: Request,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    if idempotency_key is not None:
        key = idempotency.check_key(idempotency_key)
        digest = idempotency.request_hash(body.model_dump(mode="json"))
        stored = await idempotency.claim(
            session, user.id, key, digest, resources.settings.idempotency_key_hours
        )
        if stored is not None:
            return Response(
                BookOut.model_validate(stored.response).model_dump_json(),
                status_code=stored.status_code,
                media_type=JSON,
                headers={"Idempotent-Replayed": "true"},
            )
    row = await books.create(session, user, body)
    created = books.book_out(row)
    if idempotency_key is not None:
        await idempotency.record(
            session, user.id, idempotency_key, 201, created.model_dump(mode="json")
        )
    _refresh_after_commit(session, resources, row, row["id"])
    location = f"{resources.settings.api_prefix}/books/{row['id']}"
    return Response(
        created.model_dump_json(),
        status_code=status.HTTP_201_CREATED,
        media_type=JSON,
        headers={"ETag": books.etag(row["version"]), "Location": location},
    )


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The book's current ETag, from GET."),
]

WRITE_ERRORS = documented(
    401, 403, 404, 409, 412, 422, 428, 503,
    d403="Not the owner or an admin, or the email is not verified",
    d409="Another book has this ISBN",
)  # fmt: skip


async def _write(
    session: AsyncSession,
    resources: Resources,
    user: Any,
    book_id: uuid.UUID,
    if_match: str | None,
    fields: dict[str, Any],
) -> Response:
    row = await books.change(session, user, book_id, if_match, fields)
    _refresh_after_commit(session, resources, row, book_id)
    return Response(
        books.book_json(row), media_type=JSON, headers={"ETag": books.etag(row["version"])}
    )


@router.put(
    "/books/{book_id}",
    operation_id="books_replace",
    summary="Replace a book",
    description="Owner or admin. Every field is replaced (omitted optional fields are "
    "cleared). Requires `If-Match`: 428 without it, 412 when stale.",
    response_model=BookOut,
    responses=WRITE_ERRORS,
)
async def replace_book(
    book_id: uuid.UUID,
    body: BookIn,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    return await _write(session, resources, user, book_id, if_match, body.model_dump())


@router.patch(
    "/books/{book_id}",
    operation_id="books_update",
    summary="Change some fields of a book",
    description="Owner or admin. Only the fields sent change. Requires `If-Match`: 428 "
    "without it, 412 when stale.",
    response_model=BookOut,
    responses=WRITE_ERRORS,
)
async def update_book(
    book_id: uuid.UUID,
    body: BookPatch,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    fields = body.model_dump(exclude_unset=True)
    return await _write(session, resources, user, book_id, if_match, fields)


@router.delete(
    "/books/{book_id}",
    operation_id="books_delete",
    summary="Delete a book",
    description="Owner or admin. Its reviews and notifications go with it. `If-Match` is "
    "optional; when sent it must be current.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=documented(401, 403, 404, 412, 422, 503),
)
async def delete_book(
    book_id: uuid.UUID,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    await books.remove(session, user, book_id, if_match)
    _refresh_after_commit(session, resources, None, book_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/tags",
    operation_id="tags_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="Tags with book counts",
    description="Most used first.",
    response_model=list[TagOut],
    responses=documented(401, 422, 503),
)
async def list_tags(
    request: Request,
    resources: ResourcesDep,
    _reader: OptionalReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    cache = cache_of(resources)
    name = f"tags:{limit}"
    generation, body = await cache.get_listed(name)
    if body is None:
        async with reading(resources.engine) as conn:
            counts = await books.tag_counts(conn, limit)
        body = _TAGS_JSON.dump_json([TagOut(**c) for c in counts])
        await cache.put_listed(generation, name, body)
    return _json(request, body, body_tag(body))


# --- reviews -------------------------------------------------------------------------------


def _summary(book: RowMapping) -> dict[str, Any]:
    hist = book["rating_hist"]
    return {
        "rating_avg": float(book["rating_avg"]),
        "rating_count": book["rating_count"],
        "histogram": {str(stars): hist[stars - 1] for stars in range(1, 6)},
    }


@reviews_router.get(
    "/books/{book_id}/reviews",
    operation_id="reviews_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="A book's reviews",
    description="Newest first (`sort=newest`), or by rating (`-rating` best first, `rating` "
    "worst first); with the book's average, count and 1..5 histogram.",
    responses=documented(401, 404, 422, 503),
)
async def list_reviews(
    book_id: uuid.UUID,
    session: SessionDep,
    _reader: OptionalReader,
    sort: reviews.ReviewSort = "newest",
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> ReviewPage:
    book = await reviews.summary(session, book_id)
    rows, next_cursor = await reviews.list_for_book(session, book_id, sort, limit, cursor)
    return ReviewPage(
        items=[ReviewOut.model_validate(dict(r)) for r in rows],
        next_cursor=next_cursor,
        **_summary(book),
    )


class ReviewCreated(ReviewOut):
    book: RatingSummary


@reviews_router.post(
    "/books/{book_id}/reviews",
    operation_id="reviews_create",
    summary="Review a book",
    description="Needs a verified account. One review per user per book (409 "
    "`review_exists`); not of your own book (403 `cannot_review_own_book`). The owner is "
    "notified.",
    status_code=status.HTTP_201_CREATED,
    responses=documented(401, 403, 404, 409, 422, 503),
)
async def create_review(
    book_id: uuid.UUID,
    body: ReviewIn,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
) -> ReviewCreated:
    review, book = await reviews.create(session, user, book_id, body)
    _refresh_after_commit(session, resources, book, book_id)
    return ReviewCreated(**dict(review), book=RatingSummary(**_summary(book)))


@reviews_router.patch(
    "/books/{book_id}/reviews/me",
    operation_id="reviews_update_mine",
    summary="Edit my review of a book",
    description="Only the fields sent change; a new rating updates the book's aggregates.",
    responses=documented(401, 403, 404, 422, 503),
)
async def update_my_review(
    book_id: uuid.UUID,
    body: ReviewPatch,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
) -> ReviewOut:
    review, book = await reviews.change(session, user, book_id, body.model_dump(exclude_unset=True))
    if book is not None:
        _refresh_after_commit(session, resources, book, book_id)
    return ReviewOut.model_validate(dict(review))


@reviews_router.delete(
    "/books/{book_id}/reviews/me",
    operation_id="reviews_delete_mine",
    summary="Delete my review of a book",
    description="The book's aggregates are updated in the same transaction.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=documented(401, 404, 422, 503),
)
async def delete_my_review(
    book_id: uuid.UUID, user: CurrentUser, session: SessionDep, resources: ResourcesDep
) -> Response:
    book = await reviews.remove(session, book_id, user.id)
    _refresh_after_commit(session, resources, book, book_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@reviews_router.get(
    "/reviews/me",
    operation_id="reviews_mine",
    summary="My reviews",
    description="Newest first.",
    responses=documented(401, 422, 503),
)
async def my_reviews(
    user: CurrentUser, session: SessionDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[ReviewOut]:
    rows, next_cursor = await reviews.list_for_user(session, user, limit, cursor)
    return Page[ReviewOut](
        items=[ReviewOut.model_validate(dict(r)) for r in rows], next_cursor=next_cursor
    )


@reviews_router.delete(
    "/reviews/{book_id}/{user_id}",
    operation_id="reviews_moderate_delete",
    summary="Remove a review (moderation)",
    description="Moderators and admins.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=documented(401, 403, 404, 422, 503),
)
async def moderate_review(
    book_id: uuid.UUID,
    user_id: uuid.UUID,
    moderator: ModeratorUser,
    session: SessionDep,
    resources: ResourcesDep,
) -> Response:
    book = await reviews.remove(session, book_id, user_id)
    _refresh_after_commit(session, resources, book, book_id)
    reviews.log_moderation(moderator, book_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
