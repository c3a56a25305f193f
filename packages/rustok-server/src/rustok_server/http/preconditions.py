"""Versions as entity tags: ``ETag`` on every entity response, ``If-Match`` on changes.

An entity's ``version`` is its strong entity tag, ``"3"``. A change sent with
``If-Match: "3"`` applies only while the entity is still at version 3; otherwise the
server answers 412 Precondition Failed (RFC 9110, section 13.1.1) and changes nothing.
The versions are checked where the entity is read, once, by the domain service.
Without ``If-Match`` the change still cannot be applied twice or lost: the write itself
is conditional on the version it read.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Header

from rustok_server.errors import MalformedIfMatchError

__all__ = ["IfMatch", "etag", "expected_version", "parse_if_match"]

_TAG: Final = re.compile(r'\s*(W/)?"(\d{1,9})"\s*|\s*(\d{1,9})\s*')

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The version the change is based on, as sent in ETag (e.g. "3"), or *.',
    ),
]
"""The optional ``If-Match`` request header of a change."""


def etag(version: int) -> str:
    """The ``ETag`` header value of an entity at ``version``.

    Examples:
        >>> etag(3)
        '"3"'
    """
    return f'"{version}"'


def parse_if_match(value: str) -> frozenset[int] | None:
    """The versions an ``If-Match`` value accepts; ``None`` for ``*`` (any).

    Weak tags (``W/"3"``) never match: ``If-Match`` uses the strong comparison.

    Raises:
        MalformedIfMatchError: the value is not ``*`` or a comma-separated list of tags.
    """
    if value.strip() == "*":
        return None
    versions: set[int] = set()
    for part in value.split(","):
        match = _TAG.fullmatch(part)
        if match is None:
            raise MalformedIfMatchError(value)
        weak, quoted, bare = match.groups()
        if weak is None:
            versions.add(int(quoted if quoted is not None else bare))
    return frozenset(versions)


def expected_version(if_match: str | None) -> frozenset[int] | None:
    """The versions a change may start from, by ``If-Match``, for a domain service's
    ``expected_version``; ``None`` (any version) when the header is absent or ``*``.

    Nothing is read here: the service checks the versions on the one read of the entity
    it changes, and raises its ``VersionConflictError``, which `EntityRoute` answers with
    a 412 (`PreconditionFailedError`) when ``If-Match`` named versions. An empty set (only
    weak tags) matches no version.

    Raises:
        MalformedIfMatchError: ``If-Match`` is malformed.
    """
    return None if if_match is None else parse_if_match(if_match)
