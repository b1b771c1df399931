"""Issue 14: tampered cursors on every keyset-paginated route, over the app client. Never a
5xx; a cursor the route's decoder refuses is 422 `invalid_cursor`, one it accepts is a page;
and nothing changes. The decoders themselves are property-tested in tests/core/test_cursors.py.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pagely.catalog.books.queries import SORTS, decode_position
from pagely.catalog.reviews.queries import decode_book_cursor
from pagely.core.pagination import InvalidCursor, decode_created_cursor
from pagely.core.resources import Resources
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS, book_body
from tests.fixtures.cursors import TRICKY, raw_cursor, tampered

ID = str(uuid.uuid4())
AT = "2024-05-06T07:08:09.123456+00:00"
GENERATED = 25  # hypothesis cursors per route: the whole module runs in well under 30 s
MAX_QUERY_CURSOR = 512  # longer is FastAPI's own 422 (validation_error), not a decoder's


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # "{book}" is the test book's id
    params: dict[str, str]
    template: list[Any]  # a real cursor's values
    decode: Callable[[str], object]  # the route's decoder: the oracle of 200 or 422
    headers: str  # "admin" or "reader"


def _book_route(sort: str) -> Route:
    params = {"sort": sort, **({"q": "darkness"} if sort == "relevance" else {})}
    key: Any = {"relevance": 0.1, "title": "Dune", "-rating": "4.50", "-created_at": AT}.get(
        sort, "1969-03-01"
    )
    return Route(
        f"books {sort}",
        BOOKS,
        params,
        [sort, key, ID],
        partial(decode_position, sort),
        "reader",
    )


def _review_route(sort: str) -> Route:
    return Route(
        f"reviews {sort}",
        BOOKS + "/{book}/reviews",
        {"sort": sort},
        [sort, 4, AT, ID],
        partial(decode_book_cursor, sort),
        "reader",
    )


def _created_route(path: str, headers: str) -> Route:
    return Route(path, path, {}, [AT, ID], decode_created_cursor, headers)


ROUTES = [
    *(_book_route(sort) for sort in sorted(SORTS)),
    *(_review_route(sort) for sort in ("newest", "rating", "-rating")),
    _created_route("/api/v1/reviews/me", "reader"),
    _created_route("/api/v1/notifications", "admin"),
    _created_route("/api/v1/users", "admin"),
    _created_route("/api/v1/admin/outbox", "admin"),
]


def generated(strategy: st.SearchStrategy[str], count: int) -> list[str]:
    """`count` cursors drawn by hypothesis (requests are async, so they are sent after)."""
    found: list[str] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(cursor: str) -> None:
        found.append(cursor)

    collect()
    return found


def hand_picked(template: list[Any], sorted_by: bool) -> list[str]:
    """Every troublemaker of the issue in every key slot of a real cursor; a few in the slot
    naming the sort (only ever that name) and in the id's (only ever a UUID string)."""
    last = len(template) - 1
    return [
        raw_cursor([*template[:index], value, *template[index + 1 :]])
        for index in range(len(template))
        for value in (TRICKY[::4] if (sorted_by and index == 0) or index == last else TRICKY)
    ]


def accepted(route: Route, cursor: str) -> bool:
    try:
        route.decode(cursor)
    except InvalidCursor:
        return False
    return True


async def _world(client: httpx.AsyncClient, resources: Resources) -> dict[str, Any]:
    """An admin who owns a book, a reader who reviewed it (a notification and an email)."""
    admin = await make_user(resources, role="admin")
    reader = await make_user(resources)
    headers = {
        "admin": bearer((await sign_in(client, admin.email))["access_token"]),
        "reader": bearer((await sign_in(client, reader.email))["access_token"]),
    }
    created = await client.post(BOOKS, json=book_body(isbn=None), headers=headers["admin"])
    assert created.status_code == 201, created.text
    book = created.json()["id"]
    review = await client.post(
        f"{BOOKS}/{book}/reviews", json={"rating": 4}, headers=headers["reader"]
    )
    assert review.status_code == 201, review.text
    return {"headers": headers, "book": book}


async def _snapshot(client: httpx.AsyncClient, world: dict[str, Any]) -> list[Any]:
    pages = []
    for route in ROUTES:
        url = route.path.replace("{book}", world["book"])
        response = await client.get(
            url, params=route.params, headers=world["headers"][route.headers]
        )
        assert response.status_code == 200, (route.name, response.text)
        pages.append(response.json())
    return pages


