"""Process-wide clients, created in the app's lifespan (never at import) and closed with it,
and the narrow dependencies routes take them by."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

import structlog
from celery import Celery
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pagely.core import metrics, telemetry
from pagely.core.cache import VersionedCache
from pagely.core.db import create_engine, create_sessionmaker
from pagely.core.outbox.dispatch import DISPATCHER_INFO_KEY, Dispatcher
from pagely.core.ratelimit import RateLimiter
from pagely.core.redis import create_redis
from pagely.settings import ConfigError, Settings

log = structlog.get_logger("pagely.startup")


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    celery: Celery
    dispatcher: Dispatcher
    limiter: RateLimiter
    cache: VersionedCache
    # Whether PostgreSQL has pg_trgm (typo-tolerant search): set by the lifespan at start-up.
    trigram: bool = False

    @classmethod
    def create(cls, settings: Settings, celery: Celery) -> Resources:
        """`celery` publishes the outbox's messages (`pagely.worker.celery.create_resources`
        builds one); the resources close it with themselves."""
        engine = create_engine(settings)
        telemetry.instrument_engine(engine)
        dispatcher = Dispatcher(celery, settings)
        sessionmaker = create_sessionmaker(engine, info={DISPATCHER_INFO_KEY: dispatcher})
        redis = create_redis(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            celery=celery,
            dispatcher=dispatcher,
            limiter=RateLimiter(settings),
            cache=VersionedCache(redis, settings.cache_ttl_seconds),
        )

    async def wait_until_reachable(self) -> None:
        """Retry PostgreSQL and Redis for a bounded time; then stop with a clear message."""
        deadline = time.monotonic() + self.settings.startup_timeout_seconds
        delay = 0.25
        while True:
            problems = await self._probe()
            if not problems:
                return
            if time.monotonic() >= deadline:
                raise ConfigError(
                    "cannot reach "
                    + "; ".join(f"{name} ({error})" for name, error in problems.items())
                    + f" after {self.settings.startup_timeout_seconds:g}s"
                )
            log.warning("waiting_for_services", unreachable=sorted(problems))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def check_reachable(self) -> None:
        """wait_until_reachable for a process that only wants the answer, then closes."""
        try:
            await self.wait_until_reachable()
        finally:
            await self.close()

    async def _probe(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))  # text(): no table, just a round trip
        except Exception as exc:
            problems["PostgreSQL"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        try:
            await self.redis.ping()
        except Exception as exc:
            problems["Redis"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return problems

    def sample_pools(self) -> None:
        """Set the pool gauges from this process's pools. The waiter counts are the pools'
        own queues (neither SQLAlchemy nor redis-py exposes one): 0 if that ever changes."""
        pool = self.engine.sync_engine.pool
        metrics.DB_POOL_SIZE.set(pool.size())  # type: ignore[attr-defined]
        metrics.DB_POOL_IN_USE.set(pool.checkedout())  # type: ignore[attr-defined]
        waiters = getattr(getattr(getattr(pool, "_pool", None), "_queue", None), "_getters", ())
        metrics.DB_POOL_WAITING.set(len(waiters))
        in_use = getattr(self.redis.connection_pool, "_in_use_connections", ())
        metrics.REDIS_POOL_IN_USE.set(len(in_use))

    async def sample_pools_forever(self, interval: float = 1.0) -> None:
        while True:
            self.sample_pools()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        self.dispatcher.close()
        self.celery.close()  # the broker connections of its producer pool
        await self.redis.aclose()
        await self.engine.dispose()


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_engine(resources: ResourcesDep) -> AsyncEngine:
    return resources.engine


async def get_redis(resources: ResourcesDep) -> Redis:
    return resources.redis


async def get_dispatcher(resources: ResourcesDep) -> Dispatcher:
    return resources.dispatcher


# What routes take, so a service is handed the one thing it uses.
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
RedisDep = Annotated[Redis, Depends(get_redis)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
