"""Indexes for ranking search in two small steps (catalog/search.py `candidates`): the title
and author vector gets its own GIN index, and the popularity signal a descending index.

Both are built in the migration's transaction, which blocks writes to books while they build
(about 6 s for a million books here); build them CONCURRENTLY by hand first on a large
catalog that must stay writable, and this migration will find them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 03:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_books_rank_vector ON books USING gin (rank_vector)")
    # bigint: popularity may be up to 2**31 - 1 (an import caps it there), and the sum must
    # not overflow. Written exactly as search.popularity() builds it, so the planner uses it.
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_books_popularity ON books "
        "((CAST(popularity AS BIGINT) + rating_count) DESC, id DESC)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_books_popularity")
    op.execute("DROP INDEX IF EXISTS ix_books_rank_vector")
