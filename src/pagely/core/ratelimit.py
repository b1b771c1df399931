"""Rate limits with the `limits` library on Redis, shared by every API process. Limits are
strings in its notation ("10/15minutes"), from settings. Redis being down is a 503 (the
error handlers map Redis errors), never a pass: limits fail closed."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import structlog
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.exceptions import RedisError

from pagely.core import metrics, telemetry
from pagely.core.errors import AppError
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")


class RateLimited(AppError):
    status_code, type, message = 429, "rate_limited", "Too many requests; try again later"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        timeout = settings.service_timeout_seconds
        self._storage = RedisStorage(
            "async+" + settings.require("redis_url"),
            implementation="redispy",
            key_prefix="pagely:rl",
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)
        # The library's own client (it offers no public handle): traced like ours.
        telemetry.instrument_redis(getattr(getattr(self._storage, "bridge", None), "storage", None))

    async def hit(self, name: str, limit: str, *identifiers: str) -> None:
        """Count one request; over the limit, raise 429 with Retry-After."""
        item = parse(limit)
        with _counting_errors():
            allowed = await self._strategy.hit(item, name, *identifiers)
        if not allowed:
            await self._refuse(name, limit, *identifiers)

    async def check(self, name: str, limit: str, *identifiers: str) -> None:
        """Refuse if the limit is used up, without counting (failures are counted apart)."""
        item = parse(limit)
        with _counting_errors():
            allowed = await self._strategy.test(item, name, *identifiers)
        if not allowed:
            await self._refuse(name, limit, *identifiers)

    async def _refuse(self, name: str, limit: str, *identifiers: str) -> None:
        metrics.RATE_LIMITED.labels(name).inc()
        with _counting_errors():
            stats = await self._strategy.get_window_stats(parse(limit), name, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        log.warning("rate_limit_exceeded", limit=name, retry_after=retry_after)
        raise RateLimited(headers={"Retry-After": str(retry_after)})

    async def reset(self) -> None:
        await self._storage.reset()


@contextlib.contextmanager
def _counting_errors() -> Iterator[None]:
    try:
        yield
    except RedisError:
        metrics.redis_error("rate_limit")
        raise
