from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message, Receive, Scope, Send

from pagely.app import create_app
from pagely.core.middleware import EdgeMiddleware
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client


async def test_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert len(response.headers["x-request-id"]) == 32
    assert float(response.headers["x-process-time"]) >= 0


async def test_a_client_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "app-1234.abc"})
    assert response.headers["x-request-id"] == "app-1234.abc"


async def test_a_hostile_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "x" * 300})
    assert response.headers["x-request-id"] != "x" * 300


async def test_one_json_access_log_line_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await client.get("/health", headers={"X-Request-ID": "log-me"})
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.name == "pagely.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["method"], line["path"], line["status"], line["request_id"]) == (
        "GET",
        "/health",
        200,
        "log-me",
    )
    assert line["duration_ms"] >= 0


async def test_untrusted_host_is_refused_with_the_envelope(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": ["api.pagely.test"]}))
    async with LifespanManager(app), asgi_client(app) as client:
        bad = await client.get("/api/v1/anything", headers={"host": "evil.example"})
        good = await client.get("/api/v1/anything", headers={"host": "api.pagely.test"})
        probe = await client.get("/health", headers={"host": "10.0.0.7:8000"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_host"
    assert good.status_code == 404  # past the host check, to routing
    assert probe.status_code == 200  # load-balancer health probes use the machine's address


async def test_cors_allows_only_configured_origins(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": ["https://app.pagely.test"]}))
    async with LifespanManager(app), asgi_client(app) as client:
        allowed = await client.get("/health", headers={"origin": "https://app.pagely.test"})
        other = await client.get("/health", headers={"origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.pagely.test"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other.headers


async def test_a_body_without_any_declared_length_is_counted() -> None:
    """HTTP/2, or a client that sends neither Content-Length nor chunked: still limited."""

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    edge = EdgeMiddleware(reads_everything, allowed_hosts=["*"], max_body_bytes=1024)
    chunks = [b"x" * 600, b"x" * 600, b""]

    async def receive() -> Message:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/books", "query_string": b"",
             "headers": [(b"host", b"testserver")]}  # fmt: skip
    await edge(scope, receive, send)
    assert sent[0]["status"] == 413


async def _never_called(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("a full process admitted a request")


async def _retry_after_of_refusals(count: int) -> list[int]:
    """`count` requests in a row at a process already working on its `max_in_flight` (32): the
    Retry-After of each refusal."""
    edge = EdgeMiddleware(_never_called, allowed_hosts=["*"], max_body_bytes=1024,
                          max_in_flight=32)  # fmt: skip
    edge.in_flight = edge.max_in_flight

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    waits = []
    for _ in range(count):
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)  # noqa: B023 (awaited within this iteration)

        scope = {"type": "http", "method": "GET", "path": "/api/v1/books", "query_string": b"",
                 "headers": [(b"host", b"testserver")]}  # fmt: skip
        await edge(scope, receive, send)
        assert sent[0]["status"] == 503
        waits.append(int(dict(sent[0]["headers"])[b"retry-after"]))
    return waits


async def test_a_burst_of_refusals_is_told_to_come_back_spread_out() -> None:
    """A thousand clients arriving at once at a full process: the first few are told 1-2 s;
    as the burst goes on (within the same second) the waits spread up to 16 s, so the burst
    does not come back as one. A trickle of refusals stays at 1-2 s."""
    burst = await _retry_after_of_refusals(1000)
    assert set(burst[:8]) <= {1, 2}
    assert max(burst) == 16
    late = burst[500:]
    assert len(set(late)) >= 12  # drawn across the whole range...
    assert sum(late) / len(late) > 6  # ...around its middle, not at its short end
    assert set(await _retry_after_of_refusals(7)) <= {1, 2}
