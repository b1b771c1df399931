"""Database engine and the per-request session: the one place that commits or rolls back."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar, cast

import structlog
from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy import CursorResult, Result, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pagely.core.errors import is_connection_problem
from pagely.settings import Settings

T = TypeVar("T")

log = structlog.get_logger("pagely.db")

_AFTER_COMMIT = "pagely.after_commit"
_AFTER_RESPONSE = "pagely.after_response"

# Work for later, in a session of its own (after_response).
Work = Callable[[AsyncSession], Awaitable[None]]


def create_engine(
    settings: Settings, *, database_url: str | None = None, long_statements: bool = False
) -> AsyncEngine:
    """The pool of one process. A statement that gets no answer within SERVICE_TIMEOUT_SECONDS
    (a hung or unreachable server) raises TimeoutError, a 503, and its connection is discarded
    rather than reused (`transaction`, `reading`). With `long_statements` (bulk work: the CSV
    import, the demo seed) only PostgreSQL's statement_timeout bounds a statement."""
    url = database_url or settings.require("database_url")
    timeout = settings.service_timeout_seconds
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool(),
        max_overflow=settings.db_max_overflow,
        # Not pool_pre_ping: with asyncpg it costs three round trips (BEGIN, ";", ROLLBACK) on
        # every checkout, more than the query of a typical read. See _ping_after_idle.
        pool_pre_ping=False,
        hide_parameters=True,  # bound values (hashes, tokens) never reach a log line
        # A wait for a free connection is bounded: past it, 503 `overloaded` (core.errors).
        pool_timeout=timeout,
        connect_args={
            "timeout": timeout,
            "command_timeout": (
                (settings.db_statement_timeout_ms / 1000 or None) if long_statements else timeout
            ),
            "server_settings": {
                "application_name": "pagely",
                "statement_timeout": str(settings.db_statement_timeout_ms),
            },
        },
    )
    _ping_after_idle(engine, settings.db_ping_after_idle_seconds)
    return engine


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it sat unused for `idle_seconds`: a
    connection in steady use proves itself on every request, and one that went stale while
    idle (a database restart, a proxy timeout) is replaced before a request sees it. A
    connection that breaks while busy fails that request with a 503, and SQLAlchemy then
    recycles the whole pool."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool retries with a new connection
            raise DisconnectionError() from exc


def affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (`execute` is typed as returning a plain
    Result, which has no rowcount)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


# What a read-only query function accepts: the request's session, or an autocommit connection.
Reader = AsyncSession | AsyncConnection


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads that need no transaction: each statement runs on its own, with
    no BEGIN and no COMMIT/ROLLBACK round trips (two of the three a session's read costs).
    Statements do not share a snapshot; use a session where that matters, and for any write."""
    async with engine.connect() as conn:
        try:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException as exc:
            if connection_suspect(exc):
                await conn.invalidate()
            raise


def connection_suspect(exc: BaseException) -> bool:
    """Whether the connection that raised `exc` may be left mid-conversation (a timeout, a
    broken socket): it is discarded, never reused, and nothing more is sent on it (a ROLLBACK
    to a server that does not answer would wait again)."""
    if isinstance(exc, DBAPIError):
        return is_connection_problem(exc)
    return isinstance(exc, TimeoutError | OSError)


def create_sessionmaker(
    engine: AsyncEngine, *, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info` is copied into every session's `.info`: how services reach process-wide helpers
    (the outbox dispatcher) without importing the app."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info or {})


def after_commit(
    session: AsyncSession,
    key: str,
    callback: Callable[[], Awaitable[None]],
    *,
    replace: bool = False,
) -> None:
    """Run `callback` once the session's transaction has committed; never if it rolls back.
    One callback per key per transaction, so callers can register on every call: the first
    registration stays, or with `replace` the latest (for a callback that carries state, such
    as the row a cache should hold)."""
    callbacks = session.info.setdefault(_AFTER_COMMIT, {})
    if replace:
        callbacks[key] = callback
    else:
        callbacks.setdefault(key, callback)


def after_response(session: AsyncSession, key: str, work: Work) -> None:
    """Run `work` in a transaction of its own once the session's transaction has committed
    and, in a request, once the response has been sent; never if it rolls back. One per key.

    For work whose cost must not show in the response time (whether an address has an
    account): the response cannot depend on it, and a failure is logged, not answered."""
    session.info.setdefault(_AFTER_RESPONSE, {}).setdefault(key, work)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    defer: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises, then run
    the after-commit callbacks, then the after-response work (handed to `defer` when given:
    a request's background tasks). The only place in the code base that commits."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException as exc:
            session.info.pop(_AFTER_COMMIT, None)
            session.info.pop(_AFTER_RESPONSE, None)
            if connection_suspect(exc):
                await session.invalidate()
            else:
                await session.rollback()
            raise
        await session.commit()
        callbacks = session.info.pop(_AFTER_COMMIT, {})
        for key, callback in callbacks.items():
            try:
                await callback()
            except Exception:
                # The transaction is committed; whatever the callback hands on must be
                # recoverable without it (the outbox sweep re-dispatches).
                log.exception("after_commit_failed", callback=key)
        later: dict[str, Work] = session.info.pop(_AFTER_RESPONSE, {})
    for key, work in later.items():
        job = functools.partial(_run_later, sessionmaker, key, work)
        if defer is None:
            await job()
        else:
            defer(job)


async def _run_later(sessionmaker: async_sessionmaker[AsyncSession], key: str, work: Work) -> None:
    try:
        async with transaction(sessionmaker) as session:
            await work(session)
    except Exception:
        log.exception("after_response_failed", callback=key)


async def get_session(request: Request, background: BackgroundTasks) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler succeeds, roll back when it raises.

    Services only flush(); nothing else commits. Declared with scope="function" so the commit
    happens before the response is sent, and a failed commit becomes the response. The
    after-response work runs as the response's background tasks, once it has been sent.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.resources.sessionmaker
    async with transaction(sessionmaker, defer=background.add_task) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def run_in_transaction(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    info: dict[str, Any] | None = None,
) -> T:
    """For scripts and the CLI: one engine, one transaction, committed when `work` succeeds.
    Bulk work (the demo seed) may run long: the server's statement_timeout bounds it, not
    the request-sized SERVICE_TIMEOUT_SECONDS."""
    engine = create_engine(settings, long_statements=True)
    try:
        async with transaction(create_sessionmaker(engine, info=info)) as session:
            return await work(session)
    finally:
        await engine.dispose()
