"""Tags, reviews, notifications, idempotency keys and the search lexicon."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class Tag(SQLModel, table=True):
    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_type=String(50), unique=True)


class BookTag(SQLModel, table=True):
    __tablename__ = "book_tags"
    __table_args__ = (Index("ix_book_tags_tag_id", "tag_id"),)

    book_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("books.id", ondelete="CASCADE"), primary_key=True)
    )
    tag_id: int = Field(
        sa_column=Column(Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    )
    position: int = Field(default=0, sa_type=SmallInteger)


class Review(SQLModel, table=True):
    """One review per user per book: the primary key is (user_id, book_id)."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("char_length(body) <= 5000", name="body_length"),
        Index("ix_reviews_book_id_created_at", "book_id", "created_at", "user_id"),
        Index("ix_reviews_book_id_rating", "book_id", "rating", "created_at", "user_id"),
        Index("ix_reviews_user_id_created_at", "user_id", "created_at", "book_id"),
    )

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    book_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("books.id", ondelete="CASCADE"), primary_key=True)
    )
    rating: int = Field(sa_type=SmallInteger)
    title: str | None = Field(default=None, sa_type=String(200))
    body: str = Field(default="", sa_type=Text)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_created_at", "user_id", "created_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_type=String(32))
    book_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("books.id", ondelete="CASCADE"), index=True, nullable=True),
    )
    actor_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("users.id", ondelete="SET NULL"), index=True, nullable=True),
    )
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()


class IdempotencyKey(SQLModel, table=True):
    """The first response to a POST carrying `Idempotency-Key`, per user, replayed on retry."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(sa_type=String(255), primary_key=True)
    request_hash: str = Field(sa_type=String(64))
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()


class SearchWord(SQLModel, table=True):
    """Words of titles and authors: the dictionary that typo correction (pg_trgm) draws on."""

    __tablename__ = "search_words"

    word: str = Field(sa_type=String(100), primary_key=True)
