"""GET /metrics: the Prometheus exposition, for direct calls from the addresses in
METRICS_ALLOW_FROM only (everyone else, and anything forwarded by a proxy, gets 404, as for a
route that does not exist). Not in the API contract."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pagely.admin import service
from pagely.core.clientip import within
from pagely.core.errors import NotFound
from pagely.core.resources import ResourcesDep
from pagely.identity.access import PUBLIC
from pagely.settings import Settings

router = APIRouter(dependencies=[PUBLIC])


def _may_scrape(request: Request, settings: Settings) -> bool:
    """A scraper calls directly, from an address in METRICS_ALLOW_FROM. A request that came
    through a proxy (it says so in X-Forwarded-For or Forwarded) is refused whoever it names:
    behind a reverse proxy on the same machine every request comes from 127.0.0.1, and with
    TRUSTED_PROXIES set uvicorn has already replaced the peer with the address it names."""
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    peer = request.client.host if request.client else ""
    return within(peer, settings.metrics_allow_from)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, resources: ResourcesDep) -> Response:
    settings = resources.settings
    if not _may_scrape(request, settings):
        raise NotFound()
    body = await service.scrape(resources.engine, resources.redis, settings)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
