from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class Role(StrEnum):
    """The built-in roles (custom ones are rows of `roles` too; see `RoleDefinition`)."""

    user = "user"
    moderator = "moderator"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_normalised"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Stored normalised (lower-case), so the unique index is case-insensitive.
    email: str = Field(sa_type=String(320), unique=True)
    name: str = Field(sa_type=String(100))
    password_hash: str = Field(sa_type=String(255))
    # A role that is assigned cannot be deleted (the foreign key backs the check in code).
    role: str = Field(
        default=Role.user,
        sa_column=Column(String(40), ForeignKey("roles.name"), index=True, nullable=False),
    )
    is_verified: bool = False
    is_active: bool = True
    # Bumped by a password change, a reset, logout-all and deactivation: tokens carrying an
    # older version are refused.
    token_version: int = 0
    # Notification preference: an email when someone reviews one of my books.
    email_on_review: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
