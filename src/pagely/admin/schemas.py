from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from pagely.models.outbox import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from pagely.admin.service import OutboxReport


class OutboxCounts(BaseModel):
    pending: int
    sent: int
    failed: int


class OutboxStats(BaseModel):
    counts: OutboxCounts
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the oldest message still waiting; null when none is."
    )
    failed_last_hour: int = Field(description="Messages that became `failed` in the last hour.")
    broker_queue_depth: int | None = Field(
        description="Tasks waiting in the broker queue; null when the broker cannot be asked."
    )
    counters: dict[str, int] = Field(
        description="Process-wide totals since the counters were last reset: "
        "outbox_sent_total, outbox_retried_total, outbox_failed_total."
    )

    @classmethod
    def of(cls, report: OutboxReport) -> OutboxStats:
        return cls(
            counts=OutboxCounts(**report.counts),
            oldest_pending_age_seconds=report.oldest_pending_age_seconds,
            failed_last_hour=report.failed_last_hour,
            broker_queue_depth=report.broker_queue_depth,
            counters=report.counters,
        )


class OutboxItem(BaseModel):
    """One message, without its template context (which can hold tokens)."""

    id: uuid.UUID
    kind: str
    template: str | None
    to: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, row: OutboxMessage) -> OutboxItem:
        return cls(
            id=row.id,
            kind=row.kind,
            template=row.payload.get("template"),
            to=row.payload.get("to"),
            status=OutboxStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            sent_at=row.sent_at,
            failed_at=row.failed_at,
        )
