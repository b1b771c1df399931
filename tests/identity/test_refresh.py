"""Refresh tokens and sessions: the grace window, concurrent refreshes (in process and over
real sockets against a uvicorn subprocess), families that do not touch each other, sliding
sessions, and errors an app can act on (`token_expired` refreshes, `invalid_token` signs in)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from pagely.core.clock import clock
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client

REFRESH = "/api/v1/auth/refresh-token"
PASSWORD = "a-good-long-password"


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def _me(client: httpx.AsyncClient, pair: dict[str, Any]) -> int:
    return (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code


def _error(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    kind: str = response.json()["error"]["type"]
    return kind


def _same_pair(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["access_token"], a["refresh_token"]) == (b["access_token"], b["refresh_token"])


# --- the grace window -------------------------------------------------------------------


async def test_a_token_presented_again_within_the_grace_window_gets_the_same_pair(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    first = await sign_in(client, user.email)
    second = (await _refresh(client, first["refresh_token"])).json()
    clock.advance(timedelta(seconds=20))
    again = await _refresh(client, first["refresh_token"])
    assert again.status_code == 200
    assert _same_pair(again.json(), second)
    assert again.json()["expires_in"] == second["expires_in"]
    # Nothing was revoked: the pair works, and rotates.
    assert await _me(client, second) == 200
    third = await _refresh(client, second["refresh_token"])
    assert third.status_code == 200
    assert await _me(client, third.json()) == 200


async def test_reuse_after_the_successor_was_used_ends_the_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    first = await sign_in(client, user.email)
    second = (await _refresh(client, first["refresh_token"])).json()
    third = (await _refresh(client, second["refresh_token"])).json()
    # Within the window, but its successor has been used since.
    assert _error(await _refresh(client, first["refresh_token"])) == "token_reused"
    assert _error(await _refresh(client, third["refresh_token"])) == "invalid_token"
    assert await _me(client, third) == 401


async def test_reuse_past_the_grace_window_ends_the_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    first = await sign_in(client, user.email)
    second = (await _refresh(client, first["refresh_token"])).json()
    clock.advance(timedelta(seconds=resources.settings.refresh_reuse_grace_seconds + 1))
    assert _error(await _refresh(client, first["refresh_token"])) == "token_reused"
    assert _error(await _refresh(client, second["refresh_token"])) == "invalid_token"
    assert await _me(client, second) == 401


async def test_twenty_concurrent_refreshes_with_one_token_all_get_the_same_working_pair(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    started = time.monotonic()
    responses = await asyncio.gather(*[_refresh(client, pair["refresh_token"]) for _ in range(20)])
    assert time.monotonic() - started < 5
    assert [r.status_code for r in responses] == [200] * 20
    bodies = [r.json() for r in responses]
    assert all(_same_pair(b, bodies[0]) for b in bodies)
    assert await _me(client, bodies[0]) == 200
    assert (await _refresh(client, bodies[0]["refresh_token"])).status_code == 200


# --- over real sockets, against a server process ------------------------------------------


async def _concurrently(url: str, token: str, n: int) -> list[tuple[httpx.Response, float]]:
    """`n` refreshes with `token`, each on its own connection, released together."""
    barrier = asyncio.Barrier(n)

    async def one(client: httpx.AsyncClient) -> tuple[httpx.Response, float]:
        await client.get("/health")  # the connection is open before the barrier falls
        await barrier.wait()
        started = time.monotonic()
        response = await client.post(REFRESH, json={"refresh_token": token})
        return response, time.monotonic() - started

    clients = [httpx.AsyncClient(base_url=url, timeout=20) for _ in range(n)]
    try:
        return await asyncio.gather(*[one(c) for c in clients])
    finally:
        for c in clients:
            await c.aclose()


@pytest.mark.parametrize("n", [2, 3, 10])
async def test_concurrent_refreshes_over_http_all_succeed_within_a_second(
    n: int, live_process: str, resources: Resources
) -> None:
    user = await make_user(resources)
    async with httpx.AsyncClient(base_url=live_process, timeout=20) as client:
        pair = await sign_in(client, user.email)
        outcomes = await _concurrently(live_process, pair["refresh_token"], n)
        assert [r.status_code for r, _ in outcomes] == [200] * n, [r.text for r, _ in outcomes]
        assert max(elapsed for _, elapsed in outcomes) < 1.0, [e for _, e in outcomes]
        pairs = [r.json() for r, _ in outcomes]
        assert all(_same_pair(p, pairs[0]) for p in pairs)
        for p in pairs:
            assert await _me(client, p) == 200
        further = await _refresh(client, pairs[0]["refresh_token"])
        assert further.status_code == 200
        assert await _me(client, further.json()) == 200
        assert (await _refresh(client, further.json()["refresh_token"])).status_code == 200


# --- families do not touch each other ----------------------------------------------------


async def test_tokens_from_before_a_password_change_touch_no_other_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    other, this = await sign_in(client, user.email), await sign_in(client, user.email)
    changed = await client.post(
        "/api/v1/auth/change-password",
        headers=bearer(this["access_token"]),
        json={"current_password": PASSWORD, "new_password": "brand-new-passphrase"},
    )
    assert changed.status_code == 200
    kept = changed.json()
    # This device's session was kept with a fresh pair: its old refresh token is merely dead
    # (it used to count as reuse and end the very session kept through the change).
    assert _error(await _refresh(client, this["refresh_token"])) == "invalid_token"
    assert _error(await _refresh(client, other["refresh_token"])) == "invalid_token"
    assert await _me(client, kept) == 200
    renewed = await _refresh(client, kept["refresh_token"])
    assert renewed.status_code == 200
    assert await _me(client, renewed.json()) == 200


async def test_a_token_of_a_revoked_family_leaves_the_new_session_alone(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    old = await sign_in(client, user.email)
    rotated = (await _refresh(client, old["refresh_token"])).json()
    assert (
        await client.post("/api/v1/auth/logout-all", headers=bearer(rotated["access_token"]))
    ).status_code == 204
    new = await sign_in(client, user.email)
    clock.advance(timedelta(seconds=5))
    for token in (old["refresh_token"], rotated["refresh_token"]):
        assert _error(await _refresh(client, token)) == "invalid_token"
    assert await _me(client, new) == 200
    assert (await _refresh(client, new["refresh_token"])).status_code == 200


# --- sliding sessions --------------------------------------------------------------------


async def _session_row(client: httpx.AsyncClient, pair: dict[str, Any]) -> dict[str, Any]:
    listed = await client.get("/api/v1/auth/sessions", headers=bearer(pair["access_token"]))
    [current] = [s for s in listed.json() if s["current"]]
    assert isinstance(current, dict)
    return current


async def test_each_refresh_slides_the_session_up_to_its_absolute_lifetime(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    assert (settings.refresh_token_days, settings.session_max_days) == (30, 90)
    user = await make_user(resources)
    signed_in = clock.now()
    pair = await sign_in(client, user.email)
    row = await _session_row(client, pair)
    end = datetime.fromisoformat(row["max_expires_at"])
    assert abs(end - (signed_in + timedelta(days=90))) < timedelta(minutes=1)
    assert abs(datetime.fromisoformat(row["expires_at"]) - (signed_in + timedelta(days=30))) < (
        timedelta(minutes=1)
    )
    for day in (20, 40, 60, 80):  # a daily user, past the 30 days of the first refresh token
        clock.advance(timedelta(days=20))
        refreshed = await _refresh(client, pair["refresh_token"])
        assert refreshed.status_code == 200, day
        pair = refreshed.json()
        row = await _session_row(client, pair)
        expected = min(clock.now() + timedelta(days=30), end)
        assert abs(datetime.fromisoformat(row["expires_at"]) - expected) < timedelta(minutes=1)
    clock.advance(timedelta(days=10, minutes=1))  # day 90: the absolute end
    assert _error(await _refresh(client, pair["refresh_token"])) == "invalid_token"


async def test_an_unused_session_ends_after_refresh_token_days(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    clock.advance(timedelta(days=30, minutes=1))
    assert _error(await _refresh(client, pair["refresh_token"])) == "invalid_token"


# --- errors an app can act on ------------------------------------------------------------


async def test_an_expired_access_token_says_token_expired_and_others_invalid_token(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    clock.advance(timedelta(minutes=16))
    expired = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert _error(expired) == "token_expired"
    assert "refresh" in expired.json()["error"]["message"]
    fresh = (await _refresh(client, pair["refresh_token"])).json()
    assert await _me(client, fresh) == 200
    assert (
        await client.post("/api/v1/auth/logout", headers=bearer(fresh["access_token"]))
    ).status_code == 204
    revoked = await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))
    assert _error(revoked) == "invalid_token"
    for token in ("garbage", fresh["refresh_token"]):
        assert _error(await client.get("/api/v1/auth/me", headers=bearer(token))) == (
            "invalid_token"
        )
    assert _error(await client.get("/api/v1/auth/me")) == "invalid_token"


async def test_a_bad_refresh_token_says_it_is_the_refresh_token(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    for token in ("garbage", pair["access_token"]):
        refused = await _refresh(client, token)
        assert _error(refused) == "invalid_token"
        assert "refresh token" in refused.json()["error"]["message"]


async def test_without_a_grace_window_any_reuse_ends_the_family(
    settings: Settings, resources: Resources
) -> None:
    user = await make_user(resources)
    async with app_client(settings, refresh_reuse_grace_seconds=0) as client:
        first = await sign_in(client, user.email)
        second = (await _refresh(client, first["refresh_token"])).json()
        clock.advance(timedelta(seconds=1))
        assert _error(await _refresh(client, first["refresh_token"])) == "token_reused"
        assert await _me(client, second) == 401
