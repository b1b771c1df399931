"""Tag rules shared by the API and the importer: slugs, and how many a book may carry."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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
