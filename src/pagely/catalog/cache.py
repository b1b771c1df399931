"""The catalog's entries in the platform cache (`pagely.core.cache`), and the one side effect
every catalog write registers: after its commit, the book's cached body moves to the new
version (or a tombstone) and every cached catalog list is dropped."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.cache import PREFIX, VersionedCache
from pagely.core.db import after_commit

# Every cached list of the catalog (first pages, tag counts) lives under this generation.
GENERATION_KEY = PREFIX + "catalog-generation"


def book_key(book_id: uuid.UUID | str) -> str:
    return f"{PREFIX}book:{book_id}"


def first_page_name(limit: int) -> str:
    """The cached first page of the default listing (newest first, no filters)."""
    return f"books:first:{limit}"


def tag_counts_name(limit: int) -> str:
    return f"tags:{limit}"


def refresh_after_commit(
    session: AsyncSession,
    cache: VersionedCache,
    book_id: uuid.UUID,
    version: int | None,
    body: bytes | None,
) -> None:
    """Register the cache refresh for a write to this book (`version`/`body` None: deleted).
    One per book per transaction; the last registration's row is the committed one."""

    async def refresh() -> None:
        if version is None or body is None:
            await cache.forget(book_key(book_id))
        else:
            await cache.put(book_key(book_id), version, body)
        await cache.new_generation(GENERATION_KEY)

    after_commit(session, f"catalog:book:{book_id}", refresh, replace=True)
