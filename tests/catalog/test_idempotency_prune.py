"""Expired Idempotency-Keys are deleted in batches, by a function and by the worker on beat's
schedule; live keys stay and keep replaying."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, insert, select, update
from sqlmodel import col

from pagely.core.clock import clock
from pagely.core.idempotency import prune_expired
from pagely.core.resources import Resources
from pagely.models import IdempotencyKey
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS, book_body
from tests.fixtures.worker import StartWorker


async def _keys(resources: Resources) -> set[str]:
    async with resources.sessionmaker() as session:
        return set((await session.execute(select(col(IdempotencyKey.key)))).scalars())


async def _age(resources: Resources, keys: list[str], hours: int) -> None:
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key.in_(keys))  # type: ignore[attr-defined]
            .values(created_at=clock.now() - timedelta(hours=hours))
        )


async def _aged_rows(resources: Resources, count: int) -> uuid.UUID:
    user = await make_user(resources)
    rows = [
        {"user_id": user.id, "key": f"old-{n}", "request_hash": "0" * 64, "status_code": 201,
         "response": {}, "created_at": clock.now() - timedelta(hours=30)}
        for n in range(count)
    ]  # fmt: skip
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(insert(IdempotencyKey), rows)
    return user.id


async def test_expired_keys_are_pruned_in_batches_and_live_ones_kept(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    headers = bearer((await sign_in(client, user.email))["access_token"])
    for key in ("live", "expired"):
        created = await client.post(
            BOOKS, json=book_body(isbn=None, title=key), headers={**headers, "Idempotency-Key": key}
        )
        assert created.status_code == 201
    await _age(resources, ["expired"], hours=25)  # the default lifetime is 24 hours
    await _aged_rows(resources, 2_500)

    pruned = await prune_expired(resources.sessionmaker, 24, batch=1_000)

    assert pruned == 2_501
    assert await _keys(resources) == {"live"}
    replay = await client.post(
        BOOKS,
        json=book_body(isbn=None, title="live"),
        headers={**headers, "Idempotency-Key": "live"},
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert await prune_expired(resources.sessionmaker, 24) == 0


async def test_the_worker_prunes_on_beats_schedule(
    resources: Resources, start_worker: StartWorker
) -> None:
    await _aged_rows(resources, 3)
    async with resources.sessionmaker() as session:
        before = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert before == 3
    start_worker(beat=True, idempotency_prune_interval_seconds=0.5)
    for _ in range(150):  # up to 30 s
        if not await _keys(resources):
            break
        await asyncio.sleep(0.2)
    assert await _keys(resources) == set()
