"""Validation and normalisation of tenant UUIDs, slugs and host names."""

from __future__ import annotations

import re
import uuid
from typing import Final

import idna

from rustok_core.tenancy._errors import (
    IdentifierKind,
    InvalidTenantIdentifierError,
    RejectionReason,
)
from rustok_core.tenancy._reserved import RESERVED_SLUGS

__all__ = [
    "MAX_HOST_LENGTH",
    "MAX_SLUG_LENGTH",
    "SLUG_PATTERN",
    "looks_like_uuid",
    "validate_host",
    "validate_slug",
    "validate_uuid",
]

#: The longest slug accepted.
MAX_SLUG_LENGTH: Final = 63
"""The most characters of a tenant slug (a DNS label's limit)."""
#: The longest host name accepted (RFC 1035, in its dotted text form).
MAX_HOST_LENGTH: Final = 253
"""The most characters of a tenant's host name (a DNS name's limit)."""
_MAX_LABEL_LENGTH: Final = 63
# Anything much longer than a host name is refused before IDNA processing looks at it.
_MAX_RAW_HOST_LENGTH: Final = 4 * MAX_HOST_LENGTH

SLUG_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
"""What a tenant slug is: lowercase ASCII letters, digits and ``-``, starting with a letter or
digit."""
_UUID_PATTERN: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
)
_LABEL_PATTERN: Final = re.compile(r"[a-z0-9-]+", re.ASCII)
_PORT_PATTERN: Final = re.compile(r"[0-9]{0,5}", re.ASCII)


def looks_like_uuid(raw: str) -> bool:
    """Whether ``raw`` (trimmed, any case) has the hyphenated 8-4-4-4-12 UUID shape."""
    return _UUID_PATTERN.fullmatch(raw.strip().lower()) is not None


def validate_uuid(raw: str) -> uuid.UUID:
    """Validate a tenant UUID in its hyphenated 8-4-4-4-12 form, in any case.

    Surrounding whitespace is ignored. Braces, ``urn:uuid:`` and the 32-digit form
    are refused, so one tenant has exactly one textual id (``str()`` of the result).

    Raises:
        InvalidTenantIdentifierError: reason ``empty`` or ``invalid_uuid``.
    """
    text = raw.strip()
    if not text:
        raise InvalidTenantIdentifierError(RejectionReason.EMPTY, IdentifierKind.UUID, raw)
    lowered = text.lower()
    if _UUID_PATTERN.fullmatch(lowered) is None:
        raise InvalidTenantIdentifierError(RejectionReason.INVALID_UUID, IdentifierKind.UUID, raw)
    return uuid.UUID(lowered)


def validate_slug(raw: str) -> str:
    """Validate a tenant slug and return it normalised (trimmed, lower case).

    A slug matches ``^[a-z0-9][a-z0-9-]{0,62}$`` once trimmed and lower-cased, and is
    not one of `RESERVED_SLUGS`. Only ASCII is accepted: lower-casing is never
    allowed to turn another script's letter into an ASCII one.

    Raises:
        InvalidTenantIdentifierError: reason ``empty``, ``too_long``,
            ``invalid_characters`` or ``reserved``.

    Examples:
        >>> validate_slug("  Acme-Shop ")
        'acme-shop'
    """
    text = raw.strip()
    if not text:
        raise InvalidTenantIdentifierError(RejectionReason.EMPTY, IdentifierKind.SLUG, raw)
    if len(text) > MAX_SLUG_LENGTH:
        raise InvalidTenantIdentifierError(RejectionReason.TOO_LONG, IdentifierKind.SLUG, raw)
    if not text.isascii():
        raise InvalidTenantIdentifierError(
            RejectionReason.INVALID_CHARACTERS, IdentifierKind.SLUG, raw
        )
    slug = text.lower()
    if SLUG_PATTERN.fullmatch(slug) is None:
        raise InvalidTenantIdentifierError(
            RejectionReason.INVALID_CHARACTERS, IdentifierKind.SLUG, raw
        )
    if slug in RESERVED_SLUGS:
        raise InvalidTenantIdentifierError(RejectionReason.RESERVED, IdentifierKind.SLUG, raw)
    return slug


def validate_host(raw: str) -> str:
    """Validate a host name (a ``Host`` header value) and return it normalised.

    Surrounding whitespace, a port (``:8080``) and one trailing dot are removed,
    the name is lower-cased, and a non-ASCII name is converted to its ASCII
    (``xn--``) form by IDNA 2008 with UTS 46 mapping. The result is at most 253
    characters of labels of 1-63 letters, digits and hyphens, no label starting
    or ending with a hyphen. IP literals in brackets are refused.

    Raises:
        InvalidTenantIdentifierError: reason ``empty``, ``too_long``, ``invalid_port``,
            ``invalid_idna``, ``invalid_characters``, ``empty_label``,
            ``label_too_long`` or ``hyphen_at_label_edge``.

    Examples:
        >>> validate_host("Shop.Example.COM:8443")
        'shop.example.com'
        >>> validate_host("bücher.example")
        'xn--bcher-kva.example'
    """

    def refuse(reason: RejectionReason) -> InvalidTenantIdentifierError:
        return InvalidTenantIdentifierError(reason, IdentifierKind.HOST, raw)

    text = raw.strip()
    if not text:
        raise refuse(RejectionReason.EMPTY)
    if len(text) > _MAX_RAW_HOST_LENGTH:
        raise refuse(RejectionReason.TOO_LONG)
    name, colon, port = text.rpartition(":")
    if colon:
        if ":" in name or name.startswith("["):
            raise refuse(RejectionReason.INVALID_CHARACTERS)
        if _PORT_PATTERN.fullmatch(port) is None or (port and int(port) > 65535):
            raise refuse(RejectionReason.INVALID_PORT)
        text = name
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise refuse(RejectionReason.EMPTY)
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except UnicodeError:  # idna.IDNAError is a UnicodeError
            raise refuse(RejectionReason.INVALID_IDNA) from None
    host = text.lower()
    if len(host) > MAX_HOST_LENGTH:
        raise refuse(RejectionReason.TOO_LONG)
    for label in host.split("."):
        if not label:
            raise refuse(RejectionReason.EMPTY_LABEL)
        if len(label) > _MAX_LABEL_LENGTH:
            raise refuse(RejectionReason.LABEL_TOO_LONG)
        if _LABEL_PATTERN.fullmatch(label) is None:
            raise refuse(RejectionReason.INVALID_CHARACTERS)
        if label.startswith("-") or label.endswith("-"):
            raise refuse(RejectionReason.HYPHEN_AT_LABEL_EDGE)
    return host
