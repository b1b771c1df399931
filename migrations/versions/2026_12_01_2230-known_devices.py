"""Known devices: the device key a session was signed in with

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_sessions", sa.Column("device_key", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_auth_sessions_user_id_device_key"), "auth_sessions", ["user_id", "device_key"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_sessions_user_id_device_key"), table_name="auth_sessions")
    op.drop_column("auth_sessions", "device_key")
