"""The landing page at `/`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pagely.core.templating import templates
from pagely.settings import Settings

router = APIRouter(include_in_schema=False)


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
