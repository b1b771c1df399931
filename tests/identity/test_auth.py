"""Accounts and tokens against real PostgreSQL and Redis. Emails are read from the outbox
here; tests/auth/test_email_journey.py runs the real worker and SMTP."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select
from sqlmodel import col

from pagely.core.clock import clock
from pagely.core.resources import Resources
from pagely.identity import tokens
from pagely.models import OutboxMessage, User
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in

PASSWORD = "a-good-long-password"


async def _emails(resources: Resources, template: str | None = None) -> list[dict[str, Any]]:
    async with resources.sessionmaker() as session:
        rows = (
            await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.created_at)))
        ).scalars()
        return [r.payload for r in rows if template is None or r.payload["template"] == template]


async def _register(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada"}
    )


async def test_full_journey_register_verify_signin_refresh_logout(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    registered = await _register(client, "Ada@Example.com")
    assert registered.status_code == 202
    [mail] = await _emails(resources, "verify_email")
    assert mail["to"] == "ada@example.com"
    token = mail["context"]["token"]

    verified = await client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.json() == {"status": "verified"}
    replay = await client.post("/api/v1/auth/verify", json={"token": token})
    assert replay.json() == {"status": "already_verified"}

    pair = await sign_in(client, "ADA@example.com", PASSWORD)
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 15 * 60
    assert pair["user"]["email"] == "ada@example.com"
    assert pair["user"]["is_verified"] is True
    assert "password_hash" not in pair["user"]
    me = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["name"] == "Ada"

    refreshed = await client.post(
        "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != pair["refresh_token"]

    out = await client.post("/api/v1/auth/logout", headers=bearer(new["access_token"]))
    assert out.status_code == 204
    for access in (new["access_token"], pair["access_token"]):
        refused = await client.get("/api/v1/auth/me", headers=bearer(access))
        assert refused.status_code == 401
    again = await client.post(
        "/api/v1/auth/refresh-token", json={"refresh_token": new["refresh_token"]}
    )
    assert again.status_code == 401


async def test_register_rejects_unknown_fields_and_weak_passwords(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    for extra in ({"role": "admin"}, {"is_verified": True}):
        body = {"email": "x@example.com", "password": PASSWORD, "name": "X", **extra}
        response = await client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 422
    for weak in ("short", "password123", "x" * 129):
        body = {"email": "x@example.com", "password": weak, "name": "X"}
        response = await client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "body.password"
    async with resources.sessionmaker() as session:
        assert (await session.execute(select(User))).first() is None


async def test_register_does_not_reveal_existing_accounts(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await make_user(resources, email="known@example.com")
    known = await _register(client, "known@example.com")
    unknown = await _register(client, "new@example.com")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    [warning] = await _emails(resources, "account_exists")
    assert warning["to"] == "known@example.com"
    assert warning["context"]["reset_token"]
    assert len(await _emails(resources, "verify_email")) == 1


async def test_signin_failure_is_the_same_for_unknown_email_and_wrong_password(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    await make_user(resources, email="known@example.com")
    wrong = await client.post(
        "/api/v1/auth/signin", json={"email": "known@example.com", "password": "nope-nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/signin", json={"email": "ghost@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401

    def strip(response: httpx.Response) -> dict[str, Any]:
        return {**response.json()["error"], "request_id": None}

    assert strip(wrong) == strip(unknown)
    assert wrong.json()["error"]["type"] == "invalid_credentials"


async def test_oauth2_form_signin_for_swagger(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    form = await client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
    )
    assert form.status_code == 200
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(form.json()["access_token"]))
    ).status_code == 200


def _forge(settings: Settings, claims: dict[str, Any], key: str | None = None) -> str:
    return jwt.encode(claims, key or settings.jwt_key(), algorithm="HS256")


async def test_token_attacks_are_refused(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    user = await make_user(resources)
    pair = await sign_in(client, user.email)
    access = pair["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})

    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    unsigned = header.decode() + "." + access.split(".")[1] + "."
    payload = access.split(".")[1]
    flipped_payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    flipped = ".".join([access.split(".")[0], flipped_payload, access.split(".")[2]])
    now = clock.timestamp()
    attacks = {
        "alg none": unsigned,
        "other key": _forge(settings, claims, key="another-key-that-is-long-enough-0123456789"),
        "flipped byte": flipped,
        "expired": _forge(settings, {**claims, "iat": now - 3600, "exp": now - 60}),
        "from the future": _forge(settings, {**claims, "iat": now + 3600, "exp": now + 7200}),
        "refresh as access": pair["refresh_token"],
        "missing jti": _forge(settings, {k: v for k, v in claims.items() if k != "jti"}),
    }
    # The genuine token first, so its verification is cached while the forgeries arrive.
    assert (await client.get("/api/v1/auth/me", headers=bearer(access))).status_code == 200
    for name, token in attacks.items():
        response = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert response.status_code == 401, name
    at_refresh = await client.post("/api/v1/auth/refresh-token", json={"refresh_token": access})
    assert at_refresh.status_code == 401

    verify_token = tokens.make_verify_token(settings, user.id, user.email)
    as_reset = await client.post(
        "/api/v1/auth/reset-password",
        json={"token": verify_token, "new_password": "another-good-password"},
    )
    assert as_reset.status_code == 400
    assert as_reset.json()["error"]["type"] == "invalid_token"


async def test_an_access_token_expires_with_the_clock(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    access = (await sign_in(client, user.email))["access_token"]
    # Used first, so its verified signature is cached: expiry is still checked on every use.
    assert (await client.get("/api/v1/auth/me", headers=bearer(access))).status_code == 200
    clock.advance(timedelta(minutes=16))
    expired = await client.get("/api/v1/auth/me", headers=bearer(access))
    assert expired.status_code == 401
    assert expired.json()["error"]["type"] == "token_expired"
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.decode(resources.settings, access, "access")


async def test_refresh_reuse_revokes_the_whole_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    first = await sign_in(client, user.email)
    second = (
        await client.post(
            "/api/v1/auth/refresh-token", json={"refresh_token": first["refresh_token"]}
        )
    ).json()

    # Past the grace window (tests/identity/test_refresh.py has what happens within it).
    clock.advance(timedelta(seconds=31))
    reuse = await client.post(
        "/api/v1/auth/refresh-token", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 401
    assert reuse.json()["error"]["type"] == "token_reused"
    # The newest tokens of the family are dead too.
    newest = await client.post(
        "/api/v1/auth/refresh-token", json={"refresh_token": second["refresh_token"]}
    )
    assert newest.status_code == 401
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))
    ).status_code == 401


async def test_logout_all_ends_every_session(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    phone, laptop = await sign_in(client, user.email), await sign_in(client, user.email)
    listed = (
        await client.get("/api/v1/auth/sessions", headers=bearer(phone["access_token"]))
    ).json()
    assert len(listed) == 2
    assert sum(s["current"] for s in listed) == 1

    assert (
        await client.post("/api/v1/auth/logout-all", headers=bearer(laptop["access_token"]))
    ).status_code == 204
    for pair in (phone, laptop):
        assert (
            await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
        ).status_code == 401
        refresh = await client.post(
            "/api/v1/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
        )
        assert refresh.status_code == 401


async def test_change_password_ends_other_sessions_and_keeps_this_one(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    other, this = await sign_in(client, user.email), await sign_in(client, user.email)
    wrong = await client.post(
        "/api/v1/auth/change-password",
        headers=bearer(this["access_token"]),
        json={"current_password": "not-it-at-all", "new_password": "brand-new-passphrase"},
    )
    assert wrong.status_code == 400
    changed = await client.post(
        "/api/v1/auth/change-password",
        headers=bearer(this["access_token"]),
        json={"current_password": PASSWORD, "new_password": "brand-new-passphrase"},
    )
    assert changed.status_code == 200
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))
    ).status_code == 401
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(this["access_token"]))
    ).status_code == 401
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(changed.json()["access_token"]))
    ).status_code == 200
    assert len(await _emails(resources, "password_changed")) == 1
    await sign_in(client, user.email, "brand-new-passphrase")


async def test_reset_token_is_single_use_and_expires(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    session = await sign_in(client, user.email)
    for _ in range(2):
        clock.advance(timedelta(seconds=2))  # two distinct tokens
        assert (
            await client.post("/api/v1/auth/forgot-password", json={"email": user.email})
        ).status_code == 202
    assert (
        await client.post("/api/v1/auth/forgot-password", json={"email": "ghost@example.com"})
    ).status_code == 202
    first, second = [m["context"]["token"] for m in await _emails(resources, "password_reset")]

    page = await client.get(f"/api/v1/auth/reset-password/{first}")
    assert page.status_code == 200
    assert "<form" in page.text
    done = await client.post(
        "/api/v1/auth/reset-password", json={"token": first, "new_password": "reset-passphrase-1"}
    )
    assert done.status_code == 200
    # Single use: the same token, and every other token issued before, are dead now.
    for token in (first, second):
        again = await client.post(
            "/api/v1/auth/reset-password",
            json={"token": token, "new_password": "reset-passphrase-2"},
        )
        assert again.status_code == 400
        assert again.json()["error"]["type"] == "invalid_token"
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))
    ).status_code == 401

    await client.post("/api/v1/auth/forgot-password", json={"email": user.email})
    fresh = (await _emails(resources, "password_reset"))[-1]["context"]["token"]
    clock.advance(timedelta(minutes=61))
    expired = await client.post(
        "/api/v1/auth/reset-password", json={"token": fresh, "new_password": "reset-passphrase-3"}
    )
    assert expired.status_code == 400
    assert expired.json()["error"]["type"] == "token_expired"


async def test_verify_link_page_and_expiry(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    user = await make_user(resources, verified=False)
    token = tokens.make_verify_token(settings, user.id, user.email)
    page = await client.get(f"/api/v1/auth/verify/{token}")
    assert page.status_code == 200
    assert "Your email is verified" in page.text
    assert f'href="{settings.app_scheme}://verify?status=ok"' in page.text
    assert "Already verified" in (await client.get(f"/api/v1/auth/verify/{token}")).text
    assert "not valid" in (await client.get("/api/v1/auth/verify/garbage")).text

    other = await make_user(resources, verified=False)
    late = tokens.make_verify_token(settings, other.id, other.email)
    clock.advance(timedelta(hours=49))
    expired = await client.get(f"/api/v1/auth/verify/{late}")
    assert expired.status_code == 400
    assert "expired" in expired.text
    # Bound to the address: a token for another address does not verify this account.
    moved = tokens.make_verify_token(settings, other.id, "elsewhere@example.com")
    assert (await client.post("/api/v1/auth/verify", json={"token": moved})).status_code == 400


async def test_the_verify_link_answers_json_to_a_client_that_asks_for_it(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    user = await make_user(resources, verified=False)
    token = tokens.make_verify_token(settings, user.id, user.email)
    as_json = {"Accept": "application/json"}
    refused = await client.get("/api/v1/auth/verify/garbage", headers=as_json)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["type"] == "invalid_token"
    assert refused.json()["error"]["request_id"] == refused.headers["x-request-id"]
    for answer in (refused, await client.get(f"/api/v1/auth/verify/{token}x")):
        # One URL, two representations, an outcome that changes: no cache may keep either.
        assert (answer.headers["vary"], answer.headers["cache-control"]) == ("Accept", "no-store")
    done = await client.get(f"/api/v1/auth/verify/{token}", headers=as_json)
    assert (done.status_code, done.json()) == (200, {"status": "verified"})
    again = await client.get(f"/api/v1/auth/verify/{token}", headers=as_json)
    assert again.json() == {"status": "already_verified"}
    # A browser's Accept (HTML first, anything at q=0.8) still gets the page.
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = await client.get(f"/api/v1/auth/verify/{token}", headers={"Accept": browser})
    assert page.headers["content-type"].startswith("text/html")
    assert "Already verified" in page.text
    assert (page.headers["vary"], page.headers["cache-control"]) == ("Accept", "no-store")
    assert (again.headers["vary"], again.headers["cache-control"]) == ("Accept", "no-store")
    late = tokens.make_verify_token(settings, user.id, user.email)
    clock.advance(timedelta(hours=49))
    expired = await client.get(f"/api/v1/auth/verify/{late}", headers=as_json)
    assert (expired.status_code, expired.json()["error"]["type"]) == (400, "token_expired")


async def test_signin_is_rate_limited_per_account(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    for _ in range(10):
        failed = await client.post(
            "/api/v1/auth/signin", json={"email": user.email, "password": "wrong-wrong"}
        )
        assert failed.status_code == 401
    limited = await client.post(
        "/api/v1/auth/signin", json={"email": user.email, "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


async def test_deactivation_and_role_changes_apply_on_the_next_request(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    access = (await sign_in(client, user.email))["access_token"]
    assert (
        await client.get("/api/v1/admin/outbox/stats", headers=bearer(access))
    ).status_code == 403
    async with resources.sessionmaker() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.role = "admin"
    assert (
        await client.get("/api/v1/admin/outbox/stats", headers=bearer(access))
    ).status_code == 200
    async with resources.sessionmaker() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.is_active = False
    assert (await client.get("/api/v1/auth/me", headers=bearer(access))).status_code == 401


async def test_profile_update_trims_the_name_and_refuses_blank(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    headers = bearer((await sign_in(client, user.email))["access_token"])
    updated = await client.patch("/api/v1/auth/me", headers=headers, json={"name": "  Ada   L. "})
    assert updated.json()["name"] == "Ada L."
    blank = await client.patch("/api/v1/auth/me", headers=headers, json={"name": "   "})
    assert blank.status_code == 422
    assert blank.json()["error"]["details"][0]["field"] == "body.name"
