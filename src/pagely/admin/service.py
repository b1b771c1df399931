"""Managing the outbox (the admin API): its numbers, the list and a retry."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pagely.admin import queries
from pagely.admin.errors import AlreadySent, MessageBusy, OutboxMessageNotFound
from pagely.core import metrics, probes
from pagely.core.db import reading
from pagely.core.outbox import queries as outbox
from pagely.core.outbox.dispatch import Dispatcher
from pagely.core.outbox.enqueue import dispatch_after_commit
from pagely.models.base import utcnow
from pagely.models.outbox import OutboxMessage, OutboxStatus
from pagely.settings import Settings

log = structlog.get_logger("pagely.metrics")

_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a NOWAIT lock that another transaction holds


@dataclass(frozen=True)
class OutboxReport:
    counts: dict[str, int]  # every status, zero included
    oldest_pending_age_seconds: float | None
    failed_last_hour: int
    broker_queue_depth: int | None
    counters: dict[str, int]


async def report(session: AsyncSession, redis: Redis, dispatcher: Dispatcher) -> OutboxReport:
    """The outbox from the database, the broker's queue (best effort) and the delivery
    counters every process adds to in Redis."""
    now = utcnow()
    counts = await queries.count_by_status(session)
    oldest_pending = await queries.oldest_pending_created_at(session)
    failed_last_hour = await queries.count_failed_since(session, now - timedelta(hours=1))
    depth, counters = await asyncio.gather(dispatcher.queue_depth(), metrics.read_counters(redis))
    return OutboxReport(
        counts={status.value: counts.get(status.value, 0) for status in OutboxStatus},
        oldest_pending_age_seconds=(
            round((now - oldest_pending).total_seconds(), 3) if oldest_pending else None
        ),
        failed_last_hour=failed_last_hour,
        broker_queue_depth=depth,
        counters=counters,
    )


async def list_messages(
    session: AsyncSession, *, status: OutboxStatus | None, limit: int, cursor: str | None
) -> tuple[list[OutboxMessage], str | None]:
    """Newest first: one page and the cursor of the next (None on the last)."""
    return await queries.page(session, status=status, limit=limit, cursor=cursor)


async def retry(session: AsyncSession, outbox_id: uuid.UUID) -> OutboxMessage:
    """Give a failed (or stuck pending) message a fresh set of attempts, now. A message being
    delivered right now is refused rather than waited for: its delivery holds the row lock
    for as long as SMTP takes."""
    try:
        row = await outbox.lock(session, outbox_id, nowait=True)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise MessageBusy() from None
        raise
    if row is None:
        raise OutboxMessageNotFound()
    if row.status == OutboxStatus.sent:
        raise AlreadySent()
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.failed_at = None
    await session.flush()
    dispatch_after_commit(session, row.id)
    return row


async def scrape(engine: AsyncEngine, redis: Redis, settings: Settings) -> bytes:
    """The Prometheus exposition: what the processes recorded, and what is read now (whether
    each dependency answers, the outbox's backlog, the delivery counters). A dependency that
    is down leaves its families out; the scrape itself always answers."""
    families: list[Metric] = []
    checks, outbox_numbers, counters = await asyncio.gather(
        probes.check_dependencies(engine, redis, settings),
        _outbox_numbers(engine, settings.service_timeout_seconds),
        _counters(redis, settings.service_timeout_seconds),
    )
    up = GaugeMetricFamily(
        "pagely_dependency_up", "Whether a dependency answered in time (1) or not (0).",
        labels=["dependency"],
    )  # fmt: skip
    for name, problem in checks.items():
        up.add_metric([name], 0 if problem else 1)
    ready = all(checks[name] is None for name in probes.REQUIRED)
    families += [up, GaugeMetricFamily("pagely_ready", "Whether /health/ready answers 200.",
                                       value=int(ready))]  # fmt: skip
    if outbox_numbers is not None:
        pending, failed, oldest = outbox_numbers
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        families += [
            GaugeMetricFamily("pagely_outbox_pending", "Messages not yet sent.", value=pending),
            GaugeMetricFamily(
                "pagely_outbox_failed",
                "Messages that used up their attempts (the dead-letter list).",
                value=failed,
            ),
            GaugeMetricFamily(
                "pagely_outbox_oldest_pending_age_seconds",
                "Age of the oldest pending message (0: none).",
                value=age,
            ),
        ]
    if counters is not None:
        for key, name, what in (
            (metrics.OUTBOX_SENT, "pagely_emails_sent", "Emails the SMTP server accepted."),
            (metrics.OUTBOX_RETRIED, "pagely_emails_retried", "Email attempts to try again."),
            (metrics.OUTBOX_FAILED, "pagely_emails_failed", "Emails given up on."),
        ):
            families.append(CounterMetricFamily(name, what, value=counters.get(key, 0)))
    return metrics.exposition(families)


async def _outbox_numbers(
    engine: AsyncEngine, seconds: float
) -> tuple[int, int, datetime | None] | None:
    try:
        async with asyncio.timeout(seconds), reading(engine) as conn:
            return await queries.outbox_gauges(conn)
    except Exception as exc:  # the scrape goes on without them
        log.warning("metrics_outbox_unavailable", error=type(exc).__name__)
        return None


async def _counters(redis: Redis, seconds: float) -> dict[str, int] | None:
    try:
        async with asyncio.timeout(seconds):
            return await metrics.read_counters(redis)
    except Exception as exc:
        log.warning("metrics_counters_unavailable", error=type(exc).__name__)
        return None
