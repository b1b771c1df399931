"""Liveness (touches nothing) and readiness (checks every dependency, concurrently)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pagely.core import probes
from pagely.core.resources import EngineDep, RedisDep, SettingsDep
from pagely.health.schemas import Liveness, Readiness
from pagely.identity.access import PUBLIC

router = APIRouter(tags=["health"], dependencies=[PUBLIC])


@router.get(
    "/health",
    operation_id="health_live",
    summary="Liveness: the process is up",
    description="Touches no dependency: for a load balancer's or orchestrator's liveness probe.",
)
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    operation_id="health_ready",
    summary="Readiness: PostgreSQL and Redis answer (and the Celery broker, reported)",
    description="200 when PostgreSQL and Redis answer within the service timeout, else 503 "
    "naming the ones that do not: take the instance out of rotation until it recovers. The "
    "broker is checked too, but its loss only degrades the instance (`status: degraded`, "
    "still 200): requests are served and their emails wait in the outbox until it returns, "
    "so a broker outage never takes every API instance out of a load balancer.",
    responses={503: {"model": Readiness, "description": "A dependency is down"}},
)
async def ready(engine: EngineDep, redis: RedisDep, settings: SettingsDep) -> JSONResponse:
    body = Readiness.of(await probes.check_dependencies(engine, redis, settings))
    status_code = 503 if body.status == "unavailable" else 200
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code)
