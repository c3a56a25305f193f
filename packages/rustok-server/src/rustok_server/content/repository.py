"""Content nodes and their history in SQL: the ``rustok_content.NodeRepository`` of the
server, in one unit of work (the caller commits)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from rustok_content import (
    AnyContentNode,
    ContentNode,
    Draft,
    DuplicateSlugError,
    NodeKind,
    NodeNotFoundError,
    NodePosition,
    VersionConflictError,
)
from rustok_core.state_machine import State, TransitionRecord
from rustok_server.content.tables import ContentNodeRow, ContentTransitionRow
from rustok_server.db.entity_rows import EntityRows, SqlRepository
from rustok_server.db.statements import ConstraintError
from rustok_server.webhooks.outbox import NODE_EVENTS

__all__ = ["SqlNodeRepository"]


def _to_node(columns: dict[str, Any]) -> AnyContentNode:
    # The table's columns are the node's stored form, name for name.
    return ContentNode.from_data(columns)


_ROWS = EntityRows(
    ContentNodeRow,
    ContentTransitionRow,
    owner="node_id",
    entity_type=ContentNode.__name__,
    to_entity=_to_node,
    events=NODE_EVENTS,
)


class SqlNodeRepository(SqlRepository):
    """Content nodes and their history in SQL (a ``rustok_content.NodeRepository``).

    Args:
        statements: a request's `rustok_server.db.UnitOfWork`, or a session; the caller
            commits.
    """

    __slots__ = ()

    async def add(self, node: ContentNode[Draft]) -> None:
        """Insert a new node.

        Raises:
            DuplicateSlugError: the tenant already has a node with this slug (the session's
                transaction is rolled back).
        """
        columns = {
            "id": node.id,
            "tenant_id": node.tenant_id,
            "kind": node.kind.value,
            "title": node.title,
            "slug": node.slug,
            "author_id": node.author_id,
            "parent_id": node.parent_id,
            "category_id": node.category_id,
            "state": node.state_name,
            "state_data": node.state.to_data(),
            "version": node.version,
            "created_at": node.created_at,
            "updated_at": node.updated_at,
        }
        await _ROWS.insert(
            self.statements, node, columns, lambda: DuplicateSlugError(node.slug, node.tenant_id)
        )

    async def get(self, tenant_id: uuid.UUID, node_id: uuid.UUID) -> AnyContentNode | None:
        """The tenant's node, or ``None`` (also for another tenant's node)."""
        return await _ROWS.get(self.statements, tenant_id, node_id)

    async def page(
        self,
        tenant_id: uuid.UUID,
        *,
        state: str | None = None,
        kind: NodeKind | None = None,
        after: NodePosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyContentNode]:
        """Up to ``limit`` nodes of the tenant after ``after``, oldest first; see
        ``rustok_content.NodeRepository.page``."""
        filters: dict[str, str] = {}
        if state is not None:
            filters["state"] = state
        if kind is not None:
            filters["kind"] = kind.value
        return await _ROWS.page(self.statements, tenant_id, filters, after, limit)

    async def save(
        self, node: ContentNode[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Write the node if it is still at ``expected_version``, and append ``record``.

        Raises:
            NodeNotFoundError: the node does not exist for its tenant.
            VersionConflictError: the stored version is another one.
            DuplicateSlugError: another node of the tenant has the new slug.
        """

        def refused(exc: ConstraintError) -> Exception:
            if "slug" in exc.detail.lower():
                return DuplicateSlugError(node.slug, node.tenant_id)
            return VersionConflictError(node.id, expected_version, node.version)

        await _ROWS.save(
            self.statements,
            node,
            expected_version=expected_version,
            record=record,
            values={
                "title": node.title,
                "slug": node.slug,
                "parent_id": node.parent_id,
                "category_id": node.category_id,
                "updated_at": node.updated_at,
            },
            missing=lambda: NodeNotFoundError(node.id, node.tenant_id),
            conflict=lambda actual: VersionConflictError(node.id, expected_version, actual),
            integrity=refused,
        )

    async def history(self, tenant_id: uuid.UUID, node_id: uuid.UUID) -> Sequence[TransitionRecord]:
        """The node's transition records, oldest first."""
        return await _ROWS.history(self.statements, tenant_id, node_id)
