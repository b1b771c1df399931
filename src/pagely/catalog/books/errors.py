"""Errors of books, each with its stable type and status."""

from __future__ import annotations

from pagely.core.errors import AppError, Conflict, Forbidden, NotFound


class BookNotFound(NotFound):
    type, message = "book_not_found", "No such book"


class IsbnExists(Conflict):
    type, message = "isbn_exists", "A book with this ISBN is already in the catalog"


class NotBookOwner(Forbidden):
    type, message = (
        "not_book_owner",
        "Only the book's owner, or a holder of the permission, can change it",
    )


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


class QueryTooLong(AppError):
    status_code, type = 422, "validation_error"

    def __init__(self, limit: int) -> None:
        message = f"The search query is longer than {limit} characters"
        super().__init__(message, details=[{"field": "query.q", "message": message}])


class IsbnNotValid(AppError):
    """An ISBN in the path that does not parse (in a body, the schema refuses it)."""

    status_code, type, message = 422, "validation_error", "Invalid ISBN"
