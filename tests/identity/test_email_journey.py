"""Register, receive the real email (worker + SMTP), follow its link in the page, sign in."""

from __future__ import annotations

import re

import httpx

from pagely.core.resources import Resources
from tests.fixtures.accounts import bearer, sign_in
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import PUBLIC_BASE_URL, StartWorker


async def test_the_verification_email_arrives_and_its_link_verifies(
    client: httpx.AsyncClient, resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker
) -> None:
    start_worker()
    body = {"email": "reader@example.com", "password": "a-good-long-password", "name": "Reader"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 202

    [message] = await smtp_sink.wait_for(1)
    assert message["To"] == "reader@example.com"
    assert message["Subject"] == "Confirm your email address"
    text_part = message.get_body(preferencelist=("plain",))
    assert text_part is not None
    match = re.search(
        re.escape(PUBLIC_BASE_URL) + r"(/api/v1/auth/verify/\S+)", text_part.get_content()
    )
    assert match, "no verification link in the email"

    page = await client.get(match.group(1))
    assert page.status_code == 200
    assert "Your email is verified" in page.text
    pair = await sign_in(client, "reader@example.com")
    me = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.json()["is_verified"] is True
