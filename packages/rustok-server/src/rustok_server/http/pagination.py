"""Cursor pagination: a stable order, an opaque cursor, a bounded page size.

Lists are ordered by ``(created_at, id)``, both fixed when a row is created. The cursor
of a page is the key of its last row, so the next page starts strictly after it: rows
inserted meanwhile never shift the pages (no row is shown twice or skipped), and rows
created later appear at the end.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from rustok_server.errors import InvalidCursorError

__all__ = [
    "CURSOR_MAX_LENGTH",
    "CURSOR_PATTERN",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Cursor",
]

DEFAULT_PAGE_SIZE: Final = 20
"""Items per page when the client does not say."""
MAX_PAGE_SIZE: Final = 100
"""The most items one page may hold."""

CURSOR_MAX_LENGTH: Final = 200
"""The longest ``cursor`` accepted (the server's own are about 100 characters)."""
CURSOR_PATTERN: Final = f"^[A-Za-z0-9_-]{{1,{CURSOR_MAX_LENGTH}}}$"
"""The form of a ``cursor``: unpadded URL-safe base64, as the OpenAPI document says."""

_CURSOR: Final = re.compile(CURSOR_PATTERN)
_HEX_ID: Final = re.compile(r"[0-9a-f]{32}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after one row: its creation time and id.

    Examples:
        >>> from datetime import UTC
        >>> at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        >>> c = Cursor(at, uuid.UUID(int=7))
        >>> Cursor.decode(c.encode()) == c
        True
    """

    created_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, position: tuple[datetime, uuid.UUID] | None) -> str | None:
        """The encoded cursor of a list position (a page's ``next_after``), or ``None``."""
        return None if position is None else cls(*position).encode()

    @property
    def position(self) -> tuple[datetime, uuid.UUID]:
        """The list position this cursor names, as the domain services take it."""
        return (self.created_at, self.id)

    def encode(self) -> str:
        """The opaque text a client sends back as ``cursor``."""
        raw = json.dumps([self.created_at.isoformat(), self.id.hex], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Read a cursor made by `encode`, checking all of it: its form
        (`CURSOR_PATTERN`), its JSON shape (a time and an id, both strings), the time
        (ISO 8601 with an offset, within the years 1 to 9999 once in UTC) and the id
        (32 hex digits).

        Raises:
            InvalidCursorError: the text is not such a cursor.
        """
        if not _CURSOR.fullmatch(text):
            raise InvalidCursorError(text, "not unpadded URL-safe base64 of 1-200 characters")
        try:
            decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            raise InvalidCursorError(text, "not base64 of JSON") from None
        match decoded:
            case [str() as at, str() as ident] if _HEX_ID.fullmatch(ident):
                pass
            case _:
                raise InvalidCursorError(text, "not a time and an id")
        try:
            created_at = datetime.fromisoformat(at)
            if created_at.tzinfo is None:
                raise ValueError("no offset")
            created_at.astimezone(UTC)  # the databases compare in UTC: it must exist there
        except (ValueError, OverflowError):
            raise InvalidCursorError(text, "not a time with an offset") from None
        return cls(created_at, uuid.UUID(hex=ident))
