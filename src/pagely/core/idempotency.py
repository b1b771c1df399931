"""`Idempotency-Key` for creates: the first response is stored with the request's hash in the
same transaction as the write, so a retry (also one that arrives while the first is still
running: it waits on the key's row) gets that response again and nothing is created twice.
The same key with a different body is a 422. Keys older than `IDEMPOTENCY_KEY_HOURS` are
deleted by a periodic task (`prune_expired`, scheduled by beat)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from pagely.core.clock import clock
from pagely.core.db import affected, transaction
from pagely.core.errors import AppError
from pagely.models import IdempotencyKey

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(AppError):
    status_code, type = 422, "idempotency_key_reused"
    message = "This Idempotency-Key was used with a different request body"


class InvalidIdempotencyKey(AppError):
    status_code, type = 422, "validation_error"
    message = "Idempotency-Key must be 1 to 255 visible ASCII characters"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "header.Idempotency-Key", "message": self.message}])


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidIdempotencyKey()
    return key


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given to a key: what a retry gets again."""

    status_code: int
    response: Any


async def claim(
    session: AsyncSession, user_id: uuid.UUID, key: str, digest: str, ttl_hours: int
) -> StoredResponse | None:
    """None when this request owns the key (go ahead, then `record`); else the stored first
    response to replay. Raises IdempotencyKeyReused for a different body."""
    expired = clock.now() - timedelta(hours=ttl_hours)
    await session.execute(
        delete(IdempotencyKey).where(
            col(IdempotencyKey.user_id) == user_id,
            col(IdempotencyKey.key) == key,
            col(IdempotencyKey.created_at) < expired,
        )
    )
    claimed = await session.execute(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=digest, status_code=0, response={})
        .on_conflict_do_nothing()
        .returning(col(IdempotencyKey.key))
    )
    if claimed.first() is not None:
        return None
    stored = (
        await session.execute(
            select(
                col(IdempotencyKey.request_hash),
                col(IdempotencyKey.status_code),
                col(IdempotencyKey.response),
            ).where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key)
        )
    ).one()  # the conflicting row is committed (we waited for it)
    if stored.request_hash != digest:
        raise IdempotencyKeyReused()
    return StoredResponse(stored.status_code, stored.response)


async def record(
    session: AsyncSession, user_id: uuid.UUID, key: str, status_code: int, response: Any
) -> None:
    """The answer to replay for this key, in the transaction that claimed it."""
    await session.execute(
        update(IdempotencyKey)
        .where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key)
        .values(status_code=status_code, response=response)
    )


PRUNE_BATCH = 1000


async def prune_expired(
    sessionmaker: async_sessionmaker[AsyncSession], ttl_hours: int, *, batch: int = PRUNE_BATCH
) -> int:
    """Delete keys past their lifetime, `batch` rows per transaction (short locks, small WAL
    bursts, and a crash loses nothing: the next run carries on). Returns how many went."""
    expired = clock.now() - timedelta(hours=ttl_hours)
    pruned = 0
    while True:
        oldest = (
            select(col(IdempotencyKey.user_id), col(IdempotencyKey.key))
            .where(col(IdempotencyKey.created_at) < expired)
            .limit(batch)
        )
        async with transaction(sessionmaker) as session:
            result = await session.execute(
                delete(IdempotencyKey).where(
                    tuple_(col(IdempotencyKey.user_id), col(IdempotencyKey.key)).in_(oldest)
                )
            )
        deleted = affected(result)
        pruned += deleted
        if deleted < batch:
            return pruned
