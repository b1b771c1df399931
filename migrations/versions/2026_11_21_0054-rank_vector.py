"""A small ranking vector (title, authors, subtitle, tags) beside the full search vector, so
relevance never reads a TOASTed description: the same trigger fills both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 00:54:20.913840+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION books_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.rank_vector :=
    setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
    setweight(to_tsvector('english', array_to_string(NEW.authors, ' ')), 'A') ||
    setweight(to_tsvector('english', coalesce(NEW.subtitle, '')), 'B') ||
    setweight(to_tsvector('english', array_to_string(NEW.tags, ' ')), 'B');
  NEW.search_vector := NEW.rank_vector ||
    setweight(to_tsvector('english', left(coalesce(NEW.description, ''), 20000)), 'C');
  RETURN NEW;
END
$$;
"""

PREVIOUS_FUNCTION = """
CREATE OR REPLACE FUNCTION books_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector :=
    setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
    setweight(to_tsvector('english', array_to_string(NEW.authors, ' ')), 'A') ||
    setweight(to_tsvector('english', coalesce(NEW.subtitle, '')), 'B') ||
    setweight(to_tsvector('english', array_to_string(NEW.tags, ' ')), 'B') ||
    setweight(to_tsvector('english', left(coalesce(NEW.description, ''), 20000)), 'C');
  RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.add_column("books", sa.Column("rank_vector", postgresql.TSVECTOR(), nullable=True))
    op.execute(SEARCH_FUNCTION)
    op.execute("UPDATE books SET title = title")  # fill it for existing rows


def downgrade() -> None:
    op.execute(PREVIOUS_FUNCTION)
    op.drop_column("books", "rank_vector")
