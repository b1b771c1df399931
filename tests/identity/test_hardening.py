"""The hardening that must hold: rate limits (and X-Forwarded-For that cannot be spoofed),
a Redis outage, security events in the log, rehash on sign-in, no enumeration."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func, select
from sqlmodel import col

from pagely.core.resources import Resources
from pagely.devtools.redis_server import EmbeddedRedis
from pagely.models import OutboxMessage, User
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client

PASSWORD = "a-good-long-password"


def _new_account(n: int) -> dict[str, str]:
    return {"email": f"new{n}@example.com", "password": PASSWORD, "name": "New"}


def _limited(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    assert response.json()["error"]["type"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    return True


async def _count(resources: Resources, model: Any) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_register_is_limited_per_ip_and_a_refused_request_writes_nothing(
    settings: Settings, resources: Resources
) -> None:
    async with app_client(settings, rate_limit_register_ip="3/minute") as client:
        for n in range(3):
            assert (
                await client.post("/api/v1/auth/register", json=_new_account(n))
            ).status_code == 202
        assert _limited(await client.post("/api/v1/auth/register", json=_new_account(3)))
    assert await _count(resources, User) == 3
    assert await _count(resources, OutboxMessage) == 3


@pytest.mark.parametrize("route", ["forgot-password", "resend-verification"])
async def test_email_routes_are_limited_per_address_and_per_ip(
    settings: Settings, resources: Resources, route: str
) -> None:
    await make_user(resources, email="known@example.com", verified=False)
    limits = {"rate_limit_email_account": "2/minute", "rate_limit_email_ip": "4/minute"}
    async with app_client(settings, **limits) as client:
        url = f"/api/v1/auth/{route}"
        for _ in range(2):
            assert (await client.post(url, json={"email": "known@example.com"})).status_code == 202
        sent = await _count(resources, OutboxMessage)
        assert sent >= 1
        assert _limited(await client.post(url, json={"email": "KNOWN@example.com"}))
        # Another address still passes, until the IP's budget (4, the refusal included) is spent.
        assert (await client.post(url, json={"email": "other@example.com"})).status_code == 202
        assert _limited(await client.post(url, json={"email": "third@example.com"}))
    assert await _count(resources, OutboxMessage) == sent  # refusals send nothing


async def test_refresh_is_limited_per_session(settings: Settings, resources: Resources) -> None:
    user = await make_user(resources)
    async with app_client(settings, rate_limit_refresh_session="2/minute") as client:
        pair = await sign_in(client, user.email)
        other_session = await sign_in(client, user.email)
        for _ in range(2):
            response = await client.post(
                "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
            )
            assert response.status_code == 200
            pair = response.json()
        assert _limited(
            await client.post(
                "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
            )
        )
        # The refused request did not burn the token, and other sessions are unaffected.
        other = await client.post(
            "/api/v1/auth/refresh-token", json={"refresh_token": other_session["refresh_token"]}
        )
        assert other.status_code == 200


async def test_signin_is_limited_per_ip_across_accounts(
    settings: Settings, resources: Resources
) -> None:
    user = await make_user(resources)
    async with app_client(settings, rate_limit_signin_ip="3/minute") as client:
        for n in range(3):
            response = await client.post(
                "/api/v1/auth/signin", json={"email": f"guess{n}@example.com", "password": "x" * 8}
            )
            assert response.status_code == 401
        assert _limited(
            await client.post(
                "/api/v1/auth/signin", json={"email": user.email, "password": PASSWORD}
            )
        )


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    settings: Settings, resources: Resources
) -> None:
    def spoofed(n: int) -> dict[str, str]:
        return {"X-Forwarded-For": f"203.0.113.{n}"}

    # The test client's peer is 127.0.0.1. Untrusted, its X-Forwarded-For is ignored:
    # rotating it does not buy more attempts.
    async with app_client(settings, rate_limit_register_ip="2/minute") as client:
        statuses = [
            (
                await client.post("/api/v1/auth/register", json=_new_account(n), headers=spoofed(n))
            ).status_code
            for n in range(3)
        ]
        assert statuses == [202, 202, 429]
    await resources.limiter.reset()

    # Behind a trusted proxy each client is counted apart, by the nearest untrusted address;
    # a client cannot prepend its way out of its bucket.
    async with app_client(
        settings, rate_limit_register_ip="2/minute", trusted_proxies=["127.0.0.1/32"]
    ) as client:
        for n in range(3):
            response = await client.post(
                "/api/v1/auth/register", json=_new_account(10 + n), headers=spoofed(n)
            )
            assert response.status_code == 202
        same_client = [
            (
                await client.post(
                    "/api/v1/auth/register",
                    json=_new_account(20 + n),
                    headers={"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.0"},
                )
            ).status_code
            for n in range(2)
        ]
        assert same_client == [202, 429]  # 203.0.113.0 already registered once above


# --- Redis outage -------------------------------------------------------------------------


async def _status(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> int:
    started = time.monotonic()
    response = await client.request(method, url, **kwargs)
    assert time.monotonic() - started < 5, f"{url} hung while Redis was down"
    if response.status_code == 503:
        assert response.json()["error"]["type"] == "service_unavailable"
    return response.status_code


async def test_redis_outage_answers_503_never_accepts_and_recovers(
    settings: Settings, resources: Resources, own_redis: EmbeddedRedis
) -> None:
    url = own_redis.start()
    port = urlsplit(url).port
    user = await make_user(resources)
    async with app_client(settings, redis_url=url) as client:
        revoked = await sign_in(client, user.email)
        live = await sign_in(client, user.email)
        logout = await client.post("/api/v1/auth/logout", headers=bearer(revoked["access_token"]))
        assert logout.status_code == 204

        async def outage_checks() -> None:
            for access in (live["access_token"], revoked["access_token"]):
                assert (
                    await _status(client, "GET", "/api/v1/auth/me", headers=bearer(access)) == 503
                )
            signin = {"email": user.email, "password": PASSWORD}
            assert await _status(client, "POST", "/api/v1/auth/signin", json=signin) == 503
            refresh = {"refresh_token": live["refresh_token"]}
            assert await _status(client, "POST", "/api/v1/auth/refresh-token", json=refresh) == 503

        async def recovered() -> None:
            me = await _status(
                client, "GET", "/api/v1/auth/me", headers=bearer(live["access_token"])
            )
            assert me == 200
            gone = bearer(revoked["access_token"])
            assert await _status(client, "GET", "/api/v1/auth/me", headers=gone) == 401

        assert own_redis.proc is not None
        os.kill(own_redis.proc.pid, signal.SIGSTOP)  # paused: connections hang, then time out
        await outage_checks()
        os.kill(own_redis.proc.pid, signal.SIGCONT)
        await recovered()

        own_redis.stop()  # gone: connections are refused
        await outage_checks()
        own_redis.start(port)  # back on the same address; the append-only file kept the denylist
        await recovered()


# --- security events ----------------------------------------------------------------------


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict)]


async def test_security_events_are_logged_without_secrets(
    settings: Settings, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(resources)
    caplog.set_level(logging.INFO)
    # No grace window: the token presented again at once is reuse.
    limits = {"rate_limit_signin_account": "2/minute", "refresh_reuse_grace_seconds": 0}
    async with app_client(settings, **limits) as client:
        pair = await sign_in(client, user.email)
        rotated = await client.post(
            "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
        )
        reused = await client.post(
            "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
        )
        assert reused.json()["error"]["type"] == "token_reused"
        second = await sign_in(client, user.email)
        forbidden = await client.get("/api/v1/users", headers=bearer(second["access_token"]))
        assert forbidden.status_code == 403
        await client.post("/api/v1/auth/logout", headers=bearer(second["access_token"]))
        wrong = {"email": user.email, "password": "wrong-password-123"}
        for _ in range(3):
            await client.post("/api/v1/auth/signin", json=wrong)

    events = _events(caplog)
    names = [e["event"] for e in events]
    for expected in (
        "authn_login_success",
        "authn_login_fail",
        "authn_token_reuse",
        "authn_logout",
        "authz_fail",
        "rate_limit_exceeded",
    ):
        assert expected in names, expected
    success = next(e for e in events if e["event"] == "authn_login_success")
    assert success["user_id"] == str(user.id)
    assert next(e for e in events if e["event"] == "authz_fail")["path"] == "/api/v1/users"

    logged = json.dumps(events, default=str) + "".join(r.getMessage() for r in caplog.records)
    secrets = [PASSWORD, "wrong-password-123", rotated.json()["access_token"]]
    secrets += [t for p in (pair, second) for t in (p["access_token"], p["refresh_token"])]
    for secret in secrets:
        assert secret not in logged
    assert user.email not in logged  # failures are logged by IP, not by the guessed address


# --- passwords ----------------------------------------------------------------------------


async def test_signin_rehashes_a_hash_made_with_weaker_parameters(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    weak = Argon2Hasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash(PASSWORD)
    async with resources.sessionmaker() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.password_hash = weak

    await sign_in(client, user.email)
    async with resources.sessionmaker() as session:
        upgraded = await session.scalar(
            select(col(User.password_hash)).where(col(User.id) == user.id)
        )
    assert upgraded is not None
    assert upgraded != weak
    assert upgraded.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in upgraded
    await sign_in(client, user.email)  # the new hash verifies


# --- enumeration --------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["register", "resend-verification", "forgot-password"])
async def test_known_and_unknown_addresses_get_the_same_answer(
    client: httpx.AsyncClient, resources: Resources, route: str
) -> None:
    await make_user(resources, email="known@example.com", verified=False)

    def body(email: str) -> dict[str, str]:
        if route == "register":
            return {"email": email, "password": PASSWORD, "name": "Someone"}
        return {"email": email}

    known = await client.post(f"/api/v1/auth/{route}", json=body("known@example.com"))
    unknown = await client.post(f"/api/v1/auth/{route}", json=body("nobody@example.com"))
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert set(known.headers) == set(unknown.headers)
    assert await _count(resources, OutboxMessage) == (2 if route == "register" else 1)
