"""1,000 emails through the outbox, a real worker and SMTP: every one arrives, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from pagely.core.db import transaction
from pagely.core.outbox import enqueue_email
from pagely.core.resources import Resources
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker

COUNT = 1000


async def test_a_thousand_emails_arrive_exactly_once(
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
    report_measurement: Callable[[str], None],
) -> None:
    start_worker()
    started = time.monotonic()
    for batch in range(10):  # ten transactions, as ten busy requests would
        async with transaction(resources.sessionmaker) as session:
            for i in range(COUNT // 10):
                n = batch * (COUNT // 10) + i
                await enqueue_email(
                    session, template="test_email", to=f"reader{n}@example.com", context={},
                    key=f"load:{n}",
                )  # fmt: skip
    enqueued = time.monotonic() - started

    received = await smtp_sink.wait_for(COUNT, timeout=180)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1)  # anything extra would arrive now
    received = smtp_sink.received()

    recipients = Counter(m["X-Envelope-To"] for m in received)
    assert len(recipients) == COUNT
    assert max(recipients.values()) == 1
    assert len(received) == COUNT
    rate = COUNT / elapsed
    report_measurement(
        f"{COUNT} emails enqueued in {enqueued:.2f}s, all delivered exactly once in "
        f"{elapsed:.1f}s = {rate:.0f} messages/s (one worker, concurrency 2)"
    )
