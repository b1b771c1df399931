"""Database engine and the per-request session: the one place that commits or rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pagely.settings import Settings

T = TypeVar("T")


def create_engine(settings: Settings, *, database_url: str | None = None) -> AsyncEngine:
    url = database_url or settings.require("database_url")
    timeout = settings.service_timeout_seconds
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        hide_parameters=True,  # bound values (hashes, tokens) never reach a log line
        pool_timeout=max(timeout * 2, 5.0),
        connect_args={
            "timeout": timeout,
            "command_timeout": settings.db_statement_timeout_ms / 1000 or None,
            "server_settings": {
                "application_name": "pagely",
                "statement_timeout": str(settings.db_statement_timeout_ms),
            },
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler succeeds, roll back when it raises.

    Services only flush(); nothing else commits. Declared with scope="function" so the commit
    happens before the response is sent, and a failed commit becomes the response.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.resources.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """For scripts and the CLI: one engine, one transaction, committed when `work` succeeds."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()
