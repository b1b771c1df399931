"""The landing page at `/`, and the app-links documents under `/.well-known/`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from pagely.core.templating import templates
from pagely.identity.access import PUBLIC
from pagely.settings import Settings
from pagely.web import service

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])

APPLE_APP_SITE_ASSOCIATION = "/.well-known/apple-app-site-association"
ASSET_LINKS = "/.well-known/assetlinks.json"


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "app_name": settings.app_name,
            "api_prefix": settings.api_prefix,
            "dev_mail": settings.environment == "development" and bool(settings.dev_mail_dir),
        },
    )


@router.get(APPLE_APP_SITE_ASSOCIATION)
async def apple_app_site_association(request: Request) -> JSONResponse:
    # application/json with no extension and no redirect, as iOS requires.
    return JSONResponse(service.apple_app_site_association(request.app.state.settings))


@router.get(ASSET_LINKS)
async def asset_links(request: Request) -> JSONResponse:
    return JSONResponse(service.asset_links(request.app.state.settings))
