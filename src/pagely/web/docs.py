"""Swagger UI and ReDoc served from this process (the assets ship in the fastapi-offline
package), so the docs work offline and behind a firewall: no CDN, no web fonts.

Swagger UI's page and its OAuth2 redirect start with an inline script: both pages are built
once, from constants, and carry a Content-Security-Policy allowing exactly those scripts by
hash (core/security_headers.py)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pagely.core.security_headers import content_security_policy, inline_script_hashes
from pagely.identity.access import PUBLIC

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/static/docs"


class _FixedPage:
    """A page built once from constants, with a CSP allowing its own inline scripts."""

    def __init__(self, page: HTMLResponse) -> None:
        self.body = bytes(page.body)
        hashes = inline_script_hashes(self.body.decode())
        self.headers = {"Content-Security-Policy": content_security_policy(script_hashes=hashes)}

    def response(self) -> HTMLResponse:
        return HTMLResponse(self.body, headers=self.headers)


def install_docs(app: FastAPI) -> None:
    """Call on an app created with docs_url=None and redoc_url=None."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    title = app.title
    redirect = "/docs/oauth2-redirect"

    swagger_page = _FixedPage(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            oauth2_redirect_url=redirect,
            swagger_ui_parameters={"persistAuthorization": True},
        )
    )
    redirect_page = _FixedPage(get_swagger_ui_oauth2_redirect_html())

    @app.get("/docs", include_in_schema=False, dependencies=[PUBLIC])
    async def swagger_ui() -> HTMLResponse:
        return swagger_page.response()

    @app.get(redirect, include_in_schema=False, dependencies=[PUBLIC])
    async def swagger_redirect() -> HTMLResponse:
        return redirect_page.response()

    @app.get("/redoc", include_in_schema=False, dependencies=[PUBLIC])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} API reference",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon.png",
            with_google_fonts=False,
        )
