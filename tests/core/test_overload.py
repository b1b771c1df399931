"""Overload is shed, never turned into errors: admission control over real HTTP, and pools that
run out of connections answered 503 `overloaded` with Retry-After, never a 500, without the
cache's breaker taking local congestion for a Redis outage."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import cast

import httpx
import pytest
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection

from pagely.core.cache import VersionedCache
from pagely.core.errors import Overloaded
from pagely.core.redis import create_redis
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client
from tests.fixtures.catalog import book_body
from tests.fixtures.servers import serve_process

PASSWORD = "a-good-long-password"


async def _take(pool: ConnectionPool) -> AbstractConnection:
    """Hold one of the pool's connections, as a busy request would."""
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    return cast(AbstractConnection, connection)


def _is_overloaded(response: httpx.Response) -> bool:
    if response.status_code != 503:
        return False
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "overloaded"
    assert error["request_id"] == response.headers["X-Request-ID"]
    return True


async def test_requests_beyond_the_in_flight_bound_are_shed_at_once(
    settings: Settings, resources: Resources, tmp_path: Path
) -> None:
    """Sixty sign-ins at once (each a 40 ms Argon2 check) against a process admitting four:
    the rest are refused with 503 `overloaded` at once, none waits or fails, and the health
    probe is never refused."""
    user = await make_user(resources)
    body = {"email": user.email, "password": PASSWORD}
    with serve_process(settings, tmp_path, MAX_IN_FLIGHT="4") as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            signins = [client.post("/api/v1/auth/signin", json=body) for _ in range(60)]
            probes = [client.get("/health") for _ in range(10)]
            outcomes = await asyncio.gather(*signins, *probes)
            answered, health = outcomes[:60], outcomes[60:]
            statuses = [r.status_code for r in answered]
            shed = [r for r in answered if _is_overloaded(r)]
            assert set(statuses) == {200, 503}, statuses
            assert 4 <= statuses.count(200) <= 56
            assert max(float(r.headers["X-Process-Time"]) for r in shed) < 0.25  # refused at once
            assert [r.status_code for r in health] == [200] * 10
            # Once the burst is over, everything is admitted again.
            after = await client.post("/api/v1/auth/signin", json=body)
            assert after.status_code == 200


def _overloaded_resources(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The pools the `overloaded` log lines name."""
    return {r.msg["resource"] for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") == "overloaded"}  # fmt: skip


async def test_an_exhausted_database_pool_is_a_503_never_a_500(
    settings: Settings, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    user = await make_user(resources)
    async with app_client(
        settings, db_pool_size=1, db_max_overflow=0, service_timeout_seconds=0.3
    ) as client:
        headers = bearer((await sign_in(client, user.email))["access_token"])
        engine = client._transport.app.state.resources.engine  # type: ignore[attr-defined]
        async with engine.connect():  # the pool's only connection, held
            busy = await client.get("/api/v1/auth/me", headers=headers)
            assert _is_overloaded(busy), busy.text
            listed = await client.get("/api/v1/books", params={"q": "anything"})
            assert _is_overloaded(listed), listed.text
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert _overloaded_resources(caplog) == {"database pool"}  # the log names what ran out


async def test_an_exhausted_redis_pool_is_a_503_and_does_not_trip_the_cache(
    settings: Settings, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    user = await make_user(resources)
    async with app_client(settings, redis_max_connections=1, service_timeout_seconds=0.3) as client:
        headers = bearer((await sign_in(client, user.email))["access_token"])
        created = await client.post("/api/v1/books", json=book_body(), headers=headers)
        book = f"/api/v1/books/{created.json()['id']}"
        assert (await client.get(book)).status_code == 200  # cached now
        app_resources: Resources = client._transport.app.state.resources  # type: ignore[attr-defined]
        pool = app_resources.redis.connection_pool
        held = await _take(pool)
        try:
            for path, auth in ((book, {}), (book, headers), ("/api/v1/auth/me", headers)):
                response = await client.get(path, headers=auth)
                assert _is_overloaded(response), (path, response.text)
        finally:
            await pool.release(held)
        assert app_resources.cache.readable  # congestion is not an outage
        assert _overloaded_resources(caplog) == {"redis pool"}
        logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
        assert not [e for e in logged if e.get("event") == "cache_unavailable"]
        again = await client.get(book)
        assert again.status_code == 200
        assert again.headers["ETag"] == created.headers["ETag"]


async def test_the_bounded_pool_waits_then_refuses_without_a_redis_error(
    settings: Settings,
) -> None:
    redis = create_redis(
        settings.model_copy(update={"redis_max_connections": 1, "service_timeout_seconds": 0.2})
    )
    cache = VersionedCache(redis, ttl_seconds=60)
    try:
        held = await _take(redis.connection_pool)

        async def ping() -> bool:
            return bool(await redis.ping())

        waiter = asyncio.create_task(ping())
        await asyncio.sleep(0.05)
        await redis.connection_pool.release(held)  # freed within the wait: it is served
        assert await waiter is True
        held = await _take(redis.connection_pool)
        with pytest.raises(Overloaded):
            await redis.ping()
        with pytest.raises(Overloaded):
            await cache.get("pagely:test:book")
        await cache.put("pagely:test:book", 1, b"{}")  # a write skips, quietly
        assert cache.readable
        await redis.connection_pool.release(held)
        assert await redis.ping() is True
    finally:
        await redis.aclose()
