"""Roles: named sets of permissions

A `roles` table holds the built-in roles (their permissions are defined in code) and the
custom ones admins create; `users.role` references it, so an assigned role cannot be deleted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUILT_IN = {
    "user": "Every account: reads, and writes its own books and reviews",
    "moderator": "Keeps reviews civil",
    "admin": "Holds every permission",
}


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column(
            "permissions",
            postgresql.ARRAY(sa.String(length=40)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("built_in", sa.Boolean(), nullable=False),
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
        sa.PrimaryKeyConstraint("name", name=op.f("pk_roles")),
    )
    op.bulk_insert(
        roles,
        [{"name": n, "description": d, "built_in": True} for n, d in BUILT_IN.items()],
    )
    op.drop_constraint(op.f("ck_users_role_known"), "users", type_="check")
    op.alter_column("users", "role", type_=sa.String(length=40), existing_nullable=False)
    op.create_index(op.f("ix_users_role"), "users", ["role"])
    op.create_foreign_key(op.f("fk_users_role_roles"), "users", "roles", ["role"], ["name"])


def downgrade() -> None:
    # Users holding a custom role fall back to `user`: the built-in set is all 0008 knows.
    op.execute("UPDATE users SET role = 'user' WHERE role NOT IN ('user', 'moderator', 'admin')")
    op.drop_constraint(op.f("fk_users_role_roles"), "users", type_="foreignkey")
    op.drop_index(op.f("ix_users_role"), table_name="users")
    op.alter_column("users", "role", type_=sa.String(length=16), existing_nullable=False)
    op.create_check_constraint(
        op.f("ck_users_role_known"), "users", "role IN ('user', 'moderator', 'admin')"
    )
    op.drop_table("roles")
