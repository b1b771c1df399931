"""One setting, TRUSTED_PROXIES, decides whether X-Forwarded-For is believed: the app's and
the server's (uvicorn rewrote the client address from 127.0.0.1 whatever the setting said)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from pagely.app import create_app
from pagely.cli import proxy_options
from pagely.core.clientip import client_ip
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user
from tests.fixtures.servers import no_rate_limits, serve


async def _recorded_ip(url: str, resources: Resources) -> str:
    user = await make_user(resources)
    async with httpx.AsyncClient(base_url=url) as client:
        signin = await client.post(
            "/api/v1/auth/signin",
            json={"email": user.email, "password": "a-good-long-password"},
            headers={"X-Forwarded-For": "6.6.6.6"},
        )
        assert signin.status_code == 200, signin.text
        sessions = await client.get(
            "/api/v1/auth/sessions", headers=bearer(signin.json()["access_token"])
        )
    assert sessions.status_code == 200, sessions.text
    ip: str = sessions.json()[0]["ip"]
    return ip


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], "127.0.0.1"), (["10.0.0.0/8"], "127.0.0.1"), (["127.0.0.1"], "6.6.6.6")],
)
async def test_a_live_server_believes_forwarded_for_only_from_a_trusted_proxy(
    settings: Settings, resources: Resources, trusted: list[str], expected: str
) -> None:
    app = create_app(settings.model_copy(update={"trusted_proxies": trusted, **no_rate_limits()}))
    with serve(app) as url:
        assert await _recorded_ip(url, resources) == expected


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], "127.0.0.1"), (["10.0.0.0/8"], "127.0.0.1"), (["127.0.0.0/8"], "6.6.6.6")],
)
async def test_the_address_the_app_sees_under_the_live_server(
    settings: Settings, trusted: list[str], expected: str
) -> None:
    """The same server setup without the database: what the app's client_ip() decides."""
    app = FastAPI()
    app.state.settings = settings.model_copy(update={"trusted_proxies": trusted})

    @app.get("/ip")
    async def ip(request: Request) -> dict[str, str | None]:
        peer = request.client.host if request.client else None
        return {"peer": peer, "client": client_ip(request, trusted)}

    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            seen = (await client.get("/ip", headers={"X-Forwarded-For": "6.6.6.6"})).json()
    assert seen["client"] == expected
    if not trusted:
        assert seen["peer"] == "127.0.0.1"  # the server did not rewrite it either


def test_serve_passes_the_trusted_proxies_to_uvicorn(settings: Settings) -> None:
    assert proxy_options(settings.model_copy(update={"trusted_proxies": []})) == {
        "proxy_headers": False,
        "forwarded_allow_ips": "",
    }
    trusted = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8", "192.168.1.2"]})
    assert proxy_options(trusted) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.0/8,192.168.1.2",
    }
