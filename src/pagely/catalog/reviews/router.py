"""Reviews of a book, my reviews, and moderation: HTTP only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from pagely.catalog.books.errors import BookNotFound
from pagely.catalog.reviews import service
from pagely.catalog.reviews.errors import CannotReviewOwnBook, ReviewExists, ReviewNotFound
from pagely.catalog.reviews.schemas import (
    ReviewCreated,
    ReviewIn,
    ReviewOut,
    ReviewPage,
    ReviewPatch,
    ReviewSort,
)
from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from pagely.core.resources import ResourcesDep
from pagely.identity.dependencies import (
    OPTIONAL_BEARER,
    CurrentUser,
    OptionalReader,
    ReviewModerator,
    VerifiedUser,
)

router = APIRouter(tags=["reviews"])


@router.get(
    "/books/{book_id}/reviews",
    operation_id="reviews_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="A book's reviews",
    description="Newest first (`sort=newest`), or by rating (`-rating` best first, `rating` "
    "worst first); with the book's average, count and 1..5 histogram.",
    responses=declare(BookNotFound),
)
async def list_reviews(
    book_id: uuid.UUID,
    session: SessionDep,
    _reader: OptionalReader,
    sort: ReviewSort = ReviewSort.newest,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ReviewPage:
    return await service.list_for_book(session, book_id, sort, limit, cursor)


@router.post(
    "/books/{book_id}/reviews",
    operation_id="reviews_create",
    summary="Review a book",
    description="Needs a verified account. One review per user per book (409 "
    "`review_exists`); not of your own book (403 `cannot_review_own_book`). The owner is "
    "notified.",
    status_code=status.HTTP_201_CREATED,
    responses=declare(BookNotFound, CannotReviewOwnBook, ReviewExists),
)
async def create_review(
    book_id: uuid.UUID,
    body: ReviewIn,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
) -> ReviewCreated:
    return await service.create_review(session, resources.cache, user, book_id, body)


@router.patch(
    "/books/{book_id}/reviews/me",
    operation_id="reviews_update_mine",
    summary="Edit my review of a book",
    description="Only the fields sent change; a new rating updates the book's aggregates.",
    responses=declare(BookNotFound, ReviewNotFound),
)
async def update_my_review(
    book_id: uuid.UUID,
    body: ReviewPatch,
    user: VerifiedUser,
    session: SessionDep,
    resources: ResourcesDep,
) -> ReviewOut:
    fields = body.model_dump(exclude_unset=True)
    return await service.change_review(session, resources.cache, user, book_id, fields)


@router.delete(
    "/books/{book_id}/reviews/me",
    operation_id="reviews_delete_mine",
    summary="Delete my review of a book",
    description="The book's aggregates are updated in the same transaction.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(BookNotFound, ReviewNotFound),
)
async def delete_my_review(
    book_id: uuid.UUID, user: CurrentUser, session: SessionDep, resources: ResourcesDep
) -> Response:
    await service.delete_review(session, resources.cache, book_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/reviews/me",
    operation_id="reviews_mine",
    summary="My reviews",
    description="Newest first.",
)
async def my_reviews(
    user: CurrentUser,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ReviewOut]:
    return await service.list_for_user(session, user, limit, cursor)


@router.delete(
    "/reviews/{book_id}/{user_id}",
    operation_id="reviews_moderate_delete",
    summary="Remove a review (moderation)",
    description="Needs the `reviews:moderate` permission (moderators and admins hold it).",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(BookNotFound, ReviewNotFound),
)
async def moderate_review(
    book_id: uuid.UUID,
    user_id: uuid.UUID,
    moderator: ReviewModerator,
    session: SessionDep,
    resources: ResourcesDep,
) -> Response:
    await service.moderate(session, resources.cache, moderator.user, book_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
