"""The admin queue API: who may call it, stats, the paginated list, and retry rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from pagely.core.resources import Resources
from pagely.models.base import utcnow
from pagely.models.outbox import OutboxMessage
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.outbox import enqueue

ROUTES = [
    ("GET", "/api/v1/admin/outbox/stats"),
    ("GET", "/api/v1/admin/outbox"),
    ("POST", "/api/v1/admin/outbox/00000000-0000-4000-8000-000000000000/retry"),
]


async def _set_status(
    resources: Resources, ids: list[uuid.UUID], status: str, **values: object
) -> None:
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(status=status, **values)  # type: ignore[attr-defined]
        )


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_only_admins_get_in(
    client: httpx.AsyncClient, resources: Resources, method: str, path: str
) -> None:
    anonymous = await client.request(method, path)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_token"
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"

    admin = await make_user(resources, role="admin")
    tokens = await sign_in(client, admin.email)
    forged = tokens["access_token"].rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert (await client.request(method, path, headers=bearer(forged))).status_code == 401
    refresh = tokens["refresh_token"]
    assert (await client.request(method, path, headers=bearer(refresh))).status_code == 401

    for role in ("user", "moderator"):
        someone = await make_user(resources, role=role)
        token = (await sign_in(client, someone.email))["access_token"]
        refused = await client.request(method, path, headers=bearer(token))
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "forbidden"


async def test_stats_count_by_status_and_age(
    client: httpx.AsyncClient, resources: Resources, admin_headers: dict[str, str]
) -> None:
    empty = (await client.get("/api/v1/admin/outbox/stats", headers=admin_headers)).json()
    assert empty["counts"] == {"pending": 0, "sent": 0, "failed": 0}
    assert empty["oldest_pending_age_seconds"] is None
    assert empty["broker_queue_depth"] == 0

    ids = [await enqueue(resources) for _ in range(5)]
    await _set_status(resources, ids[:2], "sent")
    await _set_status(resources, ids[2:3], "failed", failed_at=utcnow())
    await _set_status(resources, ids[3:4], "failed", failed_at=utcnow() - timedelta(hours=2))
    await _set_status(resources, ids[4:], "pending", created_at=utcnow() - timedelta(minutes=5))

    stats = (await client.get("/api/v1/admin/outbox/stats", headers=admin_headers)).json()
    assert stats["counts"] == {"pending": 1, "sent": 2, "failed": 2}
    assert stats["failed_last_hour"] == 1
    assert 299 < stats["oldest_pending_age_seconds"] < 330
    assert stats["broker_queue_depth"] == 5  # nobody consumed the dispatched tasks


async def test_the_list_pages_newest_first_and_filters_by_status(
    client: httpx.AsyncClient, resources: Resources, admin_headers: dict[str, str]
) -> None:
    ids = [await enqueue(resources, to=f"r{i}@example.com") for i in range(7)]
    await _set_status(resources, ids[:3], "sent")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get("/api/v1/admin/outbox", params=params, headers=admin_headers)
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(i) for i in reversed(ids)]

    sent = (
        await client.get("/api/v1/admin/outbox", params={"status": "sent"}, headers=admin_headers)
    ).json()
    assert [item["id"] for item in sent["items"]] == [str(i) for i in reversed(ids[:3])]
    item = sent["items"][0]
    assert item["to"] == "r2@example.com"
    assert item["template"] == "verify_email"
    assert "context" not in item
    assert "payload" not in item


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "query.status"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": "WzEsMl0"}, "query.cursor"),  # valid base64 JSON, wrong values
    ],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    params: dict[str, str | int],
    field: str,
) -> None:
    response = await client.get("/api/v1/admin/outbox", params=params, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field


async def test_retry_rules(
    client: httpx.AsyncClient, resources: Resources, admin_headers: dict[str, str]
) -> None:
    missing = await client.post(f"/api/v1/admin/outbox/{uuid.uuid4()}/retry", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "outbox_message_not_found"
    bad_id = await client.post("/api/v1/admin/outbox/not-a-uuid/retry", headers=admin_headers)
    assert bad_id.status_code == 422

    outbox_id = await enqueue(resources)
    await _set_status(resources, [outbox_id], "failed", attempts=5, failed_at=utcnow())
    retried = await client.post(f"/api/v1/admin/outbox/{outbox_id}/retry", headers=admin_headers)
    assert retried.status_code == 202
    body = retried.json()
    assert body["status"] == "pending"
    assert body["attempts"] == 0
    assert body["failed_at"] is None
    # Dispatched again after the commit: the original task plus the retry are queued.
    assert await resources.redis.llen("pagely") == 2

    await _set_status(resources, [outbox_id], "sent")
    conflict = await client.post(f"/api/v1/admin/outbox/{outbox_id}/retry", headers=admin_headers)
    assert conflict.status_code == 409
