"""Schemathesis over every operation of the API, against a live server (uvicorn on a thread)
with a signed-in, verified user: no server error, and every response matches the schema.
The seed is pinned and the example count kept small, so a run is repeatable and quick."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from pagely.app import create_app
from pagely.core.resources import Resources
from pagely.settings import load_settings
from tests.fixtures.accounts import make_user


@pytest.fixture
async def auth_headers(live_server: str, resources: Resources) -> dict[str, str]:
    """A fresh verified user per operation: a generated logout cannot starve the next one."""
    user = await make_user(resources)
    async with httpx.AsyncClient(base_url=live_server) as client:
        signed = await client.post(
            "/api/v1/auth/signin", json={"email": user.email, "password": "a-good-long-password"}
        )
    assert signed.status_code == 200, signed.text
    return {"Authorization": f"Bearer {signed.json()['access_token']}"}


# The schema does not depend on settings; an app that is never started provides it.
schema = schemathesis.openapi.from_dict(create_app(load_settings(_env_file=None)).openapi())


@schema.parametrize()
@seed(20261120)
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_contract(case: Any, live_server: str, auth_headers: dict[str, str]) -> None:
    case.call_and_validate(
        base_url=live_server,
        headers=auth_headers,
        timeout=30,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


async def test_the_live_server_runs_its_own_event_loop(live_server: str) -> None:
    """The server answers while this test blocks pytest-asyncio's loop in a synchronous call:
    so it serves from another thread, on a loop of its own. Were it run on the tests' loop,
    nothing would answer and the request would time out."""
    assert asyncio.get_running_loop().is_running()
    response = httpx.get(f"{live_server}/health", timeout=10)  # noqa: ASYNC210 - the point
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
