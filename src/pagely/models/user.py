from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class Role(StrEnum):
    user = "user"
    moderator = "moderator"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'moderator', 'admin')", name="role_known"),
        CheckConstraint("email = lower(email)", name="email_normalised"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Stored normalised (lower-case), so the unique index is case-insensitive.
    email: str = Field(sa_type=String(320), unique=True)
    name: str = Field(sa_type=String(100))
    password_hash: str = Field(sa_type=String(255))
    role: str = Field(default=Role.user, sa_type=String(16))
    is_verified: bool = False
    is_active: bool = True
    # Bumped by a password change, a reset, logout-all and deactivation: tokens carrying an
    # older version are refused.
    token_version: int = 0
    # Notification preference: an email when someone reviews one of my books.
    email_on_review: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
