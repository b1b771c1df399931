"""The shared async Redis client (token denylist, cache; rate limits have their own).

The pool blocks, up to SERVICE_TIMEOUT_SECONDS, when all its connections are busy, rather than
failing at once (redis-py's default pool raises MaxConnectionsError at its cap); a wait that
runs out is local congestion, `Overloaded` (503 `overloaded`), never a Redis error, so the
cache's breaker does not take a busy process for a Redis outage."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from pagely.core import telemetry
from pagely.core.errors import Overloaded
from pagely.settings import Settings


class BoundedPool(BlockingConnectionPool):
    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        try:
            connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
            return cast(AbstractConnection, connection)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError):  # no free connection in time
                raise Overloaded("redis pool") from exc
            raise


def create_redis(settings: Settings, *, url: str | None = None) -> Redis:
    timeout = settings.service_timeout_seconds
    pool = BoundedPool.from_url(
        url or settings.require("redis_url"),
        max_connections=settings.redis_pool(),
        timeout=timeout,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    client = Redis.from_pool(pool)  # closing the client closes the pool
    telemetry.instrument_redis(client)
    return client
