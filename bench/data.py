"""A synthetic catalog with realistic field sizes: books (titles, authors, descriptions, tags,
dates, popularity), users and reviews, written with COPY so 100,000 books take seconds."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from pagely.catalog.books.queries import CATALOG_FIELDS
from pagely.catalog.reviews.queries import recompute_ratings
from pagely.core.hashing import hash_password_sync
from pagely.core.isbn import isbn13_check_digit

PASSWORD = "bench-password-long-enough"
SEED = 20261120
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"
_TAGS = [
    "fiction",
    "mystery",
    "fantasy",
    "science-fiction",
    "history",
    "poetry",
    "romance",
    "travel",
    "biography",
    "cooking",
    "thriller",
    "horror",
    "classics",
    "young-adult",
    "children",
    "philosophy",
    "science",
    "art",
    "music",
    "business",
    "self-help",
    "humor",
    "memoir",
    "war",
    "crime",
    "politics",
    "religion",
    "sports",
    "nature",
    "economics",
]
_LANGUAGES = ["en"] * 14 + ["fr", "de", "es", "it", "pt", "nl"]


def _word(rng: random.Random) -> str:
    return "".join(
        rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.choice([2, 2, 3, 3, 4]))
    )


DATA_VERSION = 3  # bump when the generated data changes: a bench database is rebuilt
WRITERS = 16  # users who own nothing and have reviewed nothing: scenario 7 writes as them


def vocabulary(size: int = 30_000) -> list[str]:
    rng = random.Random(SEED)
    words: dict[str, None] = {}
    while len(words) < size:
        words.setdefault(_word(rng), None)
    return list(words)


def search_words(count: int = 200) -> list[str]:
    """Words scenario 6 searches for, spread evenly in log-frequency from common words (in
    about a tenth of the books) to rare ones (a handful)."""
    words = vocabulary()
    low, high = math.log(100), math.log(20_000)
    return [words[int(math.exp(low + (high - low) * i / (count - 1)))] for i in range(count)]


class Catalog:
    def __init__(self, books: int) -> None:
        self.rng = random.Random(SEED)
        self.words = vocabulary()
        # Zipf-Mandelbrot, as content words in real text (stop words aside): the commonest
        # word is in about a fifth of the descriptions, most words in very few.
        self.cum_weights = list(
            itertools.accumulate(1 / (rank + 50) for rank in range(len(self.words)))
        )
        self.authors = [f"{self._cap()} {self._cap()}" for _ in range(max(50, books // 20))]
        self.publishers = [
            f"{self._cap()} {self.rng.choice(['Press', 'Books', 'House'])}" for _ in range(80)
        ]
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def _cap(self) -> str:
        return self.rng.choice(self.words).capitalize()

    def words_of(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum_weights, k=count)

    def book(self, n: int, owners: list[uuid.UUID]) -> tuple[Any, ...]:
        """Book number `n`, as a record of BOOK_COPY_COLUMNS."""
        rng = self.rng
        title = " ".join(self.words_of(rng.randint(2, 6))).capitalize()
        description = " ".join(self.words_of(rng.randint(40, 140))).capitalize() + "."
        first12 = f"979{n:09d}"
        created = self.now - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        book = {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "title": title,
            "subtitle": rng.choice([None, None, None, " ".join(self.words_of(3)).capitalize()]),
            "authors": rng.sample(self.authors, rng.choice([1, 1, 1, 2])),
            "isbn13": first12 + isbn13_check_digit(first12),
            "isbn10": None,  # a 979 ISBN has none
            "publisher": rng.choice(self.publishers),
            "published_date": date(rng.randint(1900, 2025), rng.randint(1, 12), rng.randint(1, 28))
            if rng.random() > 0.05
            else None,
            "page_count": rng.randint(60, 1200),
            "language": rng.choice(_LANGUAGES),
            "description": description,
            "tags": rng.sample(_TAGS, rng.choice([1, 2, 2, 3])),
            "owner_id": rng.choice(owners),
            "popularity": int(math.exp(rng.gauss(5, 2))),
            "created_at": created,
            "updated_at": created,
        }
        return tuple(book[column] for column in BOOK_COPY_COLUMNS)


# A book's descriptive fields, and what the loader fills in that the API would.
BOOK_COPY_COLUMNS = (
    "id",
    *CATALOG_FIELDS,
    "owner_id",
    "popularity",
    "created_at",
    "updated_at",
)


def asyncpg_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (it knows no `+asyncpg` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def _transaction(url: str) -> AsyncIterator[AsyncConnection]:
    """A transaction through SQLAlchemy, for the application's own Core statements."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


# asyncpg takes at most 32,767 parameters in a statement; one per book id, and a few more.
_BOOK_IDS_PER_STATEMENT = 10_000


