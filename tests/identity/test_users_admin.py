"""/users: admin listing, search, role changes and deactivation, against real PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlmodel import col

from pagely.core.resources import Resources
from pagely.models import User
from pagely.models.session import AuthSession
from tests.fixtures.accounts import bearer, make_user, sign_in


async def _admin(client: httpx.AsyncClient, resources: Resources) -> tuple[User, dict[str, str]]:
    admin = await make_user(resources, role="admin", name="Root Admin")
    return admin, bearer((await sign_in(client, admin.email))["access_token"])


async def test_list_is_paginated_newest_first_and_searchable(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    made = [
        await make_user(resources, email=f"reader{i}@example.com", name=f"Reader {i}")
        for i in range(5)
    ]
    await make_user(resources, email="grace@navy.example", name="Grace Hopper")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/users", headers=headers, params=params)).json()
        seen += [item["email"] for item in page["items"]]
        assert "password_hash" not in page["items"][0]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 7
    assert seen[0] == "grace@navy.example"  # newest first

    by_email = await client.get("/api/v1/users", headers=headers, params={"q": "READER"})
    assert {u["email"] for u in by_email.json()["items"]} == {u.email for u in made}
    by_name = await client.get("/api/v1/users", headers=headers, params={"q": "hopper"})
    assert [u["email"] for u in by_name.json()["items"]] == ["grace@navy.example"]
    wildcard = await client.get("/api/v1/users", headers=headers, params={"q": "%"})
    assert wildcard.json()["items"] == []  # LIKE wildcards are matched literally
    admins = await client.get("/api/v1/users", headers=headers, params={"role": "admin"})
    assert [u["name"] for u in admins.json()["items"]] == ["Root Admin"]

    for bad in ({"limit": "0"}, {"cursor": "garbage"}, {"role": "owner"}, {"q": ""}):
        response = await client.get("/api/v1/users", headers=headers, params=bad)
        assert response.status_code == 422, bad
        assert response.json()["success"] is False


async def test_get_one_user_and_unknown_ids(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    user = await make_user(resources, name="Ada")
    one = await client.get(f"/api/v1/users/{user.id}", headers=headers)
    assert one.status_code == 200
    assert one.json()["name"] == "Ada"
    assert one.json()["is_active"] is True
    missing = await client.get(
        "/api/v1/users/00000000-0000-0000-0000-000000000000", headers=headers
    )
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "user_not_found")
    assert (await client.get("/api/v1/users/not-a-uuid", headers=headers)).status_code == 422


async def test_role_change_applies_on_the_next_request(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    user = await make_user(resources)
    theirs = bearer((await sign_in(client, user.email))["access_token"])
    assert (await client.get("/api/v1/users", headers=theirs)).status_code == 403

    promoted = await client.patch(
        f"/api/v1/users/{user.id}", headers=headers, json={"role": "admin"}
    )
    assert promoted.json()["role"] == "admin"
    assert (await client.get("/api/v1/users", headers=theirs)).status_code == 200

    await client.patch(f"/api/v1/users/{user.id}", headers=headers, json={"role": "moderator"})
    assert (await client.get("/api/v1/users", headers=theirs)).status_code == 403


async def test_deactivation_refuses_existing_tokens_at_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    other_device = await sign_in(client, user.email)

    off = await client.patch(f"/api/v1/users/{user.id}", headers=headers, json={"is_active": False})
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    for access in (pair["access_token"], other_device["access_token"]):
        assert (await client.get("/api/v1/auth/me", headers=bearer(access))).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    signin = await client.post(
        "/api/v1/auth/signin", json={"email": user.email, "password": "a-good-long-password"}
    )
    assert signin.json()["error"]["type"] == "invalid_credentials"
    async with resources.sessionmaker() as session:
        open_sessions = (
            await session.scalars(
                select(AuthSession).where(
                    col(AuthSession.user_id) == user.id,
                    col(AuthSession.revoked_at).is_(None),
                )
            )
        ).all()
        assert open_sessions == []

    back = await client.patch(f"/api/v1/users/{user.id}", headers=headers, json={"is_active": True})
    assert back.json()["is_active"] is True
    assert (await sign_in(client, user.email))["user"]["id"] == str(user.id)
    # Reactivation does not revive the tokens from before.
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    ).status_code == 401


async def test_admin_cannot_demote_or_deactivate_themselves(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin, headers = await _admin(client, resources)
    for body in ({"role": "user"}, {"is_active": False}):
        response = await client.patch(f"/api/v1/users/{admin.id}", headers=headers, json=body)
        assert (response.status_code, response.json()["error"]["type"]) == (409, "own_account")
    same = await client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"role": "admin"})
    assert same.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["role"] == "admin"


async def test_bad_patches_change_nothing(client: httpx.AsyncClient, resources: Resources) -> None:
    _, headers = await _admin(client, resources)
    user = await make_user(resources)
    for body in ({"role": "owner"}, {"is_verified": True}, {"is_active": "maybe"}):
        response = await client.patch(f"/api/v1/users/{user.id}", headers=headers, json=body)
        assert response.status_code == 422, body
    async with resources.sessionmaker() as session:
        row = await session.get(User, user.id)
        assert row is not None
        assert (row.role, row.is_active, row.is_verified) == ("user", True, True)
