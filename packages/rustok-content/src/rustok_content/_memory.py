"""A repository in memory, for tests and examples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from rustok_content._errors import (
    ConcurrentModificationError,
    DuplicateSlugError,
    NodeNotFoundError,
)
from rustok_content._node import AnyContentNode, ContentNode, Draft
from rustok_content._rules import NodeKind
from rustok_core.state_machine import TransitionRecord

_Key = tuple[UUID, UUID]


class InMemoryNodeRepository:
    """A :class:`NodeRepository` in memory that stores what a database would: each node
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
        after: tuple[datetime, UUID] | None = None,
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
        self, node: AnyContentNode, *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Replace the node and append the record together; see ``NodeRepository.save``."""
        key = (node.tenant_id, node.id)
        row = self._rows.get(key)
        if row is None:
            raise NodeNotFoundError(node.id, node.tenant_id)
        if row["version"] != expected_version:
            raise ConcurrentModificationError(node.id, expected_version, int(str(row["version"])))
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
