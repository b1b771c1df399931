"""The transactional outbox: a message is a row written in the caller's transaction, so it
exists exactly when the change that caused it was committed."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field, utcnow


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),
        # The sweep's query: pending rows that are due, oldest first.
        Index(
            "ix_outbox_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # The admin list: newest first, optionally by status.
        Index("ix_outbox_status_created_at", "status", "created_at", "id"),
        Index("ix_outbox_created_at", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(32))  # "email"
    # For email: {"template", "to", "context"}. Never listed by the admin API (it can hold
    # tokens), never logged.
    payload: dict[str, Any] = Field(sa_type=JSONB)
    idempotency_key: str = Field(sa_type=String(200), unique=True)
    # Where the message came from, for the worker to continue: the W3C trace context
    # (`traceparent`, `tracestate`) when a span was recording, and the request id.
    trace_context: dict[str, str] | None = Field(default=None, sa_type=JSONB)
    status: str = Field(default=OutboxStatus.pending, sa_type=String(16))
    attempts: int = 0
    # When a pending row is next due. The sweep re-dispatches rows still pending well past it.
    next_attempt_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": func.now(), "nullable": False},
    )
    last_error: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    failed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
