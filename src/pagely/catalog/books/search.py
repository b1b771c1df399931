"""Full-text search with typo correction.

Each query word becomes `plainto_tsquery('english', word)`; words are ANDed. Where pg_trgm is
installed and the words as typed match no book, a word that is not in the title/author
lexicon (`search_words`) also accepts its nearest lexicon word by trigram similarity, so
"tolkein hobit" searches
(tolkein | tolkien) & (hobit | hobbit). Ranking is ts_rank_cd over the title/author vector,
scaled by the log of popularity (see `score`), so among comparable text matches the book
people know wins.

A common word matches a tenth of the catalog, and ranking every match read every matching
row: linear in the catalog (450 ms at a million books). `candidates` finds the same top N
from two small sets instead (see its proof), which stays in the milliseconds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    String,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from pagely.core.db import Reader
from pagely.models import Book

log = structlog.get_logger("pagely.search")

MAX_WORDS = 12
_WORD = re.compile(r"\w+", re.UNICODE)
ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")


def query_words(q: str) -> list[str]:
    return [w[:50] for w in _WORD.findall(q.lower())][:MAX_WORDS]


async def has_trigram(engine: AsyncEngine) -> bool:
    """Whether typo tolerance can work here; logs one warning when it cannot."""
    async with engine.connect() as conn:
        found = (
            # text(): pg_extension is a system catalog that no model describes.
            await conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
        ).first()
    if found is None:
        log.warning(
            "search_typo_tolerance_off",
            reason="the pg_trgm extension is not installed in this PostgreSQL; search works "
            "without typo correction (install postgresql-contrib and re-run migrations)",
        )
    return found is not None


# text(): a LATERAL join with pg_trgm's % operator per word reads clearer as SQL than as Core.
_CORRECTIONS = text(
    """
    SELECT w.word, best.word
    FROM unnest(CAST(:words AS text[])) AS w(word)
    CROSS JOIN LATERAL (
        SELECT s.word FROM search_words s
        WHERE s.word % w.word
        ORDER BY similarity(s.word, w.word) DESC, s.word
        LIMIT 1
    ) AS best
    WHERE char_length(w.word) >= 3
      AND numnode(plainto_tsquery('english', w.word)) > 0  -- never "correct" a stop word
      AND NOT EXISTS (SELECT 1 FROM search_words k WHERE k.word = w.word)
    """
)


async def corrections(session: Reader, words: list[str]) -> dict[str, str]:
    if not words:
        return {}
    rows = (await session.execute(_CORRECTIONS, {"words": words})).all()
    return {typed: best for typed, best in rows if best != typed}


async def matches_any(session: Reader, query: ColumnElement[str]) -> bool:
    found = await session.execute(
        select(literal(1)).where(col(Book.search_vector).op("@@")(query)).limit(1)
    )
    return found.first() is not None


def _inline(word: str) -> ColumnElement[str]:
    """The word rendered into the statement (escaped), not a parameter: PostgreSQL then plans
    with the word's frequency, which decides between walking the popularity index (a common
    word) and the search index (a rare one). A prepared statement's generic plan cannot.
    So, unlike other bound values, search words appear in PostgreSQL's own statement logs and
    pg_stat_activity (they are words matched by \\w+, never credentials)."""
    return literal(word, String, literal_execute=True)


def ts_query(words: list[str], fixes: dict[str, str]) -> ColumnElement[str]:
    """The AND of every word, each ORed with its correction."""
    combined: ColumnElement[str] | None = None
    for word in words:
        term: ColumnElement[str] = func.plainto_tsquery(ENGLISH, _inline(word))
        if word in fixes:
            term = term.op("||")(func.plainto_tsquery(ENGLISH, _inline(fixes[word])))
        combined = term if combined is None else combined.op("&&")(term)
    assert combined is not None
    return combined


def popularity() -> ColumnElement[int]:
    """The popularity signal in `score`, as indexed by ix_books_popularity (migration 0006);
    bigint, because an imported popularity may be as large as an integer column holds."""
    return cast(col(Book.popularity), BigInteger) + col(Book.rating_count)


def candidates(
    query: ColumnElement[str],
    conditions: list[ColumnElement[bool]],
    limit: int,
) -> Any:
    """Ids holding the `limit` best matches by `score`, without ranking every match.

    score = (title rank + 0.01) x f(popularity), with f increasing. The title rank is 0 for a
    book whose title/author vector does not match the query, so such a book scores exactly
    0.01 x f(popularity). Take the union of
      (a) the best `limit` by score among books whose title/author vector matches (found by
          its own GIN index; titles are short, so these are few), and
      (b) the `limit` most popular books among all matches (walked down the popularity index
          for a common word; a rare word's few matches come from the search index).
    A book in the true top `limit` either matches in its title (then it is in the top of
    (a)), or scores 0.01 x f(its popularity): every more popular match scores more, so fewer
    than `limit` of them exist and it is in (b). `conditions` (filters, the cursor) apply to
    both, so pages agree with a full ranking (tests/catalog/test_search.py compares the two,
    page by page, over a random catalog)."""
    in_titles = (
        select(col(Book.id))
        .where(col(Book.rank_vector).op("@@")(query), *conditions)
        .order_by(score(query).desc(), col(Book.id).desc())
        .limit(limit)
        .correlate(None)
    )
    most_popular = (
        select(col(Book.id))
        .where(col(Book.search_vector).op("@@")(query), *conditions)
        .order_by(popularity().desc(), col(Book.id).desc())
        .limit(limit)
        .correlate(None)
    )
    return union(in_titles, most_popular)


def score(query: ColumnElement[str]) -> ColumnElement[float]:
    """(Title/author rank + a floor for a match elsewhere) times (1 + ln(1 + popularity))^2.

    The rank reads only `rank_vector` (title, authors, subtitle, tags): small and inline, so
    ranking ten thousand matches of a common word stays cheap; a book matching only in its
    description still ranks, by popularity. Tuned on the goodbooks catalog: the square lets a
    far better-known book beat a box set whose short title matches slightly better."""
    rank = func.ts_rank_cd(col(Book.rank_vector), query, 1) + 0.01
    return cast(rank * func.power(1 + func.ln(1 + popularity()), 2), Float)


# Words of titles and authors, three letters or more, as the typo corrector compares them.
# text(): regexp_split_to_table as a set-returning FROM item reads clearer as SQL.
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
