"""Strangers cannot lock an owner out: wrong passwords from many addresses lock the account
for strangers, while a device that has signed in before still gets in, within a limit of its
own. Against real PostgreSQL and Redis."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from pagely.core.resources import Resources
from pagely.models.session import AuthSession
from pagely.settings import Settings
from tests.fixtures.accounts import make_user
from tests.fixtures.apps import app_client

PASSWORD = "a-good-long-password"
SIGNIN = "/api/v1/auth/signin"


def _from(n: int) -> dict[str, str]:
    """A request from address 203.0.113.n (the test client is a trusted proxy here)."""
    return {"X-Forwarded-For": f"203.0.113.{n}"}


async def _signin(
    client: httpx.AsyncClient, email: str, password: str, n: int = 0, **extra: Any
) -> httpx.Response:
    return await client.post(
        SIGNIN, json={"email": email, "password": password, **extra}, headers=_from(n)
    )


async def test_a_locked_account_still_lets_its_owner_in_from_a_known_device(
    settings: Settings, resources: Resources
) -> None:
    user = await make_user(resources)
    phone = secrets.token_urlsafe(24)
    limits = {"trusted_proxies": ["127.0.0.1/32"], "rate_limit_signin_account": "10/15minutes",
              "rate_limit_signin_device": "3/15minutes"}  # fmt: skip
    async with app_client(settings, **limits) as client:
        first = await _signin(client, user.email, PASSWORD, device_id=phone, device="Ada's phone")
        assert first.status_code == 200

        # 10 wrong passwords from each of 30 addresses, as a botnet would: the account is
        # locked against everyone without a known device.
        statuses = [
            (await _signin(client, user.email, f"guess-{n}-{i}", n)).status_code
            for i in range(10)
            for n in range(1, 31)
        ]
        assert statuses[:10] == [401] * 10
        assert set(statuses[10:]) == {429}
        for extra in ({}, {"device_id": secrets.token_urlsafe(24)}):
            locked = await _signin(client, user.email, PASSWORD, 40, **extra)
            assert locked.status_code == 429
            assert int(locked.headers["Retry-After"]) > 0
            assert locked.json()["error"]["type"] == "rate_limited"

        again = await _signin(client, user.email, PASSWORD, 41, device_id=phone)
        assert again.status_code == 200  # the owner's phone, from anywhere

        # Guessing from the known device is bounded too, by a limit of its own.
        tries = [(await _signin(client, user.email, "wrong-guess-xyz", 42, device_id=phone))
                 .status_code for _ in range(4)]  # fmt: skip
        assert tries == [401, 401, 401, 429]
        assert (await _signin(client, user.email, PASSWORD, 42, device_id=phone)).status_code == 429

    async with resources.sessionmaker() as session:
        keys = (
            await session.scalars(
                select(col(AuthSession.device_key)).where(col(AuthSession.user_id) == user.id)
            )
        ).all()
    assert set(keys) == {hashlib.sha256(phone.encode()).hexdigest()}  # a hash, never the id


async def test_a_device_known_to_another_account_is_not_known_to_this_one(
    settings: Settings, resources: Resources
) -> None:
    mine, theirs = await make_user(resources), await make_user(resources)
    device = secrets.token_urlsafe(24)
    async with app_client(settings, rate_limit_signin_account="2/15minutes") as client:
        assert (await _signin(client, theirs.email, PASSWORD, device_id=device)).status_code == 200
        for _ in range(2):
            assert (await _signin(client, mine.email, "wrong-guess-xyz")).status_code == 401
        refused = await _signin(client, mine.email, PASSWORD, device_id=device)
        assert refused.status_code == 429


async def test_a_malformed_device_id_is_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    for bad in ("short", "x" * 129, "has spaces in it ok?", "ümlaut-ümlaut-ümlaut"):
        response = await _signin(client, user.email, PASSWORD, device_id=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["type"] == "validation_error"
