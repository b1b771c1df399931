"""The two reference apps every ratio is taken against, served by the same uvicorn settings.

R0: a bare ASGI route answering a constant JSON body the size of one book.
R1: a bare route doing one indexed asyncpg query by primary key plus one Redis GET, answering
the row as JSON. Both are as thin as ASGI allows: what Pagely adds is measured against them.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis

_BOOK = {
    "id": str(uuid.uuid4()),
    "title": "A Reference Title of Ordinary Length",
    "subtitle": None,
    "authors": ["Ada Reference"],
    "isbn13": "9780306406157",
    "isbn10": "0306406152",
    "publisher": "Reference House",
    "published_date": "2001-02-03",
    "page_count": 320,
    "language": "en",
    "description": "x" * 400,
    "tags": ["fiction", "reference"],
    "owner_id": None,
    "rating_avg": 4.2,
    "rating_count": 17,
    "version": 3,
    "created_at": "2026-11-20T12:00:00+00:00",
    "updated_at": "2026-11-20T12:00:00+00:00",
}
BODY = json.dumps(_BOOK).encode()
HEADERS = [(b"content-type", b"application/json")]


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _lifespan(receive: Any, send: Any, startup: Any = None, shutdown: Any = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def r0(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _drain(receive)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


_state: dict[str, Any] = {}

_QUERY = (
    "SELECT id, title, subtitle, authors, isbn13, isbn10, publisher, published_date, "
    "page_count, language, description, tags, owner_id, rating_avg, rating_count, version, "
    "created_at, updated_at FROM books WHERE id = $1"
)


async def _start() -> None:
    dsn = os.environ["BENCH_PG_DSN"]
    _state["pool"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    _state["redis"] = Redis.from_url(os.environ["REDIS_URL"])


async def _stop() -> None:
    await _state["pool"].close()
    await _state["redis"].aclose()


async def r1(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, _start, _stop)
        return
    await _drain(receive)
    book_id = uuid.UUID(scope["path"].rsplit("/", 1)[-1])
    row = await _state["pool"].fetchrow(_QUERY, book_id)
    await _state["redis"].get(f"r1:{book_id}")
    body = json.dumps(dict(row), default=str).encode()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
