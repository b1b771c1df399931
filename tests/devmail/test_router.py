from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pagely.app import create_app
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client


def _loopback_client(app: FastAPI, host: str = "localhost:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


def _deliver(directory: Path, subject: str, to: str) -> None:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Reset at https://pagely.test/reset/t0k3n")
    message.add_alternative('<a href="https://pagely.test/reset/t0k3n">Reset</a>', subtype="html")
    delivered = mailbox.MaildirMessage(message)
    delivered.set_date(1_795_000_000 + (0 if subject == "older" else 60))
    mailbox.Maildir(directory, create=True).add(delivered)


async def test_mail_page_and_json_list_captured_mail_newest_first(
    settings: Settings, tmp_path: Path
) -> None:
    maildir = tmp_path / "mail"
    _deliver(maildir, "older", "a@example.com")
    _deliver(maildir, "newer", "b@example.com")
    app = create_app(
        settings.model_copy(update={"environment": "development", "dev_mail_dir": str(maildir)})
    )
    async with LifespanManager(app), _loopback_client(app) as client:
        listing = await client.get("/dev/mail.json")
        page = await client.get("/dev/mail")
        first = listing.json()[0]
        message_page = await client.get(f"/dev/mail/{first['id']}")
        missing = await client.get("/dev/mail/nope")
    assert [m["subject"] for m in listing.json()] == ["newer", "older"]
    assert set(first) == {"id", "to", "subject", "text", "html", "links", "received_at"}
    assert first["to"] == ["b@example.com"]
    assert first["links"] == ["https://pagely.test/reset/t0k3n"]
    assert page.status_code == 200
    assert "newer" in page.text
    assert 'lang="en"' in page.text
    assert 'sandbox="' in message_page.text
    assert "https://pagely.test/reset/t0k3n" in message_page.text
    assert missing.status_code == 404


@pytest.mark.parametrize("environment", ["test", "staging", "production"])
async def test_mail_pages_are_not_mounted_outside_development(
    settings: Settings, tmp_path: Path, environment: str
) -> None:
    app = create_app(
        settings.model_copy(
            update={
                "environment": environment,
                "jwt_secret": "k" * 48,
                "dev_mail_dir": str(tmp_path),
            }
        )
    )
    async with LifespanManager(app), asgi_client(app) as client:
        assert (await client.get("/dev/mail.json")).status_code == 404
        assert (await client.get("/dev/mail")).status_code == 404


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:8000", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("testserver", False),
    ],
)
async def test_mail_pages_answer_only_loopback_host_names(
    settings: Settings, tmp_path: Path, host: str, allowed: bool
) -> None:
    """A page on another site resolving its name to 127.0.0.1 (DNS rebinding) reads nothing."""
    maildir = tmp_path / "mail"
    _deliver(maildir, "newer", "b@example.com")
    app = create_app(
        settings.model_copy(update={"environment": "development", "dev_mail_dir": str(maildir)})
    )
    async with LifespanManager(app), _loopback_client(app, host) as client:
        mail_id = (await client.get("/dev/mail.json", headers={"host": "localhost"})).json()[0][
            "id"
        ]
        responses = [
            await client.get(path)
            for path in ("/dev/mail.json", "/dev/mail", f"/dev/mail/{mail_id}")
        ]
    for response in responses:
        if allowed:
            assert response.status_code == 200
        else:
            assert response.status_code == 404
            assert response.json()["error"]["type"] == "not_found"
            assert "t0k3n" not in response.text


async def test_an_empty_directory_that_is_not_a_maildir_yet_is_an_empty_mailbox(
    settings: Settings, tmp_path: Path
) -> None:
    maildir = tmp_path / "made-by-hand"
    maildir.mkdir()  # no tmp/, new/, cur/ inside
    app = create_app(
        settings.model_copy(update={"environment": "development", "dev_mail_dir": str(maildir)})
    )
    async with LifespanManager(app), _loopback_client(app) as client:
        listing = await client.get("/dev/mail.json")
        page = await client.get("/dev/mail")
    assert (listing.status_code, listing.json()) == (200, [])
    assert page.status_code == 200
