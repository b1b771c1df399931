"""Every catalog, review and notification route, called as anonymous, user, owner (of the
book), moderator and admin, from a fresh state each time: exactly the expected status.
A new route without a row here fails `test_the_matrix_covers_every_route`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pagely.core.isbn import isbn13_check_digit
from pagely.core.resources import Resources
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS, book_body

ROLES = ("anonymous", "user", "owner", "moderator", "admin")
NOBODY = "00000000-0000-0000-0000-000000000000"
PREFIXES = ("/api/v1/books", "/api/v1/tags", "/api/v1/reviews", "/api/v1/notifications")


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: tuple[int, int, int, int, int]  # anonymous, user, owner, moderator, admin
    body: Any = None
    if_match: bool = False


def _anyone(code: int) -> tuple[int, int, int, int, int]:
    return (code,) * 5


def _signed_in(code: int) -> tuple[int, int, int, int, int]:
    return (401, code, code, code, code)


def _reviewers(code: int, owner: int = 404) -> tuple[int, int, int, int, int]:
    """The user, moderator and admin have reviewed the book; the owner cannot have."""
    return (401, code, owner, code, code)


MATRIX = [
    Row("GET", "/books", _anyone(200)),
    Row("GET", "/books/{book_id}", _anyone(200)),
    Row("GET", "/books/isbn/{isbn}", _anyone(200)),
    Row("POST", "/books", _signed_in(201), body={"title": "New", "authors": ["A. Writer"]}),
    Row(
        "PUT",
        "/books/{book_id}",
        (401, 403, 200, 403, 200),
        body={"title": "Replaced", "authors": ["B"]},
        if_match=True,
    ),
    Row(
        "PATCH",
        "/books/{book_id}",
        (401, 403, 200, 403, 200),
        body={"page_count": 9},
        if_match=True,
    ),
    Row("DELETE", "/books/{book_id}", (401, 403, 204, 403, 204)),
    Row("GET", "/tags", _anyone(200)),
    Row("GET", "/books/{book_id}/reviews", _anyone(200)),
    Row("POST", "/books/{book_id}/reviews", (401, 409, 403, 409, 409), body={"rating": 4}),
    Row("PATCH", "/books/{book_id}/reviews/me", _reviewers(200), body={"rating": 2}),
    Row("DELETE", "/books/{book_id}/reviews/me", _reviewers(204)),
    Row("GET", "/reviews/me", _signed_in(200)),
    Row("DELETE", "/reviews/{book_id}/{user_id}", (401, 403, 403, 204, 204)),
    Row("GET", "/notifications", _signed_in(200)),
    Row("POST", "/notifications/{notification_id}/read", _signed_in(404)),
    Row("POST", "/notifications/read-all", _signed_in(200)),
    Row("GET", "/notifications/preferences", _signed_in(200)),
    Row("PATCH", "/notifications/preferences", _signed_in(200), body={"email_on_review": False}),
]


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(PREFIXES)
        for method in operations
    }
    assert routes == {(row.method, "/api/v1" + row.path) for row in MATRIX}


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_access(client: httpx.AsyncClient, resources: Resources, row: Row) -> None:
    users = {
        role: await make_user(resources, role=role if role in ("moderator", "admin") else "user")
        for role in ROLES[1:]
    }
    headers: dict[str, dict[str, str]] = {"anonymous": {}} | {
        role: bearer((await sign_in(client, user.email))["access_token"])
        for role, user in users.items()
    }
    got = []
    for n, role in enumerate(ROLES):
        # A fresh book for every call, reviewed by everyone who may review it.
        first12 = f"9780306406{n:02d}"
        isbn = first12 + isbn13_check_digit(first12)
        book = (
            await client.post(BOOKS, json=book_body(isbn=isbn), headers=headers["owner"])
        ).json()
        for reviewer in ("user", "moderator", "admin"):
            review = await client.post(f"{BOOKS}/{book['id']}/reviews", json={"rating": 5},
                                       headers=headers[reviewer])  # fmt: skip
            assert review.status_code == 201
        version = (await client.get(f"{BOOKS}/{book['id']}")).json()["version"]
        path = "/api/v1" + row.path.format(
            book_id=book["id"], isbn=isbn, user_id=users["user"].id, notification_id=NOBODY
        )
        extra = {"If-Match": f'"v{version}"'} if row.if_match else {}
        response = await client.request(
            row.method, path, json=row.body, headers={**headers[role], **extra}
        )
        got.append(response.status_code)
    assert tuple(got) == row.expected
