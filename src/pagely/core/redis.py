"""The shared async Redis client (token denylist, rate limits, cache)."""

from __future__ import annotations

from redis.asyncio import Redis

from pagely.settings import Settings


def create_redis(settings: Settings, *, url: str | None = None) -> Redis:
    timeout = settings.service_timeout_seconds
    return Redis.from_url(
        url or settings.require("redis_url"),
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
    )
