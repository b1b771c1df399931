"""The pages as a person uses them, in a real browser (Playwright driving Debian's Chromium):
verification and password reset from the development mail page, bad links, Swagger UI, the
landing page, on a phone-sized viewport. A failing journey leaves a screenshot in
test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pagely.app import create_app
from pagely.devtools.mail_sink import MaildirSmtpServer
from pagely.settings import Settings
from tests.fixtures.browser import PHONE
from tests.fixtures.servers import no_rate_limits, serve
from tests.fixtures.worker import StartWorker

PASSWORD = "a-good-long-password"


@pytest.fixture
def site(settings: Settings, tmp_path: Path, start_worker: StartWorker) -> Iterator[str]:
    """A development-mode server with the mail page, and a worker delivering into its Maildir."""
    mail = MaildirSmtpServer(tmp_path)
    _, port, maildir = mail.start()
    app = create_app(
        settings.model_copy(
            update={"environment": "development", "dev_mail_dir": maildir, **no_rate_limits()}
        )
    )
    try:
        with serve(app) as url:
            start_worker(smtp_port=port, public_base_url=url)
            yield url
    finally:
        mail.stop()


async def _post(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, **kwargs)


async def _open_mail(page: Any, site: str, subject: str) -> None:
    await page.goto(f"{site}/dev/mail")
    for _ in range(60):  # the worker delivers within a second or two
        link = page.get_by_role("link", name=subject)
        if await link.count():
            await link.first.click()
            return
        await page.wait_for_timeout(250)
        await page.reload()
    raise AssertionError(f"no mail with subject {subject!r} on the mail page")


async def test_register_then_verify_from_the_mail_page(page: Any, site: str) -> None:
    body = {"email": "reader@example.com", "password": PASSWORD, "name": "Reader"}
    assert (await _post(f"{site}/api/v1/auth/register", json=body)).status_code == 202
    await _open_mail(page, site, "Confirm your email address")
    frame = page.frame_locator("iframe.mail")
    assert await frame.get_by_text("Welcome, Reader").count() >= 1  # the HTML part, sandboxed
    await page.locator('.card a[href*="/auth/verify/"]').first.click()
    await page.wait_for_load_state()
    await page.get_by_role("heading", name="Your email is verified").wait_for()
    deep_link = page.get_by_role("link", name=re.compile("Open Pagely"))
    assert await deep_link.get_attribute("href") == "pagely://verify?status=ok"


async def test_forgot_password_then_reset_through_the_form(page: Any, site: str) -> None:
    body = {"email": "forgetful@example.com", "password": PASSWORD, "name": "Forgetful"}
    assert (await _post(f"{site}/api/v1/auth/register", json=body)).status_code == 202
    forgot = await _post(f"{site}/api/v1/auth/forgot-password", json={"email": body["email"]})
    assert forgot.status_code == 202
    await _open_mail(page, site, "Reset your Pagely password")
    await page.locator('.card a[href*="/auth/reset-password/"]').first.click()
    await page.wait_for_load_state()

    field = page.get_by_label("New password")
    await field.fill("short")
    await page.get_by_role("button", name="Set new password").click()
    assert "8 to 128 characters" in await page.get_by_role("alert").inner_text()

    await field.fill("password")  # long enough for the page, refused by the server as too common
    await page.get_by_role("button", name="Set new password").click()
    await page.wait_for_timeout(500)
    assert "common" in (await page.get_by_role("alert").inner_text()).lower()

    await field.fill("a brand new long passphrase")
    await page.get_by_role("button", name="Set new password").click()
    await page.get_by_role("heading", name="Password changed").wait_for()
    new = {"email": body["email"], "password": "a brand new long passphrase"}
    signed = await _post(f"{site}/api/v1/auth/signin", json=new)
    assert signed.status_code == 200


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/api/v1/auth/verify/garbage-token", "This link is not valid"),
        ("/api/v1/auth/reset-password/garbage-token", "This link is not valid"),
    ],
)
async def test_a_bad_link_shows_a_helpful_page(
    page: Any, site: str, path: str, heading: str
) -> None:
    response = await page.goto(site + path)
    assert response.status == 400
    assert await page.get_by_role("heading", name=heading).is_visible()
    assert "Traceback" not in await page.content()


async def test_swagger_ui_loads_offline_and_lists_the_operations(page: Any, site: str) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site) else None)
    await page.goto(f"{site}/docs")
    await page.locator(".opblock").first.wait_for(timeout=15_000)
    assert await page.locator(".opblock").count() > 40
    assert await page.get_by_text("/api/v1/books/{book_id}").first.is_visible()
    assert await page.get_by_role("button", name=re.compile("Authorize")).is_visible()
    assert outside == []  # no CDN, no fonts


async def test_landing_page_and_accessibility_basics(page: Any, site: str) -> None:
    await page.goto(site + "/")
    docs = page.get_by_role("link", name="Interactive documentation")
    assert await docs.get_attribute("href") == "/docs"
    redoc = page.get_by_role("link", name="Reference documentation")
    assert await redoc.get_attribute("href") == "/redoc"
    assert await page.locator("html").get_attribute("lang") == "en"
    viewport = await page.locator("meta[name=viewport]").get_attribute("content")
    assert "width=device-width" in viewport
    # Nothing wider than a phone's screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
