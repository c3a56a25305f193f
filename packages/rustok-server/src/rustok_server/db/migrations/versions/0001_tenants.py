"""Create the tenants table.

Revision ID: 0001_tenants
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rustok_server.db.base import UtcDateTime

revision = "0001_tenants"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sa.UniqueConstraint("domain", name="uq_tenants_domain"),
    )


def downgrade() -> None:
    op.drop_table("tenants")
