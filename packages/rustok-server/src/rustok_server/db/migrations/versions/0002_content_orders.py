"""Content nodes, orders, their transition history, and idempotency keys.

Revision ID: 0002_content_orders
Revises: 0001_tenants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rustok_server.db.base import UtcDateTime

revision = "0002_content_orders"
down_revision: str | None = "0001_tenants"
branch_labels: str | None = None
depends_on: str | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _history_columns(entity: str, table: str) -> list[sa.Column[object]]:
    return [
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            f"{entity}_id",
            sa.Uuid(),
            sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    ]


def _tenant_column(*, primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "tenant_id",
        sa.Uuid(),
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "content_nodes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant_column(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_data", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "slug", name="uq_content_nodes_tenant_slug"),
    )
    op.create_index(
        "ix_content_nodes_tenant_created", "content_nodes", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "content_node_transitions",
        *_history_columns("node", "content_nodes"),
        sa.UniqueConstraint("node_id", "version", name="uq_content_node_transitions_version"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant_column(),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_data", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_orders_tenant_created", "orders", ["tenant_id", "created_at", "id"])
    op.create_table(
        "order_transitions",
        *_history_columns("order", "orders"),
        sa.UniqueConstraint("order_id", "version", name="uq_order_transitions_version"),
    )
    op.create_table(
        "idempotency_keys",
        _tenant_column(primary_key=True),
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("order_transitions")
    op.drop_index("ix_orders_tenant_created", table_name="orders")
    op.drop_table("orders")
    op.drop_table("content_node_transitions")
    op.drop_index("ix_content_nodes_tenant_created", table_name="content_nodes")
    op.drop_table("content_nodes")
