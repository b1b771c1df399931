"""End to end: a committed outbox row reaches a real SMTP server through a real worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from pagely.core import metrics
from pagely.core.resources import Resources
from pagely.settings import Settings
from tests.fixtures.outbox import default_context, enqueue, wait_for_counter, wait_for_status
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import PUBLIC_BASE_URL, StartWorker, WorkerProcess, worker_env


async def test_a_committed_email_arrives_with_both_parts_the_link_and_headers(
    resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker, settings: Settings
) -> None:
    worker = start_worker()
    outbox_id = await enqueue(
        resources, to="Ada@Example.com", context=default_context(token="tok-SECRET-123")
    )

    [message] = await smtp_sink.wait_for(1)
    row = await wait_for_status(resources, outbox_id, "sent")

    assert message["X-Envelope-To"] == "Ada@Example.com"
    assert message["To"] == "Ada@Example.com"
    assert message["From"] == settings.mail_from
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"] == f"<{outbox_id}@pagely.local>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()

    link = f"{PUBLIC_BASE_URL}/api/v1/auth/verify/tok-SECRET-123"
    assert link in text
    assert f'href="{link}"' in html
    assert "Welcome, Ada Reader" in html
    assert "Welcome, Ada Reader" in text
    assert "<html" not in text
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.last_error is None
    assert (await wait_for_counter(resources, metrics.OUTBOX_SENT, 1))[metrics.OUTBOX_SENT] == 1

    # Nothing secret in the worker's logs: not the token, the link or the address.
    worker.stop()
    log = worker.log_text()
    assert '"event": "email_sent"' in log
    for secret in ("tok-SECRET-123", "/auth/verify/", "Ada@Example.com", "ada@example.com"):
        assert secret not in log


async def test_the_same_task_delivered_many_times_sends_once(
    resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker, redis: Redis
) -> None:
    """Celery may deliver a task twice (acks_late); the row lock and status make it once."""
    start_worker()
    outbox_id = await enqueue(resources)
    resources.dispatcher.publish([outbox_id] * 6)

    await wait_for_status(resources, outbox_id, "sent")
    await _queue_drained(redis)
    received = smtp_sink.received()
    assert [m["Message-ID"] for m in received] == [f"<{outbox_id}@pagely.local>"]


async def _queue_drained(redis: Redis, queue: str = "pagely") -> None:
    for _ in range(200):
        if await redis.llen(queue) == 0:
            await asyncio.sleep(0.5)  # the last task taken is finishing
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the queue did not drain")


async def test_smtp_credentials_from_settings_are_used(
    resources: Resources, settings: Settings, tmp_path: Path
) -> None:
    sink = SmtpSink(credentials=("mailer", "s3cret-pass"))
    sink.start()
    workers: list[WorkerProcess] = []
    try:
        for password in ("wrong-pass", "s3cret-pass"):
            env = worker_env(settings, sink, smtp_username="mailer", smtp_password=password)
            worker = WorkerProcess(env, tmp_path / f"{password}.log", beat=False, cwd=tmp_path)
            workers.append(worker)
            worker.wait_ready()
            outbox_id = await enqueue(resources)
            status = "failed" if password == "wrong-pass" else "sent"
            row = await wait_for_status(resources, outbox_id, status)
            worker.stop()
        assert row.status == "sent"
        assert len(await sink.wait_for(1)) == 1
        assert "s3cret-pass" not in "".join(w.log_text() for w in workers)
    finally:
        for worker in workers:
            worker.stop()
        sink.stop()
