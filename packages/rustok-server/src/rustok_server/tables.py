"""Tables of the content and order APIs: entities, their transition history, and
stored results of idempotent requests.

An entity row holds the entity's fields, its ``state`` name, the ``state_data`` of
that state (JSON) and its ``version``; every row carries ``tenant_id``. A history row
is one `TransitionRecord`; ``(entity id, version)`` is unique, so a transition can
never be recorded twice even if two writers got past the version check.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.models import Base, UtcDateTime

__all__ = [
    "ContentNodeRow",
    "ContentTransitionRow",
    "IdempotencyRow",
    "OrderRow",
    "OrderTransitionRow",
]

# SQLite assigns increasing ids only to an INTEGER PRIMARY KEY; PostgreSQL gets a bigserial.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")
_TENANT_FK = "tenants.id"


class ContentNodeRow(Base):
    """One content node of a tenant (see ``rustok_content.ContentNode``)."""

    __tablename__ = "content_nodes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug", name="uq_content_nodes_tenant_slug"),
        Index("ix_content_nodes_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(_TENANT_FK, ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    slug: Mapped[str] = mapped_column(String(255), nullable=False)
    author_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    state_data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class ContentTransitionRow(Base):
    """One transition of a content node: its audit trail, in ``version`` order."""

    __tablename__ = "content_node_transitions"
    __table_args__ = (
        UniqueConstraint("node_id", "version", name="uq_content_node_transitions_version"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    node_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("content_nodes.id", ondelete="CASCADE"), nullable=False
    )
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)
    from_state: Mapped[str] = mapped_column(String(32), nullable=False)
    to_state: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)


class OrderRow(Base):
    """One order of a tenant (see ``rustok_commerce.Order``); the total is exact text."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(_TENANT_FK, ondelete="CASCADE"), nullable=False
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    # Decimal text, never a float: SQLite has no exact decimal type.
    amount: Mapped[str] = mapped_column(String(40), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    state_data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class OrderTransitionRow(Base):
    """One transition of an order: its audit trail, in ``version`` order."""

    __tablename__ = "order_transitions"
    __table_args__ = (UniqueConstraint("order_id", "version", name="uq_order_transitions_version"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
    )
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)
    from_state: Mapped[str] = mapped_column(String(32), nullable=False)
    to_state: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)


class IdempotencyRow(Base):
    """The first result of a request sent with an ``Idempotency-Key``, until it expires.

    ``scope`` names the operation (``POST /api/commerce/orders``, or the payment of one
    order); ``request_hash`` is the SHA-256 of the request body, so that the same key
    sent with another body is refused instead of answered with the wrong result.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(_TENANT_FK, ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer(), nullable=False)
    body: Mapped[str] = mapped_column(String(), nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
