"""Nothing is lost when the broker is down at commit time or a worker dies mid-send, and a
message that kills its worker on every attempt ends in the dead-letter state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from pagely.core.resources import Resources
from pagely.devtools.processes import free_port
from pagely.settings import Settings
from pagely.worker.celery import create_resources
from tests.fixtures.apps import make_settings
from tests.fixtures.outbox import enqueue, outbox_row, wait_for_status
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker, WorkerProcess, worker_env


async def test_broker_down_at_commit_then_the_sweep_delivers(
    settings: Settings, resources: Resources, smtp_sink: SmtpSink, start_worker: StartWorker
) -> None:
    down = create_resources(
        make_settings(
            settings.require("database_url"),
            settings.require("redis_url"),
            celery_broker_url=f"redis://127.0.0.1:{free_port()}/0",
        )
    )
    try:
        outbox_id = await enqueue(down)
    finally:
        await down.close()
    assert (await outbox_row(resources, outbox_id)).status == "pending"

    # The broker is back (the worker's is the real one); beat runs the sweep.
    start_worker(beat=True)
    row = await wait_for_status(resources, outbox_id, "sent", timeout=30)
    assert row.attempts == 1
    assert len(await smtp_sink.wait_for(1)) == 1


async def test_a_worker_killed_mid_send_delivers_once_after_restart(
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
    report_measurement: Callable[[str], None],
) -> None:
    smtp_sink.stall_next = True  # the server holds the first DATA without answering
    worker = start_worker()
    outbox_id = await enqueue(resources)
    assert smtp_sink.stalled.wait(20), "the worker never started sending"

    worker.kill()  # SIGKILL, main process and pool: no cleanup, no ack
    row = await outbox_row(resources, outbox_id)
    assert row.status == "pending"
    assert row.attempts == 1  # counted before the send began

    start_worker(beat=True)
    await wait_for_status(resources, outbox_id, "sent", timeout=30)
    received = await smtp_sink.wait_for(1)
    message_ids = [m["Message-ID"] for m in received]
    duplicates = len(message_ids) - len(set(message_ids))
    report_measurement(
        f"{len(received)} delivered, {duplicates} duplicates, "
        f"{smtp_sink.abandoned} abandoned SMTP transaction(s)"
    )
    assert smtp_sink.abandoned == 1
    assert message_ids == [f"<{outbox_id}@pagely.local>"]
    assert duplicates == 0


async def test_a_message_that_kills_its_worker_every_time_ends_failed(
    settings: Settings,
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    """Each attempt SIGKILLs the worker mid-send (the sink kills whoever sends to this
    address). Restarted each time, as `pagely run` or systemd would, the worker counts the
    attempts it never finished; after OUTBOX_MAX_ATTEMPTS the message is `failed`, listed in
    the admin outbox, and nobody sends it again."""
    smtp_sink.kill_sender_for = {"poison@example.com"}
    outbox_id = await enqueue(resources, to="poison@example.com")
    env = worker_env(settings, smtp_sink, outbox_max_attempts=3)
    runs = 0
    deadline = time.monotonic() + 120
    while (await outbox_row(resources, outbox_id)).status == "pending":
        assert time.monotonic() < deadline, "the poison message was never dead-lettered"
        runs += 1
        worker = WorkerProcess(env, tmp_path / f"worker-{runs}.log", beat=True, cwd=tmp_path)
        try:
            while worker.proc.poll() is None:
                if (await outbox_row(resources, outbox_id)).status != "pending":
                    break
                await asyncio.sleep(0.1)
        finally:
            worker.kill()
    row = await outbox_row(resources, outbox_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert (row.last_error or "").startswith("WorkerLost")
    assert smtp_sink.killed_senders == 3  # one kill per attempt, none after the last
    assert runs == 4

    listed = await client.get(
        "/api/v1/admin/outbox", params={"status": "failed"}, headers=admin_headers
    )
    assert [item["id"] for item in listed.json()["items"]] == [str(outbox_id)]

    # The workers that follow deliver the rest, and never touch the dead letter.
    start_worker(beat=True, outbox_max_attempts=3)
    healthy = await enqueue(resources)
    await wait_for_status(resources, healthy, "sent", timeout=30)
    await asyncio.sleep(2)  # a few sweeps
    assert smtp_sink.killed_senders == 3
    assert (await outbox_row(resources, outbox_id)).status == "failed"
