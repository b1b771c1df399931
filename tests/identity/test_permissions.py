"""Permissions and roles: the catalogue, custom roles through the API, assigning them, and the
rules that keep permissions from leaking (nobody grants what they lack) or vanishing (someone
always holds roles:manage), against real PostgreSQL; the race between two admins over HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from pagely.core.resources import Resources
from pagely.identity.permissions import Permission
from pagely.models import User
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import book_body

ROLES = "/api/v1/roles"


async def _headers(client: httpx.AsyncClient, user: User) -> dict[str, str]:
    return bearer((await sign_in(client, user.email))["access_token"])


async def _admin(client: httpx.AsyncClient, resources: Resources) -> tuple[User, dict[str, str]]:
    admin = await make_user(resources, role="admin")
    return admin, await _headers(client, admin)


async def _create_role(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, *permissions: str
) -> dict[str, Any]:
    response = await client.post(
        ROLES, headers=headers, json={"name": name, "permissions": list(permissions)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _assign(
    client: httpx.AsyncClient, headers: dict[str, str], user: User, role: str
) -> httpx.Response:
    return await client.patch(f"/api/v1/users/{user.id}", headers=headers, json={"role": role})


def _error(response: httpx.Response) -> str:
    error_type: str = response.json()["error"]["type"]
    return error_type


async def test_the_catalogue_and_the_built_in_roles(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    listed = (await client.get("/api/v1/permissions", headers=headers)).json()
    assert [p["name"] for p in listed] == [p.value for p in Permission]
    assert all(p["description"] for p in listed)

    roles = {r["name"]: r for r in (await client.get(ROLES, headers=headers)).json()}
    assert list(roles) == ["admin", "moderator", "user"]
    assert roles["admin"]["permissions"] == sorted(p.value for p in Permission)
    assert roles["moderator"]["permissions"] == ["reviews:moderate"]
    assert roles["user"]["permissions"] == []
    assert all(r["built_in"] for r in roles.values())


async def test_custom_roles_are_created_changed_and_deleted(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    admin, headers = await _admin(client, resources)
    body = {"name": "curator", "description": "Looks after the catalogue",
            "permissions": ["books:write_any", "books:write_any", "reviews:moderate"]}  # fmt: skip
    created = await client.post(ROLES, headers=headers, json=body)
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/roles/curator"
    assert created.json() == {
        "name": "curator",
        "description": "Looks after the catalogue",
        "permissions": ["books:write_any", "reviews:moderate"],
        "built_in": False,
    }
    assert [r["name"] for r in (await client.get(ROLES, headers=headers)).json()] == [
        "admin", "moderator", "user", "curator"
    ]  # fmt: skip

    changed = await client.patch(
        f"{ROLES}/curator", headers=headers, json={"permissions": ["books:delete_any"]}
    )
    assert changed.status_code == 200
    assert changed.json()["permissions"] == ["books:delete_any"]
    assert changed.json()["description"] == "Looks after the catalogue"  # not sent, kept

    deleted = await client.delete(f"{ROLES}/curator", headers=headers)
    assert deleted.status_code == 204
    assert (await client.delete(f"{ROLES}/curator", headers=headers)).status_code == 404

    events = {r.msg["event"]: r.msg for r in caplog.records if isinstance(r.msg, dict)}
    assert events["authz_role_created"]["actor_id"] == str(admin.id)
    assert events["authz_role_created"]["permissions"] == ["books:write_any", "reviews:moderate"]
    assert events["authz_role_changed"]["permissions_before"] == [
        "books:write_any", "reviews:moderate"
    ]  # fmt: skip
    assert events["authz_role_changed"]["permissions"] == ["books:delete_any"]
    assert events["authz_role_deleted"]["role"] == "curator"
    for event in ("authz_role_created", "authz_role_changed", "authz_role_deleted"):
        assert next(r for r in caplog.records if r.msg is events[event]).name == "pagely.security"


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"name": "curator", "permissions": ["books:burn"]}, 422, "validation_error"),
        ({"name": "Curator", "permissions": []}, 422, "validation_error"),
        ({"name": "x", "permissions": []}, 422, "validation_error"),
        ({"name": "admin", "permissions": []}, 409, "role_exists"),
        ({"name": "curator", "permissions": [], "built_in": True}, 422, "validation_error"),
    ],
)
async def test_a_bad_role_is_refused_and_nothing_is_created(
    client: httpx.AsyncClient,
    resources: Resources,
    body: dict[str, Any],
    status: int,
    error_type: str,
) -> None:
    _, headers = await _admin(client, resources)
    response = await client.post(ROLES, headers=headers, json=body)
    assert (response.status_code, _error(response)) == (status, error_type)
    assert len((await client.get(ROLES, headers=headers)).json()) == 3


async def test_built_in_assigned_and_unknown_roles(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    for method, body in (("PATCH", {"permissions": []}), ("DELETE", None)):
        for name in ("user", "moderator", "admin"):
            response = await client.request(method, f"{ROLES}/{name}", headers=headers, json=body)
            assert (response.status_code, _error(response)) == (409, "role_built_in")
        response = await client.request(method, f"{ROLES}/nobody", headers=headers, json=body)
        assert (response.status_code, _error(response)) == (404, "role_not_found")

    await _create_role(client, headers, "curator", "books:write_any")
    holder = await make_user(resources)
    assert (await _assign(client, headers, holder, "curator")).status_code == 200
    in_use = await client.delete(f"{ROLES}/curator", headers=headers)
    assert (in_use.status_code, _error(in_use)) == (409, "role_in_use")
    unknown = await _assign(client, headers, holder, "librarian")
    assert (unknown.status_code, _error(unknown)) == (422, "unknown_role")
    listed = await client.get("/api/v1/users", headers=headers, params={"role": "librarian"})
    assert (listed.status_code, _error(listed)) == (422, "unknown_role")
    by_role = await client.get("/api/v1/users", headers=headers, params={"role": "curator"})
    assert [u["id"] for u in by_role.json()["items"]] == [str(holder.id)]

    assert (await _assign(client, headers, holder, "user")).status_code == 200
    assert (await client.delete(f"{ROLES}/curator", headers=headers)).status_code == 204


async def test_a_role_change_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    admin, headers = await _admin(client, resources)
    owner = await make_user(resources)
    created = await client.post(
        "/api/v1/books", headers=await _headers(client, owner), json=book_body(title="Theirs")
    )
    book = f"/api/v1/books/{created.json()['id']}"
    curator = await make_user(resources)
    curator_headers = await _headers(client, curator)  # signed in before the role exists

    def patch(etag: str) -> Any:
        return client.patch(
            book, headers={**curator_headers, "If-Match": etag}, json={"page_count": 10}
        )

    refused = await patch(created.headers["ETag"])
    assert (refused.status_code, _error(refused)) == (403, "not_book_owner")

    await _create_role(client, headers, "curator", "books:write_any")
    assert (await _assign(client, headers, curator, "curator")).status_code == 200
    allowed = await patch(created.headers["ETag"])
    assert allowed.status_code == 200  # the same access token, the new role
    deleting = await client.delete(book, headers=curator_headers)
    assert deleting.status_code == 403  # books:delete_any is another permission

    await client.patch(f"{ROLES}/curator", headers=headers, json={"permissions": []})
    again = await patch(allowed.headers["ETag"])
    assert (again.status_code, _error(again)) == (403, "not_book_owner")

    changed = next(
        r.msg for r in caplog.records
        if isinstance(r.msg, dict) and r.msg["event"] == "authz_user_role_changed"
    )  # fmt: skip
    assert changed == {**changed, "actor_id": str(admin.id), "user_id": str(curator.id),
                       "role_before": "user", "role": "curator"}  # fmt: skip


async def test_nobody_grants_or_acts_beyond_their_own_permissions(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _admin(client, resources)
    await _create_role(client, headers, "staff", "users:manage")
    await _create_role(client, headers, "roler", "roles:manage")
    staff, roler = await make_user(resources), await make_user(resources)
    await _assign(client, headers, staff, "staff")
    await _assign(client, headers, roler, "roler")
    staff_headers, roler_headers = await _headers(client, staff), await _headers(client, roler)
    reader, other_admin = await make_user(resources), await make_user(resources, role="admin")

    for role in ("admin", "moderator", "roler"):  # each grants something staff lacks
        response = await _assign(client, staff_headers, reader, role)
        assert (response.status_code, _error(response)) == (403, "beyond_own_permissions")
    for body in ({"role": "user"}, {"is_active": False}):  # an account stronger than staff
        response = await client.patch(
            f"/api/v1/users/{other_admin.id}", headers=staff_headers, json=body
        )
        assert (response.status_code, _error(response)) == (403, "beyond_own_permissions")
    assert (await _assign(client, staff_headers, reader, "staff")).status_code == 200
    assert (await _assign(client, staff_headers, reader, "user")).status_code == 200

    too_strong = await client.post(
        ROLES, headers=roler_headers, json={"name": "boss", "permissions": ["users:manage"]}
    )
    assert (too_strong.status_code, _error(too_strong)) == (403, "beyond_own_permissions")
    for method, change in (("PATCH", {"permissions": ["roles:manage"]}), ("DELETE", None)):
        response = await client.request(
            method, f"{ROLES}/staff", headers=roler_headers, json=change
        )
        assert (response.status_code, _error(response)) == (403, "beyond_own_permissions")
    assert (await client.post(ROLES, headers=roler_headers, json={"name": "deputy",
            "permissions": ["roles:manage"]})).status_code == 201  # fmt: skip
    roles = (await client.get(ROLES, headers=headers)).json()
    assert {r["name"]: r["permissions"] for r in roles}["staff"] == ["users:manage"]


async def test_the_last_holder_of_roles_manage_cannot_be_removed(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    first, first_headers = await _admin(client, resources)
    second = await make_user(resources, role="admin")
    demoted = await _assign(client, first_headers, second, "user")
    assert demoted.status_code == 200  # the first admin still holds roles:manage

    leaving = await client.request(
        "DELETE", "/api/v1/auth/me", headers=first_headers,
        json={"password": "a-good-long-password"},
    )  # fmt: skip
    assert (leaving.status_code, _error(leaving)) == (409, "last_role_manager")

    await _create_role(client, first_headers, "keeper", "roles:manage", "users:manage")
    keeper = await make_user(resources)
    await _assign(client, first_headers, keeper, "keeper")
    keeper_headers = await _headers(client, keeper)
    gone = await client.request(
        "DELETE", "/api/v1/auth/me", headers=first_headers,
        json={"password": "a-good-long-password"},
    )  # fmt: skip
    assert gone.status_code == 204  # the keeper holds roles:manage now

    emptied = await client.patch(
        f"{ROLES}/keeper", headers=keeper_headers, json={"permissions": ["users:manage"]}
    )
    assert (emptied.status_code, _error(emptied)) == (409, "last_role_manager")
    roles = {r["name"]: r for r in (await client.get(ROLES, headers=keeper_headers)).json()}
    assert roles["keeper"]["permissions"] == ["roles:manage", "users:manage"]  # unchanged

    async with resources.sessionmaker() as session:
        assert await session.get(User, first.id) is None


async def test_two_admins_demoting_each_other_at_once_leave_one(
    live_process: str, resources: Resources
) -> None:
    """Over real HTTP, at once, again and again: without the lock both demotions commit and
    nobody can manage roles any more. The loser gets 409 when both passed the permission
    check, 403 when the winner's demotion committed before the loser's request was admitted."""
    raced = 0
    async with httpx.AsyncClient(base_url=live_process, timeout=20) as client:
        for _ in range(10):
            a = await make_user(resources, role="admin")
            b = await make_user(resources, role="admin")
            a_headers, b_headers = await _headers(client, a), await _headers(client, b)
            outcomes = await asyncio.gather(
                _assign(client, a_headers, b, "user"), _assign(client, b_headers, a, "user")
            )
            statuses = sorted(r.status_code for r in outcomes)
            assert statuses in ([200, 403], [200, 409]), statuses
            if statuses == [200, 409]:
                raced += 1
                assert _error(outcomes[0 if outcomes[0].status_code == 409 else 1]) == (
                    "last_role_manager"
                )
            remaining = (await client.get(ROLES, headers=a_headers)).status_code
            remaining += (await client.get(ROLES, headers=b_headers)).status_code
            assert remaining == 200 + 403  # exactly one of them still manages roles
            async with resources.sessionmaker() as session, session.begin():
                await session.execute(delete(User))
    assert raced > 0, "the two requests never overlapped"
