"""/books: HTTP only. Each handler parses its input, makes one service call and builds the
response; cached reads answer 304 through `core.http.revalidated_response`."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from pagely.catalog.books import service
from pagely.catalog.books.errors import (
    BookNotFound,
    IsbnExists,
    NotBookOwner,
    PreconditionFailed,
    PreconditionRequired,
)
from pagely.catalog.books.schemas import BookIn, BookOut, BookPage, BookPatch, BookSort, Filters
from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.http import JSON, revalidated_response
from pagely.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from pagely.core.resources import ResourcesDep
from pagely.identity.dependencies import (
    OPTIONAL_BEARER,
    BookEditor,
    BookRemover,
    OptionalReader,
    VerifiedUser,
)

router = APIRouter(tags=["books"])

# The routes the fast path answers in front of this router (and names in the access log).
LIST_PATH = "/books"
BOOK_PATH = "/books/{book_id}"


@router.get(
    LIST_PATH,
    operation_id="books_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="List and search books",
    description="Cursor-paginated. `q` is a full-text search (typo-tolerant where pg_trgm is "
    "installed) over title, authors, subtitle, tags and description; filters combine with "
    "AND; `tag` may repeat (a book must have all). Sort defaults to relevance with `q`, "
    "else newest first. The cursor belongs to the sort and filters it came from.",
    response_model=BookPage,
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
    sort: BookSort | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    filters = Filters.parse(
        q=q,
        max_query_length=resources.settings.search_max_query_length,
        author=author,
        tag=tag,
        language=language,
        publisher=publisher,
        published_from=published_from,
        published_to=published_to,
        min_rating=min_rating,
        owner_id=owner_id,
    )
    page = await service.list_books(
        resources.engine,
        resources.cache,
        filters,
        sort=sort,
        limit=limit,
        cursor=cursor,
        typo_tolerance=resources.trigram,
    )
    return revalidated_response(page, request.headers.get("if-none-match"))


@router.get(
    "/books/isbn/{isbn}",
    operation_id="books_get_by_isbn",
    openapi_extra=OPTIONAL_BEARER,
    summary="Find a book by ISBN",
    description="ISBN-10 or ISBN-13, hyphens allowed.",
    response_model=BookOut,
    responses=declare(BookNotFound),
)
async def get_by_isbn(
    isbn: str, request: Request, session: SessionDep, _reader: OptionalReader
) -> Response:
    book = await service.get_by_isbn(session, isbn)
    return revalidated_response(book, request.headers.get("if-none-match"))


@router.get(
    BOOK_PATH,
    operation_id="books_get",
    openapi_extra=OPTIONAL_BEARER,
    summary="One book",
    description="Carries an `ETag`; send it back in `If-None-Match` for a 304, or in "
    "`If-Match` to change the book. Public: a bearer token is optional, but one that is sent "
    "must be valid and not logged out (else 401).",
    response_model=BookOut,
    responses=declare(BookNotFound),
)
async def get_book(
    book_id: uuid.UUID, request: Request, resources: ResourcesDep, _reader: OptionalReader
) -> Response:
    # Cache hits are normally answered before routing, by the fast path, with the same bytes.
    book = await service.get_book(resources.engine, resources.cache, book_id)
    return revalidated_response(book, request.headers.get("if-none-match"))


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (a UUID): a retry with the same key and body gets the "
        "first response again, and creates nothing.",
    ),
]


@router.post(
    LIST_PATH,
    operation_id="books_create",
    summary="Add a book",
    description="Needs a verified account; you become the book's owner. Honours `Idempotency-Key`.",
    status_code=status.HTTP_201_CREATED,
    response_model=BookOut,
    responses=declare(IsbnExists),
)
async def create_book(
    body: BookIn,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    settings = resources.settings
    created = await service.create_book(
        session,
        resources.cache,
        user,
        body,
        idempotency_key=idempotency_key,
        key_hours=settings.idempotency_key_hours,
    )
    assert created.etag is not None
    headers = {"ETag": created.etag, "Location": f"{settings.api_prefix}/books/{created.book_id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(created.body, status_code=created.status_code, media_type=JSON, headers=headers)


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The book's current ETag, from GET."),
]

WRITE_ERRORS = declare(
    BookNotFound, NotBookOwner, IsbnExists, PreconditionRequired, PreconditionFailed
)


@router.put(
    BOOK_PATH,
    operation_id="books_replace",
    summary="Replace a book",
    description="The owner, or a holder of `books:write_any`. Every field is replaced "
    "(omitted optional fields are cleared). Requires `If-Match`: 428 without it, 412 when "
    "stale.",
    response_model=BookOut,
    responses=WRITE_ERRORS,
)
async def replace_book(
    book_id: uuid.UUID,
    body: BookIn,
    actor: BookEditor,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    book = await service.change_book(
        session, resources.cache, actor, book_id, if_match, body.model_dump()
    )
    return Response(book.body, media_type=JSON, headers={"ETag": book.etag})


@router.patch(
    BOOK_PATH,
    operation_id="books_update",
    summary="Change some fields of a book",
    description="The owner, or a holder of `books:write_any`. Only the fields sent change. "
    "Requires `If-Match`: 428 without it, 412 when stale.",
    response_model=BookOut,
    responses=WRITE_ERRORS,
)
async def update_book(
    book_id: uuid.UUID,
    body: BookPatch,
    actor: BookEditor,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    fields = body.model_dump(exclude_unset=True)
    book = await service.change_book(session, resources.cache, actor, book_id, if_match, fields)
    return Response(book.body, media_type=JSON, headers={"ETag": book.etag})


@router.delete(
    BOOK_PATH,
    operation_id="books_delete",
    summary="Delete a book",
    description="The owner, or a holder of `books:delete_any`. Its reviews and notifications "
    "go with it. `If-Match` is optional; when sent it must be current.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(BookNotFound, NotBookOwner, PreconditionFailed),
)
async def delete_book(
    book_id: uuid.UUID,
    actor: BookRemover,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    await service.delete_book(session, resources.cache, actor, book_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