async def _recompute_ratings(conn: AsyncConnection, book_ids: Sequence[uuid.UUID]) -> None:
    """The application's rating aggregates of these books. Only for books that have (or had)
    reviews: every other one holds zeros already, and rewriting a freshly loaded book row
    (its page has no room for a heap-only update) adds it to every index again, the search
    vectors' included: about 0.3 ms a book, minutes for a catalog of a million."""
    for start in range(0, len(book_ids), _BOOK_IDS_PER_STATEMENT):
        await conn.execute(recompute_ratings(book_ids[start : start + _BOOK_IDS_PER_STATEMENT]))


async def populated(conn: asyncpg.Connection, books: int) -> bool:
    exists = await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL")
    if not exists:
        return False
    row = await conn.fetchrow("SELECT * FROM bench_meta")
    meta = dict(row) if row is not None else {}
    return (meta.get("books"), meta.get("version")) == (books, DATA_VERSION)


async def generate(
    url: str, books: int, users: int = 200, log: Callable[[str], object] = print
) -> None:
    """A catalog of `books` books in the (migrated) database at `url`, unless it holds one
    from this version of the generator already."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if await populated(conn, books):
            log(f"bench data: {books} books already there")
            return
        await conn.execute(
            "TRUNCATE books, users, tags, book_tags, reviews, search_words, notifications, "
            "idempotency_keys, auth_sessions, outbox CASCADE"
        )
        password_hash = hash_password_sync(PASSWORD)
        user_ids = [uuid.uuid4() for _ in range(users)]
        writer_ids = [uuid.uuid4() for _ in range(WRITERS)]
        accounts = [(uid, f"bench{i}@example.com") for i, uid in enumerate(user_ids)]
        accounts += [(uid, f"writer{i}@example.com") for i, uid in enumerate(writer_ids)]
        await conn.copy_records_to_table(
            "users",
            records=[
                (uid, email, email.split("@")[0].title(), password_hash, "user", True, True, 0)
                for uid, email in accounts
            ],
            columns=[
                "id",
                "email",
                "name",
                "password_hash",
                "role",
                "is_verified",
                "is_active",
                "token_version",
            ],
        )
        catalog = Catalog(books)
        started = datetime.now(UTC)
        chunk = 20_000
        for start in range(0, books, chunk):
            records = [catalog.book(n, user_ids) for n in range(start, min(books, start + chunk))]
            await conn.copy_records_to_table("books", records=records, columns=BOOK_COPY_COLUMNS)
            log(f"bench data: {min(books, start + chunk)}/{books} books")
        await conn.execute(
            "INSERT INTO tags (slug) SELECT DISTINCT unnest(tags) FROM books ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            """
            INSERT INTO book_tags (book_id, tag_id, position)
            SELECT b.id, t.id, (u.ord - 1)::smallint
            FROM books b, unnest(b.tags) WITH ORDINALITY AS u(slug, ord)
            JOIN tags t ON t.slug = u.slug
            """
        )
        # Reviews: a fifth of the books, one to five each, by distinct users.
        rng = random.Random(SEED + 1)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM books TABLESAMPLE SYSTEM (20)")]
        reviews = []
        for book_id in ids:
            for user_id in rng.sample(user_ids, rng.randint(1, 5)):
                body = " ".join(catalog.words_of(rng.randint(10, 60)))
                reviews.append((user_id, book_id, rng.randint(1, 5), None, body))
        await conn.copy_records_to_table(
            "reviews", records=reviews, columns=["user_id", "book_id", "rating", "title", "body"]
        )
        async with _transaction(url) as transaction:
            await _recompute_ratings(transaction, ids)
        await conn.execute(
            """
            INSERT INTO search_words (word)
            SELECT DISTINCT left(w, 100) FROM books,
              regexp_split_to_table(lower(title || ' ' || array_to_string(authors, ' ')),
                                    '[^[:alnum:]]+') w
            WHERE char_length(w) >= 3
            ON CONFLICT DO NOTHING
            """
        )
        await conn.execute("ANALYZE")
        await conn.execute("DROP TABLE IF EXISTS bench_meta")
        await conn.execute("CREATE TABLE bench_meta (books int, version int)")
        await conn.execute("INSERT INTO bench_meta VALUES ($1, $2)", books, DATA_VERSION)
        seconds = (datetime.now(UTC) - started).total_seconds()
        log(f"bench data: {books} books, {len(reviews)} reviews in {seconds:.1f}s")
    finally:
        await conn.close()


async def reset_writes(url: str) -> None:
    """Undo scenario 7's reviews from an earlier run, so every run writes new (user, book)
    pairs; the books' aggregates are recomputed from what remains."""
    async with _transaction(url) as conn:
        # Two statements: a CTE's UPDATE would still see the reviews its DELETE removed.
        deleted = await conn.execute(
            text(
                "DELETE FROM reviews USING users WHERE reviews.user_id = users.id "
                "AND users.email LIKE 'writer%' RETURNING reviews.book_id"
            )
        )
        await _recompute_ratings(conn, list({row.book_id for row in deleted}))
