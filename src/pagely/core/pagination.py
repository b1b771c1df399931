"""Keyset (cursor) pagination: `?limit=&cursor=` in, `{items, next_cursor}` out. A cursor is
the sort key of the last item, so a page costs the same at any depth and stays stable under
inserts.

A cursor comes back from the client, so it is untrusted input: `decode_fields` decodes it
with one field parser per value (`cursor_text`, `cursor_uuid`, `cursor_datetime`, ...), and
each parser accepts only values its column can hold (right JSON type, finite, in range,
representable in PostgreSQL once converted). Anything else is `InvalidCursor` (422), never an
error from the driver or the database."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
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
    # Long enough for the longest key a cursor carries (a 500-character title, UTF-8).
    Query(max_length=4096, description="`next_cursor` from the previous page; omit for the first."),
]


class InvalidCursor(AppError):
    status_code, type, message = 422, "invalid_cursor", "The cursor is not valid for this list"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "query.cursor", "message": "malformed cursor"}])


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# A cursor this service writes is shorter (the query parameter allows 4096 characters);
# the bound keeps a decoder called with anything else from doing unbounded work.
MAX_CURSOR_CHARS = 8192
# The longest string value a cursor may carry (the longest sortable column is 500 characters).
MAX_CURSOR_TEXT = 500
_MAX_SCALAR_CHARS = 64


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity, -Infinity: not JSON, never written by encode_cursor


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The cursor's raw JSON values (a list of `length`), or InvalidCursor (422) for anything
    a client made up. The values are still untrusted: see `decode_fields`."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw, parse_constant=_refuse_constant)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidCursor() from None
    if not isinstance(values, list) or len(values) != length:
        raise InvalidCursor()
    return values


def decode_fields(cursor: str, *fields: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The cursor's values, each parsed by its field parser (which raises InvalidCursor)."""
    values = decode_cursor(cursor, len(fields))
    return tuple(parse(value) for parse, value in zip(fields, values, strict=True))


# --- field parsers: a JSON value to a value its column can hold, or InvalidCursor -------------


def cursor_text(raw: Any, max_length: int = MAX_CURSOR_TEXT) -> str:
    """A string PostgreSQL can store: no NUL, valid UTF-8 (no lone surrogates), bounded."""
    if not isinstance(raw, str) or len(raw) > max_length or "\x00" in raw:
        raise InvalidCursor()
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCursor() from None
    return raw


def cursor_literal(expected: str) -> Callable[[Any], str]:
    """A parser that accepts exactly `expected` (the sort a cursor was written for)."""

    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or raw != expected:
            raise InvalidCursor()
        return raw

    return parse


def cursor_uuid(raw: Any) -> uuid.UUID:
    try:
        return uuid.UUID(cursor_text(raw, _MAX_SCALAR_CHARS))
    except ValueError:
        raise InvalidCursor() from None


def cursor_int(raw: Any, low: int, high: int) -> int:
    """An integer (not a bool, not a float) in low..high."""
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise InvalidCursor()
    return raw


def cursor_float(raw: Any) -> float:
    """A finite float (a JSON int is accepted as one)."""
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise InvalidCursor()
    try:
        value = float(raw)
    except OverflowError:
        raise InvalidCursor() from None
    if not math.isfinite(value):
        raise InvalidCursor()
    return value


def cursor_decimal(raw: Any, low: Decimal, high: Decimal, places: int) -> Decimal:
    """A finite decimal in low..high with at most `places` decimal places (a numeric(p, s)
    column), from its string (or a JSON number)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidCursor()
    text = cursor_text(raw, _MAX_SCALAR_CHARS) if isinstance(raw, str) else str(raw)
    try:
        value = Decimal(text)
        if not (value.is_finite() and low <= value <= high):
            raise InvalidCursor()
        if value != value.quantize(Decimal(1).scaleb(-places)):
            raise InvalidCursor()
    except (InvalidOperation, ValueError):
        raise InvalidCursor() from None
    return value


def cursor_date(raw: Any) -> date:
    """An ISO date (Python's years 1..9999 all fit PostgreSQL's date)."""
    try:
        return date.fromisoformat(cursor_text(raw, _MAX_SCALAR_CHARS))
    except ValueError:
        raise InvalidCursor() from None


def cursor_datetime(raw: Any) -> datetime:
    """An ISO datetime with an offset, for a timestamptz column, as UTC: a naive one, or one
    outside years 1..9999 once converted to UTC, is refused."""
    try:
        value = datetime.fromisoformat(cursor_text(raw, _MAX_SCALAR_CHARS))
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidCursor()
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidCursor() from None


def decode_created_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A `(created_at, id)` cursor, the key of newest-first lists."""
    if cursor is None:
        return None
    created_at, last_id = decode_fields(cursor, cursor_datetime, cursor_uuid)
    return created_at, last_id


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