GROUPS = {
    "books": [r for r in ROUTES if r.path == BOOKS],
    "reviews": [r for r in ROUTES if r.path.endswith("/reviews")],
    "newest-first": [r for r in ROUTES if r.path == r.name],
}


@pytest.mark.parametrize("group", sorted(GROUPS))
async def test_tampered_cursors_are_422_or_a_page_never_5xx(
    client: httpx.AsyncClient, resources: Resources, group: str
) -> None:
    world = await _world(client, resources)
    before = await _snapshot(client, world)
    wrong = []
    for route in GROUPS[group]:
        url = route.path.replace("{book}", world["book"])
        sorted_by = route.path != route.name  # the book and review lists name their sort
        cursors = hand_picked(route.template, sorted_by)
        cursors += generated(tampered(route.template), GENERATED)
        for cursor in dict.fromkeys(cursors):
            if len(cursor) > MAX_QUERY_CURSOR:
                continue
            response = await client.get(
                url,
                params={**route.params, "cursor": cursor},
                headers=world["headers"][route.headers],
            )
            if "\x00" in cursor:  # refused by the edge (EdgeMiddleware) before any decoder
                ok = response.status_code == 422
            elif accepted(route, cursor):
                ok = response.status_code == 200
            else:
                ok = (
                    response.status_code == 422
                    and response.json()["error"]["type"] == "invalid_cursor"
                )
            if not ok:
                wrong.append((route.name, cursor, response.status_code, response.text[:200]))
    assert wrong == []
    assert await _snapshot(client, world) == before  # nothing changed


# The examples of the issue, each a 500 before the fix: all of them are 422 invalid_cursor.
FAR_FUTURE, FAR_PAST = "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"
ISSUE_EXAMPLES: list[tuple[str, dict[str, str], list[Any]]] = [
    *(
        (BOOKS + "/{book}/reviews", {"sort": sort}, [sort, rating, AT, ID])
        for sort in ("rating", "-rating")
        for rating in (math.inf, 1e30, 10**30, 0, 6, True, "3")
    ),
    *(
        (BOOKS, {"sort": "-rating"}, ["-rating", value, ID])
        for value in ("1e999999", "1e-999999", "NaN", "Infinity", "5.01", "-1")
    ),
    *(
        (BOOKS, {"sort": "relevance", "q": "darkness"}, ["relevance", value, ID])
        for value in (math.inf, math.nan, 10**309, "0.5")
    ),
    (BOOKS, {"sort": "title"}, ["title", "a\x00b", ID]),
    (BOOKS, {"sort": "title"}, ["title", "\ud800", ID]),
    (BOOKS, {"sort": "title"}, ["title", ["Dune"], ID]),
    (BOOKS, {"sort": "title"}, ["title", "Dune", "\x00"]),
    *(
        (BOOKS, {"sort": "-created_at"}, ["-created_at", value, ID])
        for value in (FAR_FUTURE, FAR_PAST, "2024-01-01T00:00:00")
    ),
    *(
        (BOOKS + "/{book}/reviews", {"sort": "newest"}, ["newest", 4, value, ID])
        for value in (FAR_FUTURE, FAR_PAST, "2024-01-01T00:00:00")
    ),
    *(
        (path, {}, values)
        for path in (
            "/api/v1/reviews/me",
            "/api/v1/notifications",
            "/api/v1/users",
            "/api/v1/admin/outbox",
        )
        for values in (
            [FAR_FUTURE, ID],
            [FAR_PAST, ID],
            ["2024-01-01T00:00:00", ID],
            ["2024-01-01T00:00:00\x00+00:00", ID],
            [AT, 10**30],
            [AT, []],
            [AT, {}],
            [[], ID],
        )
    ),
]


async def test_the_issues_examples_are_invalid_cursor(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    world = await _world(client, resources)
    wrong = []
    for path, params, values in ISSUE_EXAMPLES:
        url = path.replace("{book}", world["book"])
        headers = world["headers"]["reader" if "reviews" in path or path == BOOKS else "admin"]
        response = await client.get(
            url, params={**params, "cursor": raw_cursor(values)}, headers=headers
        )
        if response.status_code != 422 or response.json()["error"]["type"] != "invalid_cursor":
            wrong.append((path, values, response.status_code))
    assert wrong == []
