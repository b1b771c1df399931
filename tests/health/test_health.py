from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from pagely.app import create_app
from pagely.core.db import SessionDep, create_engine, create_sessionmaker
from pagely.core.redis import create_redis
from pagely.devtools.processes import free_port
from pagely.settings import ConfigError, Settings
from tests.fixtures.apps import asgi_client

probe = APIRouter()


@probe.get("/api/v1/_probe/db")
async def touch_db(session: SessionDep) -> dict[str, int]:
    return {"one": int((await session.execute(text("SELECT 1"))).scalar_one())}


@pytest.fixture
async def own_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app of the test's own, whose clients the test may break."""
    app = create_app(settings)
    app.include_router(probe)
    async with LifespanManager(app):
        yield app


def dead_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}/0"


async def test_liveness_answers_with_every_dependency_down(
    own_app: FastAPI, settings: Settings
) -> None:
    resources = own_app.state.resources
    healthy = (resources.redis, resources.engine)
    resources.redis = create_redis(settings, url=dead_url("redis"))
    resources.engine = create_engine(settings, database_url=dead_url("postgresql+asyncpg"))
    try:
        async with asgi_client(own_app) as client:
            response = await client.get("/health")
    finally:
        await resources.redis.aclose()
        await resources.engine.dispose()
        resources.redis, resources.engine = healthy
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_every_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "broker"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


async def test_readiness_names_redis_when_it_is_down(own_app: FastAPI, settings: Settings) -> None:
    resources = own_app.state.resources
    healthy = resources.redis
    resources.redis = create_redis(settings, url=dead_url("redis"))
    try:
        async with asgi_client(own_app) as client:
            response = await client.get("/health/ready")
    finally:
        await resources.redis.aclose()
        resources.redis = healthy
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["status"] == "down"
    assert checks["database"]["status"] == "ok"


async def test_readiness_names_the_database_and_routes_answer_503(
    own_app: FastAPI, settings: Settings
) -> None:
    resources = own_app.state.resources
    healthy = (resources.engine, resources.sessionmaker)
    broken = create_engine(settings, database_url=dead_url("postgresql+asyncpg"))
    resources.engine, resources.sessionmaker = broken, create_sessionmaker(broken)
    try:
        async with asgi_client(own_app) as client:
            ready = await client.get("/health/ready")
            route = await client.get("/api/v1/_probe/db")
    finally:
        await broken.dispose()
        resources.engine, resources.sessionmaker = healthy
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "down"
    assert route.status_code == 503
    assert route.json()["error"]["type"] == "service_unavailable"
    # and it recovers without a restart
    async with asgi_client(own_app) as client:
        assert (await client.get("/api/v1/_probe/db")).json() == {"one": 1}


async def test_readiness_names_the_broker_and_stays_ready_without_it(settings: Settings) -> None:
    """Found by `make chaos`: a broker outage failed readiness on every API process, so the
    load balancer refused all traffic although only mail had to wait."""
    app = create_app(settings.model_copy(update={"celery_broker_url": dead_url("redis")}))
    async with LifespanManager(app), asgi_client(app) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["broker"]["status"] == "down"
    assert response.json()["checks"]["redis"]["status"] == "ok"


async def test_startup_stops_with_a_clear_message_when_the_database_is_unreachable(
    settings: Settings,
) -> None:
    app = create_app(
        settings.model_copy(
            update={"database_url": dead_url("postgresql+asyncpg"), "startup_timeout_seconds": 0.3}
        )
    )
    with pytest.raises(ConfigError, match=r"cannot reach PostgreSQL .* after 0.3s"):
        async with LifespanManager(app):
            pass
