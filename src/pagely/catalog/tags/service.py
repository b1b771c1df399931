"""Text rules shared by the API and the importer: tag slugs and the search lexicon."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(tag: str) -> str:
    """'Science Fiction' -> 'science-fiction'; accents folded, anything else a hyphen."""
    folded = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", folded.lower()).strip("-")[:MAX_TAG_LENGTH].strip("-")


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Slugs in first-seen order, without blanks or duplicates."""
    seen: dict[str, None] = {}
    for tag in tags:
        slug = slugify(tag)
        if slug:
            seen.setdefault(slug, None)
    return list(seen)


# Words of titles and authors, three letters or more, as the typo corrector compares them.
_REFRESH_WORDS = text(
    """
    INSERT INTO search_words (word)
    SELECT DISTINCT left(w, 100) FROM books,
      regexp_split_to_table(lower(title || ' ' || array_to_string(authors, ' ')), '[^[:alnum:]]+') w
    WHERE books.id = ANY(:ids) AND char_length(w) >= 3
    ON CONFLICT DO NOTHING
    """
)


async def add_search_words(session: AsyncSession, book_ids: Sequence[uuid.UUID]) -> None:
    """Add the words of these books' titles and authors to the lexicon typo correction uses.
    Words are never removed: a stale one can only suggest a correction that finds nothing."""
    if book_ids:
        await session.execute(_REFRESH_WORDS, {"ids": list(book_ids)})
