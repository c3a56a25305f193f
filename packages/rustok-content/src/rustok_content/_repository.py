"""Where nodes live: the `NodeRepository` protocol and an in-memory implementation.

The service speaks only to the protocol; the server implements it on SQL. Every method
takes the tenant: a node of another tenant is never seen, changed or reported (it is
absent, exactly like a node that does not exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from rustok_content._errors import (
    DuplicateSlugError,
    NodeNotFoundError,
    VersionConflictError,
)
from rustok_content._node import AnyContentNode, ContentNode, Draft
from rustok_content._rules import NodeKind
from rustok_core.state_machine import State, TransitionRecord

_Key = tuple[UUID, UUID]

NodePosition = tuple[datetime, UUID]
"""Where a node stands in a list: its ``(created_at, id)``, the order every list uses."""


class NodeRepository(Protocol):
    """Where nodes and their transition records live; every call is scoped to a tenant.

    An implementation stores a node as its fields plus ``state`` (name), ``state_data``
    and ``version`` (see ``ContentNode.to_data``), and the records as the audit trail.
    """

    async def add(self, node: ContentNode[Draft]) -> None:
        """Store a new node.

        Raises:
            DuplicateSlugError: when the tenant already has a node with this slug.
        """
        ...

    async def get(self, tenant_id: UUID, node_id: UUID) -> AnyContentNode | None:
        """The node, or ``None`` when the tenant has no node with this id."""
        ...

    async def page(
        self,
        tenant_id: UUID,
        *,
        state: str | None = None,
        kind: NodeKind | None = None,
        after: NodePosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyContentNode]:
        """Up to ``limit`` of the tenant's nodes in ``(created_at, id)`` order, only those
        strictly after ``after`` when given (keyset paging: rows added meanwhile never
        shift a page), optionally only those in ``state`` (a state name) or of ``kind``."""
        ...

    async def save(
        self, node: ContentNode[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Replace the stored node by ``node`` and append ``record``, in one unit of work,
        only if the stored version is still ``expected_version``.

        Raises:
            NodeNotFoundError: when the node does not exist.
            VersionConflictError: when the stored version is another one.
            DuplicateSlugError: when another node of the tenant has the new slug.
        """
        ...

    async def history(self, tenant_id: UUID, node_id: UUID) -> Sequence[TransitionRecord]:
        """The node's transition records, oldest first."""
        ...


class InMemoryNodeRepository:
    """A `NodeRepository` in memory that stores what a database would: each node
    as ``to_data()`` (fields, state name, state data, version) and its records, and
    rebuilds nodes with ``ContentNode.from_data`` when read."""

    def __init__(self) -> None:
        self._rows: dict[_Key, dict[str, object]] = {}
        self._records: dict[_Key, list[TransitionRecord]] = {}

    async def add(self, node: ContentNode[Draft]) -> None:
        """Store a new node; see ``NodeRepository.add``."""
        key = (node.tenant_id, node.id)
        if key in self._rows:
            raise ValueError(f"content node {node.id} already exists")
        self._check_slug(node.tenant_id, node.id, node.slug)
        self._rows[key] = dict(node.to_data())
        self._records[key] = []

    async def get(self, tenant_id: UUID, node_id: UUID) -> AnyContentNode | None:
        """The node or ``None``; see ``NodeRepository.get``."""
        row = self._rows.get((tenant_id, node_id))
        return None if row is None else ContentNode.from_data(row)

    async def page(
        self,
        tenant_id: UUID,
        *,
        state: str | None = None,
        kind: NodeKind | None = None,
        after: NodePosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyContentNode]:
        """One page of nodes after ``after``; see ``NodeRepository.page``."""
        nodes = [
            ContentNode.from_data(row)
            for (tenant, _), row in self._rows.items()
            if tenant == tenant_id
            and (state is None or row["state"] == state)
            and (kind is None or row["kind"] == kind.value)
        ]
        nodes.sort(key=lambda node: (node.created_at, node.id))
        if after is not None:
            nodes = [node for node in nodes if (node.created_at, node.id) > after]
        return nodes[:limit]

    async def save(
        self, node: ContentNode[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Replace the node and append the record together; see ``NodeRepository.save``."""
        key = (node.tenant_id, node.id)
        row = self._rows.get(key)
        if row is None:
            raise NodeNotFoundError(node.id, node.tenant_id)
        if row["version"] != expected_version:
            raise VersionConflictError(node.id, expected_version, int(str(row["version"])))
        self._check_slug(node.tenant_id, node.id, node.slug)
        self._rows[key] = dict(node.to_data())
        self._records[key].append(record)

    async def history(self, tenant_id: UUID, node_id: UUID) -> Sequence[TransitionRecord]:
        """The node's records; see ``NodeRepository.history``."""
        return tuple(self._records.get((tenant_id, node_id), ()))

    def _check_slug(self, tenant_id: UUID, node_id: UUID, slug: str) -> None:
        for (tenant, other_id), row in self._rows.items():
            if tenant == tenant_id and other_id != node_id and row["slug"] == slug:
                raise DuplicateSlugError(slug, tenant_id)
