"""The fast path for cached `GET /books/{id}` and the listing's first page: it answers exactly
what the routes answer, it really answers the hits, and it hands everything else to the routes.
Every public catalog read checks a bearer token that is sent."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pagely.core.resources import Resources
from pagely.models import Book
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client
from tests.fixtures.catalog import BOOKS, book_body

# Per-request headers, different on every answer whichever path gives it.
_VOLATILE = {"x-request-id", "x-process-time"}


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in _VOLATILE}
    return response.status_code, headers, response.content


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.name == "pagely.access"]


async def test_both_paths_give_the_same_answers(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    owner = await make_user(resources)
    owner_headers = bearer((await sign_in(client, owner.email))["access_token"])
    book = (await client.post(BOOKS, json=book_body(), headers=owner_headers)).json()
    gone = (await client.post(BOOKS, json=book_body(isbn=None), headers=owner_headers)).json()
    reader = await make_user(resources)
    token = (await sign_in(client, reader.email))["access_token"]
    logged_out = (await sign_in(client, reader.email))["access_token"]
    assert (await client.post("/api/v1/auth/logout", headers=bearer(logged_out))).status_code == 204
    url = f"{BOOKS}/{book['id']}"
    etag = (await client.get(url)).headers["etag"]  # cached from here on
    gone_etag = (await client.get(f"{BOOKS}/{gone['id']}")).headers["etag"]
    deleted = await client.delete(
        f"{BOOKS}/{gone['id']}", headers={**owner_headers, "If-Match": gone_etag}
    )
    assert deleted.status_code == 204

    first_page = await client.get(BOOKS)  # cached from here on
    await client.get(f"{BOOKS}?limit=5")
    requests: list[tuple[str, dict[str, str]]] = [
        (BOOKS, {}),
        (f"{BOOKS}?limit=5", {}),
        (BOOKS, {"If-None-Match": first_page.headers["etag"]}),
        (BOOKS, bearer(token)),
        (BOOKS, bearer(logged_out)),
        (f"{BOOKS}?limit=0", {}),
        (f"{BOOKS}?limit=101", {}),
        (f"{BOOKS}?limit=7", {}),  # not cached yet: the route fills it
        (f"{BOOKS}?limit=5&language=en", {}),
        (url, {}),
        (url, bearer(token)),
        (url, {"If-None-Match": etag}),
        (url, {"If-None-Match": f'W/{etag}, "other"', **bearer(token)}),
        (url, {"If-None-Match": '"v0"'}),
        (url, bearer(logged_out)),
        (url, bearer(token[:-2] + "xx")),
        (url, {"Authorization": "Basic dXNlcjpwYXNz"}),
        (url, {"Authorization": "Bearer"}),
        (url.upper().replace("/API/V1/BOOKS", BOOKS), {}),  # an upper-case id
        (f"{BOOKS}/{gone['id']}", {}),  # deleted: a tombstone in the cache
        (f"{BOOKS}/{uuid.uuid4()}", {}),
        (f"{BOOKS}/not-a-uuid-but-exactly-36-characters!", {}),
    ]
    async with app_client(settings, catalog_fast_path=False) as slow:
        for path, headers in requests:
            # The same request id both ways: error bodies carry it.
            sent = {**headers, "X-Request-ID": "compare"}
            fast_answer = _answer(await client.get(path, headers=sent))
            slow_answer = _answer(await slow.get(path, headers=sent))
            assert fast_answer == slow_answer, (path, headers)
    statuses = [(await client.get(p, headers=h)).status_code for p, h in requests]
    assert statuses[:9] == [200, 200, 304, 200, 401, 422, 422, 200, 200]
    assert statuses[9:] == [200, 200, 304, 304, 200, 401, 401, 200, 200, 200, 404, 404, 422]


async def test_hits_are_answered_before_routing_and_misses_by_the_route(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(resources)
    access = (await sign_in(client, user.email))["access_token"]
    book = (await client.post(BOOKS, json=book_body(), headers=bearer(access))).json()
    url = f"{BOOKS}/{book['id']}"
    await resources.redis.delete(f"pagely:cache:book:{book['id']}")
    caplog.clear()
    miss = await client.get(url)  # fills the cache
    hit = await client.get(url, headers=bearer(access))
    assert miss.content == hit.content
    first, second = _access_lines(caplog)
    assert first["route"] == second["route"] == "/books/{book_id}"
    assert "fast_path" not in first
    assert second["fast_path"] is True
    assert second["user_id"] == str(user.id)

    caplog.clear()
    await client.get(BOOKS)
    await client.get(BOOKS)
    filled, listed = _access_lines(caplog)
    assert (filled["route"], "fast_path" in filled) == ("/books", False)
    assert (listed["route"], listed["fast_path"]) == ("/books", True)

    # A hit is served from Redis alone: the row can change underneath until a write says so.
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(update(Book).where(Book.id == book["id"]).values(title="Changed"))
    assert (await client.get(url)).json()["title"] == book["title"]


async def test_logout_is_seen_by_the_fast_path(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    access = (await sign_in(client, user.email))["access_token"]
    book = (await client.post(BOOKS, json=book_body(), headers=bearer(access))).json()
    url = f"{BOOKS}/{book['id']}"
    assert (await client.get(url, headers=bearer(access))).status_code == 200  # a cached hit
    assert (await client.post("/api/v1/auth/logout", headers=bearer(access))).status_code == 204
    refused = await client.get(url, headers=bearer(access))
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "invalid_token"
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_every_public_read_checks_a_token_that_is_sent(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    access = (await sign_in(client, user.email))["access_token"]
    dead = (await sign_in(client, user.email))["access_token"]
    assert (await client.post("/api/v1/auth/logout", headers=bearer(dead))).status_code == 204
    book = (await client.post(BOOKS, json=book_body(), headers=bearer(access))).json()
    paths = [
        BOOKS,
        f"{BOOKS}?q=darkness",
        f"{BOOKS}/{book['id']}",
        f"{BOOKS}/isbn/{book['isbn13']}",
        f"{BOOKS}/{book['id']}/reviews",
        "/api/v1/tags",
    ]
    for path in paths:
        for _ in range(2):  # the second time from the caches, where there are caches
            assert (await client.get(path)).status_code == 200, path
            assert (await client.get(path, headers=bearer(access))).status_code == 200, path
            refused = await client.get(path, headers=bearer(dead))
            assert refused.status_code == 401, path
            assert refused.json()["error"]["type"] == "invalid_token"
