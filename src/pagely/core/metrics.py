"""Counters shared by every process (API workers, Celery workers), kept in one Redis hash so
the metrics endpoint can expose totals whichever process did the work."""

from __future__ import annotations

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("pagely.metrics")

COUNTERS_KEY = "pagely:metrics:counters"

OUTBOX_SENT = "outbox_sent_total"
OUTBOX_RETRIED = "outbox_retried_total"
OUTBOX_FAILED = "outbox_failed_total"


async def increment(redis: Redis, name: str, amount: int = 1) -> None:
    """Best effort: a metric is never worth failing the work it counts."""
    try:
        await redis.hincrby(COUNTERS_KEY, name, amount)
    except Exception as exc:
        log.warning("metric_not_recorded", metric=name, error=type(exc).__name__)


async def read_counters(redis: Redis) -> dict[str, int]:
    raw = await redis.hgetall(COUNTERS_KEY)  # the client decodes responses to str
    return {str(name): int(value) for name, value in raw.items()}
