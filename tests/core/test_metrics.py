"""GET /metrics: what it counts (by route template, never the raw path), who may read it, the
numbers read at scrape time, and the sums over several processes (two API workers; a
worker's pool)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pagely.core.resources import Resources
from pagely.devtools.processes import free_port
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import app_client, asgi_client
from tests.fixtures.catalog import BOOKS, book_body
from tests.fixtures.outbox import enqueue, wait_for_status
from tests.fixtures.servers import serve_process
from tests.fixtures.worker import StartWorker


def _value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (0 when absent: a series not yet seen)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def _scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_requests_are_counted_by_route_template(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_user(resources)
    headers = bearer((await sign_in(client, user.email))["access_token"])
    book = (await client.post(BOOKS, json=book_body(), headers=headers)).json()
    labels = {"method": "GET", "route": "/books/{book_id}", "status": "200"}
    missing = {"method": "GET", "route": "unmatched", "status": "404"}
    before = await _scrape(client)

    for _ in range(3):  # the route, then the fast path (a cache hit): one series
        assert (await client.get(f"{BOOKS}/{book['id']}")).status_code == 200
    stray = f"/no/such/{uuid.uuid4()}"
    assert (await client.get(stray)).status_code == 404
    assert (await client.request("BREW", "/")).status_code == 405  # an unknown method

    after = await _scrape(client)
    counted = "pagely_http_requests_total"
    assert _value(after, counted, **labels) - _value(before, counted, **labels) == 3
    assert _value(after, counted, **missing) - _value(before, counted, **missing) == 1
    duration = "pagely_http_request_duration_seconds_count"
    route = {"method": "GET", "route": "/books/{book_id}"}
    assert _value(after, duration, **route) - _value(before, duration, **route) == 3
    assert book["id"] not in after
    assert stray not in after
    assert 'method="other"' in after
    assert "BREW" not in after


async def test_numbers_read_at_scrape_time(client: httpx.AsyncClient, resources: Resources) -> None:
    before = await _scrape(client)
    await enqueue(resources)  # no worker here: it stays pending
    user = await make_user(resources)
    wrong = await client.post(
        "/api/v1/auth/signin", json={"email": user.email, "password": "not-the-password-1"}
    )
    assert wrong.status_code == 401
    resources.sample_pools()
    after = await _scrape(client)

    assert _value(after, "pagely_outbox_pending") - _value(before, "pagely_outbox_pending") == 1
    assert _value(after, "pagely_outbox_oldest_pending_age_seconds") > 0
    failures = "pagely_signin_failures_total"
    assert _value(after, failures) - _value(before, failures) == 1
    for dependency in ("database", "redis", "broker"):
        assert _value(after, "pagely_dependency_up", dependency=dependency) == 1
    assert _value(after, "pagely_ready") == 1
    assert _value(after, "pagely_db_pool_size") == resources.settings.db_pool()
    assert "pagely_emails_sent_total" in after


async def test_only_allowed_addresses_may_read_it(app: object) -> None:
    outside = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4000)),  # type: ignore[arg-type]
        base_url="http://testserver",
    )
    async with outside, asgi_client(app) as inside:  # type: ignore[arg-type]
        refused = await outside.get("/metrics")
        assert refused.status_code == 404
        assert refused.json()["error"]["type"] == "not_found"
        assert (await inside.get("/metrics")).status_code == 200


async def test_a_proxied_request_is_not_taken_for_a_local_one(settings: Settings) -> None:
    """Behind a reverse proxy on the same machine every request comes from 127.0.0.1: a
    forwarded request is never a scrape."""
    async with app_client(settings) as direct:
        assert (await direct.get("/metrics")).status_code == 200
        forwarded = await direct.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 404
        named = await direct.get("/metrics", headers={"Forwarded": "for=127.0.0.1"})
        assert named.status_code == 404
    # Even a trusted proxy naming an allowed address: scrapes go direct, never through it.
    trusting = {"trusted_proxies": ["127.0.0.1"], "metrics_allow_from": ["10.0.0.0/8"]}
    async with app_client(settings, **trusting) as via_proxy:
        named = await via_proxy.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
        assert named.status_code == 404
        assert (await via_proxy.get("/metrics")).status_code == 404  # 127.0.0.1: not allowed


@pytest.fixture
def two_workers(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`pagely serve --workers 2`: two API processes behind one socket."""

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "pagely.cli", "serve", "--port", str(port), "--workers", "2"]

    with serve_process(settings, tmp_path, command, LOG_LEVEL="WARNING") as url:
        yield url


def test_two_api_processes_are_summed(two_workers: str) -> None:
    labels = {"method": "GET", "route": "/health", "status": "200"}
    name = "pagely_http_requests_total"
    before = _value(httpx.get(f"{two_workers}/metrics").text, name, **labels)
    for _ in range(40):  # each on a connection of its own, so both processes take some
        assert httpx.get(f"{two_workers}/health").status_code == 200
    for _ in range(6):  # each scrape may be answered by either process: each has the sum
        after = _value(httpx.get(f"{two_workers}/metrics").text, name, **labels)
        assert after - before == 40


async def test_a_workers_task_durations(resources: Resources, start_worker: StartWorker) -> None:
    port = free_port()
    start_worker(worker_metrics_port=str(port))
    outbox_id = await enqueue(resources)
    await wait_for_status(resources, outbox_id, "sent", timeout=30)
    labels = {"task": "pagely.outbox.send", "outcome": "success"}
    deadline = time.monotonic() + 10
    while True:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        if _value(text, "pagely_task_duration_seconds_count", **labels) == 1:
            break  # postrun runs just after the row is committed
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)
    assert _value(text, "pagely_task_duration_seconds_sum", **labels) > 0
