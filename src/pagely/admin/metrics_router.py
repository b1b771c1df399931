"""GET /metrics: the Prometheus exposition, for the addresses in METRICS_ALLOW_FROM only,
called directly or through a trusted proxy that names the caller (everyone else gets 404, as
for a route that does not exist). Not in the API contract."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pagely.admin import service
from pagely.core.clientip import client_ip, within
from pagely.core.errors import NotFound
from pagely.core.resources import ResourcesDep
from pagely.identity.access import PUBLIC
from pagely.settings import Settings

router = APIRouter(dependencies=[PUBLIC])


def _may_scrape(request: Request, settings: Settings) -> bool:
    """The caller's address is in METRICS_ALLOW_FROM, and it is the caller's: a request that
    came through a proxy which is not trusted (or through a trusted one that did not say for
    whom) has only the proxy's address, often 127.0.0.1, and is refused."""
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    peer = request.client.host if request.client else ""
    from_proxy = bool(settings.trusted_proxies) and within(peer, settings.trusted_proxies)
    if forwarded != from_proxy:
        return False
    return within(client_ip(request, settings.trusted_proxies), settings.metrics_allow_from)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, resources: ResourcesDep) -> Response:
    settings = resources.settings
    if not _may_scrape(request, settings):
        raise NotFound()
    body = await service.scrape(resources.engine, resources.redis, settings)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
