"""A sign-in session: one refresh-token family. Only the newest refresh token (its jti) is
valid; presenting an older one is reuse and revokes the family, except the one just rotated,
within the grace window (`previous_jti`, `rotated_at`): it gets the same successor pair again,
re-encoded from `successor` (claims only, never a token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, utcnow


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_id_device_key", "user_id", "device_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False),
    )
    refresh_jti: str = Field(sa_type=String(64))
    device: str | None = Field(default=None, sa_type=String(100))
    # SHA-256 of the device_id the app sent at sign-in: a device that signed in before gets
    # its own sign-in failure limit, apart from the account's (identity.service.signin).
    device_key: str | None = Field(default=None, sa_type=String(64))
    user_agent: str | None = Field(default=None, sa_type=String(300))
    ip: str | None = Field(default=None, sa_type=String(64))
    created_at: datetime = created_at_field()
    last_used_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    # Slides: each refresh moves it to now + REFRESH_TOKEN_DAYS, never past max_expires_at.
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    # Absolute end of the family (sign-in + SESSION_MAX_DAYS), however often it is refreshed.
    # The server default covers rows inserted by an instance older than this column (a rolling
    # deploy); the application always sets it.
    max_expires_at: datetime = Field(
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": text("(now() + '90 days'::interval)")},
    )
    # The refresh token the last rotation replaced, when, and the claims of the pair it issued.
    previous_jti: str | None = Field(default=None, sa_type=String(64))
    rotated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    successor: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
