"""Every route of accounts, users, roles and the outbox admin, called as anonymous, user,
moderator and admin (the built-in roles): each gives exactly the expected status. A route
added without a row here fails `test_the_matrix_covers_every_route`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pagely.core.resources import Resources
from tests.fixtures.accounts import bearer, make_user, sign_in

PASSWORD = "a-good-long-password"
ROLES = ("anonymous", "user", "moderator", "admin")
NOBODY = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the route's template: {user_id} is filled with another user's id
    expected: tuple[int, int, int, int]  # anonymous, user, moderator, admin
    body: Any = None
    form: dict[str, str] | None = None


def _public(status: int) -> tuple[int, int, int, int]:
    return (status,) * 4


def _signed_in(status: int) -> tuple[int, int, int, int]:
    return (401, status, status, status)


def _admin(status: int) -> tuple[int, int, int, int]:
    return (401, 403, 403, status)


SUBJECT = "subject@example.com"  # an account that exists, used by the public routes

MATRIX = [
    Row("POST", "/auth/register", _public(202), body="new-address"),
    Row("GET", "/auth/verify/{token}", _public(400)),
    Row("POST", "/auth/verify", _public(400), body={"token": "garbage"}),
    Row("POST", "/auth/resend-verification", _public(202), body={"email": SUBJECT}),
    Row("POST", "/auth/signin", _public(200), body={"email": SUBJECT, "password": PASSWORD}),
    Row("POST", "/auth/token", _public(200), form={"username": SUBJECT, "password": PASSWORD}),
    Row("POST", "/auth/refresh-token", _public(401), body={"refresh_token": "garbage"}),
    Row("POST", "/auth/forgot-password", _public(202), body={"email": SUBJECT}),
    Row("GET", "/auth/reset-password/{token}", _public(400)),
    Row(
        "POST",
        "/auth/reset-password",
        _public(400),
        body={"token": "garbage", "new_password": "another-long-passphrase"},
    ),
    Row("GET", "/auth/me", _signed_in(200)),
    Row("PATCH", "/auth/me", _signed_in(200), body={"name": "Renamed"}),
    Row("DELETE", "/auth/me", _signed_in(400), body={"password": "not-my-password"}),
    Row(
        "POST",
        "/auth/change-password",
        _signed_in(400),
        body={"current_password": "not-my-password", "new_password": "another-long-pass"},
    ),
    Row("GET", "/auth/sessions", _signed_in(200)),
    Row("DELETE", "/auth/sessions/{session_id}", _signed_in(404)),
    Row("POST", "/auth/logout", _signed_in(204)),
    Row("POST", "/auth/logout-all", _signed_in(204)),
    Row("GET", "/users", _admin(200)),
    Row("GET", "/users/{user_id}", _admin(200)),
    Row("PATCH", "/users/{user_id}", _admin(200), body={"role": "user"}),
    Row("GET", "/permissions", _admin(200)),
    Row("GET", "/roles", _admin(200)),
    Row("POST", "/roles", _admin(201), body={"name": "curator", "permissions": []}),
    Row("PATCH", "/roles/{name}", _admin(404), body={"permissions": []}),
    Row("DELETE", "/roles/{name}", _admin(404)),
    Row("GET", "/admin/outbox/stats", _admin(200)),
    Row("GET", "/admin/outbox", _admin(200)),
    Row("POST", "/admin/outbox/{outbox_id}/retry", _admin(404)),
]

COVERED_PREFIXES = (
    "/api/v1/auth",
    "/api/v1/users",
    "/api/v1/admin",
    "/api/v1/permissions",
    "/api/v1/roles",
)


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(COVERED_PREFIXES)
        for method in operations
    }
    assert routes == {(row.method, "/api/v1" + row.path) for row in MATRIX}


class Actors:
    def __init__(self, client: httpx.AsyncClient, resources: Resources) -> None:
        self.client, self.resources = client, resources
        self.emails: dict[str, str] = {}

    async def create(self) -> None:
        for role in ROLES[1:]:
            user = await make_user(self.resources, role=role)
            self.emails[role] = user.email

    async def headers(self, role: str) -> dict[str, str]:
        """A fresh sign-in per call, so a row that ends the session does not leak."""
        if role == "anonymous":
            return {}
        return bearer((await sign_in(self.client, self.emails[role]))["access_token"])


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_access(client: httpx.AsyncClient, resources: Resources, row: Row) -> None:
    subject = await make_user(resources, email=SUBJECT)
    actors = Actors(client, resources)
    await actors.create()
    path = "/api/v1" + row.path.format(
        user_id=subject.id,
        token="garbage-token",
        session_id=NOBODY,
        outbox_id=NOBODY,
        name="nobody",
    )
    got = []
    for role in ROLES:
        body = row.body
        if body == "new-address":
            body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD,
                    "name": "New"}  # fmt: skip
        response = await client.request(
            row.method, path, headers=await actors.headers(role), json=body, data=row.form
        )
        got.append(response.status_code)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith(("application/json", "text/html"))
    assert tuple(got) == row.expected
