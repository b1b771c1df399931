from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlmodel import Column, Field, SQLModel

from pagely.models.base import created_at_field, updated_at_field


class Book(SQLModel, table=True):
    __tablename__ = "books"
    __table_args__ = (
        CheckConstraint("rating_avg >= 0 AND rating_avg <= 5", name="rating_avg_range"),
        CheckConstraint("rating_count >= 0", name="rating_count_non_negative"),
        CheckConstraint("cardinality(authors) >= 1", name="has_author"),
        CheckConstraint("cardinality(rating_hist) = 5", name="rating_hist_five"),
        Index("ix_books_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_books_rank_vector", "rank_vector", postgresql_using="gin"),
        Index("ix_books_tags", "tags", postgresql_using="gin"),
        Index("ix_books_created_at_id", "created_at", "id"),
        Index("ix_books_title_id", "title", "id"),
        Index("ix_books_rating_avg_id", "rating_avg", "id"),
        Index("ix_books_language", "language"),
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
    rating_sum: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Reviews with 1..5 stars; with count and sum, recomputed from the reviews in the same
    # transaction as every review write, under the book's row lock.
    rating_hist: list[int] = Field(
        default_factory=lambda: [0] * 5,
        sa_column=Column(ARRAY(Integer), nullable=False, server_default="{0,0,0,0,0}"),
    )
    # Slugs in order, a copy of book_tags kept in the same transaction: one row read serves a
    # book with its tags, and the search trigger can index them.
    tags: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(50)), nullable=False, server_default="{}"),
    )
    # An outside popularity signal (e.g. ratings counted elsewhere, from an import); it only
    # breaks relevance ties in search.
    popularity: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Maintained by the books_search_vector trigger (see the 0004 migration).
    search_vector: str | None = Field(default=None, sa_column=Column(TSVECTOR, nullable=True))
    # Title, authors, subtitle and tags only: small enough to stay inline, so ranking many
    # matches never reads the (TOASTed) description part of search_vector. Same trigger.
    rank_vector: str | None = Field(default=None, sa_column=Column(TSVECTOR, nullable=True))
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
