"""What the servers need: PostgreSQL and Redis (this machine's or embedded ones), the bench
database with its catalog, and the environment every server is started with."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import asyncpg

from bench import REPOSITORY, data
from pagely.core import migrations
from pagely.devtools.dbadmin import create_database, database_url
from pagely.devtools.embedded import DevStack

_UNLIMITED = "100000000/minute"
_RATE_LIMITS = (
    "SIGNIN_ACCOUNT",
    "SIGNIN_IP",
    "REGISTER_IP",
    "EMAIL_ACCOUNT",
    "EMAIL_IP",
    "REFRESH_SESSION",
)
# Its own Redis database, so a run never mixes its keys with a development server's.
_REDIS_DB = 14


def _first_set(*names: str) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


@contextlib.contextmanager
def postgres_and_redis() -> Iterator[tuple[str, str]]:
    """(server URL for SQLAlchemy, Redis URL): the machine's through BENCH_, TEST_ or plain
    variables, else embedded ones exactly as `make run` starts them."""
    db = _first_set("BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL")
    redis = _first_set("BENCH_REDIS_URL", "TEST_REDIS_URL", "REDIS_URL")
    if db and redis:
        yield db, redis
        return
    with DevStack(want_postgres=not db, want_redis=not redis, want_smtp=False) as stack:
        yield db or stack.env["DATABASE_URL"], redis or stack.env["REDIS_URL"]


def _redis_db(url: str, index: int) -> str:
    base = url.split("?")[0].rsplit("/", 1)
    return f"{base[0]}/{index}" if base[-1].isdigit() else f"{url.rstrip('/')}/{index}"


def prepare(server_url: str, books: int) -> str:
    """The URL of database pagely_bench_<books>, migrated to the head and holding the
    generated catalog (built only when missing or from another generator version)."""
    name = f"pagely_bench_{books}"
    url = database_url(server_url, name)
    asyncio.run(create_database(server_url, name, if_missing=True))
    migrations.upgrade(url)
    asyncio.run(data.generate(url, books))
    return url


def environment(db_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every server: Pagely's production settings on the bench database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    redis = _redis_db(redis_url, _REDIS_DB)
    env.update(
        ENVIRONMENT="production",
        JWT_SECRET="bench-" + "k" * 60,
        DATABASE_URL=db_url,
        BENCH_PG_DSN=data.asyncpg_dsn(db_url),  # for R1 (bench/reference.py)
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        LOG_LEVEL="INFO",
        LOG_JSON="true",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(REPOSITORY),
    )
    # The limiter still runs on every request; its limits are lifted so the benchmark
    # measures the work, not refusals.
    for name in _RATE_LIMITS:
        env[f"RATE_LIMIT_{name}"] = _UNLIMITED
    return env


def sample_ids(db_url: str, count: int = 5000) -> list[str]:
    """`count` book ids drawn at random: the books scenarios 1 and 2 (and R1) read."""

    async def fetch() -> list[str]:
        conn = await asyncpg.connect(data.asyncpg_dsn(db_url))
        try:
            rows = await conn.fetch("SELECT id FROM books ORDER BY random() LIMIT $1", count)
            return [str(row["id"]) for row in rows]
        finally:
            await conn.close()

    return asyncio.run(fetch())
