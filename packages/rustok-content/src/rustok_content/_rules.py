"""The rules a node's fields follow, shared by the factory and the input models."""

from __future__ import annotations

import re
from enum import StrEnum

from rustok_content._errors import InvalidContentError

TITLE_MAX_LENGTH = 255
"""A title has 1 to 255 characters (after stripping surrounding spaces)."""

SLUG_MAX_LENGTH = 255
"""A slug has at most 255 characters."""

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""Lower-case letters and digits in words joined by single hyphens: ``my-first-post``."""


class NodeKind(StrEnum):
    """The kinds of content node."""

    ARTICLE = "article"
    PAGE = "page"
    POST = "post"


def check_title(title: str) -> str:
    """The title without surrounding spaces.

    Raises:
        InvalidContentError: when it is empty or longer than 255 characters.
    """
    stripped = title.strip()
    if not stripped:
        raise InvalidContentError("title", "must not be empty", title)
    if len(stripped) > TITLE_MAX_LENGTH:
        raise InvalidContentError(
            "title", f"must be at most {TITLE_MAX_LENGTH} characters, got {len(stripped)}", title
        )
    return stripped


def check_slug(slug: str) -> str:
    """The slug, unchanged.

    Raises:
        InvalidContentError: when it is longer than 255 characters or not lower-case words
            joined by hyphens.
    """
    if len(slug) > SLUG_MAX_LENGTH:
        raise InvalidContentError(
            "slug", f"must be at most {SLUG_MAX_LENGTH} characters, got {len(slug)}", slug
        )
    if not SLUG_PATTERN.fullmatch(slug):
        raise InvalidContentError(
            "slug", "must be lower-case letters and digits joined by single hyphens", slug
        )
    return slug


def check_kind(kind: str) -> NodeKind:
    """The kind as a `NodeKind`.

    Raises:
        InvalidContentError: when it is not a known kind.
    """
    try:
        return NodeKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in NodeKind)
        raise InvalidContentError("kind", f"must be one of {known}", kind) from None
