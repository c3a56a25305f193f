"""The node service: validated input in, typed transitions, one audit record each.

Each change loads the node for the tenant, checks the version the caller expects (when
given), narrows the node to the state the transition starts from (or refuses with
`InvalidTransitionError` naming the state it is in), applies the typed transition, and
saves the new node together with its `TransitionRecord` through `NodeRepository.save`,
one unit of work.

`NodeService` is the one implementation of every operation on nodes: the HTTP API of
rustok-server, a script or a worker all go through it, over their own repository.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from rustok_content._errors import NodeNotFoundError, VersionConflictError
from rustok_content._inputs import CreateNodeInput, UpdateNodeInput
from rustok_content._node import AnyContentNode, Archived, ContentNode, Draft, Published
from rustok_content._repository import NodePosition, NodeRepository
from rustok_content._rules import NodeKind
from rustok_core.state_machine import State, TransitionRecord, invalid_transition, is_state

_S = TypeVar("_S", bound=State)


@dataclass(frozen=True, slots=True)
class NodePage:
    """One page of nodes, oldest first, and the position to continue after.

    Attributes:
        items: the nodes of the page.
        next_after: pass it as ``after`` for the next page; ``None`` on the last page.
    """

    items: tuple[AnyContentNode, ...]
    next_after: NodePosition | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NodeService:
    """Creates, reads, changes and moves content nodes through a `NodeRepository`.

    Every transition saves the new node and its ``TransitionRecord`` together, on the
    condition that nobody changed the node meanwhile (optimistic locking on ``version``).

    Args:
        repository: where nodes and records live.
        clock: the current time (inject a fixed clock in tests).
        on_transition: told of each transition's record once the repository has saved it
            (for metrics and tracing; what it raises propagates).

    Example::

        service = NodeService(InMemoryNodeRepository())
        node = await service.create(tenant_id, CreateNodeInput(kind="post", title="Hi", slug="hi"))
        published = await service.publish(tenant_id, node.id, actor="alice")
    """

    __slots__ = ("_clock", "_on_transition", "_repository")

    def __init__(
        self,
        repository: NodeRepository,
        *,
        clock: Callable[[], datetime] = _utc_now,
        on_transition: Callable[[TransitionRecord], None] | None = None,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._on_transition = on_transition

    async def create(self, tenant_id: UUID, data: CreateNodeInput) -> ContentNode[Draft]:
        """Create a draft from validated input.

        Raises:
            DuplicateSlugError: when the tenant already uses the slug.
        """
        node = ContentNode.new_draft(
            tenant_id=tenant_id,
            kind=data.kind,
            title=data.title,
            slug=data.slug,
            author_id=data.author_id,
            parent_id=data.parent_id,
            category_id=data.category_id,
            at=self._clock(),
        )
        await self._repository.add(node)
        return node

    async def get(self, tenant_id: UUID, node_id: UUID) -> AnyContentNode:
        """The node.

        Raises:
            NodeNotFoundError: when the tenant has no node with this id.
        """
        node = await self._repository.get(tenant_id, node_id)
        if node is None:
            raise NodeNotFoundError(node_id, tenant_id)
        return node

    async def list_nodes(
        self,
        tenant_id: UUID,
        *,
        state: type[State] | str | None = None,
        kind: NodeKind | None = None,
        after: NodePosition | None = None,
        limit: int = 50,
    ) -> NodePage:
        """One page of the tenant's nodes, oldest first (by ``(created_at, id)``), after
        the position ``after`` when given, optionally filtered by state (class or name)
        and kind.

        One more node than ``limit`` is asked of the repository, to know whether a next
        page exists; only then does the page carry ``next_after``.

        Raises:
            ValueError: when ``limit`` is not 1-500.
        """
        if not 1 <= limit <= 500:
            raise ValueError(f"limit must be between 1 and 500, got {limit}")
        name = state.state_name if isinstance(state, type) else state
        found = await self._repository.page(
            tenant_id, state=name, kind=kind, after=after, limit=limit + 1
        )
        items = tuple(found[:limit])
        last = items[-1] if len(found) > limit else None
        return NodePage(items, None if last is None else (last.created_at, last.id))

    async def update(
        self,
        tenant_id: UUID,
        node_id: UUID,
        data: UpdateNodeInput,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> ContentNode[State]:
        """Change the fields of a draft or published node; its state stays (the node
        returned is in the state it was in).

        Raises:
            NodeNotFoundError: when the tenant has no such node.
            InvalidTransitionError: when the node is archived.
            InvalidContentError: when a new title or slug breaks its rule.
            DuplicateSlugError: when another node of the tenant has the new slug.
            VersionConflictError: when the node changed since it was read, or is not at
                ``expected_version`` (one version, or any of several).
        """
        node = await self._load(tenant_id, node_id, expected_version)
        if is_state(node, Archived):
            raise invalid_transition(node, "update")
        updated = node.update(
            title=data.title,
            slug=data.slug,
            parent_id=data.parent_id,
            category_id=data.category_id,
            actor=actor,
            at=self._clock(),
        )
        return await self._save(updated)

    async def publish(
        self,
        tenant_id: UUID,
        node_id: UUID,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> ContentNode[Published]:
        """Publish a draft.

        Raises:
            NodeNotFoundError: when the tenant has no such node.
            InvalidTransitionError: when the node is not a draft.
            VersionConflictError: when the node changed since it was read, or is not at
                ``expected_version``.
        """
        node = await self._load(tenant_id, node_id, expected_version)
        if not is_state(node, Draft):
            raise invalid_transition(node, "publish")
        return await self._save(node.publish(actor=actor, at=self._clock()))

    async def archive(
        self,
        tenant_id: UUID,
        node_id: UUID,
        reason: str,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> ContentNode[Archived]:
        """Take a published node down, for ``reason``.

        Raises:
            NodeNotFoundError: when the tenant has no such node.
            InvalidTransitionError: when the node is not published.
            GuardFailedError: when ``reason`` is blank.
            VersionConflictError: when the node changed since it was read, or is not at
                ``expected_version``.
        """
        node = await self._load(tenant_id, node_id, expected_version)
        if not is_state(node, Published):
            raise invalid_transition(node, "archive")
        return await self._save(node.archive(reason, actor=actor, at=self._clock()))

    async def restore(
        self,
        tenant_id: UUID,
        node_id: UUID,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> ContentNode[Draft]:
        """Bring an archived node back to draft.

        Raises:
            NodeNotFoundError: when the tenant has no such node.
            InvalidTransitionError: when the node is not archived.
            VersionConflictError: when the node changed since it was read, or is not at
                ``expected_version``.
        """
        node = await self._load(tenant_id, node_id, expected_version)
        if not is_state(node, Archived):
            raise invalid_transition(node, "restore")
        return await self._save(node.restore(actor=actor, at=self._clock()))

    async def history(self, tenant_id: UUID, node_id: UUID) -> list[TransitionRecord]:
        """The node's transition records, oldest first.

        Raises:
            NodeNotFoundError: when the tenant has no node with this id.
        """
        await self.get(tenant_id, node_id)
        return list(await self._repository.history(tenant_id, node_id))

    async def _load(
        self, tenant_id: UUID, node_id: UUID, expected_version: int | Collection[int] | None
    ) -> AnyContentNode:
        # The one read of a change: the caller's expected version is checked on it.
        node = await self.get(tenant_id, node_id)
        if expected_version is not None and not _at(node.version, expected_version):
            raise VersionConflictError(node_id, expected_version, node.version)
        return node

    async def _save(self, node: ContentNode[_S]) -> ContentNode[_S]:
        record = node.last_transition
        assert record is not None, "every transition sets last_transition"
        await self._repository.save(node, expected_version=node.version - 1, record=record)
        if self._on_transition is not None:
            self._on_transition(record)
        return node


def _at(version: int, expected: int | Collection[int]) -> bool:
    return version == expected if isinstance(expected, int) else version in expected
