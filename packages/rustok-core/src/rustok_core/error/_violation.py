"""One invalid field of a request, located by an RFC 6901 JSON pointer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["FieldPath", "FieldViolation", "json_pointer"]

#: A field name (one segment) or a path of object keys and array indexes.
FieldPath: TypeAlias = str | int | Sequence[str | int]
"""Where a field is: a name, an index, or a path of them (``("items", 0, "sku")``)."""


def _escape(segment: str | int) -> str:
    # RFC 6901 section 3: "~" first, so that the "~1" written for "/" is not re-escaped.
    return str(segment).replace("~", "~0").replace("/", "~1")


def json_pointer(path: FieldPath) -> str:
    """Build the RFC 6901 JSON pointer to a field.

    Args:
        path: a single field name (``"email"``), an array index, or a sequence of
            keys and indexes (``("items", 0, "sku")``). A name containing ``/`` or
            ``~`` is one segment and is escaped, not split.

    Returns:
        The pointer, such as ``"/items/0/sku"``; ``""`` (the whole document) for an
        empty sequence.

    Examples:
        >>> json_pointer(("items", 0, "a/b~c"))
        '/items/0/a~1b~0c'
    """
    if isinstance(path, str | int):
        return "/" + _escape(path)
    return "".join("/" + _escape(segment) for segment in path)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """What is wrong with one field: shown as one entry of a problem's ``errors``.

    Attributes:
        pointer: the RFC 6901 JSON pointer to the field in the request body.
        detail: what is wrong with it, for the client.
    """

    pointer: str
    detail: str

    @classmethod
    def at(cls, path: FieldPath, detail: str) -> FieldViolation:
        """Build a violation for the field at ``path`` (see `json_pointer`)."""
        return cls(json_pointer(path), detail)
