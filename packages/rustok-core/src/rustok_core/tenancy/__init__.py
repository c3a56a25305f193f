"""Tenant identifiers: validated and normalised before any lookup.

A tenant is named by a UUID, a slug or a host name. Every refusal is an
`InvalidTenantIdentifierError` (a ``VALIDATION`` `RichError`, so a 400 problem) with a
stable reason code::

    from rustok_core.tenancy import parse_tenant_identifier, validate_host
"""

from rustok_core._public import show_as_public
from rustok_core.tenancy._errors import (
    IdentifierKind,
    InvalidTenantIdentifierError,
    RejectionReason,
)
from rustok_core.tenancy._identifier import TenantIdentifier, parse_tenant_identifier
from rustok_core.tenancy._reserved import RESERVED_SLUGS
from rustok_core.tenancy._validate import (
    MAX_HOST_LENGTH,
    MAX_SLUG_LENGTH,
    SLUG_PATTERN,
    validate_host,
    validate_slug,
    validate_uuid,
)

__all__ = [
    "MAX_HOST_LENGTH",
    "MAX_SLUG_LENGTH",
    "RESERVED_SLUGS",
    "SLUG_PATTERN",
    "IdentifierKind",
    "InvalidTenantIdentifierError",
    "RejectionReason",
    "TenantIdentifier",
    "parse_tenant_identifier",
    "validate_host",
    "validate_slug",
    "validate_uuid",
]

show_as_public(
    __name__, IdentifierKind, InvalidTenantIdentifierError, RejectionReason, TenantIdentifier
)
