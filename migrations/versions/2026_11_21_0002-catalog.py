"""Catalog: tags, reviews with rating aggregates, notifications, idempotency keys, full-text
search (a trigger-maintained weighted tsvector) and, where pg_trgm exists, typo correction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 00:02:34.706859+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Title and authors weigh most (A), then subtitle and tags (B), then the description (C).
# 'english' on both sides of every match, so stemming agrees (games ~ game).
SEARCH_FUNCTION = """
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

SEARCH_TRIGGER = """
CREATE TRIGGER books_search_vector BEFORE INSERT OR UPDATE OF
  title, subtitle, authors, tags, description ON books
FOR EACH ROW EXECUTE FUNCTION books_search_vector();
"""


def _has_trgm() -> bool:
    bind = op.get_bind()
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if available is None:
        return False
    bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    return True


def upgrade() -> None:
    op.create_table(
        "search_words",
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("word", name=op.f("pk_search_words")),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("slug", name=op.f("uq_tags_slug")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "book_tags",
        sa.Column("book_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_book_tags_book_id_books"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_book_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("book_id", "tag_id", name=op.f("pk_book_tags")),
    )
    op.create_index("ix_book_tags_tag_id", "book_tags", ["tag_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("book_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_notifications_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["books.id"],
            name=op.f("fk_notifications_book_id_books"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_actor_id"), "notifications", ["actor_id"], unique=False)
    op.create_index(op.f("ix_notifications_book_id"), "notifications", ["book_id"], unique=False)
    op.create_index(
        "ix_notifications_user_id_created_at",
        "notifications",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "reviews",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("book_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("char_length(body) <= 5000", name=op.f("ck_reviews_body_length")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_reviews_book_id_books"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reviews_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "book_id", name=op.f("pk_reviews")),
    )
    op.create_index(
        "ix_reviews_book_id_created_at",
        "reviews",
        ["book_id", "created_at", "user_id"],
        unique=False,
    )
    op.create_index(
        "ix_reviews_book_id_rating",
        "reviews",
        ["book_id", "rating", "created_at", "user_id"],
        unique=False,
    )
    op.create_index(
        "ix_reviews_user_id_created_at",
        "reviews",
        ["user_id", "created_at", "book_id"],
        unique=False,
    )
    op.add_column(
        "books", sa.Column("rating_sum", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "books",
        sa.Column(
            "rating_hist", sa.ARRAY(sa.Integer()), server_default="{0,0,0,0,0}", nullable=False
        ),
    )
    op.add_column(
        "books",
        sa.Column("tags", sa.ARRAY(sa.String(length=50)), server_default="{}", nullable=False),
    )
    op.add_column(
        "books", sa.Column("popularity", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("books", sa.Column("search_vector", postgresql.TSVECTOR(), nullable=True))
    op.create_index("ix_books_created_at_id", "books", ["created_at", "id"], unique=False)
    op.create_index("ix_books_language", "books", ["language"], unique=False)
    op.create_index("ix_books_rating_avg_id", "books", ["rating_avg", "id"], unique=False)
    op.create_index(
        "ix_books_search_vector", "books", ["search_vector"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_books_tags", "books", ["tags"], unique=False, postgresql_using="gin")
    op.create_index("ix_books_title_id", "books", ["title", "id"], unique=False)
    op.add_column(
        "users", sa.Column("email_on_review", sa.Boolean(), server_default="true", nullable=False)
    )
    # Keyset sorts on a date that may be missing: undated books sort last either way.
    op.execute(
        "CREATE INDEX ix_books_published_desc ON books "
        "((coalesce(published_date, '0001-01-01'::date)), id)"
    )
    op.execute(
        "CREATE INDEX ix_books_published_asc ON books "
        "((coalesce(published_date, '9999-12-31'::date)), id)"
    )
    op.execute(SEARCH_FUNCTION)
    op.execute(SEARCH_TRIGGER)
    op.execute("UPDATE books SET title = title")  # fill the vector for existing rows
    if _has_trgm():
        op.execute(
            "CREATE INDEX ix_search_words_word_trgm ON search_words USING gin (word gin_trgm_ops)"
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_search_words_word_trgm")
    op.execute("DROP TRIGGER IF EXISTS books_search_vector ON books")
    op.execute("DROP FUNCTION IF EXISTS books_search_vector()")
    op.execute("DROP INDEX IF EXISTS ix_books_published_desc")
    op.execute("DROP INDEX IF EXISTS ix_books_published_asc")
    op.drop_column("users", "email_on_review")
    op.drop_index("ix_books_title_id", table_name="books")
    op.drop_index("ix_books_tags", table_name="books", postgresql_using="gin")
    op.drop_index("ix_books_search_vector", table_name="books", postgresql_using="gin")
    op.drop_index("ix_books_rating_avg_id", table_name="books")
    op.drop_index("ix_books_language", table_name="books")
    op.drop_index("ix_books_created_at_id", table_name="books")
    op.drop_column("books", "search_vector")
    op.drop_column("books", "popularity")
    op.drop_column("books", "tags")
    op.drop_column("books", "rating_hist")
    op.drop_column("books", "rating_sum")
    op.drop_index("ix_reviews_user_id_created_at", table_name="reviews")
    op.drop_index("ix_reviews_book_id_rating", table_name="reviews")
    op.drop_index("ix_reviews_book_id_created_at", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_notifications_user_id_created_at", table_name="notifications")
    op.drop_index(op.f("ix_notifications_book_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_actor_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_book_tags_tag_id", table_name="book_tags")
    op.drop_table("book_tags")
    op.drop_table("idempotency_keys")
    op.drop_table("tags")
    op.drop_table("search_words")
