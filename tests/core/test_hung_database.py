"""PostgreSQL that stops answering (a partition, a paused server) gives fast 503s, never hung
requests, and service comes back by itself when it answers again. The database is the suite's
own, reached through a proxy the test freezes."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import make_url

from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client
from tests.fixtures.catalog import book_body
from tests.fixtures.proxy import FreezableProxy

TIMEOUT = 1.0
MARGIN = 1.5  # the answer comes within SERVICE_TIMEOUT_SECONDS plus this


def _through(proxy: FreezableProxy, settings: Settings) -> str:
    """The test database's URL, by way of the proxy."""
    url = make_url(settings.require("database_url")).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


async def test_a_frozen_database_gives_fast_503s_then_recovers(
    settings: Settings,
    resources: Resources,
    postgres_proxy: FreezableProxy,
    report_measurement: Callable[[str], None],
) -> None:
    user = await make_user(resources)
    overrides = {
        "database_url": _through(postgres_proxy, settings),
        "service_timeout_seconds": TIMEOUT,
    }
    async with app_client(settings, **overrides) as client:
        headers = bearer((await sign_in(client, user.email))["access_token"])
        created = await client.post("/api/v1/books", json=book_body(), headers=headers)
        assert created.status_code == 201

        postgres_proxy.freeze()
        requests = [
            ("GET", "/api/v1/auth/me", None),
            ("GET", "/api/v1/books", None),
            ("GET", "/api/v1/books?q=darkness", None),
            ("GET", "/api/v1/auth/sessions", None),
            ("POST", "/api/v1/books", book_body(isbn="978-0-306-40615-7", title="Another")),
            ("GET", "/api/v1/auth/me", None),  # again: the pool must not hand out a stuck one
        ]
        slowest = 0.0
        for method, path, body in requests:
            started = time.monotonic()
            response = await client.request(method, path, json=body, headers=headers)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"]
            assert response.json()["error"]["type"] == "service_unavailable"
            assert elapsed < TIMEOUT + MARGIN, (path, elapsed)
            slowest = max(slowest, elapsed)
        health = await client.get("/health")
        assert health.status_code == 200  # liveness touches nothing

        postgres_proxy.thaw()
        thawed = time.monotonic()
        while (me := await client.get("/api/v1/auth/me", headers=headers)).status_code != 200:
            assert time.monotonic() < thawed + 10, me.text
        report_measurement(
            f"frozen database: {len(requests)} requests answered 503 in at most {slowest:.2f} s "
            f"(SERVICE_TIMEOUT_SECONDS {TIMEOUT}); 200 again {time.monotonic() - thawed:.2f} s "
            "after it answered"
        )
        assert me.json()["email"] == user.email
        later = await client.post(
            "/api/v1/books", json=book_body(isbn="978-0-306-40615-7"), headers=headers
        )
        assert later.status_code == 201  # the frozen POST wrote nothing


async def test_a_frozen_database_at_sign_in_is_a_503(
    settings: Settings, resources: Resources, postgres_proxy: FreezableProxy
) -> None:
    user = await make_user(resources)
    async with app_client(
        settings,
        database_url=_through(postgres_proxy, settings),
        service_timeout_seconds=TIMEOUT,
    ) as client:
        postgres_proxy.freeze()
        started = time.monotonic()
        body = {"email": user.email, "password": "a-good-long-password"}
        response = await client.post("/api/v1/auth/signin", json=body)
        assert response.status_code == 503, response.text
        assert time.monotonic() - started < TIMEOUT + MARGIN
        postgres_proxy.thaw()
        assert (await client.post("/api/v1/auth/signin", json=body)).status_code == 200
