"""Tokens in URLs never reach a log line: the access log, error logs, the standard library's."""

from __future__ import annotations

import json
import logging

import pytest
from asgi_lifespan import LifespanManager

from pagely.app import create_app
from pagely.core.logging import redact_url
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client

SECRET = "s3cr3t-t0ken.AbC_123"


async def test_token_paths_and_query_parameters_are_redacted_in_every_log_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings)  # its log handler writes to this test's captured stderr
    async with LifespanManager(app), asgi_client(app) as client:
        await client.get(f"/api/v1/auth/verify/{SECRET}")
        await client.get(f"/api/v1/auth/reset-password/{SECRET}")
        await client.get(f"/api/v1/books?token={SECRET}&access_token={SECRET}&limit=2")
        await client.get(f"/api/v1/nowhere?refresh_token={SECRET}")
    logging.getLogger("uvicorn.error").warning("GET /api/v1/auth/verify/%s failed", SECRET)
    try:
        raise RuntimeError(f"fetching http://h/api/v1/auth/reset-password/{SECRET} failed")
    except RuntimeError:
        logging.getLogger("pagely.errors").exception("unhandled_exception")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "pagely.access"]
    assert len(access) == 4
    assert {line["path"] for line in access} >= {
        "/api/v1/auth/verify/[redacted]",
        "/api/v1/auth/reset-password/[redacted]",
    }
    assert any(line.get("logger") == "httpx" for line in lines)  # the client's own lines
    assert any("verify/[redacted] failed" in line["event"] for line in lines)
    assert any("reset-password/[redacted] failed" in line.get("exception", "") for line in lines)
    assert SECRET not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/api/v1/auth/verify/abc", "/api/v1/auth/verify/[redacted]"),
        ("/api/v1/auth/reset-password/abc?x=1", "/api/v1/auth/reset-password/[redacted]?x=1"),
        ("/api/v1/auth/reset-password", "/api/v1/auth/reset-password"),
        ("http://h/b?q=a&token=t&page=2", "http://h/b?q=a&token=[redacted]&page=2"),
        ("/b?ACCESS_TOKEN=t#f", "/b?ACCESS_TOKEN=[redacted]#f"),
        ("/b?api-key=t&keyboard=1", "/b?api-key=[redacted]&keyboard=1"),
        ("/api/v1/books?limit=2", "/api/v1/books?limit=2"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected
