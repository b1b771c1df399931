"""The access matrix derived from the routes themselves: every route of the app declares its
access (`pagely.identity.access`), and each is called as the callers its declaration admits and
refuses. A route that declares nothing fails here, so none can ship without a declaration; a
route whose check does not match its declaration fails too.

- public: anyone gets past the gate;
- signed_in: anonymous 401, any account gets past;
- verified: anonymous 401, an unverified account 403 `email_not_verified`;
- permission p: anonymous 401, a role holding every permission but p 403, a role holding only
  p gets past;
- owner_or p: as permission p for someone else's book, and the unverified are refused.

"Gets past the gate" is any status but 401 and 403 (the route may still answer 404 or 422)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from pagely.app import create_app
from pagely.core.db import transaction
from pagely.core.resources import Resources
from pagely.identity.access import Declared, Level, declared
from pagely.identity.permissions import Permission
from pagely.models import RoleDefinition, User
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import book_body

# Only for the list of routes: an app is built, never started.
_APP = create_app(
    Settings(
        environment="test",
        jwt_secret="collection-only-" + "x" * 32,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        redis_url="redis://127.0.0.1:9/0",
    )
)
ROUTES = [(route, method) for route in declared(_APP.routes) for method in sorted(route.methods)]
NOBODY = "00000000-0000-0000-0000-000000000000"
REFUSED = (401, 403)

# Requests that reach the ownership check, for the routes that make one after validation.
OWNER_OR_BODIES: dict[str, Any] = {
    "books_replace": {"title": "Replaced", "authors": ["B. Writer"]},
    "books_update": {"page_count": 9},
    "books_delete": None,
}


def test_every_route_declares_its_access() -> None:
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in declared(_APP.routes) if not r.access]
    assert undeclared == []
    assert len(ROUTES) > 50


class World:
    """A book owned by someone else, reviewed by `subject`, and callers to ask with."""

    def __init__(self, client: httpx.AsyncClient, resources: Resources) -> None:
        self.client, self.resources = client, resources

    async def build(self) -> None:
        owner = await make_user(self.resources)
        self.subject = await make_user(self.resources)
        self.book = (
            await self.client.post(
                "/api/v1/books", json=book_body(), headers=await self.headers(owner)
            )
        ).json()
        review = await self.client.post(
            f"/api/v1/books/{self.book['id']}/reviews",
            json={"rating": 4},
            headers=await self.headers(self.subject),
        )
        assert review.status_code == 201

    async def headers(self, user: User | None) -> dict[str, str]:
        """A fresh sign-in per call, so a route that ends the session does not leak."""
        if user is None:
            return {}
        return bearer((await sign_in(self.client, user.email))["access_token"])

    async def holder(self, granted: set[Permission], *, verified: bool = True) -> User:
        name = f"r-{uuid.uuid4().hex[:10]}"
        async with transaction(self.resources.sessionmaker) as session:
            session.add(RoleDefinition(name=name, permissions=sorted(granted), built_in=False))
        return await make_user(self.resources, role=name, verified=verified)

    def path(self, template: str) -> str:
        values = {
            "book_id": self.book["id"],
            "isbn": self.book["isbn13"],
            "user_id": self.subject.id,
            "token": "garbage-token",
            "name": "no-such-role",
        }
        return template.format_map(_Nobody(values))

    async def call(self, route: Declared, method: str, user: User | None) -> httpx.Response:
        body = OWNER_OR_BODIES.get(route.operation_id or "")
        return await self.client.request(
            method, self.path(route.path), json=body, headers=await self.headers(user)
        )


class _Nobody(dict[str, Any]):
    """Path parameters not named in `World.path` are ids of nothing."""

    def __missing__(self, key: str) -> str:
        assert key.endswith("_id"), f"give World.path a value for {{{key}}}"
        return NOBODY


@pytest.mark.parametrize(("route", "method"), ROUTES, ids=[f"{m} {r.path}" for r, m in ROUTES])
async def test_the_route_admits_and_refuses_as_declared(
    client: httpx.AsyncClient, resources: Resources, route: Declared, method: str
) -> None:
    assert route.access is not None, "the route declares no access"
    world = World(client, resources)
    await world.build()
    level, permission = route.access.level, route.access.permission

    anonymous = await world.call(route, method, None)
    if level is Level.public:
        assert anonymous.status_code not in REFUSED, anonymous.text
        return
    assert anonymous.status_code == 401, anonymous.text

    if level is Level.signed_in:
        signed_in = await world.call(route, method, await make_user(resources))
        assert signed_in.status_code not in REFUSED, signed_in.text
        return

    if level in (Level.verified, Level.owner_or):
        granted = {permission} if permission else set()
        unverified = await world.call(route, method, await world.holder(granted, verified=False))
        assert unverified.status_code == 403, unverified.text
        assert unverified.json()["error"]["type"] == "email_not_verified"
    if level is Level.verified:
        verified = await world.call(route, method, await make_user(resources))
        assert verified.status_code not in REFUSED, verified.text
        return

    assert permission is not None
    if level is Level.owner_or:
        assert route.operation_id in OWNER_OR_BODIES, "add a request that reaches the check"
    others = await world.call(route, method, await world.holder(set(Permission) - {permission}))
    assert others.status_code == 403, others.text
    holder = await world.call(route, method, await world.holder({permission}))
    assert holder.status_code not in REFUSED, holder.text
