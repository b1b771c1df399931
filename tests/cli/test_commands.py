from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from pagely.cli import cli
from pagely.core.hashing import verify_and_update
from pagely.core.resources import Resources
from pagely.models import Book, User
from pagely.settings import Settings, get_settings


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name, value in {
        "ENVIRONMENT": "test",
        "DATABASE_URL": str(settings.database_url),
        "REDIS_URL": str(settings.redis_url),
        "SMTP_HOST": "127.0.0.1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


async def invoke(args: list[str], input: str | None = None) -> Result:
    """The CLI calls asyncio.run, so it runs off this test's event loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, args, input=input)


async def _users(resources: Resources) -> list[User]:
    async with resources.sessionmaker() as session:
        return list((await session.execute(select(User))).scalars())


async def test_create_admin_reads_the_password_from_stdin(
    cli_env: None, db_cleaner: Resources
) -> None:
    result = await invoke(["create-admin", "Boss@Example.com"], input="a-long-password\n")
    assert result.exit_code == 0, result.output
    [user] = await _users(db_cleaner)
    assert (user.email, user.role, user.is_verified) == ("boss@example.com", "admin", True)
    assert (await verify_and_update("a-long-password", user.password_hash))[0]
    assert "a-long-password" not in result.output


async def test_create_admin_promotes_an_existing_account(
    cli_env: None, db_cleaner: Resources
) -> None:
    async with db_cleaner.sessionmaker() as session, session.begin():
        session.add(User(email="reader@example.com", name="Reader", password_hash="x"))
    result = await invoke(["create-admin", "reader@example.com"], input="whatever-pass\n")
    assert result.exit_code == 0, result.output
    [user] = await _users(db_cleaner)
    assert user.role == "admin"
    assert user.password_hash == "x"


async def test_create_admin_refuses_a_short_password(cli_env: None, db_cleaner: Resources) -> None:
    result = await invoke(["create-admin", "a@example.com"], input="short\n")
    assert result.exit_code == 2
    assert "8 to 128 characters" in result.output
    assert await _users(db_cleaner) == []


async def test_seed_is_idempotent(cli_env: None, db_cleaner: Resources) -> None:
    first = await invoke(["seed"])
    second = await invoke(["seed"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "300 new books" in first.output
    assert "0 new books" in second.output
    async with db_cleaner.sessionmaker() as session:
        books = (await session.execute(select(func.count()).select_from(Book))).scalar_one()
        admins = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    assert (books, admins) == (300, 1)


async def test_a_bad_configuration_exits_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "change-me")
    result = await invoke(["migrate"])
    assert result.exit_code == 2
    assert "JWT_SECRET" in result.output
    assert len(result.output.strip().splitlines()) == 1


async def test_send_test_email_goes_through_the_outbox(
    cli_env: None, db_cleaner: Resources
) -> None:
    from pagely.models import OutboxMessage

    result = await invoke(["send-test-email", "Ops@Example.com"])
    assert result.exit_code == 0, result.output
    async with db_cleaner.sessionmaker() as session:
        [row] = (await session.execute(select(OutboxMessage))).scalars()
    assert row.payload == {"template": "test_email", "to": "Ops@example.com", "context": {}}
    assert str(row.id) in result.output
    assert await db_cleaner.redis.llen("pagely") == 1  # dispatched after the commit


async def test_send_test_email_refuses_a_bad_address(cli_env: None) -> None:
    result = await invoke(["send-test-email", "not-an-address"])
    assert result.exit_code == 2
    assert "not an email address" in result.output
