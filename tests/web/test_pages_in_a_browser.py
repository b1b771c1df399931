"""The HTML pages work under their Content-Security-Policy in a real browser (Chromium, as in
tests/browser): nothing is refused, Swagger UI and ReDoc render, the reset form's script runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pagely.app import create_app
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.accounts import make_user
from tests.fixtures.servers import no_rate_limits, serve
from tests.fixtures.web import reset_token

_WATCH = """document.addEventListener("securitypolicyviolation", (e) =>
  (window.__violations = window.__violations || [])
    .push(e.violatedDirective + " " + e.blockedURI))"""


@pytest.fixture
def dev_site(settings: Settings, tmp_path: Path) -> Iterator[str]:
    update = {"environment": "development", "dev_mail_dir": str(tmp_path / "mail")}
    with serve(create_app(settings.model_copy(update={**update, **no_rate_limits()}))) as url:
        yield url


async def _visit(page: Any, url: str, ready: str) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Security Policy" in m.text else None)
    response = await page.goto(url)
    assert "content-security-policy" in response.headers
    await page.locator(ready).first.wait_for(timeout=15_000)
    await page.wait_for_timeout(300)  # late violations (workers, lazy styles)
    violations: list[str] = await page.evaluate("window.__violations || []")
    # ReDoc's "Redocly" logo comes from its CDN: refused on purpose (the docs stay offline).
    return [v for v in refused + violations if "cdn.redoc.ly" not in v]


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/", "h1"),
        ("/docs", ".opblock"),
        ("/redoc", "h1"),
        ("/dev/mail", "h1"),
        ("/api/v1/auth/verify/garbage-token", "h1"),
        ("/api/v1/auth/reset-password/garbage-token", "h1"),
    ],
)
async def test_pages_render_with_nothing_refused(
    page: Any,
    dev_site: str,
    path: str,
    ready: str,
) -> None:
    await page.add_init_script(_WATCH)
    assert await _visit(page, dev_site + path, ready) == []


async def test_the_reset_form_script_runs_under_the_policy(
    page: Any,
    dev_site: str,
    resources: Resources,
) -> None:
    user = await make_user(resources)
    async with httpx.AsyncClient(base_url=dev_site) as client:
        forgot = await client.post("/api/v1/auth/forgot-password", json={"email": user.email})
    assert forgot.status_code == 202
    token = await reset_token(resources)
    await page.add_init_script(_WATCH)
    assert await _visit(page, f"{dev_site}/api/v1/auth/reset-password/{token}", "form") == []
    await page.fill("#password", "short")
    await page.get_by_role("button", name="Set new password").click()
    error = page.locator("#error")
    await error.wait_for(state="visible", timeout=5_000)
    assert "characters" in (await error.text_content() or "")
