"""A validated, normalised tenant identifier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rustok_core.tenancy._errors import IdentifierKind
from rustok_core.tenancy._validate import (
    looks_like_uuid,
    validate_host,
    validate_slug,
    validate_uuid,
)

__all__ = ["TenantIdentifier", "parse_tenant_identifier"]


def _normalise(kind: IdentifierKind, raw: str) -> str:
    if kind is IdentifierKind.UUID:
        return str(validate_uuid(raw))
    if kind is IdentifierKind.SLUG:
        return validate_slug(raw)
    return validate_host(raw)


@dataclass(frozen=True, slots=True)
class TenantIdentifier:
    """How a request names its tenant: a UUID, a slug or a host name, normalised.

    Constructing one validates and normalises ``value`` for its ``kind``, so every
    instance holds a canonical value (lower-case UUID, trimmed lower-case slug, ASCII
    host without port) and two spellings of one identifier compare equal.

    Raises:
        InvalidTenantIdentifierError: if ``value`` is not a valid identifier of ``kind``.

    Examples:
        >>> TenantIdentifier(IdentifierKind.SLUG, " Acme ")
        TenantIdentifier(kind=<IdentifierKind.SLUG: 'slug'>, value='acme')
    """

    kind: IdentifierKind
    value: str

    def __post_init__(self) -> None:
        kind = IdentifierKind(self.kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", _normalise(kind, self.value))

    @classmethod
    def from_uuid(cls, raw: str | uuid.UUID) -> TenantIdentifier:
        """A UUID identifier; see `validate_uuid`."""
        return cls(IdentifierKind.UUID, str(raw))

    @classmethod
    def from_slug(cls, raw: str) -> TenantIdentifier:
        """A slug identifier; see `validate_slug`."""
        return cls(IdentifierKind.SLUG, raw)

    @classmethod
    def from_host(cls, raw: str) -> TenantIdentifier:
        """A host-name identifier; see `validate_host`."""
        return cls(IdentifierKind.HOST, raw)

    def as_uuid(self) -> uuid.UUID:
        """The tenant id of a UUID identifier.

        Raises:
            ValueError: if this identifier is not a UUID.
        """
        if self.kind is not IdentifierKind.UUID:
            raise ValueError(
                f"tenant identifier {self.value!r} is a {self.kind.value}, not a uuid; "
                "look the tenant up by its kind instead"
            )
        return uuid.UUID(self.value)

    def __str__(self) -> str:
        return self.value


def parse_tenant_identifier(raw: str) -> TenantIdentifier:
    """Parse a tenant header value (``X-Tenant-ID``): a UUID, else a slug.

    A value with the 8-4-4-4-12 UUID shape (any case) is a UUID; anything else is
    validated as a slug.

    Raises:
        InvalidTenantIdentifierError: if the value is neither (the slug's reason).

    Examples:
        >>> parse_tenant_identifier("123E4567-E89B-12D3-A456-426614174000").value
        '123e4567-e89b-12d3-a456-426614174000'
        >>> parse_tenant_identifier("Acme").kind
        <IdentifierKind.SLUG: 'slug'>
    """
    if looks_like_uuid(raw):
        return TenantIdentifier(IdentifierKind.UUID, raw)
    return TenantIdentifier(IdentifierKind.SLUG, raw)
