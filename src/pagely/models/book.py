from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, Numeric, String, Text
from sqlmodel import Column, Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class Book(SQLModel, table=True):
    __tablename__ = "books"
    __table_args__ = (
        CheckConstraint("rating_avg >= 0 AND rating_avg <= 5", name="rating_avg_range"),
        CheckConstraint("rating_count >= 0", name="rating_count_non_negative"),
        CheckConstraint("cardinality(authors) >= 1", name="has_author"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(sa_type=String(500))
    subtitle: str | None = Field(default=None, sa_type=String(500))
    authors: list[str] = Field(sa_column=Column(ARRAY(String(200)), nullable=False))
    isbn13: str | None = Field(default=None, sa_type=String(13), unique=True)
    isbn10: str | None = Field(default=None, sa_type=String(10))
    publisher: str | None = Field(default=None, sa_type=String(200))
    published_date: date | None = None
    page_count: int | None = None
    language: str = Field(default="en", sa_type=String(8))
    description: str | None = Field(default=None, sa_type=Text)
    owner_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("users.id", ondelete="SET NULL"), index=True, nullable=True),
    )
    rating_avg: Decimal = Field(
        default=Decimal("0"),
        sa_column=Column(Numeric(3, 2), nullable=False, server_default="0"),
    )
    rating_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
