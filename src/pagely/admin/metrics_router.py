"""GET /metrics: the Prometheus exposition, for the addresses in METRICS_ALLOW_FROM only
(everyone else gets 404, as for a route that does not exist). Not in the API contract."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pagely.admin import service
from pagely.core.clientip import client_ip, within
from pagely.core.errors import NotFound
from pagely.core.resources import ResourcesDep
from pagely.identity.access import PUBLIC

router = APIRouter(dependencies=[PUBLIC])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, resources: ResourcesDep) -> Response:
    settings = resources.settings
    if not within(client_ip(request, settings.trusted_proxies), settings.metrics_allow_from):
        raise NotFound()
    body = await service.scrape(resources.engine, resources.redis, settings)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
