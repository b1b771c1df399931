"""Rate limits with the `limits` library on Redis, shared by every API process. Limits are
strings in its notation ("10/15minutes"), from settings. Redis being down is a 503 (the
error handlers map Redis errors), never a pass: limits fail closed."""

from __future__ import annotations

import math
import time

import structlog
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

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

    async def hit(self, name: str, limit: str, *identifiers: str) -> None:
        """Count one request; over the limit, raise 429 with Retry-After."""
        item = parse(limit)
        if not await self._strategy.hit(item, name, *identifiers):
            await self._refuse(name, limit, *identifiers)

    async def check(self, name: str, limit: str, *identifiers: str) -> None:
        """Refuse if the limit is used up, without counting (failures are counted apart)."""
        item = parse(limit)
        if not await self._strategy.test(item, name, *identifiers):
            await self._refuse(name, limit, *identifiers)

    async def _refuse(self, name: str, limit: str, *identifiers: str) -> None:
        stats = await self._strategy.get_window_stats(parse(limit), name, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        log.warning("rate_limit_exceeded", limit=name, retry_after=retry_after)
        raise RateLimited(headers={"Retry-After": str(retry_after)})

    async def reset(self) -> None:
        await self._storage.reset()
