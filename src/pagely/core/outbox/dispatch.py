"""Hand committed outbox rows to the broker, and ask it how many tasks wait there. Publishing
is blocking (kombu), so it runs on one dedicated thread; a broker that is down or slow costs a
request at most the publish timeout, and the rows it could not take stay pending for the
sweep."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import structlog
from celery import Celery
from opentelemetry.trace import SpanKind

from pagely.core import telemetry
from pagely.settings import Settings

log = structlog.get_logger("pagely.outbox")

SEND_TASK = "pagely.outbox.send"
# Put into every session's .info by Resources; without it, rows simply wait for the sweep.
DISPATCHER_INFO_KEY = "pagely.outbox.dispatcher"


class Dispatcher:
    def __init__(self, celery: Celery, settings: Settings) -> None:
        self._celery = celery
        self._queue = settings.celery_queue
        self._timeout = settings.outbox_publish_timeout_seconds
        self._probe_timeout = settings.service_timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publish")

    async def dispatch(self, ids: Sequence[uuid.UUID]) -> None:
        """From async code (after a commit): publish without blocking the event loop."""
        if not ids:
            return
        # In this request's context (its trace), which the executor's thread does not inherit.
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, context.run, self.publish, list(ids)
        )
        try:
            await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            log.warning("outbox_publish_slow", count=len(ids), timeout=self._timeout)

    def publish(self, ids: Sequence[uuid.UUID]) -> int:
        """Blocking. Returns how many were published; on the first broker error the rest are
        left pending (the sweep re-dispatches them), so a dead broker costs one attempt."""
        with telemetry.tracer.start_as_current_span(
            "outbox.dispatch", kind=SpanKind.PRODUCER, attributes={"pagely.messages": len(ids)}
        ):
            return self._publish(ids)

    def _publish(self, ids: Sequence[uuid.UUID]) -> int:
        published = 0
        for outbox_id in ids:
            try:
                self._celery.send_task(
                    SEND_TASK, args=[str(outbox_id)], queue=self._queue, retry=False
                )
            except Exception as exc:
                log.warning(
                    "outbox_publish_failed",
                    error=type(exc).__name__,
                    published=published,
                    left_for_sweep=len(ids) - published,
                )
                break
            published += 1
        return published

    async def queue_depth(self) -> int | None:
        """The tasks waiting in the queue, for monitoring: None when the broker does not answer
        within the service timeout. A queue nobody declared yet is empty."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._declared_queue_depth), self._probe_timeout
            )
        except Exception as exc:
            if "NOT_FOUND" in str(exc):  # RabbitMQ: the queue does not exist yet
                return 0
            log.warning("broker_queue_depth_unavailable", error=type(exc).__name__)
            return None

    def _declared_queue_depth(self) -> int:
        # On a thread of its own, not the publishing one: a slow answer must not hold up
        # the dispatch of committed rows.
        with self._celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            channel = cast(Any, connection.default_channel)
            declared = channel.queue_declare(queue=self._queue, passive=True)
            return int(declared.message_count)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
