"""Keyset (cursor) pagination: `?limit=&cursor=` in, `{items, next_cursor}` out. A cursor is
the sort key of the last item, so a page costs the same at any depth and stays stable under
inserts."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from pagely.core.errors import AppError

# The page size of every list: a client's default, and the most it may ask for.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` from the previous page; omit for the first."),
]


class InvalidCursor(AppError):
    status_code, type, message = 422, "invalid_cursor", "The cursor is not valid for this list"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "query.cursor", "message": "malformed cursor"}])


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The cursor's values, or InvalidCursor (422) for anything a client made up."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not isinstance(values, list) or len(values) != length:
        raise InvalidCursor()
    return values


def decode_created_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A `(created_at, id)` cursor, the key of newest-first lists."""
    if cursor is None:
        return None
    created_at, last_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(created_at), uuid.UUID(last_id)
    except (TypeError, ValueError):
        raise InvalidCursor() from None


def created_cursor(row: Any) -> str:
    return encode_cursor(row.created_at.isoformat(), str(row.id))


def paginate(
    rows: Sequence[Any], limit: int, key: Callable[[Any], str]
) -> tuple[list[Any], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor for the next one."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, key(page[-1])
