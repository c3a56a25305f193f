"""Input models: what a client may send to create, change or archive a node."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rustok_content._rules import SLUG_MAX_LENGTH, SLUG_PATTERN, TITLE_MAX_LENGTH, NodeKind
from rustok_core.text import TEXT_PATTERN, check_holdable

Title = Annotated[
    str,
    Field(min_length=1, max_length=TITLE_MAX_LENGTH, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(check_holdable),
]
Slug = Annotated[str, Field(min_length=1, max_length=SLUG_MAX_LENGTH, pattern=SLUG_PATTERN.pattern)]

_CONFIG = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class CreateNodeInput(BaseModel):
    """A new node: its kind, title (1-255 characters), slug (``lower-case-words``) and
    optional author, parent and category.

    Text fields refuse the control characters a database or a log cannot hold (NUL, the
    other C0 controls but tab, line feed and carriage return, DEL, C1, lone surrogates):
    the same refusal on every database, naming the field.
    """

    model_config = _CONFIG

    kind: NodeKind
    title: Title
    slug: Slug
    author_id: UUID | None = None
    parent_id: UUID | None = None
    category_id: UUID | None = None


class UpdateNodeInput(BaseModel):
    """Changes to a draft or published node; a field left out keeps its value."""

    model_config = _CONFIG

    title: Title | None = None
    slug: Slug | None = None
    parent_id: UUID | None = None
    category_id: UUID | None = None


class ArchiveNodeInput(BaseModel):
    """Why a published node is taken down (at most 1000 characters).

    A blank reason is well-formed input that the archive rule refuses: the content
    machine's ``reason given`` guard raises ``GuardFailedError`` (422), the same for every
    caller, so the model itself does not refuse it.
    """

    model_config = _CONFIG

    reason: Annotated[
        str,
        Field(max_length=1000, json_schema_extra={"pattern": TEXT_PATTERN}),
        AfterValidator(check_holdable),
    ]
