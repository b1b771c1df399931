"""The book_tags rows behind `books.tags` (the ordered slug copy on the book row itself)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def set_tags(session: AsyncSession, tags_by_book: Mapping[uuid.UUID, Sequence[str]]) -> None:
    """Make book_tags match `tags_by_book` (already-normalised slugs) for these books, in a
    few set-based statements whatever the number of books. The caller writes `books.tags`."""
    if not tags_by_book:
        return
    slugs = sorted({slug for tags in tags_by_book.values() for slug in tags})
    if slugs:
        await session.execute(
            text(
                "INSERT INTO tags (slug) SELECT unnest(CAST(:slugs AS text[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"slugs": slugs},
        )
    await session.execute(
        text("DELETE FROM book_tags WHERE book_id = ANY(:ids)"), {"ids": list(tags_by_book)}
    )
    book_ids, positions, tag_slugs = [], [], []
    for book_id, tags in tags_by_book.items():
        for position, slug in enumerate(tags):
            book_ids.append(book_id)
            positions.append(position)
            tag_slugs.append(slug)
    if book_ids:
        await session.execute(
            text(
                """
                INSERT INTO book_tags (book_id, tag_id, position)
                SELECT r.book_id, tags.id, r.position
                FROM unnest(CAST(:book_ids AS uuid[]), CAST(:slugs AS text[]),
                            CAST(:positions AS smallint[])) AS r(book_id, slug, position)
                JOIN tags ON tags.slug = r.slug
                """
            ),
            {"book_ids": book_ids, "slugs": tag_slugs, "positions": positions},
        )
