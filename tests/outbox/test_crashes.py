"""Nothing is lost when the broker is down at commit time or a worker dies mid-send."""

from __future__ import annotations

from collections.abc import Callable

from pagely.core.resources import Resources
from pagely.devtools.processes import free_port
from pagely.settings import Settings
from pagely.worker.celery import create_resources
from tests.fixtures.apps import make_settings
from tests.fixtures.outbox import enqueue, outbox_row, wait_for_status
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker


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
    assert row.attempts == 0

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
