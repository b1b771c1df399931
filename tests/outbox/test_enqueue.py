"""The outbox API inside a transaction, without a worker: what is written, what is handed to
the broker after commit, and what happens when the transaction or the broker fails."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from pagely.core.db import transaction
from pagely.core.mail.render import UnknownTemplate
from pagely.core.outbox import enqueue_email
from pagely.core.outbox.delivery import claim_stale
from pagely.core.resources import Resources
from pagely.devtools.processes import free_port
from pagely.models.outbox import OutboxMessage
from pagely.settings import Settings
from pagely.worker.celery import create_resources
from tests.fixtures.apps import make_settings
from tests.fixtures.outbox import default_context, enqueue, outbox_row

QUEUE = "pagely"


async def _count(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def _queued_bodies(redis: Redis) -> list[str]:
    """The decoded bodies of the task messages waiting in the Redis broker."""
    return [
        base64.b64decode(json.loads(raw)["body"]).decode()
        for raw in await redis.lrange(QUEUE, 0, -1)
    ]


async def _queued_ids(redis: Redis) -> list[str]:
    return [json.loads(body)[0][0] for body in await _queued_bodies(redis)]


async def test_commit_writes_a_pending_row_and_hands_only_its_id_to_the_broker(
    resources: Resources, redis: Redis
) -> None:
    outbox_id = await enqueue(resources, context=default_context(token="tok-SECRET-9"))

    row = await outbox_row(resources, outbox_id)
    assert row.status == "pending"
    assert row.attempts == 0
    assert row.kind == "email"
    assert row.payload["template"] == "verify_email"
    assert row.payload["to"] == "reader@example.com"
    raw_messages = await redis.lrange(QUEUE, 0, -1)
    assert len(raw_messages) == 1
    assert json.loads(raw_messages[0])["headers"]["task"] == "pagely.outbox.send"
    assert await _queued_ids(redis) == [str(outbox_id)]
    # The broker never sees the address or the token.
    [body] = await _queued_bodies(redis)
    assert json.loads(body)[0] == [str(outbox_id)]
    assert "reader@example.com" not in body
    assert "tok-SECRET-9" not in body


async def test_rollback_writes_and_sends_nothing(resources: Resources, redis: Redis) -> None:
    async def failing_request() -> None:
        async with transaction(resources.sessionmaker) as session:
            await enqueue_email(
                session, template="verify_email", to="a@example.com",
                context=default_context(), key="rolled-back",
            )  # fmt: skip
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError, match="the request failed"):
        await failing_request()

    assert await _count(resources) == 0
    assert await redis.llen(QUEUE) == 0


async def test_the_same_key_is_written_and_dispatched_once(
    resources: Resources, redis: Redis
) -> None:
    first = await enqueue(resources, key="verify:user-1")
    async with transaction(resources.sessionmaker) as session:
        again = await enqueue_email(
            session, template="verify_email", to="reader@example.com",
            context=default_context(), key="verify:user-1",
        )  # fmt: skip
    assert again is None
    assert await _count(resources) == 1
    assert await _queued_ids(redis) == [str(first)]


async def test_several_emails_in_one_transaction_are_dispatched_together(
    resources: Resources, redis: Redis
) -> None:
    async with transaction(resources.sessionmaker) as session:
        ids = [
            await enqueue_email(
                session,
                template="test_email",
                to=f"r{i}@example.com",
                context={},
                key=f"batch:{i}",
            )
            for i in range(3)
        ]
    assert sorted(await _queued_ids(redis)) == sorted(str(i) for i in ids)


async def test_an_unknown_template_fails_the_caller_not_a_worker(resources: Resources) -> None:
    with pytest.raises(UnknownTemplate):
        async with transaction(resources.sessionmaker) as session:
            await enqueue_email(session, template="nope", to="a@example.com", context={}, key="k")
    assert await _count(resources) == 0


async def test_broker_down_at_commit_keeps_the_row_pending_for_the_sweep(
    settings: Settings, resources: Resources, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    dead_broker = make_settings(
        settings.require("database_url"),
        settings.require("redis_url"),
        celery_broker_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    down = create_resources(dead_broker)
    try:
        async with down.engine.connect() as warm_up:  # time the outbox, not the first connect
            await warm_up.execute(text("SELECT 1"))
        started = time.monotonic()
        outbox_id = await enqueue(down)
        elapsed = time.monotonic() - started
    finally:
        await down.close()

    # A refused connection fails fast; it never waits out the publish timeout.
    assert elapsed < 1.0, f"commit with the broker down took {elapsed:.2f}s"
    events = [r.msg.get("event") for r in caplog.records if isinstance(r.msg, dict)]
    assert "outbox_publish_failed" in events
    assert (await outbox_row(resources, outbox_id)).status == "pending"
    assert await redis.llen(QUEUE) == 0

    # Not yet stale: the sweep leaves it alone; once stale, it claims it.
    assert await claim_stale(resources.sessionmaker, resources.settings) == []
    async with resources.sessionmaker() as session, session.begin():
        row = await session.get(OutboxMessage, outbox_id)
        assert row is not None
        row.next_attempt_at = row.next_attempt_at.replace(year=2000)
    assert await claim_stale(resources.sessionmaker, resources.settings) == [outbox_id]
    # Stamped as due now: not claimed twice.
    assert await claim_stale(resources.sessionmaker, resources.settings) == []


async def test_an_unreachable_broker_never_delays_a_request_beyond_the_publish_timeout(
    settings: Settings,
) -> None:
    """A broker that accepts the connection and then never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hung = make_settings(
            settings.require("database_url"),
            settings.require("redis_url"),
            celery_broker_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            outbox_publish_timeout_seconds=0.5,
            service_timeout_seconds=1.0,
        )
        slow = create_resources(hung)
        try:
            started = time.monotonic()
            outbox_id = await enqueue(slow, key=f"hung:{uuid.uuid4()}")
            assert time.monotonic() - started < 1.2
            # The publishing thread itself gives up too (socket timeout), so it is free for
            # the next commit instead of hanging forever.
            started = time.monotonic()
            assert await asyncio.to_thread(slow.dispatcher.publish, [outbox_id]) == 0
            assert time.monotonic() - started < 5
        finally:
            await slow.close()
