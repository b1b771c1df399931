"""Roles: named sets of permissions (see `pagely.identity.permissions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class RoleDefinition(SQLModel, table=True):
    __tablename__ = "roles"

    name: str = Field(sa_type=String(40), primary_key=True)
    description: str = Field(default="", sa_type=String(200))
    # Custom roles only: a built-in role's permissions are defined in code, and stay empty here.
    permissions: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(40)), nullable=False, server_default=text("'{}'")),
    )
    built_in: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
