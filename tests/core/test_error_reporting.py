"""Error reporting: with SENTRY_DSN set, an unhandled exception reaches a Sentry ingestion
endpoint (a real HTTP server here, decoding the SDK's envelopes) scrubbed of passwords, tokens,
links and email addresses; without it, nothing is sent."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from pagely.app import create_app
from pagely.core.errorreporting import scrub, stop_error_reporting
from pagely.core.errors import Overloaded
from pagely.identity.access import PUBLIC
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client

SECRET_PASSWORD = "a-secret-password-9"
TOKEN = "tok_8Hq2ZrX"


class SentryIngest:
    """Envelopes POSTed to /api/<project>/envelope/, raw (decompressed) and parsed."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ingest.raw.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        found = []
        for envelope in self.raw:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


@pytest.fixture
def ingest() -> Iterator[SentryIngest]:
    running = SentryIngest()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stop_error_reporting()  # later tests in this process report nothing
        running.server.shutdown()
        running.server.server_close()


def test_scrub_removes_secrets_links_and_addresses() -> None:
    event = {
        "message": f"no luck for reader@example.com at /api/v1/auth/verify/{TOKEN}",
        "extra": {"password": SECRET_PASSWORD, "refresh_token": TOKEN, "count": 3},
        "request": {
            "headers": [["Authorization", f"Bearer {TOKEN}"], ["Accept", "*/*"]],
            "url": f"https://books.example/reset?token={TOKEN}",
        },
    }
    scrubbed = scrub(event)
    assert TOKEN not in json.dumps(scrubbed)
    assert SECRET_PASSWORD not in json.dumps(scrubbed)
    assert "reader@example.com" not in json.dumps(scrubbed)
    assert scrubbed["extra"]["count"] == 3
    assert scrubbed["request"]["headers"][1] == ["Accept", "*/*"]
    assert scrubbed["message"].startswith("no luck for [email] at /api/v1/auth/verify/")


async def test_an_unhandled_error_is_reported_scrubbed(
    settings: Settings, ingest: SentryIngest
) -> None:
    app = create_app(settings.model_copy(update={"sentry_dsn": SecretStr(ingest.dsn)}))

    async def boom() -> None:
        raise RuntimeError(f"lookup failed for reader@example.com with token={TOKEN}")

    app.add_api_route("/boom", boom, methods=["POST"], dependencies=[PUBLIC])
    async with LifespanManager(app), asgi_client(app) as client:
        response = await client.post(
            "/boom",
            json={"email": "reader@example.com", "password": SECRET_PASSWORD},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "sentry-test-1"},
        )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal_error"
    sentry_sdk.flush(5)

    [event] = [e for e in ingest.events() if e.get("exception")]
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "lookup failed for [email] with token=[redacted]"
    assert event["tags"]["component"] == "api"
    sent = b"".join(ingest.raw).decode()
    for secret in (TOKEN, SECRET_PASSWORD, "reader@example.com"):
        assert secret not in sent
    assert '"vars"' not in sent  # no local variables from the frames


async def test_a_503_on_purpose_is_not_reported(settings: Settings, ingest: SentryIngest) -> None:
    app = create_app(settings.model_copy(update={"sentry_dsn": SecretStr(ingest.dsn)}))

    async def busy() -> None:
        raise Overloaded("database pool")

    app.add_api_route("/busy", busy, methods=["GET"], dependencies=[PUBLIC])
    async with LifespanManager(app), asgi_client(app) as client:
        for _ in range(3):
            assert (await client.get("/busy")).status_code == 503
    sentry_sdk.flush(5)
    assert ingest.events() == []


async def test_nothing_is_sent_without_a_dsn(settings: Settings, ingest: SentryIngest) -> None:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("unreported")

    app.add_api_route("/boom", boom, methods=["POST"], dependencies=[PUBLIC])
    async with LifespanManager(app), asgi_client(app) as client:
        assert (await client.post("/boom")).status_code == 500
    sentry_sdk.flush(2)
    assert ingest.raw == []
