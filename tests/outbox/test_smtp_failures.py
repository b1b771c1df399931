"""SMTP refusing or gone, then back: retries with backoff, a bounded number of attempts, then
`failed` and an admin retry."""

from __future__ import annotations

import asyncio

import httpx

from pagely.core import metrics
from pagely.core.resources import Resources
from tests.fixtures.outbox import enqueue, outbox_row, wait_for_counter, wait_for_status
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker


async def test_temporary_refusals_are_retried_with_backoff_until_delivered(
    resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker
) -> None:
    smtp_sink.refuse_next = 2  # 451 twice, then accept
    start_worker()
    outbox_id = await enqueue(resources)

    row = await wait_for_status(resources, outbox_id, "sent")
    assert len(await smtp_sink.wait_for(1)) == 1
    assert row.attempts == 3
    counters = await wait_for_counter(resources, metrics.OUTBOX_SENT, 1)
    assert counters[metrics.OUTBOX_RETRIED] == 2
    assert counters[metrics.OUTBOX_SENT] == 1


async def test_a_server_that_goes_away_and_comes_back_gets_the_message(
    resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker
) -> None:
    smtp_sink.stop()  # connection refused
    start_worker(outbox_max_attempts=50)
    outbox_id = await enqueue(resources)

    for _ in range(100):  # at least two failed attempts while it is away
        row = await outbox_row(resources, outbox_id)
        if row.attempts >= 2:
            break
        await asyncio.sleep(0.1)
    assert row.status == "pending"
    assert row.attempts >= 2
    assert row.last_error
    assert "Connect" in row.last_error
    assert row.next_attempt_at > row.created_at  # backed off

    smtp_sink.start()
    await wait_for_status(resources, outbox_id, "sent")
    assert len(await smtp_sink.wait_for(1)) == 1


async def test_after_the_last_attempt_it_fails_and_an_admin_retry_delivers_it(
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    smtp_sink.refuse_next = 3
    start_worker(outbox_max_attempts=3)
    outbox_id = await enqueue(resources)

    row = await wait_for_status(resources, outbox_id, "failed")
    assert row.attempts == 3
    assert row.failed_at is not None
    assert row.last_error is not None
    assert "451" in row.last_error
    assert smtp_sink.received() == []

    stats = (await client.get("/api/v1/admin/outbox/stats", headers=admin_headers)).json()
    assert stats["counts"]["failed"] == 1
    assert stats["failed_last_hour"] == 1
    assert stats["counters"][metrics.OUTBOX_FAILED] == 1

    response = await client.post(f"/api/v1/admin/outbox/{outbox_id}/retry", headers=admin_headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0

    row = await wait_for_status(resources, outbox_id, "sent")
    assert row.attempts == 1
    assert len(await smtp_sink.wait_for(1)) == 1

    again = await client.post(f"/api/v1/admin/outbox/{outbox_id}/retry", headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "already_sent"


async def test_a_permanent_rejection_fails_at_once(
    resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker
) -> None:
    smtp_sink.refuse_next = 1
    smtp_sink.refuse_code = "550 5.1.1 Mailbox does not exist"
    start_worker()
    outbox_id = await enqueue(resources)

    row = await wait_for_status(resources, outbox_id, "failed")
    assert row.attempts == 1
    assert row.last_error is not None
    assert "550" in row.last_error
