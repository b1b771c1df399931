"""Look-alike addresses are one address (issue 14): the full-width form of a registered
address (NFKC) signs in to the same account, cannot register a second one, and shares the
account's rate limits and admin search."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from pagely.core.resources import Resources
from pagely.identity.service import normalise_email
from pagely.models import OutboxMessage, User
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client

PASSWORD = "a-good-long-password"
ADDRESS = "ada@example.com"
FULL_WIDTH = "ａｄａ@ｅｘａｍｐｌｅ．ｃｏｍ"
SHOUTED = " ＡＤＡ@Example.com "


async def _emails(resources: Resources) -> list[dict[str, Any]]:
    async with resources.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(col(OutboxMessage.created_at)))
        return [row.payload for row in rows]


async def _users(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def test_normalise_email_folds_look_alikes() -> None:
    assert normalise_email(FULL_WIDTH) == ADDRESS
    assert normalise_email(SHOUTED) == ADDRESS
    assert normalise_email("Ｚoë@Example.COM") == "zoë@example.com"


async def test_the_full_width_form_signs_in_to_the_same_account(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources, email=ADDRESS)
    for form in (FULL_WIDTH, SHOUTED):
        pair = await sign_in(client, form)
        assert pair["user"]["id"] == str(user.id)
        assert pair["user"]["email"] == ADDRESS
    form_login = await client.post(
        "/api/v1/auth/token", data={"username": FULL_WIDTH, "password": PASSWORD}
    )
    assert form_login.status_code == 200, form_login.text
    me = await client.get("/api/v1/auth/me", headers=bearer(form_login.json()["access_token"]))
    assert me.json()["id"] == str(user.id)


async def test_registering_the_full_width_form_again_sends_account_exists(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    body = {"email": ADDRESS, "password": PASSWORD, "name": "Ada"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 202
    again = await client.post(
        "/api/v1/auth/register",
        json={**body, "email": FULL_WIDTH, "password": "another-passphrase"},
    )
    assert again.status_code == 202
    assert await _users(resources) == 1
    emails = await _emails(resources)
    assert [(e["template"], e["to"]) for e in emails] == [
        ("verify_email", ADDRESS),
        ("account_exists", ADDRESS),
    ]
    await sign_in(client, FULL_WIDTH)  # the first password still holds: nothing was replaced


async def test_a_new_full_width_address_is_stored_in_its_normal_form(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    body = {"email": "ｇｒａｃｅ@ｅｘａｍｐｌｅ．ｃｏｍ", "password": PASSWORD, "name": "Grace"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 202
    assert [(e["template"], e["to"]) for e in await _emails(resources)] == [
        ("verify_email", "grace@example.com")
    ]
    assert (await sign_in(client, "grace@example.com"))["user"]["email"] == "grace@example.com"


async def test_look_alikes_get_the_accounts_emails_and_share_its_limit(
    settings: Settings, resources: Resources
) -> None:
    await make_user(resources, email=ADDRESS, verified=False)
    async with app_client(settings, rate_limit_email_account="2/minute") as client:
        for form in (FULL_WIDTH, ADDRESS):
            response = await client.post("/api/v1/auth/resend-verification", json={"email": form})
            assert response.status_code == 202
        refused = await client.post("/api/v1/auth/forgot-password", json={"email": SHOUTED})
        assert refused.status_code == 429  # one address, one budget, whatever its form
    emails = await _emails(resources)
    assert emails
    assert {(e["template"], e["to"]) for e in emails} == {("verify_email", ADDRESS)}


async def test_admin_search_finds_an_address_by_its_full_width_form(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await make_user(resources, email=ADDRESS, name="Ada Lovelace")
    admin = await make_user(resources, role="admin")
    headers = bearer((await sign_in(client, admin.email))["access_token"])
    found = await client.get("/api/v1/users", headers=headers, params={"q": "ａｄａ@"})
    assert [u["email"] for u in found.json()["items"]] == [ADDRESS]
