from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from pagely.core import migrations as migrate
from pagely.devtools.dbadmin import create_database, database_url, drop_database


@pytest.fixture
def scratch_url() -> Iterator[str]:
    server = os.environ["TEST_DATABASE_URL"]
    name = f"pagely_scratch_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_database(server, name))
    yield database_url(server, name)
    asyncio.run(drop_database(server, name))


def test_migrations_match_the_models(database_url: str) -> None:
    migrate.check(database_url)


def test_migrations_go_down_to_nothing_and_up_again(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    migrate.downgrade(scratch_url, "base")
    migrate.upgrade(scratch_url)
    migrate.check(scratch_url)


def test_migration_files_are_named_by_date_and_slug() -> None:
    versions = migrate.ROOT / "migrations" / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    assert names
    for name in names:
        date, _, slug = name.removesuffix(".py").partition("-")
        assert len(date) == len("2026_11_20_1200"), name
        assert date.replace("_", "").isdigit(), name
        assert slug.replace("_", "").isalnum(), name
