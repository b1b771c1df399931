"""Sliding sessions and the refresh grace window

`max_expires_at` caps a session that slides (existing sessions: 90 days from sign-in, or
their old fixed end if later); `previous_jti`, `rotated_at` and `successor` let a refresh
token presented again just after its rotation get the same successor pair.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "auth_sessions", sa.Column("max_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE auth_sessions"
        " SET max_expires_at = GREATEST(expires_at, created_at + interval '90 days')"
    )
    # The default serves rows an instance without this column inserts during a rolling deploy.
    op.alter_column(
        "auth_sessions",
        "max_expires_at",
        nullable=False,
        server_default=sa.text("(now() + '90 days'::interval)"),
    )
    op.add_column("auth_sessions", sa.Column("previous_jti", sa.String(length=64), nullable=True))
    op.add_column(
        "auth_sessions", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "auth_sessions",
        sa.Column("successor", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("auth_sessions", "successor")
    op.drop_column("auth_sessions", "rotated_at")
    op.drop_column("auth_sessions", "previous_jti")
    op.drop_column("auth_sessions", "max_expires_at")
