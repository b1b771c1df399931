"""Whether PostgreSQL, Redis and the Celery broker each answer in time: for readiness
(/health/ready) and the metrics (`pagely_dependency_up`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from kombu import Connection
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagely.settings import Settings

# Without these the API cannot answer; without the others it still can (mail waits in the
# outbox while the broker is away), so their loss degrades the instance but keeps it ready.
REQUIRED = frozenset({"database", "redis"})


async def check_dependencies(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> dict[str, str | None]:
    """Each dependency's failure ("timeout" or the exception's type), None for one that
    answered; all probed at once. The probes give up after the service timeout themselves;
    the half second more only catches one that does not."""
    timeout = settings.service_timeout_seconds + 0.5
    results = await asyncio.gather(
        _check("database", _database(engine), timeout),
        _check("redis", _redis(redis), timeout),
        _check("broker", _broker(settings), timeout),
    )
    return dict(results)


async def _check(
    name: str, probe: Coroutine[Any, Any, None], seconds: float
) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, seconds)
    except Exception as exc:  # any failure means "down"; the type is enough for an operator
        return name, "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return name, None


async def _database(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # text(): no table, just a round trip


async def _redis(redis: Redis) -> None:
    await redis.ping()


async def _broker(settings: Settings) -> None:
    url = settings.broker_url
    assert url is not None  # the app's Celery app could not have been built without one
    await asyncio.to_thread(_connect_to_broker, url, settings.service_timeout_seconds)


def _connect_to_broker(url: str, timeout: float) -> None:
    with Connection(
        url, connect_timeout=timeout, transport_options={"socket_timeout": timeout}
    ) as conn:
        # One attempt, no sleeping between tries: a load balancer's health check waits for this
        # answer, and a slow "down" is a failed check (the broker's loss must only degrade).
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=max(1, round(timeout))
        )
