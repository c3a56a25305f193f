"""Orders and their history in SQL: the ``rustok_commerce.OrderRepository`` of the
server, in one unit of work (the caller commits)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from rustok_commerce import (
    AnyOrder,
    Order,
    OrderNotFoundError,
    OrderPosition,
    Pending,
    VersionConflictError,
)
from rustok_core.state_machine import State, TransitionRecord
from rustok_server.commerce.tables import OrderRow, OrderTransitionRow
from rustok_server.db.entity_rows import EntityRows, SqlRepository
from rustok_server.webhooks.outbox import ORDER_EVENTS

__all__ = ["SqlOrderRepository"]


def _to_order(columns: dict[str, Any]) -> AnyOrder:
    columns["total"] = {"amount": columns.pop("amount"), "currency": columns.pop("currency")}
    return Order.from_data(columns)


_ROWS = EntityRows(
    OrderRow,
    OrderTransitionRow,
    owner="order_id",
    entity_type=Order.__name__,
    to_entity=_to_order,
    events=ORDER_EVENTS,
)


class SqlOrderRepository(SqlRepository):
    """Orders and their history in SQL (a ``rustok_commerce.OrderRepository``).

    Args:
        statements: a request's `rustok_server.db.UnitOfWork`, or a session; the caller
            commits.
    """

    __slots__ = ()

    async def add(self, order: Order[Pending]) -> None:
        """Insert a new order.

        Raises:
            VersionConflictError: an order with this id exists.
        """
        columns = {
            "id": order.id,
            "tenant_id": order.tenant_id,
            "customer_id": order.customer_id,
            "amount": str(order.total.amount),
            "currency": order.total.currency,
            "state": order.state_name,
            "state_data": order.state.to_data(),
            "version": order.version,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
        }
        await _ROWS.insert(
            self.statements,
            order,
            columns,
            lambda: VersionConflictError(order.id, 0, order.version),
        )

    async def get(self, tenant_id: uuid.UUID, order_id: uuid.UUID) -> AnyOrder | None:
        """The tenant's order, or ``None`` (also for another tenant's order)."""
        return await _ROWS.get(self.statements, tenant_id, order_id)

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
        filters = {} if state is None else {"state": state}
        return await _ROWS.page(self.statements, tenant_id, filters, after, limit)

    async def save(
        self, order: Order[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Write the order if it is still at ``expected_version``, and append ``record``.

        Raises:
            OrderNotFoundError: the order does not exist for its tenant.
            VersionConflictError: the stored version is another one.
        """
        await _ROWS.save(
            self.statements,
            order,
            expected_version=expected_version,
            record=record,
            values={"updated_at": order.updated_at},
            missing=lambda: OrderNotFoundError(order.id, order.tenant_id),
            conflict=lambda actual: VersionConflictError(order.id, expected_version, actual),
            integrity=lambda _: VersionConflictError(order.id, expected_version, order.version),
        )

    async def history(
        self, tenant_id: uuid.UUID, order_id: uuid.UUID
    ) -> Sequence[TransitionRecord]:
        """The order's transition records, oldest first."""
        return await _ROWS.history(self.statements, tenant_id, order_id)
