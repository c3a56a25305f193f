"""Where orders live: the `OrderRepository` protocol and an in-memory implementation.

The service speaks only to the protocol; the server implements it on SQL. Every method
takes the tenant: an order of another tenant is never seen, changed or reported (it is
absent, exactly like an order that does not exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import JsonValue

from rustok_commerce._errors import OrderNotFoundError, VersionConflictError
from rustok_commerce._order import AnyOrder, Order, Pending
from rustok_core.state_machine import State, TransitionRecord

OrderPosition = tuple[datetime, UUID]
"""Where an order stands in a list: its ``(created_at, id)``, the order every list uses."""


class OrderRepository(Protocol):
    """The storage an `OrderService` needs.

    `save` is one unit of work: the order's new state and the transition's record are
    stored together or not at all, and only if the stored order is still at the version
    the transition started from (optimistic locking).
    """

    async def add(self, order: Order[Pending]) -> None:
        """Store a new order.

        Raises:
            VersionConflictError: an order with this id already exists.
        """
        ...

    async def get(self, tenant_id: UUID, order_id: UUID) -> AnyOrder | None:
        """The order `order_id` of `tenant_id`, or ``None`` when that tenant has none."""
        ...

    async def page(
        self,
        tenant_id: UUID,
        *,
        state: str | None = None,
        after: OrderPosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyOrder]:
        """Up to `limit` of the tenant's orders in ``(created_at, id)`` order, only those
        strictly after `after` when given (keyset paging: orders added meanwhile never
        shift a page), optionally only those in the state named `state`."""
        ...

    async def save(
        self, order: Order[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Replace the stored order by `order` (already transitioned) and append its
        `record`, in one unit of work, only if the stored version is still
        `expected_version`.

        Raises:
            VersionConflictError: the stored order is at another version (another
                change was saved first); nothing is stored.
            OrderNotFoundError: the order was never stored.
        """
        ...

    async def history(self, tenant_id: UUID, order_id: UUID) -> Sequence[TransitionRecord]:
        """The transition records of the order, oldest first (empty for an unknown order)."""
        ...


class InMemoryOrderRepository:
    """An `OrderRepository` in a dict, for tests, examples and prototypes.

    Orders are kept as their stored form (`Order.to_data`) and rebuilt on every read, as
    a database would, so a loaded order is an `AnyOrder` with no ``last_transition``.
    Each method runs without awaiting anything in between its check and its write,
    so on one event loop it is atomic: that is this repository's unit of work.
    """

    __slots__ = ("_orders", "_records")

    def __init__(self) -> None:
        self._orders: dict[tuple[UUID, UUID], dict[str, JsonValue]] = {}
        self._records: dict[tuple[UUID, UUID], list[TransitionRecord]] = {}

    async def add(self, order: Order[Pending]) -> None:
        """Store a new order (see `OrderRepository.add`)."""
        key = (order.tenant_id, order.id)
        existing = self._orders.get(key)
        if existing is not None:
            version = existing["version"]
            raise VersionConflictError(order.id, 0, version if isinstance(version, int) else -1)
        self._orders[key] = order.to_data()
        self._records[key] = []

    async def get(self, tenant_id: UUID, order_id: UUID) -> AnyOrder | None:
        """The order, rebuilt from its stored form (see `OrderRepository.get`)."""
        data = self._orders.get((tenant_id, order_id))
        return None if data is None else Order.from_data(data)

    async def page(
        self,
        tenant_id: UUID,
        *,
        state: str | None = None,
        after: OrderPosition | None = None,
        limit: int = 50,
    ) -> Sequence[AnyOrder]:
        """A page of the tenant's orders (see `OrderRepository.page`)."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        orders = [
            Order.from_data(data)
            for (tenant, _), data in self._orders.items()
            if tenant == tenant_id and (state is None or data["state"] == state)
        ]
        orders.sort(key=lambda order: (order.created_at, order.id))
        if after is not None:
            orders = [order for order in orders if (order.created_at, order.id) > after]
        return orders[:limit]

    async def save(
        self, order: Order[State], *, expected_version: int, record: TransitionRecord
    ) -> None:
        """Store the order and its record together (see `OrderRepository.save`)."""
        key = (order.tenant_id, order.id)
        if record.entity_id != order.id or record.tenant_id != order.tenant_id:
            raise ValueError(
                f"record of {record.entity_type} {record.entity_id} does not belong to "
                f"order {order.id} of tenant {order.tenant_id}"
            )
        stored = self._orders.get(key)
        if stored is None:
            raise OrderNotFoundError(order.id, order.tenant_id)
        stored_version = stored["version"]
        if stored_version != expected_version:
            raise VersionConflictError(
                order.id,
                expected_version,
                stored_version if isinstance(stored_version, int) else -1,
            )
        self._orders[key] = order.to_data()
        self._records[key].append(record)

    async def history(self, tenant_id: UUID, order_id: UUID) -> Sequence[TransitionRecord]:
        """The order's records, oldest first (see `OrderRepository.history`)."""
        return tuple(self._records.get((tenant_id, order_id), ()))
