"""The node service and the repository protocol it works through.

`NodeService` is the one implementation of every operation on nodes: the HTTP API of
rustok-server, a script or a worker all go through it, over their own repository.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar, cast
from uuid import UUID

from rustok_content._errors import ConcurrentModificationError, NodeNotFoundError
from rustok_content._inputs import CreateNodeInput, UpdateNodeInput
from rustok_content._node import AnyContentNode, Archived, ContentNode, Draft, Published
from rustok_content._rules import NodeKind
from rustok_core.state_machine import State, TransitionRecord, fire

T = TypeVar("T", bound=State)

ContentTrigger = Literal["publish", "archive", "restore"]
"""The triggers :meth:`NodeService.transition` accepts (``update`` has its own method)."""

NodePosition = tuple[datetime, UUID]
"""Where a node stands in a list: its ``(created_at, id)``, the order every list uses."""


@dataclass(frozen=True, slots=True)
class NodePage:
    """One page of nodes, oldest first, and the position to continue after.

    Attributes:
        items: the nodes of the page.
        next_after: pass it as ``after`` for the next page; ``None`` on the last page.
    """

    items: tuple[AnyContentNode, ...]
    next_after: NodePosition | None


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
        self, node: AnyContentNode, *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Replace the stored node by ``node`` and append ``record``, in one unit of work,
        only if the stored version is still ``expected_version``.

        Raises:
            NodeNotFoundError: when the node does not exist.
            ConcurrentModificationError: when the stored version is another one.
            DuplicateSlugError: when another node of the tenant has the new slug.
        """
        ...

    async def history(self, tenant_id: UUID, node_id: UUID) -> Sequence[TransitionRecord]:
        """The node's transition records, oldest first."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NodeService:
    """Creates, reads, changes and moves content nodes through a :class:`NodeRepository`.

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
        expected_version: int | None = None,
    ) -> AnyContentNode:
        """Change the fields of a draft or published node.

        Raises:
            NodeNotFoundError, ConcurrentModificationError, DuplicateSlugError, InvalidContentError.
            InvalidTransitionError: when the node is archived.
        """
        return await self._move(
            tenant_id,
            node_id,
            "update",
            expected_version,
            title=data.title,
            slug=data.slug,
            parent_id=data.parent_id,
            category_id=data.category_id,
            actor=actor,
        )

    async def transition(
        self,
        tenant_id: UUID,
        node_id: UUID,
        trigger: ContentTrigger | str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> AnyContentNode:
        """Fire ``trigger`` on the node as stored, and save the node with its record.

        Raises:
            NodeNotFoundError: when the tenant has no such node.
            InvalidTransitionError: when the node's state does not allow ``trigger``.
            GuardFailedError: when archiving without a reason.
            ConcurrentModificationError: when the node changed since it was read, or is not
                at ``expected_version``.
        """
        arguments: dict[str, object] = {"actor": actor}
        if trigger == "archive":
            arguments["reason"] = reason or ""
        return await self._move(tenant_id, node_id, trigger, expected_version, **arguments)

    async def publish(
        self, tenant_id: UUID, node_id: UUID, *, actor: str | None = None
    ) -> ContentNode[Published]:
        """Publish a draft; see :meth:`transition` for the errors."""
        return _expect(await self.transition(tenant_id, node_id, "publish", actor=actor), Published)

    async def archive(
        self, tenant_id: UUID, node_id: UUID, reason: str, *, actor: str | None = None
    ) -> ContentNode[Archived]:
        """Archive a published node; see :meth:`transition` for the errors."""
        moved = await self.transition(tenant_id, node_id, "archive", actor=actor, reason=reason)
        return _expect(moved, Archived)

    async def restore(
        self, tenant_id: UUID, node_id: UUID, *, actor: str | None = None
    ) -> ContentNode[Draft]:
        """Bring an archived node back to draft; see :meth:`transition` for the errors."""
        return _expect(await self.transition(tenant_id, node_id, "restore", actor=actor), Draft)

    async def history(self, tenant_id: UUID, node_id: UUID) -> list[TransitionRecord]:
        """The node's transition records, oldest first.

        Raises:
            NodeNotFoundError: when the tenant has no node with this id.
        """
        await self.get(tenant_id, node_id)
        return list(await self._repository.history(tenant_id, node_id))

    async def _move(
        self,
        tenant_id: UUID,
        node_id: UUID,
        trigger: str,
        expected_version: int | None,
        **arguments: object,
    ) -> AnyContentNode:
        node = await self.get(tenant_id, node_id)
        if expected_version is not None and node.version != expected_version:
            raise ConcurrentModificationError(node_id, expected_version, node.version)
        # A ContentNode's transition methods return ContentNodes.
        moved = cast("AnyContentNode", fire(node, trigger, at=self._clock(), **arguments))
        record = moved.last_transition
        assert record is not None, "every transition sets last_transition"
        await self._repository.save(moved, expected_version=node.version, record=record)
        if self._on_transition is not None:
            self._on_transition(record)
        return moved


def _expect(node: AnyContentNode, state: type[T]) -> ContentNode[T]:
    if not isinstance(node.state, state):  # pragma: no cover - the machine decides the target
        raise AssertionError(f"expected a node in {state.__name__}, got {node.state_name}")
    return cast("ContentNode[T]", node)
