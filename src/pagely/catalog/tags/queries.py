"""SQL of tags: the book_tags rows behind `books.tags` (the ordered slug copy on the book row
itself), and the counts the /tags list shows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import SmallInteger, Text, Uuid, any_, delete, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.db import Reader
from pagely.models import BookTag, Tag
from pagely.models.base import table

_TAGS = table(Tag)
_BOOK_TAGS = table(BookTag)


async def set_tags(session: AsyncSession, tags_by_book: Mapping[uuid.UUID, Sequence[str]]) -> None:
    """Make book_tags match `tags_by_book` (already-normalised slugs) for these books, in a
    few set-based statements whatever the number of books. The caller writes `books.tags`."""
    if not tags_by_book:
        return
    slugs = sorted({slug for tags in tags_by_book.values() for slug in tags})
    if slugs:
        new_slugs = select(func.unnest(literal(slugs, ARRAY(Text))))
        await session.execute(
            insert(_TAGS).from_select(["slug"], new_slugs).on_conflict_do_nothing()
        )
    # = ANY(array): one bind parameter whatever the batch size (an IN list would be one per
    # book, and new SQL text for every size).
    book_list = literal(list(tags_by_book), ARRAY(Uuid))
    await session.execute(delete(_BOOK_TAGS).where(_BOOK_TAGS.c.book_id == any_(book_list)))
    book_ids, positions, tag_slugs = [], [], []
    for book_id, tags in tags_by_book.items():
        for position, slug in enumerate(tags):
            book_ids.append(book_id)
            positions.append(position)
            tag_slugs.append(slug)
    if not book_ids:
        return
    rows = (
        func.unnest(
            literal(book_ids, ARRAY(Uuid)),
            literal(tag_slugs, ARRAY(Text)),
            literal(positions, ARRAY(SmallInteger)),
        )
        .table_valued("book_id", "slug", "position")
        .render_derived(name="r")
    )
    await session.execute(
        insert(_BOOK_TAGS).from_select(
            ["book_id", "tag_id", "position"],
            select(rows.c.book_id, _TAGS.c.id, rows.c.position).join(
                _TAGS, _TAGS.c.slug == rows.c.slug
            ),
        )
    )


async def tag_counts(reader: Reader, limit: int) -> list[dict[str, object]]:
    """The most used tags first, ties by slug."""
    count = func.count().label("book_count")
    statement = (
        select(_TAGS.c.slug, count)
        .select_from(_BOOK_TAGS.join(_TAGS, _TAGS.c.id == _BOOK_TAGS.c.tag_id))
        .group_by(_TAGS.c.slug)
        .order_by(count.desc(), _TAGS.c.slug)
        .limit(limit)
    )
    result = await reader.execute(statement)
    return [{"slug": slug, "book_count": book_count} for slug, book_count in result.all()]
