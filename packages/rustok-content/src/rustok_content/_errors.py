"""The errors of the content package, each a RichError with its kind, code and fields."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from rustok_core.error import ErrorKind, RichError


class ContentError(RichError):
    """Base of every error the content package raises (transition errors come from
    ``rustok_core.state_machine``: ``InvalidTransitionError``, ``GuardFailedError``)."""


class NodeNotFoundError(ContentError):
    """No content node with this id exists for this tenant (404).

    A node of another tenant is reported the same way: its existence is not revealed.
    """

    def __init__(self, node_id: UUID, tenant_id: UUID) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"content node {node_id} not found for tenant {tenant_id}",
            user_message="The requested content does not exist.",
            code="NODE_NOT_FOUND",
            fields={"node_id": str(node_id)},
            tenant_id=str(tenant_id),
        )
        self.node_id = node_id


class DuplicateSlugError(ContentError):
    """Another node of the tenant already uses this slug (409)."""

    def __init__(self, slug: str, tenant_id: UUID) -> None:
        super().__init__(
            ErrorKind.CONFLICT,
            f"slug {slug!r} is already used by another node of tenant {tenant_id}",
            user_message="This URL slug is already in use. Choose a different one.",
            code="DUPLICATE_SLUG",
            fields={"slug": slug},
            tenant_id=str(tenant_id),
        )
        self.slug = slug


class VersionConflictError(ContentError):
    """The node is not at the version a change was based on (409): another change was saved
    first, or the caller's expected version (``If-Match``) is not the stored one.

    Nothing of the change is stored. Read the node again and retry the change on the new
    version. ``rustok_commerce.VersionConflictError`` is the same error for orders.

    Attributes:
        node_id: the node concerned.
        expected_version: the version the change was based on, or the versions it
            accepted when the caller named several (an ``If-Match`` list).
        actual_version: the version found in storage.
    """

    def __init__(
        self, node_id: UUID, expected_version: int | Collection[int], actual_version: int
    ) -> None:
        expected = (
            (expected_version,)
            if isinstance(expected_version, int)
            else tuple(sorted(expected_version))
        )
        super().__init__(
            ErrorKind.CONFLICT,
            f"content node {node_id} is at version {actual_version}, expected "
            f"{_versions_text(expected)}; read it again and retry",
            user_message="This content was changed by someone else. Reload it and try again.",
            code="CONCURRENT_MODIFICATION",
            fields={
                "node_id": str(node_id),
                "expected_version": ",".join(map(str, expected)),
                "actual_version": str(actual_version),
            },
        )
        self.node_id = node_id
        self.expected_version = expected_version
        self.actual_version = actual_version


def _versions_text(versions: tuple[int, ...]) -> str:
    if len(versions) == 1:
        return str(versions[0])
    return f"one of {', '.join(map(str, versions))}" if versions else "no version"


class InvalidContentError(ContentError):
    """A field of a content node breaks a rule (400): names the field and the rule."""

    def __init__(self, field: str, problem: str, value: object) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"invalid {field} {value!r}: {problem}",
            user_message=f"Invalid {field}: {problem}.",
            code="INVALID_CONTENT",
            fields={"field": field},
        )
        self.with_violation(field, problem)
        self.field = field
        self.problem = problem
