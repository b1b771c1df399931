"""Liveness (touches nothing) and readiness (checks every dependency, concurrently)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu import Connection
from pydantic import BaseModel
from sqlalchemy import text

from pagely.core.resources import Resources, ResourcesDep

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyStatus(BaseModel):
    status: Literal["ok", "down"]
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, DependencyStatus]


@router.get(
    "/health",
    operation_id="health_live",
    summary="Liveness: the process is up",
    description="Touches no dependency: for a load balancer's or orchestrator's liveness probe.",
)
async def live() -> Liveness:
    return Liveness()


async def _database(resources: Resources) -> None:
    async with resources.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(resources: Resources) -> None:
    await resources.redis.ping()


def _broker_blocking(url: str, timeout: float) -> None:
    with Connection(
        url, connect_timeout=timeout, transport_options={"socket_timeout": timeout}
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=max(1, round(timeout)))


async def _broker(resources: Resources) -> None:
    url = resources.settings.broker_url
    assert url is not None
    timeout = resources.settings.service_timeout_seconds
    await asyncio.to_thread(_broker_blocking, url, timeout)


async def _check(
    name: str, probe: Coroutine[Any, Any, None], seconds: float
) -> tuple[str, DependencyStatus]:
    try:
        await asyncio.wait_for(probe, seconds)
    except Exception as exc:  # any failure means "down"; the type is enough for an operator
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return name, DependencyStatus(status="down", error=reason)
    return name, DependencyStatus(status="ok")


@router.get(
    "/health/ready",
    operation_id="health_ready",
    summary="Readiness: PostgreSQL, Redis and the Celery broker answer",
    description="200 when every dependency answers within the service timeout, else 503 "
    "naming the ones that do not: take the instance out of rotation until it recovers.",
    responses={503: {"model": Readiness, "description": "A dependency is down"}},
)
async def ready(resources: ResourcesDep) -> JSONResponse:
    timeout = resources.settings.service_timeout_seconds + 0.5
    results = await asyncio.gather(
        _check("database", _database(resources), timeout),
        _check("redis", _redis(resources), timeout),
        _check("broker", _broker(resources), timeout),
    )
    checks = dict(results)
    healthy = all(c.status == "ok" for c in checks.values())
    body = Readiness(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if healthy else 503)
