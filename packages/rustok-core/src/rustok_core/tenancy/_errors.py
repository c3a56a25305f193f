"""The typed refusal of a tenant identifier, and why it was refused."""

from __future__ import annotations

from enum import StrEnum

from rustok_core.error import ErrorKind, RichError

__all__ = ["IdentifierKind", "InvalidTenantIdentifierError", "RejectionReason"]

_MAX_ECHO = 80


class IdentifierKind(StrEnum):
    """How a tenant is identified: by id, by slug, or by the request's host name."""

    UUID = "uuid"
    SLUG = "slug"
    HOST = "host"


class RejectionReason(StrEnum):
    """Why an identifier was refused; the value is the stable reason code."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    INVALID_CHARACTERS = "invalid_characters"
    RESERVED = "reserved"
    INVALID_UUID = "invalid_uuid"
    EMPTY_LABEL = "empty_label"
    LABEL_TOO_LONG = "label_too_long"
    HYPHEN_AT_LABEL_EDGE = "hyphen_at_label_edge"
    INVALID_PORT = "invalid_port"
    INVALID_IDNA = "invalid_idna"


_WHAT_TO_DO: dict[RejectionReason, str] = {
    RejectionReason.EMPTY: "it is empty",
    RejectionReason.TOO_LONG: "it is too long",
    RejectionReason.INVALID_CHARACTERS: "it contains characters that are not allowed",
    RejectionReason.RESERVED: "it is a reserved word",
    RejectionReason.INVALID_UUID: "it is not a UUID",
    RejectionReason.EMPTY_LABEL: "it has an empty label (two dots in a row, or a leading dot)",
    RejectionReason.LABEL_TOO_LONG: "one of its labels is longer than 63 characters",
    RejectionReason.HYPHEN_AT_LABEL_EDGE: "one of its labels starts or ends with a hyphen",
    RejectionReason.INVALID_PORT: "its port is not a number from 0 to 65535",
    RejectionReason.INVALID_IDNA: "it is not a valid internationalised domain name",
}

_RULE: dict[IdentifierKind, str] = {
    IdentifierKind.UUID: "a UUID such as 123e4567-e89b-12d3-a456-426614174000",
    IdentifierKind.SLUG: (
        "1-63 letters, digits or hyphens, starting with a letter or digit, not a reserved word"
    ),
    IdentifierKind.HOST: (
        "a host name of at most 253 characters, labels of 1-63 letters, digits or hyphens"
    ),
}


class InvalidTenantIdentifierError(RichError):
    """A tenant identifier that is not valid: a ``VALIDATION`` error (400).

    Attributes:
        reason: why it was refused (a `RejectionReason`, equal to its code string,
            such as ``"too_long"`` or ``"reserved"``).
        identifier_kind: what it was checked as.
        value: the raw input (kept for logs; never shown to clients).
    """

    reason: RejectionReason
    identifier_kind: IdentifierKind
    value: str

    def __init__(
        self, reason: RejectionReason, identifier_kind: IdentifierKind, value: str
    ) -> None:
        echoed = value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "..."
        why = _WHAT_TO_DO[reason]
        rule = _RULE[identifier_kind]
        super().__init__(
            ErrorKind.VALIDATION,
            f"tenant {identifier_kind.value} {echoed!r} refused ({reason.value}): {why}; "
            f"expected {rule}",
            user_message=(
                f"The tenant {identifier_kind.value} is not valid ({reason.value}): {why}. "
                f"Expected {rule}."
            ),
            code="INVALID_TENANT_IDENTIFIER",
            fields={"reason": reason.value, "identifier_kind": identifier_kind.value},
        )
        self.reason = reason
        self.identifier_kind = identifier_kind
        self.value = value
