"""The cursor codecs, property-tested without a database: whatever a client sends as a cursor
(any string, any bytes, any JSON value, a real cursor with any of its values swapped), a
decoder either returns a position every value of which its column can hold, or raises
InvalidCursor. Never anything else: no OverflowError, TypeError, ... that would be a 500."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagely.catalog.books.queries import SORTS, decode_position
from pagely.catalog.reviews.queries import decode_book_cursor
from pagely.core.pagination import (
    InvalidCursor,
    decode_created_cursor,
    decode_cursor,
    encode_cursor,
)
from tests.fixtures.cursors import AWARE_DATETIMES, TRICKY, raw_cursor, tampered

BOOK_SORTS = sorted(SORTS)
REVIEW_SORTS = ["newest", "rating", "-rating"]
ID = "3f1b0c4e-8a0e-4d5b-9a7e-2f6f1d3c9b10"
AT = "2024-05-06T07:08:09.123456+00:00"

# --- what a decoded position may hold ----------------------------------------------------


def valid_datetime(value: Any) -> bool:
    return isinstance(value, datetime) and value.utcoffset() == timedelta(0)


def valid_text(value: Any) -> bool:
    if not isinstance(value, str) or "\x00" in value or len(value) > 500:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


KEY_CHECKS: dict[str, Callable[[Any], bool]] = {
    "relevance": lambda v: isinstance(v, float) and math.isfinite(v),
    "title": valid_text,
    "-published_date": lambda v: type(v) is date,
    "published_date": lambda v: type(v) is date,
    "-rating": lambda v: (
        isinstance(v, Decimal)
        and v.is_finite()
        and 0 <= v <= 5
        and v == v.quantize(Decimal("0.01"))
    ),
    "-created_at": valid_datetime,
}


def check_book(sort: str, cursor: str) -> None:
    try:
        position = decode_position(sort, cursor)
    except InvalidCursor:
        return
    assert position is not None
    key, last_id = position
    assert KEY_CHECKS[sort](key), (sort, key)
    assert isinstance(last_id, uuid.UUID)


def check_review(sort: str, cursor: str) -> None:
    try:
        stars, at, who = decode_book_cursor(sort, cursor)
    except InvalidCursor:
        return
    assert type(stars) is int
    assert 1 <= stars <= 5
    assert valid_datetime(at)
    assert isinstance(who, uuid.UUID)


def check_created(cursor: str) -> None:
    try:
        position = decode_created_cursor(cursor)
    except InvalidCursor:
        return
    assert position is not None
    assert valid_datetime(position[0])
    assert isinstance(position[1], uuid.UUID)


BOOK_TEMPLATES: dict[str, list[Any]] = {
    "relevance": ["relevance", 0.25, ID],
    "title": ["title", "Dune", ID],
    "-published_date": ["-published_date", "1965-08-01", ID],
    "published_date": ["published_date", "1965-08-01", ID],
    "-rating": ["-rating", "4.50", ID],
    "-created_at": ["-created_at", AT, ID],
}


@pytest.mark.parametrize("sort", BOOK_SORTS)
@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_book_cursors_decode_to_a_valid_position_or_invalid_cursor(
    sort: str, data: st.DataObject
) -> None:
    check_book(sort, data.draw(tampered(BOOK_TEMPLATES[sort])))


@pytest.mark.parametrize("sort", REVIEW_SORTS)
@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_review_cursors_decode_to_a_valid_position_or_invalid_cursor(
    sort: str, data: st.DataObject
) -> None:
    check_review(sort, data.draw(tampered([sort, 4, AT, ID])))


@settings(max_examples=150, deadline=None, database=None)
@given(cursor=tampered([AT, ID]))
def test_created_cursors_decode_to_a_valid_position_or_invalid_cursor(cursor: str) -> None:
    check_created(cursor)


@settings(max_examples=100, deadline=None, database=None)
@given(cursor=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_string_is_a_cursor_or_invalid_cursor(cursor: str) -> None:
    for sort in BOOK_SORTS:
        check_book(sort, cursor)
    for sort in REVIEW_SORTS:
        check_review(sort, cursor)
    check_created(cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor([AT, ID]).replace("I", "!"),
        "=" * 9,
        "é",
        "A" * 9000,
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe[]").decode(),
        base64.urlsafe_b64encode(b'[NaN, "x"]').decode(),
        base64.urlsafe_b64encode(b"[1" + b"0" * 5000 + b", 1]").decode(),
    ],
)
def test_garbage_is_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_created_cursor(cursor)


@pytest.mark.parametrize("value", TRICKY)
def test_every_tricky_value_is_refused_where_it_does_not_fit(value: Any) -> None:
    """The issue's examples: each one, in each slot, either fits that slot or is refused."""
    for sort, template in BOOK_TEMPLATES.items():
        for index in range(3):
            check_book(sort, raw_cursor([*template[:index], value, *template[index + 1 :]]))
    for sort in REVIEW_SORTS:
        template = [sort, 4, AT, ID]
        for index in range(4):
            check_review(sort, raw_cursor([*template[:index], value, *template[index + 1 :]]))
    check_created(raw_cursor([value, ID]))
    check_created(raw_cursor([AT, value]))


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("-rating", "1e999999"),
        ("-rating", "1e30"),
        ("-rating", "NaN"),
        ("-rating", "5.01"),
        ("-rating", "-0.01"),
        ("-rating", "1e-999999"),
        ("relevance", 10**400),
        ("title", "a\x00b"),
        ("title", "\ud800"),
        ("title", ["Dune"]),
        ("-created_at", "9999-12-31T23:59:59-14:00"),
        ("-created_at", "0001-01-01T00:00:00+14:00"),
        ("-created_at", "2024-01-01T00:00:00"),
        ("-published_date", "2024-13-01"),
    ],
)
def test_the_issues_book_examples_are_invalid(sort: str, key: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_position(sort, raw_cursor([sort, key, ID]))


@pytest.mark.parametrize(
    "values",
    [
        ["rating", math.inf, AT, ID],
        ["rating", 1e30, AT, ID],
        ["rating", 10**30, AT, ID],
        ["rating", 0, AT, ID],
        ["rating", 6, AT, ID],
        ["rating", True, AT, ID],
        ["rating", 4.0, AT, ID],
        ["newest", 4, "9999-12-31T23:59:59-14:00", ID],
        ["newest", 4, AT, "not-a-uuid"],
        ["newest", 4, AT, 12345],
        ["-rating", 4, AT, ID],  # written for another sort
    ],
)
def test_the_issues_review_examples_are_invalid(values: list[Any]) -> None:
    with pytest.raises(InvalidCursor):
        decode_book_cursor("rating" if values[0] != "newest" else "newest", raw_cursor(values))


@settings(max_examples=100, deadline=None, database=None)
@given(at=AWARE_DATETIMES, last_id=st.uuids())
def test_valid_created_cursors_round_trip(at: datetime, last_id: uuid.UUID) -> None:
    """What the lists write (any instant with any offset that is a real UTC time) reads back
    as the same instant and id."""
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        return
    assert decode_created_cursor(encode_cursor(at.isoformat(), str(last_id))) == (utc, last_id)
    assert decode_cursor(encode_cursor(at.isoformat(), str(last_id)), 2) == [
        at.isoformat(),
        str(last_id),
    ]


@settings(max_examples=100, deadline=None, database=None)
@given(
    avg=st.decimals(min_value=0, max_value=5, places=2),
    score=st.floats(allow_nan=False, allow_infinity=False),
    title=st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
    ),
    day=st.dates(),
    last_id=st.uuids(),
)
def test_valid_book_cursors_round_trip(
    avg: Decimal, score: float, title: str, day: date, last_id: uuid.UUID
) -> None:
    keys = {
        "-rating": str(avg),
        "relevance": score,
        "title": title,
        "published_date": day.isoformat(),
    }
    expected = {"-rating": avg, "relevance": score, "title": title, "published_date": day}
    for sort, key in keys.items():
        assert decode_position(sort, encode_cursor(sort, key, str(last_id))) == (
            expected[sort],
            last_id,
        )


@pytest.mark.parametrize("stars", [1, 2, 3, 4, 5])
def test_valid_review_cursors_round_trip(stars: int) -> None:
    for sort in REVIEW_SORTS:
        decoded = decode_book_cursor(sort, encode_cursor(sort, stars, AT, ID))
        assert decoded == (stars, datetime.fromisoformat(AT), uuid.UUID(ID))
