"""Indexes that match every list filter and the keyset order, so that a filtered page
costs a range scan of its own rows, however many rows the tenant has; and the expiry
index of the idempotency records' background purge.

Each index is ``(tenant_id, <filter columns>, created_at, id)``: the filter's rows of the
tenant, already in page order. On PostgreSQL they are built with ``CREATE INDEX
CONCURRENTLY`` (outside a transaction), so a live database keeps taking writes while
they are built.

Revision ID: 0004_list_indexes
Revises: 0003_api_keys
"""

from __future__ import annotations

from alembic import op

revision = "0004_list_indexes"
down_revision: str | None = "0003_api_keys"
branch_labels: str | None = None
depends_on: str | None = None

LIST_INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ix_content_nodes_tenant_state_created", "content_nodes", ("state",)),
    ("ix_content_nodes_tenant_kind_created", "content_nodes", ("kind",)),
    ("ix_content_nodes_tenant_state_kind_created", "content_nodes", ("state", "kind")),
    ("ix_orders_tenant_state_created", "orders", ("state",)),
)
"""(name, table, filter columns) of each index; the columns end with the keyset's."""
# The background purge of expired idempotency records reads them oldest expiry first.
EXPIRY_INDEX = ("ix_idempotency_keys_expires", "idempotency_keys", "expires_at")


def upgrade() -> None:
    concurrently = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        for name, table, columns in LIST_INDEXES:
            op.create_index(
                name,
                table,
                ["tenant_id", *columns, "created_at", "id"],
                postgresql_concurrently=concurrently,
            )
        name, table, column = EXPIRY_INDEX
        op.create_index(name, table, [column], postgresql_concurrently=concurrently)


def downgrade() -> None:
    concurrently = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        name, table, _column = EXPIRY_INDEX
        op.drop_index(name, table_name=table, postgresql_concurrently=concurrently)
        for name, table, _ in LIST_INDEXES:
            op.drop_index(name, table_name=table, postgresql_concurrently=concurrently)
