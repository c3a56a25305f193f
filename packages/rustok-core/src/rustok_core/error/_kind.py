"""The eleven error categories and what each one means over HTTP."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PROBLEM_TYPE_BASE", "ErrorKind"]

#: Every problem type of RusTok is a URI under this base, one path segment per kind.
PROBLEM_TYPE_BASE = "https://rustok.dev/problems/"
"""The prefix of the problem ``type`` URIs of every error kind, unless a server sets its own."""


class ErrorKind(StrEnum):
    """The category of an error: decides its default HTTP status, code and problem type.

    The value of each member is its stable, upper-snake error code, so
    ``ErrorKind("NOT_FOUND") is ErrorKind.NOT_FOUND``.

    Examples:
        >>> ErrorKind.NOT_FOUND.status, ErrorKind.NOT_FOUND.code
        (404, 'NOT_FOUND')
    """

    VALIDATION = "VALIDATION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    DATABASE = "DATABASE"
    EXTERNAL_SERVICE = "EXTERNAL_SERVICE"
    INTERNAL = "INTERNAL"
    TIMEOUT = "TIMEOUT"
    BUSINESS_LOGIC = "BUSINESS_LOGIC"

    @property
    def status(self) -> int:
        """The default HTTP status of errors of this kind."""
        return _STATUS[self]

    @property
    def code(self) -> str:
        """The stable, upper-snake error code of this kind (its value)."""
        return self.value

    @property
    def problem_title(self) -> str:
        """A short summary of the problem type, the same for every occurrence."""
        return _TITLE[self]

    @property
    def type_uri(self) -> str:
        """The RFC 9457 problem type URI of this kind, such as ``.../problems/not-found``."""
        return PROBLEM_TYPE_BASE + self.value.lower().replace("_", "-")

    @property
    def is_server_error(self) -> bool:
        """Whether errors of this kind are the server's fault (a 5xx status by default)."""
        return _STATUS[self] >= 500


_STATUS: dict[ErrorKind, int] = {
    ErrorKind.VALIDATION: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.DATABASE: 500,
    ErrorKind.EXTERNAL_SERVICE: 503,
    ErrorKind.INTERNAL: 500,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.BUSINESS_LOGIC: 422,
}

_TITLE: dict[ErrorKind, str] = {
    ErrorKind.VALIDATION: "Validation failed",
    ErrorKind.UNAUTHENTICATED: "Authentication required",
    ErrorKind.FORBIDDEN: "Forbidden",
    ErrorKind.NOT_FOUND: "Not found",
    ErrorKind.CONFLICT: "Conflict",
    ErrorKind.RATE_LIMITED: "Too many requests",
    ErrorKind.DATABASE: "Database error",
    ErrorKind.EXTERNAL_SERVICE: "Service unavailable",
    ErrorKind.INTERNAL: "Internal server error",
    ErrorKind.TIMEOUT: "Timed out",
    ErrorKind.BUSINESS_LOGIC: "Business rule violated",
}
