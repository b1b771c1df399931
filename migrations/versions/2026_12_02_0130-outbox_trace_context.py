"""The outbox row carries the trace context and request id of the request that wrote it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a metadata-only change, no table rewrite and no long lock.
    op.add_column(
        "outbox", sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("outbox", "trace_context")
