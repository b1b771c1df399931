"""Creating and dropping whole databases (tests, the drift check, the embedded stack)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


def _server_dsn(url: str) -> str:
    """A plain libpq DSN for the maintenance database of the server behind `url`."""
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on the server behind `server_url`."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {name!r}")
    return f'"{name}"'


async def create_database(
    url: str, name: str, *, template: str | None = None, if_missing: bool = False
) -> None:
    conn = await asyncpg.connect(_server_dsn(url), timeout=10)
    try:
        if if_missing and await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        suffix = f" TEMPLATE {_ident(template)}" if template else ""
        try:
            await conn.execute(f"CREATE DATABASE {_ident(name)}{suffix}")
        except asyncpg.DuplicateDatabaseError:
            if not if_missing:
                raise
    finally:
        await conn.close()


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(_server_dsn(url), timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
