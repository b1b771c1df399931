"""Errors of reviews, each with its stable type and status."""

from __future__ import annotations

from pagely.core.errors import Conflict, Forbidden, NotFound


class ReviewExists(Conflict):
    type, message = "review_exists", "You have already reviewed this book; edit your review"


class CannotReviewOwnBook(Forbidden):
    type, message = "cannot_review_own_book", "You cannot review a book you added"


class ReviewNotFound(NotFound):
    type, message = "review_not_found", "No such review"
