"""Alembic environment: async engine, URL from settings (or passed in by the caller)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pagely.models import UNMANAGED_INDEXES, metadata
from pagely.settings import get_settings

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().require("database_url")


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, *_: object) -> bool:
    # Indexes created by hand in migrations (expression and pg_trgm indexes) are not in the
    # models; autogenerate must not propose dropping them.
    return not (type_ == "index" and reflected and name in UNMANAGED_INDEXES)


def _configure(connection: Connection | None = None, **kwargs: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
        include_object=_include_object,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(run_online())
