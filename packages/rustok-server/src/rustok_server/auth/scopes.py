"""The scopes a credential may hold, and what each lets it do."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["ADMIN", "TENANT_SCOPES", "Scope", "parse_scopes"]


class Scope(StrEnum):
    """One permission of a credential."""

    CONTENT_READ = "content:read"
    """Read content nodes and their history."""
    CONTENT_WRITE = "content:write"
    """Create, change, publish, archive and restore content nodes."""
    ORDERS_READ = "orders:read"
    """Read orders and their history."""
    ORDERS_WRITE = "orders:write"
    """Create orders and move them through their lifecycle."""
    WEBHOOKS_READ = "webhooks:read"
    """Read webhook endpoints and their deliveries (never a signing secret)."""
    WEBHOOKS_WRITE = "webhooks:write"
    """Create, change, rotate and delete webhook endpoints; re-send deliveries."""
    ADMIN = "admin"
    """Platform administration: tenants and their keys (admin keys only; no tenant)."""


ADMIN: Final = Scope.ADMIN
"""The scope of a platform administrator's key: every route, the admin API included."""
TENANT_SCOPES: Final = (
    Scope.CONTENT_READ,
    Scope.CONTENT_WRITE,
    Scope.ORDERS_READ,
    Scope.ORDERS_WRITE,
    Scope.WEBHOOKS_READ,
    Scope.WEBHOOKS_WRITE,
)
"""Every scope a tenant's key may hold."""


def parse_scopes(values: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """Scopes from a space-separated string (the OAuth form) or a list of names.

    Unknown names are kept: a token may carry scopes of other services, which simply
    grant nothing here.
    """
    parts = values.split() if isinstance(values, str) else values
    return frozenset(part.strip() for part in parts if part.strip())
