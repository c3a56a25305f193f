"""RusTok content: the content node lifecycle (Draft, Published, Archived) as a typed
state machine, with input models and a service over a repository protocol.

A user imports everything from here::

    from rustok_content import ContentNode, Draft, Published, Archived, NodeService
"""

from rustok_content.__about__ import __version__
from rustok_content._errors import (
    ContentError,
    DuplicateSlugError,
    InvalidContentError,
    NodeNotFoundError,
    VersionConflictError,
)
from rustok_content._inputs import (
    ArchiveNodeInput,
    CreateNodeInput,
    UpdateNodeInput,
)
from rustok_content._node import (
    CONTENT_MACHINE,
    AnyContentNode,
    Archived,
    ContentNode,
    Draft,
    Published,
    reason_given,
)
from rustok_content._repository import InMemoryNodeRepository, NodePosition, NodeRepository
from rustok_content._rules import (
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
    TITLE_MAX_LENGTH,
    NodeKind,
    check_kind,
    check_slug,
    check_title,
)
from rustok_content._service import NodePage, NodeService
from rustok_core.text import TEXT_PATTERN  # the rule is core's, shared by every package

__all__ = [
    "CONTENT_MACHINE",
    "SLUG_MAX_LENGTH",
    "SLUG_PATTERN",
    "TEXT_PATTERN",
    "TITLE_MAX_LENGTH",
    "AnyContentNode",
    "ArchiveNodeInput",
    "Archived",
    "ContentError",
    "ContentNode",
    "CreateNodeInput",
    "Draft",
    "DuplicateSlugError",
    "InMemoryNodeRepository",
    "InvalidContentError",
    "NodeKind",
    "NodeNotFoundError",
    "NodePage",
    "NodePosition",
    "NodeRepository",
    "NodeService",
    "Published",
    "UpdateNodeInput",
    "VersionConflictError",
    "__version__",
    "check_kind",
    "check_slug",
    "check_title",
    "reason_given",
]
