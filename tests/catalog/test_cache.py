"""The catalog caches: hits are served from Redis, a write is visible at once, a slow reader
cannot bring back an old version, and with Redis down reads fall through to PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx
from sqlalchemy import update

from pagely.catalog.cache import GENERATION_KEY, book_key
from pagely.core.cache import VersionedCache
from pagely.core.resources import Resources
from pagely.devtools.redis_server import EmbeddedRedis
from pagely.models import Book
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client
from tests.fixtures.catalog import BOOKS, book_body


async def test_hot_reads_come_from_the_cache(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    headers = bearer((await sign_in(client, user.email))["access_token"])
    book = (await client.post(BOOKS, json=book_body(), headers=headers)).json()
    await client.get(f"{BOOKS}/{book['id']}")
    await client.get(BOOKS)
    # Change the row behind the cache's back: the cached body is what is served...
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(update(Book).where(Book.id == book["id"]).values(title="Sneaky"))
    assert (await client.get(f"{BOOKS}/{book['id']}")).json()["title"] == book["title"]
    assert (await client.get(BOOKS)).json()["items"][0]["title"] == book["title"]
    # ...until a write through the API moves it on.
    etag = (await client.get(f"{BOOKS}/{book['id']}")).headers["ETag"]
    patched = await client.patch(f"{BOOKS}/{book['id']}", json={"page_count": 99},
                                 headers={**headers, "If-Match": etag})  # fmt: skip
    assert patched.json()["title"] == "Sneaky"
    assert (await client.get(f"{BOOKS}/{book['id']}")).json()["title"] == "Sneaky"
    assert (await client.get(BOOKS)).json()["items"][0]["title"] == "Sneaky"


async def test_an_older_version_never_replaces_a_newer_one(resources: Resources) -> None:
    cache = VersionedCache(resources.redis, 60)
    book_id = uuid.uuid4()
    await cache.put(book_key(book_id), 3, b'{"v":3}')
    await cache.put(book_key(book_id), 2, b'{"v":2}')  # a reader that loaded the row earlier
    assert await cache.get(book_key(book_id)) == (3, b'{"v":3}')
    await cache.forget(book_key(book_id))
    await cache.put(book_key(book_id), 4, b'{"v":4}')
    assert await cache.get(book_key(book_id)) == (2**62, b"")  # deleted stays deleted

    generation, body = await cache.get_listed(GENERATION_KEY, "first")
    assert body is None
    await cache.new_generation(GENERATION_KEY)  # a write commits while the reader queries
    await cache.put_listed(GENERATION_KEY, generation, "first", b"stale")
    assert (await cache.get_listed(GENERATION_KEY, "first"))[1] is None


async def test_reads_fall_through_to_postgres_when_redis_is_down(
    settings: Settings, resources: Resources, own_redis: EmbeddedRedis
) -> None:
    url = own_redis.start()
    user = await make_user(resources)
    async with app_client(settings, redis_url=url, service_timeout_seconds=0.5) as client:
        headers = bearer((await sign_in(client, user.email))["access_token"])
        book = (await client.post(BOOKS, json=book_body(), headers=headers)).json()
        assert own_redis.proc is not None
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            got = await client.get(f"{BOOKS}/{book['id']}")
            assert (got.status_code, got.json()["id"]) == (200, book["id"])
            assert time.monotonic() - started >= 0.5  # one timeout...
            started = time.monotonic()
            for _ in range(5):  # ...then the cache is skipped, not waited for again
                assert (await client.get(f"{BOOKS}/{book['id']}")).status_code == 200
                listed = await client.get(BOOKS, params={"q": "darkness"})
                assert [b["id"] for b in listed.json()["items"]] == [book["id"]]
                assert (await client.get(BOOKS)).status_code == 200
                assert (await client.get("/api/v1/tags")).status_code == 200
            assert time.monotonic() - started < 0.5 * 5
            # A token still needs the denylist: with Redis unreachable, never a pass.
            refused = await client.get(f"{BOOKS}/{book['id']}", headers=headers)
            assert refused.status_code == 503
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert (await client.get(f"{BOOKS}/{book['id']}")).status_code == 200
