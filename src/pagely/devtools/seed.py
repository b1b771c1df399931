"""Demo data for `make run`, loaded idempotently: a demo admin and a small generated catalog.

The catalog is made up here (no third-party data), deterministic, and keyed by ISBN so a second
run inserts nothing.
"""

from __future__ import annotations

import random
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.catalog.books.search import add_search_words
from pagely.catalog.tags.queries import set_tags
from pagely.core.hashing import hash_password
from pagely.core.isbn import isbn13_check_digit
from pagely.identity.service import normalise_email
from pagely.models import Book, Role, User

_ADJECTIVES = [
    "Silent",
    "Hidden",
    "Last",
    "Broken",
    "Golden",
    "Winter",
    "Distant",
    "Burning",
    "Quiet",
    "Forgotten",
    "Crimson",
    "Paper",
    "Glass",
    "Northern",
    "Endless",
    "Small",
]
_NOUNS = [
    "Garden",
    "River",
    "Kingdom",
    "Library",
    "Orchard",
    "Harbour",
    "Mountain",
    "Letters",
    "Lighthouse",
    "Cartographer",
    "Machine",
    "Daughter",
    "Island",
    "Clockmaker",
    "Sea",
    "City",
]
_GIVEN = [
    "Ada",
    "Tomas",
    "Lena",
    "Kofi",
    "Mira",
    "Yusuf",
    "Ines",
    "Haruki",
    "Noor",
    "Pavel",
    "Sofia",
    "Emeka",
    "Clara",
    "Ravi",
    "Elif",
    "Jonas",
]
_FAMILY = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Alvarez",
    "Novak",
    "Haddad",
    "Brennan",
    "Kowalski",
    "Mensah",
    "Ferreira",
    "Ivanova",
    "Nakamura",
    "Osei",
    "Weber",
    "Castillo",
]
_PUBLISHERS = ["Lantern House", "Northwind Press", "Blue Heron Books", "Meridian", "Quire & Co."]
_LANGUAGES = ["en", "en", "en", "fr", "de", "es", "it"]

_GENRES = ["fiction", "mystery", "fantasy", "science-fiction", "history", "poetry",
           "romance", "travel", "biography", "cooking"]  # fmt: skip

DEMO_CATALOG_SIZE = 300


def demo_books(count: int = DEMO_CATALOG_SIZE, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    books = []
    for n in range(count):
        title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        authors = [
            f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}" for _ in range(rng.choice([1, 1, 1, 2]))
        ]
        first12 = f"979800{n:06d}"
        books.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "title": title,
                "subtitle": rng.choice([None, None, "A Novel", "Stories", "A Memoir"]),
                "authors": authors,
                "isbn13": first12 + isbn13_check_digit(first12),
                "publisher": rng.choice(_PUBLISHERS),
                "published_date": date(
                    rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28)
                ),
                "page_count": rng.randint(90, 900),
                "language": rng.choice(_LANGUAGES),
                "description": f"{title}, by {' and '.join(authors)}: a Pagely demo book.",
                "tags": rng.sample(_GENRES, rng.choice([1, 2, 2, 3])),
            }
        )
    return books


async def ensure_admin(
    session: AsyncSession,
    email: str,
    password: str,
    name: str = "Admin",
    *,
    reset_password: bool = False,
) -> User:
    """Create the admin, or promote the existing account with that email (keeping its password
    unless `reset_password`). Flushes, never commits."""
    email = normalise_email(email)
    user = (
        await session.execute(select(User).where(col(User.email) == email))
    ).scalar_one_or_none()
    if user is None:
        user = User(
            email=email,
            name=name,
            password_hash=await hash_password(password),
            role=Role.admin,
            is_verified=True,
        )
        session.add(user)
    else:
        user.role = Role.admin
        if reset_password:
            user.password_hash = await hash_password(password)
    await session.flush()
    return user


async def seed_demo(session: AsyncSession, admin_email: str, admin_password: str) -> int:
    """Load the demo admin and catalog; return how many books were new."""
    # The banner prints the configured demo password: make sure it is the one that works.
    admin = await ensure_admin(
        session, admin_email, admin_password, "Demo Admin", reset_password=True
    )
    rows = [{**book, "owner_id": admin.id} for book in demo_books()]
    result = await session.execute(
        insert(Book)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["isbn13"])
        .returning(col(Book.id), col(Book.tags))
    )
    inserted = result.all()
    await set_tags(session, dict(inserted))
    await add_search_words(session, [book_id for book_id, _ in inserted])
    return len(inserted)
