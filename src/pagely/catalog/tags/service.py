"""Tags: the rules shared by the API and the importer (slugs, and how many a book may
carry), and the cached /tags list."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine

from pagely.catalog.cache import GENERATION_KEY, tag_counts_name
from pagely.catalog.tags import queries
from pagely.catalog.tags.schemas import TagOut
from pagely.core.cache import VersionedCache
from pagely.core.db import reading
from pagely.core.http import Representation, body_etag

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


_TAGS_JSON = TypeAdapter(list[TagOut])


async def list_tags(engine: AsyncEngine, cache: VersionedCache, limit: int) -> Representation:
    """Tags with their book counts, most used first. Cached under the
    catalog generation, so a committed write is visible at once."""
    name = tag_counts_name(limit)
    generation, body = await cache.get_listed(GENERATION_KEY, name)
    if body is None:
        async with reading(engine) as conn:
            counts = await queries.tag_counts(conn, limit)
        body = _TAGS_JSON.dump_json([TagOut.model_validate(c) for c in counts])
        await cache.put_listed(GENERATION_KEY, generation, name, body)
    return Representation(body, body_etag(body))
