"""Redis caches in front of hot reads, never stale after a write.

- An entry is a hash {v: version, b: body}. Writers store the new body after their commit;
  the store only ever moves a key forward in version (a Lua check), so a slow reader carrying
  an older row cannot overwrite a newer one. A deleted resource leaves a short tombstone.
- Lists live under a generation number that every committed write to their collection
  increments: a reader that raced a writer fills a key nobody reads any more.

Redis being down is not an error here: reads fall through to PostgreSQL and writes skip the
cache (entries expire after `cache_ttl_seconds` in any case). After a failed read, reads skip
Redis for `SKIP_AFTER_FAILURE_SECONDS`, so an unresponsive Redis costs one timeout per window
and process, not one per request. Writes always try: a skipped invalidation could leave a stale
entry once Redis answers again. A wait for one of the process's own pooled connections that
runs out (`Overloaded`) is congestion, not Redis failing: a read answers 503 `overloaded` rather
than adding the load to PostgreSQL, a write skips, and reads are not suspended.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pagely.core import metrics
from pagely.core.errors import Overloaded

log = structlog.get_logger("pagely.cache")

PREFIX = "pagely:cache:"
TOMBSTONE_VERSION = 2**62
TOMBSTONE_TTL_SECONDS = 60
SKIP_AFTER_FAILURE_SECONDS = 5.0

# KEYS[1] the entry's hash; ARGV: version, body, ttl. Store only if newer than what is there.
_PUT_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] the generation key; ARGV[1] the list key's suffix. Returns {generation, value}.
_GET_LISTED = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', KEYS[1] .. ':' .. generation .. ':' .. ARGV[1])}
"""


class VersionedCache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._put = redis.register_script(_PUT_IF_NEWER)
        self._get_listed = redis.register_script(_GET_LISTED)
        self._skip_reads_until = 0.0

    @property
    def readable(self) -> bool:
        """False for a while after a read failed: read from PostgreSQL without trying."""
        return time.monotonic() >= self._skip_reads_until

    def read_failed(self, action: str, exc: Exception) -> None:
        """Log a failed read; when Redis did not answer (connection or timeout, not an error
        reply), skip reads for a while."""
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
            self._skip_reads_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS
        self._down(action, exc)

    @staticmethod
    def _down(action: str, exc: Exception) -> None:
        if not isinstance(exc, Overloaded):  # a local pool wait, not Redis failing
            metrics.redis_error("cache")
        log.warning("cache_unavailable", action=action, error=type(exc).__name__)

    # --- versioned entries ----------------------------------------------------------------

    async def get(self, key: str, *, unless_key: str | None = None) -> tuple[int, bytes] | None:
        """(version, body) on a hit; body is b"" for a resource known to be deleted.

        With `unless_key` (a denylist entry), None also when that key exists; it is checked
        in the same round trip."""
        if not self.readable:
            return None
        try:
            if unless_key is None:
                version, body = await self.redis.hmget(key, ["v", "b"])
            else:
                pipe = self.redis.pipeline(transaction=False)
                pipe.hmget(key, ["v", "b"])
                pipe.exists(unless_key)
                (version, body), denied = await pipe.execute()
                if denied:
                    return None
        except RedisError as exc:
            self.read_failed("get", exc)
            return None
        if version is None or body is None:
            return None
        return int(version), body.encode() if isinstance(body, str) else bytes(body)

    async def put(self, key: str, version: int, body: bytes) -> None:
        try:
            await self._put(keys=[key], args=[version, body, self.ttl])
        except (RedisError, Overloaded) as exc:  # a write is best-effort; nothing trips
            self._down("put", exc)

    async def fill(self, key: str, version: int, body: bytes) -> None:
        """After a miss: store what was read, unless reads are being skipped (Redis failing),
        when it would only wait for the same timeout again."""
        if self.readable:
            await self.put(key, version, body)

    async def forget(self, key: str) -> None:
        """A tombstone, so a reader still holding the row cannot bring the resource back."""
        try:
            await self._put(keys=[key], args=[TOMBSTONE_VERSION, b"", TOMBSTONE_TTL_SECONDS])
        except (RedisError, Overloaded) as exc:  # a write is best-effort; nothing trips
            self._down("forget", exc)

    # --- lists under a generation ---------------------------------------------------------

    async def get_listed(self, generation_key: str, name: str) -> tuple[str | None, bytes | None]:
        """(generation, cached value). Pass the generation back to `put_listed`."""
        if not self.readable:
            return None, None
        try:
            generation, value = await self._get_listed(keys=[generation_key], args=[name])
        except RedisError as exc:
            self.read_failed("get_listed", exc)
            return None, None
        if isinstance(value, str):
            value = value.encode()
        return str(generation), value

    async def put_listed(
        self, generation_key: str, generation: str | None, name: str, body: bytes
    ) -> None:
        if generation is None:
            return
        try:
            await self.redis.set(f"{generation_key}:{generation}:{name}", body, ex=self.ttl)
        except (RedisError, Overloaded) as exc:  # a write is best-effort; nothing trips
            self._down("put_listed", exc)

    async def new_generation(self, generation_key: str) -> None:
        """Every list cached under `generation_key` is dropped (nobody reads it any more)."""
        try:
            await self.redis.incr(generation_key)
        except (RedisError, Overloaded) as exc:  # a write is best-effort; nothing trips
            self._down("new_generation", exc)
