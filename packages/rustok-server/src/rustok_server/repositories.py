"""SQL repositories of content nodes and orders, on one `AsyncSession`.

`SqlNodeRepository` implements ``rustok_content.NodeRepository`` and
`SqlOrderRepository` implements ``rustok_commerce.OrderRepository``. Every query
filters by tenant. A row becomes a typed entity through the entity's ``from_data``
(the state machine's run-time check of the stored state and its data).

``save`` is the optimistic lock: ``UPDATE ... WHERE id = :id AND tenant_id = :tenant
AND version = :expected``, then the history row, in the session's transaction. When no
row matched, its stored version is read to tell "gone" (404) from "changed meanwhile" (409).
The repositories flush but never commit: the caller commits the unit of work (the
state change, its history row and, for idempotent requests, the stored response).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_commerce import (
    AnyOrder,
    Order,
    OrderNotFoundError,
    OrderPosition,
    OrderVersionConflictError,
    Pending,
)
from rustok_content import (
    AnyContentNode,
    ConcurrentModificationError,
    ContentNode,
    Draft,
    DuplicateSlugError,
    NodeKind,
    NodeNotFoundError,
    NodePosition,
)
from rustok_core.state_machine import Entity, State, TransitionRecord
from rustok_server.tables import (
    ContentNodeRow,
    ContentTransitionRow,
    OrderRow,
    OrderTransitionRow,
)

__all__ = ["SqlNodeRepository", "SqlOrderRepository"]

_Keyed = type[ContentNodeRow] | type[OrderRow]
_Row = TypeVar("_Row", ContentNodeRow, OrderRow)
_E = TypeVar("_E")
_History = TypeVar("_History", ContentTransitionRow, OrderTransitionRow)


async def _keyset_page(
    session: AsyncSession,
    query: Select[_Row],
    table: _Keyed,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    convert: Callable[[_Row], _E],
) -> list[_E]:
    """Up to ``limit`` rows of ``query`` in (created_at, id) order, strictly after the
    position ``after``: one indexed range scan, however deep the page."""
    if after is not None:
        created_at, ident = after
        query = query.where(
            or_(
                table.created_at > created_at,
                and_(table.created_at == created_at, table.id > ident),
            )
        )
    query = query.order_by(table.created_at, table.id).limit(limit)
    return [convert(row) for row in (await session.scalars(query)).all()]


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _record(row: ContentTransitionRow | OrderTransitionRow, entity_type: str) -> TransitionRecord:
    entity_id = row.node_id if isinstance(row, ContentTransitionRow) else row.order_id
    return TransitionRecord(
        entity_type,
        entity_id,
        row.tenant_id,
        row.trigger,
        row.from_state,
        row.to_state,
        row.at,
        row.version,
        row.actor,
        row.data,
    )


def _history_values(record: TransitionRecord) -> dict[str, Any]:
    return {
        "tenant_id": record.tenant_id,
        "trigger": record.trigger,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "at": record.at,
        "version": record.version,
        "actor": record.actor,
        "data": dict(record.data),
    }


async def _write_version(
    session: AsyncSession,
    table: _Keyed,
    entity: Entity[State],
    expected_version: int,
    values: dict[str, Any],
    history: ContentTransitionRow | OrderTransitionRow,
) -> bool:
    """The optimistic lock: write ``values``, the entity's state and version to its row if
    the row is still at ``expected_version``, then add ``history``. ``False`` when no row
    matched (nothing was written)."""
    statement = (
        update(table)
        .where(
            table.id == entity.id,
            table.tenant_id == entity.tenant_id,
            table.version == expected_version,
        )
        .values(
            state=entity.state_name,
            state_data=entity.state.to_data(),
            version=entity.version,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if _rowcount(await session.execute(statement)) != 1:
        return False
    session.add(history)
    await session.flush()
    return True


async def _stored_version(
    session: AsyncSession, table: _Keyed, entity: Entity[State]
) -> int | None:
    """The version stored for the entity's row now, or ``None`` when it is gone."""
    query = select(table.version).where(table.id == entity.id, table.tenant_id == entity.tenant_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _history(
    session: AsyncSession,
    table: type[_History],
    owner: ColumnElement[bool],
    tenant_id: uuid.UUID,
    entity_type: str,
) -> Sequence[TransitionRecord]:
    """The transition records of the history rows matching ``owner``, oldest first."""
    query = select(table).where(owner, table.tenant_id == tenant_id).order_by(table.version)
    return [_record(row, entity_type) for row in (await session.scalars(query)).all()]


class SqlNodeRepository:
    """Content nodes and their history in SQL (a ``rustok_content.NodeRepository``).

    Args:
        session: the session to work in; the caller commits.
    """

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def to_node(row: ContentNodeRow) -> AnyContentNode:
        """The typed node of a row, checked by the content machine.

        Raises:
            InvalidStateData: the stored state or its data is invalid.
        """
        return ContentNode.from_data(
            {
                "id": row.id,
                "tenant_id": row.tenant_id,
                "version": row.version,
                "author_id": row.author_id,
                "parent_id": row.parent_id,
                "kind": row.kind,
                "category_id": row.category_id,
                "title": row.title,
                "slug": row.slug,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "state": row.state,
                "state_data": row.state_data,
            }
        )

    async def add(self, node: ContentNode[Draft]) -> None:
        """Insert a new node.

        Raises:
            DuplicateSlugError: the tenant already has a node with this slug (the session's
                transaction is rolled back).
        """
        self.session.add(
            ContentNodeRow(
                id=node.id,
                tenant_id=node.tenant_id,
                kind=node.kind.value,
                title=node.title,
                slug=node.slug,
                author_id=node.author_id,
                parent_id=node.parent_id,
                category_id=node.category_id,
                state=node.state_name,
                state_data=node.state.to_data(),
                version=node.version,
                created_at=node.created_at,
                updated_at=node.updated_at,
            )
        )
        try:
            await self.session.flush()
        except IntegrityError as exc:
            await self.session.rollback()
            raise DuplicateSlugError(node.slug, node.tenant_id) from exc

    async def get(self, tenant_id: uuid.UUID, node_id: uuid.UUID) -> AnyContentNode | None:
        """The tenant's node, or ``None`` (also for another tenant's node)."""
        query = select(ContentNodeRow).where(
            ContentNodeRow.id == node_id, ContentNodeRow.tenant_id == tenant_id
        )
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else self.to_node(row)

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
        query = select(ContentNodeRow).where(ContentNodeRow.tenant_id == tenant_id)
        if state is not None:
            query = query.where(ContentNodeRow.state == state)
        if kind is not None:
            query = query.where(ContentNodeRow.kind == kind.value)
        return await _keyset_page(self.session, query, ContentNodeRow, after, limit, self.to_node)

    async def save(
        self, node: AnyContentNode, *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Write the node if it is still at ``expected_version``, and append ``record``.

        Raises:
            NodeNotFoundError: the node does not exist for its tenant.
            ConcurrentModificationError: the stored version is another one.
            DuplicateSlugError: another node of the tenant has the new slug.
        """
        values = {
            "title": node.title,
            "slug": node.slug,
            "parent_id": node.parent_id,
            "category_id": node.category_id,
            "updated_at": node.updated_at,
        }
        history = ContentTransitionRow(node_id=node.id, **_history_values(record))
        try:
            if not await _write_version(
                self.session, ContentNodeRow, node, expected_version, values, history
            ):
                actual = await _stored_version(self.session, ContentNodeRow, node)
                if actual is None:
                    raise NodeNotFoundError(node.id, node.tenant_id)
                raise ConcurrentModificationError(node.id, expected_version, actual)
        except IntegrityError as exc:
            await self.session.rollback()
            if "slug" in str(exc.orig).lower():
                raise DuplicateSlugError(node.slug, node.tenant_id) from exc
            raise ConcurrentModificationError(node.id, expected_version, node.version) from exc

    async def history(self, tenant_id: uuid.UUID, node_id: uuid.UUID) -> Sequence[TransitionRecord]:
        """The node's transition records, oldest first."""
        owner = ContentTransitionRow.node_id == node_id
        return await _history(self.session, ContentTransitionRow, owner, tenant_id, "ContentNode")


class SqlOrderRepository:
    """Orders and their history in SQL (a ``rustok_commerce.OrderRepository``).

    Args:
        session: the session to work in; the caller commits.
    """

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def to_order(row: OrderRow) -> AnyOrder:
        """The typed order of a row, checked by the order machine.

        Raises:
            InvalidStateData: the stored state, its data or the total is invalid.
        """
        return Order.from_data(
            {
                "id": row.id,
                "tenant_id": row.tenant_id,
                "version": row.version,
                "customer_id": row.customer_id,
                "total": {"amount": row.amount, "currency": row.currency},
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "state": row.state,
                "state_data": row.state_data,
            }
        )

    async def add(self, order: Order[Pending]) -> None:
        """Insert a new order.

        Raises:
            OrderVersionConflictError: an order with this id exists.
        """
        self.session.add(
            OrderRow(
                id=order.id,
                tenant_id=order.tenant_id,
                customer_id=order.customer_id,
                amount=str(order.total.amount),
                currency=order.total.currency,
                state=order.state_name,
                state_data=order.state.to_data(),
                version=order.version,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )
        try:
            await self.session.flush()
        except IntegrityError as exc:
            await self.session.rollback()
            raise OrderVersionConflictError(order.id, 0, order.version) from exc

    async def get(self, tenant_id: uuid.UUID, order_id: uuid.UUID) -> AnyOrder | None:
        """The tenant's order, or ``None`` (also for another tenant's order)."""
        query = select(OrderRow).where(OrderRow.id == order_id, OrderRow.tenant_id == tenant_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else self.to_order(row)

    async def page(
        self,
        tenant_id: uuid.UUID,
        *,
        state: str | None = None,
        after: OrderPosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyOrder]:
        """Up to ``limit`` orders of the tenant after ``after``, oldest first; see
        ``rustok_commerce.OrderRepository.page``."""
        query = select(OrderRow).where(OrderRow.tenant_id == tenant_id)
        if state is not None:
            query = query.where(OrderRow.state == state)
        return await _keyset_page(self.session, query, OrderRow, after, limit, self.to_order)

    async def save(
        self, order: Order[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Write the order if it is still at ``expected_version``, and append ``record``.

        Raises:
            OrderNotFoundError: the order does not exist for its tenant.
            OrderVersionConflictError: the stored version is another one.
        """
        values = {"updated_at": order.updated_at}
        history = OrderTransitionRow(order_id=order.id, **_history_values(record))
        try:
            if not await _write_version(
                self.session, OrderRow, order, expected_version, values, history
            ):
                actual = await _stored_version(self.session, OrderRow, order)
                if actual is None:
                    raise OrderNotFoundError(order.id, order.tenant_id)
                raise OrderVersionConflictError(order.id, expected_version, actual)
        except IntegrityError as exc:
            await self.session.rollback()
            raise OrderVersionConflictError(order.id, expected_version, order.version) from exc

    async def history(
        self, tenant_id: uuid.UUID, order_id: uuid.UUID
    ) -> Sequence[TransitionRecord]:
        """The order's transition records, oldest first."""
        owner = OrderTransitionRow.order_id == order_id
        return await _history(self.session, OrderTransitionRow, owner, tenant_id, "Order")
