"""The tables of authentication: API keys and per-tenant rate limits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.db.base import TENANT_FK, Base, UtcDateTime, utcnow

__all__ = ["ApiKeyRow", "TenantRateLimitRow"]


class ApiKeyRow(Base):
    """One API key: never its secret, only the secret's SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), nullable=True, index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    scopes: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class TenantRateLimitRow(Base):
    """A tenant's own rate limit, overriding the server's default."""

    __tablename__ = "tenant_rate_limits"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), primary_key=True
    )
    per_second: Mapped[float] = mapped_column(Float(), nullable=False)
    burst: Mapped[int] = mapped_column(Integer(), nullable=False)
