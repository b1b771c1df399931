"""The same delivery with RabbitMQ as the broker: only CELERY_BROKER_URL changes.

Needs a RabbitMQ server: TEST_AMQP_URL (CI sets it to the machine's). There is no embedded
RabbitMQ, so without it this test is skipped, saying why."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from pagely.settings import Settings
from pagely.worker.celery import create_resources
from tests.fixtures.apps import make_settings
from tests.fixtures.outbox import enqueue, wait_for_status
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker

AMQP_URL = os.environ.get("TEST_AMQP_URL")

pytestmark = pytest.mark.skipif(not AMQP_URL, reason="TEST_AMQP_URL is not set (no RabbitMQ)")


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"pagely-test-{uuid.uuid4().hex[:12]}"
    yield name
    assert AMQP_URL
    with Connection(AMQP_URL) as connection:
        channel = connection.default_channel
        channel.queue_delete(name)  # type: ignore[attr-defined]


async def test_delivery_through_rabbitmq(
    settings: Settings, smtp_sink: SmtpSink, start_worker: StartWorker, queue: str
) -> None:
    assert AMQP_URL
    amqp = make_settings(
        settings.require("database_url"), settings.require("redis_url"),
        celery_broker_url=AMQP_URL, celery_queue=queue,
    )  # fmt: skip
    resources = create_resources(amqp)
    try:
        start_worker(celery_broker_url=AMQP_URL, celery_queue=queue)
        outbox_id = await enqueue(resources)
        await wait_for_status(resources, outbox_id, "sent")
        [message] = await smtp_sink.wait_for(1)
        assert message["Message-ID"] == f"<{outbox_id}@pagely.local>"
    finally:
        await resources.close()
