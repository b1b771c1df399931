"""The logout denylist: access tokens (by jti) refused although they have not expired yet.
An entry lives in Redis only as long as its token would, so the list holds live tokens only.
Every check of an access token consults it: the dependencies, and the catalog's fast path."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pagely.core import metrics

KEY_PREFIX = "pagely:denylist:jti:"


def key(jti: str) -> str:
    return KEY_PREFIX + jti


async def is_denied(redis: Redis, jti: str) -> bool:
    try:
        return bool(await redis.exists(key(jti)))
    except RedisError:
        metrics.redis_error("denylist")
        raise


async def deny(redis: Redis, jti: str, seconds: int) -> None:
    """Refuse the token `jti` for `seconds`, what is left of its life (at least one: Redis
    refuses an expiry of zero, and a token in its last second must still die)."""
    await redis.set(key(jti), "1", ex=max(1, seconds))
