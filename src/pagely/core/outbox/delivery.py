"""The worker's side of the outbox: deliver one message, and sweep up the undelivered.

An attempt is counted before its send begins, in a transaction of its own: a message whose
send kills the worker every time (a poison message) still uses up its attempts, and the
attempt after the last marks it `failed` instead of sending it again, so it lands in the
dead-letter list rather than being re-dispatched by the sweep forever.

Then delivery holds the row's lock (SELECT ... FOR UPDATE) from the status check until the
result is committed, so two deliveries of the same task cannot both send it: the second waits,
then sees `sent`, or sees that a later attempt was started and leaves the message to it. A
worker killed mid-send drops its connection, PostgreSQL releases the lock and rolls back the
send's transaction (the attempt stays counted), and the row is still pending for the sweep.
The sweep skips locked rows, so it never re-dispatches a message that is being sent right now.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import aiosmtplib
import jinja2
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pagely.core import metrics, telemetry
from pagely.core.db import transaction
from pagely.core.mail.render import UnknownTemplate, render_email
from pagely.core.mail.smtp import PermanentSMTPError, build_message, describe_error, send_message
from pagely.core.outbox import queries
from pagely.models.base import utcnow
from pagely.models.outbox import OutboxMessage, OutboxStatus
from pagely.settings import Settings

log = structlog.get_logger("pagely.outbox")

SWEEP_BATCH = 500

# Errors worth another attempt: the server said "try later" (4xx), went away or timed out.
_TRANSIENT = (aiosmtplib.SMTPException, OSError, TimeoutError)
# Errors no retry will fix.
_PERMANENT = (PermanentSMTPError, UnknownTemplate, jinja2.TemplateError, KeyError)


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "retry", "failed", "skipped"]
    retry_in: float | None = None


def backoff_seconds(settings: Settings, attempt: int) -> float:
    """Exponential from the base, capped, with "equal jitter" (half fixed, half random), so
    a burst of failures does not come back as a burst."""
    ceiling = min(
        settings.outbox_retry_max_seconds,
        settings.outbox_retry_base_seconds * 2 ** max(attempt - 1, 0),
    )
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter


class WorkerLost(Exception):
    """Every attempt so far ended without a result: its worker died mid-send."""


@dataclass(frozen=True)
class _Settled:
    """What one delivery committed, to count and log once it has."""

    outcome: Outcome
    template: str | None = None
    attempts: int = 0
    error: str | None = None


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
    outbox_id: uuid.UUID,
) -> Outcome:
    """Send one message, once: count the attempt, render it, hand it to SMTP and record the
    result. `redis` holds the delivery counters."""
    started, origin = await _start_attempt(sessionmaker, settings, outbox_id)
    # The rest belongs to the request that wrote the message: its trace, its request id.
    with telemetry.continued(origin, "outbox.deliver", **{"pagely.outbox_id": str(outbox_id)}):
        if isinstance(started, int):
            settled = await _send(sessionmaker, settings, outbox_id, started)
        else:
            settled = started
        await _report(redis, outbox_id, settled)
    return settled.outcome


async def _start_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, outbox_id: uuid.UUID
) -> tuple[int | _Settled, dict[str, str] | None]:
    """Count one more attempt, committed before anything is sent: the attempt's number, or
    what was settled instead, and the message's trace context. A pending message whose every
    attempt so far ended without a result (the worker died mid-send) is failed once they are
    used up."""
    async with transaction(sessionmaker) as session:
        row = await queries.lock(session, outbox_id)
        if row is None or row.status != OutboxStatus.pending:
            return _Settled(Outcome("skipped")), None
        if row.attempts < settings.outbox_max_attempts:
            row.attempts += 1
            return row.attempts, row.trace_context
        outcome = _fail(row, WorkerLost(f"no attempt of {row.attempts} finished"))
        settled = _Settled(outcome, row.payload.get("template"), row.attempts, row.last_error)
        return settled, row.trace_context


async def _send(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    outbox_id: uuid.UUID,
    attempt: int,
) -> _Settled:
    """Attempt number `attempt`, under the row's lock until its result is committed."""
    async with transaction(sessionmaker) as session:
        row = await queries.lock(session, outbox_id)
        if row is None or row.status != OutboxStatus.pending or row.attempts != attempt:
            # Sent meanwhile, or another delivery took a later turn.
            return _Settled(Outcome("skipped"))
        try:
            message = build_message(
                settings,
                render_email(settings, row.payload["template"], row.payload["context"]),
                to=row.payload["to"],
                message_id=str(row.id),
            )
            await send_message(settings, message)
        except _PERMANENT as exc:
            outcome = _fail(row, exc)
        except _TRANSIENT as exc:
            row.last_error = describe_error(exc)
            if row.attempts >= settings.outbox_max_attempts:
                outcome = _fail(row, exc)
            else:
                delay = backoff_seconds(settings, row.attempts)
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                outcome = Outcome("retry", retry_in=delay)
        else:
            row.status = OutboxStatus.sent
            row.sent_at = utcnow()
            row.last_error = None
            outcome = Outcome("sent")
        return _Settled(outcome, row.payload.get("template"), row.attempts, row.last_error)


async def _report(redis: Redis, outbox_id: uuid.UUID, settled: _Settled) -> None:
    """Committed: now count it and say so (never the recipient, the context or a link)."""
    outcome = settled.outcome
    fields = {"outbox_id": str(outbox_id), "template": settled.template,
              "attempt": settled.attempts}  # fmt: skip
    if outcome.status == "sent":
        await metrics.increment(redis, metrics.OUTBOX_SENT)
        log.info("email_sent", **fields)
    elif outcome.status == "retry":
        await metrics.increment(redis, metrics.OUTBOX_RETRIED)
        log.warning("email_retry", **fields, retry_in=round(outcome.retry_in or 0, 2),
                    error=_error_kind(settled.error))  # fmt: skip
    elif outcome.status == "failed":
        await metrics.increment(redis, metrics.OUTBOX_FAILED)
        log.error("email_failed", **fields, error=_error_kind(settled.error))


def _fail(row: OutboxMessage, exc: BaseException) -> Outcome:
    row.status = OutboxStatus.failed
    row.failed_at = utcnow()
    row.last_error = describe_error(exc)
    return Outcome("failed")


def _error_kind(error: str | None) -> str | None:
    # The exception class only: server messages can quote the recipient address.
    return error.split(":", 1)[0] if error else None


async def claim_stale(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    limit: int = SWEEP_BATCH,
) -> list[uuid.UUID]:
    """Pending rows still undelivered well after they were due: stamp them as due again now
    (so the next sweep waits another interval) and return them for re-dispatch."""
    cutoff = utcnow() - timedelta(seconds=settings.outbox_redispatch_after_seconds)
    async with transaction(sessionmaker) as session:
        return await queries.claim_due_before(session, cutoff, limit=limit)
