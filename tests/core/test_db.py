"""Pooled connections that died while idle: pinged and replaced after `db_ping_after_idle_seconds`,
and otherwise one request fails with a 503 and the pool recovers."""

from __future__ import annotations

import asyncio
import gc
from contextlib import AsyncExitStack

import asyncpg
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from pagely.app import create_app
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client

UNCACHED = "/api/v1/books?language=en"  # a filtered listing: always read from PostgreSQL


async def _kill_pooled_connections(resources: Resources, count: int) -> None:
    """Check out `count` connections at once (all the pool holds after a warm-up), then
    terminate their server processes behind the pool's back."""
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(resources.engine.connect()) for _ in range(count)]
        pids = [(await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() for c in conns]
        for conn in conns:
            await conn.rollback()
    url = resources.settings.require("database_url").replace("postgresql+asyncpg", "postgresql")
    killer = await asyncpg.connect(url)
    try:
        await killer.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await killer.close()
    await asyncio.sleep(0.2)


async def test_an_idle_connection_is_pinged_and_replaced(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"db_ping_after_idle_seconds": 0}))
    async with LifespanManager(app), asgi_client(app) as client:
        assert (await client.get(UNCACHED)).status_code == 200
        await _kill_pooled_connections(app.state.resources, 3)
        # Every pooled connection is dead; each is found by its ping and replaced.
        statuses = [(await client.get(UNCACHED)).status_code for _ in range(5)]
    assert statuses == [200] * 5


async def test_without_the_ping_one_request_fails_and_the_pool_recovers(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"db_ping_after_idle_seconds": 3600}))
    async with LifespanManager(app), asgi_client(app) as client:
        assert (await client.get(UNCACHED)).status_code == 200
        await _kill_pooled_connections(app.state.resources, 3)
        statuses = [(await client.get(UNCACHED)).status_code for _ in range(5)]
    assert statuses[0] == 503
    assert statuses[1:] == [200] * 4


async def test_the_app_sets_the_collector_threshold_while_it_serves(settings: Settings) -> None:
    """GC_THRESHOLD holds while the app serves (above what the suite's app set), and the
    thresholds the process had come back at shutdown."""
    before = gc.get_threshold()
    app = create_app(settings.model_copy(update={"gc_threshold": before[0] + 1234}))
    async with LifespanManager(app):
        assert gc.get_threshold() == (before[0] + 1234, *before[1:])
    assert gc.get_threshold() == before
