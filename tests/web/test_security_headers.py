"""Security headers: a Content-Security-Policy every HTML page works under (each inline script
it has is allowed by hash, nothing else inline), no framing, nosniff, a Referrer-Policy, HSTS
when the public URL is https; JSON gets nosniff (headers are not in openapi.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pagely.app import create_app
from pagely.core.resources import Resources
from pagely.core.security_headers import inline_script_hashes
from pagely.settings import Settings
from tests.fixtures.accounts import make_user
from tests.fixtures.web import reset_token

HTML_PAGES = [
    "/",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/dev/mail",
    "/api/v1/auth/verify/garbage-token",
    "/api/v1/auth/reset-password/garbage-token",
]


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {name: values for name, *values in parts}


def _assert_protected_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    csp = _directives(response.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    scripts = csp["script-src"]
    assert "'unsafe-inline'" not in scripts
    assert "'unsafe-eval'" not in scripts
    # Every inline script on the page is allowed by its hash; no other is.
    hashes = [f"'{h}'" for h in inline_script_hashes(response.text)]
    assert sorted(scripts) == sorted(["'self'", *hashes])
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


async def _reset_page(client: httpx.AsyncClient, resources: Resources) -> httpx.Response:
    user = await make_user(resources)
    forgot = await client.post("/api/v1/auth/forgot-password", json={"email": user.email})
    assert forgot.status_code == 202
    return await client.get(f"/api/v1/auth/reset-password/{await reset_token(resources)}")


async def test_every_html_page_gets_a_strict_policy_it_works_under(
    settings: Settings, resources: Resources, tmp_path: Path
) -> None:
    app = create_app(
        settings.model_copy(
            update={"environment": "development", "dev_mail_dir": str(tmp_path / "mail")}
        )
    )
    async with LifespanManager(app), _client(app) as client:
        pages = [await client.get(path) for path in HTML_PAGES]
        form = await _reset_page(client, resources)
    for response in [*pages, form]:
        _assert_protected_page(response)
    assert "<form" in form.text
    assert 'src="/static/reset.js"' in form.text
    swagger = pages[1]
    assert len(inline_script_hashes(swagger.text)) == 1  # its start-up script, allowed by hash
    assert "strict-transport-security" not in swagger.headers  # public URL is http


async def test_json_gets_nosniff_and_no_page_headers(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/api/v1/books", "/openapi.json", "/api/v1/nowhere"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers
        assert "x-frame-options" not in response.headers


@pytest.mark.parametrize(("base_url", "hsts"), [("https://books.example", True),
                                                 ("http://127.0.0.1:8000", False)])  # fmt: skip
async def test_hsts_only_when_the_public_url_is_https(
    settings: Settings, base_url: str, hsts: bool
) -> None:
    app = create_app(settings.model_copy(update={"public_base_url": base_url}))
    async with LifespanManager(app), _client(app) as client:
        for path in ("/", "/health"):
            response = await client.get(path)
            assert ("strict-transport-security" in response.headers) is hsts
            if hsts:
                assert response.headers["strict-transport-security"].startswith("max-age=")


def test_inline_script_hashes_match_the_csp_algorithm() -> None:
    # sha256 of "alert(1)", as a browser computes it for <script>alert(1)</script>.
    html = '<script>alert(1)</script><script src="/x.js"></script>'
    assert inline_script_hashes(html) == ["sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="]
