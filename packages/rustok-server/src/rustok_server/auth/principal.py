"""Who is acting: the principal a verified credential stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rustok_core.tenancy import TenantIdentifier

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified identity behind a request.

    Attributes:
        actor: the key's public id, or the token's ``sub``: the ``actor`` of history rows.
        tenant: the tenant it acts for; ``None`` for a platform admin.
        scopes: what it may do.
        kind: ``key`` (an API key) or ``token`` (a JWT).
    """

    actor: str
    tenant: TenantIdentifier | None
    scopes: frozenset[str]
    kind: Literal["key", "token"]

    def has_any(self, scopes: tuple[str, ...]) -> bool:
        """Whether it holds at least one of ``scopes``."""
        return any(scope in self.scopes for scope in scopes)
