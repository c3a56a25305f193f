"""API keys, per-tenant rate limits, and the counter of tenant and key changes.

Revision ID: 0003_api_keys
Revises: 0002_content_orders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rustok_server.db.base import UtcDateTime

revision = "0003_api_keys"
down_revision: str | None = "0002_content_orders"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "tenant_rate_limits",
        sa.Column(
            "tenant_id",
            sa.Uuid(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("per_second", sa.Float(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
    )
    changes = op.create_table(
        "auth_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("auth_changes")
    op.drop_table("tenant_rate_limits")
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
