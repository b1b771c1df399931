"""An index on idempotency_keys.created_at, for the periodic prune of expired keys.

Built in the migration's transaction, which blocks creates carrying an Idempotency-Key while
it builds (the table held every key ever used until this release added the prune). On a
large table, build it CONCURRENTLY by hand first, with the same name, and this migration
will find it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 03:38:50.969063+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_idempotency_keys_created_at ON idempotency_keys (created_at)"
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
