"""The tables of orders and their transition history."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.db.base import Base, EntityColumns, TransitionColumns

__all__ = ["OrderRow", "OrderTransitionRow"]


class OrderRow(EntityColumns, Base):
    """One order of a tenant (see ``rustok_commerce.Order``); the total is exact text."""

    __tablename__ = "orders"
    __table_args__: tuple[Index, ...] = (
        Index("ix_orders_tenant_created", "tenant_id", "created_at", "id"),
        # The state filter in keyset order (migration 0003).
        Index("ix_orders_tenant_state_created", "tenant_id", "state", "created_at", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    # Decimal text, never a float: SQLite has no exact decimal type.
    amount: Mapped[str] = mapped_column(String(40), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)


class OrderTransitionRow(TransitionColumns, Base):
    """One transition of an order: its audit trail, in ``version`` order."""

    __tablename__ = "order_transitions"
    __table_args__: tuple[UniqueConstraint, ...] = (
        UniqueConstraint("order_id", "version", name="uq_order_transitions_version"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
    )
