"""Request headers are capped by total size and by number: 431 in the error envelope."""

from __future__ import annotations

import httpx
import pytest

from pagely.settings import Settings
from tests.fixtures.apps import app_client


def _assert_431(response: httpx.Response) -> None:
    assert response.status_code == 431, response.text
    assert response.json()["error"]["type"] == "headers_too_large"
    assert response.headers["connection"] == "close"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/health", "/api/v1/books"])
async def test_oversized_and_too_many_headers_get_431(settings: Settings, path: str) -> None:
    async with app_client(settings, max_header_bytes=4096, max_header_count=20) as client:
        _assert_431(await client.get(path, headers={"X-Big": "a" * 5000}))
        many = [(f"x-h{i}", "1") for i in range(25)]
        _assert_431(await client.get(path, headers=many))
        assert (await client.get(path, headers={"X-Fine": "a" * 1000})).status_code == 200


def test_a_live_server_refuses_an_8_mb_header_and_5000_headers(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        _assert_431(client.get("/health", headers={"X-Big": "a" * 8 * 1024 * 1024}))
        _assert_431(client.get("/health", headers=[(f"x-h{i}", "1") for i in range(5000)]))
        # The defaults: 16 KiB and 100 headers.
        _assert_431(client.get("/health", headers={"X-Big": "a" * 17_000}))
        _assert_431(client.get("/health", headers=[(f"x-h{i}", "1") for i in range(101)]))
        assert client.get("/health", headers={"X-Big": "a" * 8_000}).status_code == 200
