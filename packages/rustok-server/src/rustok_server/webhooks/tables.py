"""The tables of webhooks: each tenant's endpoints and the event types each wants, the
outbox of events written with each change, and one delivery per event and endpoint.

- ``webhook_endpoints``: a receiver's URL, its signing secret (and the previous one, for
  the grace period after a rotation), whether it is enabled and, if not, why.
- ``webhook_subscriptions``: one row per (endpoint, event type); ``*`` is every type.
- ``webhook_events``: the outbox. One row per creation, update and transition of an
  entity, written in the change's own transaction, holding the body that is sent.
- ``webhook_deliveries``: one per (event, endpoint) subscribed when the event was written:
  its state, attempts, the time of the next one, and the claim of the process that is
  delivering it (``claimed_until``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.db.base import TENANT_FK, Base, UtcDateTime

__all__ = [
    "DeliveryStatus",
    "WebhookDeliveryRow",
    "WebhookEndpointRow",
    "WebhookEventRow",
    "WebhookSubscriptionRow",
]


class DeliveryStatus:
    """The values of ``webhook_deliveries.status``."""

    PENDING = "pending"
    """Not delivered yet: due at ``next_attempt_at``."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """Every attempt of the schedule failed, or the endpoint was disabled meanwhile."""


class WebhookEndpointRow(Base):
    """One receiver of a tenant's events."""

    __tablename__ = "webhook_endpoints"
    __table_args__: tuple[Index, ...] = (
        Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean(), nullable=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class WebhookSubscriptionRow(Base):
    """An event type an endpoint wants (``*``: every type)."""

    __tablename__ = "webhook_subscriptions"
    __table_args__: tuple[Index, ...] = (
        Index("ix_webhook_subscriptions_tenant_type", "tenant_id", "event_type"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)


class WebhookEventRow(Base):
    """One event of the outbox: written with its change, sent as ``body``."""

    __tablename__ = "webhook_events"
    __table_args__: tuple[Index, ...] = (Index("ix_webhook_events_created", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    body: Mapped[str] = mapped_column(Text(), nullable=False)
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)
    """The trace of the request that made the change (tracing on), which its deliveries
    continue."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class WebhookDeliveryRow(Base):
    """One event for one endpoint: its state, attempts and claim."""

    __tablename__ = "webhook_deliveries"
    __table_args__: tuple[UniqueConstraint | Index, ...] = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        # The claim: due pending deliveries, soonest first.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # An endpoint's deliveries, in page order.
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer(), nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
