"""The order service: validated input in, typed transitions, one audit record each.

Each transition loads the order for the tenant, narrows it to the state the transition
starts from (or refuses with `InvalidTransitionError` naming the state it is in), applies the
typed transition, and saves the new order together with its `TransitionRecord` through
`OrderRepository.save`, one unit of work.

`OrderService` is the one implementation of every operation on orders: the HTTP API of
rustok-server, a script or a worker all go through it, over their own repository.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID, uuid4

from rustok_commerce._errors import (
    MissingOrderDetailError,
    OrderNotFoundError,
    RefundNotApplicableError,
    VersionConflictError,
)
from rustok_commerce._inputs import (
    CancelOrderInput,
    ConfirmOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    PayOrderInput,
    ShipOrderInput,
)
from rustok_commerce._order import (
    ORDER_MACHINE,
    AnyOrder,
    Cancelled,
    Confirmed,
    Delivered,
    Order,
    Paid,
    Pending,
    Shipped,
)
from rustok_commerce._repository import OrderPosition, OrderRepository
from rustok_core.state_machine import State, TransitionRecord, invalid_transition, is_state

_S = TypeVar("_S", bound=State)
_STATE_NAMES = tuple(state.state_name for state in ORDER_MACHINE.states)


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of orders, oldest first, and the position to continue after.

    Attributes:
        items: the orders of the page.
        next_after: pass it as ``after`` for the next page; ``None`` on the last page.
    """

    items: tuple[AnyOrder, ...]
    next_after: OrderPosition | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrderService:
    """Creates orders and moves them through their lifecycle, for one tenant at a time.

    Args:
        repository: where orders and their transition records are stored.
        clock: the time of each creation and transition; ``datetime.now(UTC)`` by
            default (pass a controllable clock in tests).
        new_id: makes the id of a new order; ``uuid4`` by default.
        on_transition: told of each transition's record once the repository has saved it
            (for metrics and tracing; what it raises propagates).

    Example::

        service = OrderService(InMemoryOrderRepository())
        order = await service.create(tenant_id, CreateOrderInput(...))
        paid = await service.pay(tenant_id, order.id, PayOrderInput(...))
    """

    __slots__ = ("_clock", "_new_id", "_on_transition", "_repository")

    def __init__(
        self,
        repository: OrderRepository,
        *,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], UUID] = uuid4,
        on_transition: Callable[[TransitionRecord], None] | None = None,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._new_id = new_id
        self._on_transition = on_transition

    async def create(
        self, tenant_id: UUID, data: CreateOrderInput, *, actor: str | None = None
    ) -> Order[Pending]:
        """Create and store a new `Pending` order.

        `actor` is accepted for symmetry with the transitions; creation is not a
        transition and records none (the order's ``created_at`` says when).

        Raises:
            NonPositiveAmountError: the total is not positive.
        """
        del actor
        order = Order.new_pending(
            tenant_id=tenant_id,
            customer_id=data.customer_id,
            total=data.money,
            id=self._new_id(),
            at=self._clock(),
        )
        await self._repository.add(order)
        return order

    async def get(self, tenant_id: UUID, order_id: UUID) -> AnyOrder:
        """The order `order_id` of `tenant_id`.

        Raises:
            OrderNotFoundError: the tenant has no such order (another tenant's order is
                reported the same way).
        """
        order = await self._repository.get(tenant_id, order_id)
        if order is None:
            raise OrderNotFoundError(order_id, tenant_id)
        return order

    async def list_orders(
        self,
        tenant_id: UUID,
        *,
        state: type[State] | str | None = None,
        after: OrderPosition | None = None,
        limit: int = 50,
    ) -> OrderPage:
        """One page of the tenant's orders, oldest first (by ``(created_at, id)``), after
        the position `after` when given, optionally only those in `state` (a state class
        or name).

        One more order than `limit` is asked of the repository, to know whether a next
        page exists; only then does the page carry ``next_after``.

        Raises:
            ValueError: `state` is not an order state, or `limit` is not 1-500.
        """
        if not 1 <= limit <= 500:
            raise ValueError(f"limit must be between 1 and 500, got {limit}")
        name = state.state_name if isinstance(state, type) else state
        if name is not None and name not in _STATE_NAMES:
            raise ValueError(
                f"{name!r} is not a state of an order (states: {', '.join(_STATE_NAMES)})"
            )
        found = await self._repository.page(tenant_id, state=name, after=after, limit=limit + 1)
        items = tuple(found[:limit])
        last = items[-1] if len(found) > limit else None
        return OrderPage(items, None if last is None else (last.created_at, last.id))

    async def history(self, tenant_id: UUID, order_id: UUID) -> list[TransitionRecord]:
        """The order's transition records, oldest first.

        Raises:
            OrderNotFoundError: the tenant has no such order.
        """
        await self.get(tenant_id, order_id)
        return list(await self._repository.history(tenant_id, order_id))

    async def confirm(
        self,
        tenant_id: UUID,
        order_id: UUID,
        data: ConfirmOrderInput | None = None,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> Order[Confirmed]:
        """Confirm a `Pending` order whose items are reserved (``data`` left out: they are).

        Raises:
            OrderNotFoundError: no such order for this tenant.
            InvalidTransitionError: the order is not `Pending`.
            GuardFailedError: the items are not reserved.
            VersionConflictError: another change of the order was saved first, or
                the order is not at `expected_version` (when given: one version, or any of
                several).
        """
        order = await self._load(tenant_id, order_id, expected_version)
        if not is_state(order, Pending):
            raise invalid_transition(order, "confirm")
        reserved = data.inventory_reserved if data is not None else True
        confirmed = order.confirm(inventory_reserved=reserved, actor=actor, at=self._clock())
        return await self._save(confirmed)

    async def pay(
        self,
        tenant_id: UUID,
        order_id: UUID,
        data: PayOrderInput,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> Order[Paid]:
        """Record the payment of a `Confirmed` order.

        Raises:
            OrderNotFoundError: no such order for this tenant.
            InvalidTransitionError: the order is not `Confirmed`.
            VersionConflictError: another change of the order was saved first, or
                the order is not at `expected_version` (when given: one version, or any of
                several).
        """
        order = await self._load(tenant_id, order_id, expected_version)
        if not is_state(order, Confirmed):
            raise invalid_transition(order, "pay")
        paid = order.pay(data.payment_id, data.payment_method, actor=actor, at=self._clock())
        return await self._save(paid)

    async def ship(
        self,
        tenant_id: UUID,
        order_id: UUID,
        data: ShipOrderInput,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> Order[Shipped]:
        """Ship a `Paid` order.

        Raises:
            OrderNotFoundError: no such order for this tenant.
            InvalidTransitionError: the order is not `Paid`.
            VersionConflictError: another change of the order was saved first, or
                the order is not at `expected_version` (when given: one version, or any of
                several).
        """
        order = await self._load(tenant_id, order_id, expected_version)
        if not is_state(order, Paid):
            raise invalid_transition(order, "ship")
        shipped = order.ship(data.tracking_number, data.carrier, actor=actor, at=self._clock())
        return await self._save(shipped)

    async def deliver(
        self,
        tenant_id: UUID,
        order_id: UUID,
        data: DeliverOrderInput | None = None,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> Order[Delivered]:
        """Record the delivery of a `Shipped` order.

        Raises:
            OrderNotFoundError: no such order for this tenant.
            InvalidTransitionError: the order is not `Shipped`.
            VersionConflictError: another change of the order was saved first, or
                the order is not at `expected_version` (when given: one version, or any of
                several).
        """
        order = await self._load(tenant_id, order_id, expected_version)
        if not is_state(order, Shipped):
            raise invalid_transition(order, "deliver")
        signature = data.signature if data is not None else None
        delivered = order.deliver(signature, actor=actor, at=self._clock())
        return await self._save(delivered)

    async def cancel(
        self,
        tenant_id: UUID,
        order_id: UUID,
        data: CancelOrderInput,
        *,
        actor: str | None = None,
        expected_version: int | Collection[int] | None = None,
    ) -> Order[Cancelled]:
        """Cancel an order: `Pending` or `Confirmed` plainly, `Paid` with its refund.

        A paid order needs ``data.refund_id`` (the refund already issued) and is cancelled
        by ``cancel_with_refund``; an unpaid one must not name a refund.

        Raises:
            OrderNotFoundError: no such order for this tenant.
            InvalidTransitionError: the order is `Shipped`, `Delivered` or `Cancelled`.
            MissingOrderDetailError: the order is paid and no refund id was given
                (field ``refund_id``).
            RefundNotApplicableError: a refund id was given for an unpaid order.
            VersionConflictError: another change of the order was saved first, or
                the order is not at `expected_version` (when given: one version, or any of
                several).
        """
        order = await self._load(tenant_id, order_id, expected_version)
        at = self._clock()
        if is_state(order, Paid):
            if data.refund_id is None:
                raise MissingOrderDetailError("refund_id", order.id)
            cancelled = order.cancel_with_refund(data.reason, data.refund_id, actor=actor, at=at)
        elif is_state(order, Pending) or is_state(order, Confirmed):
            if data.refund_id is not None:
                raise RefundNotApplicableError(order.id, order.state_name)
            cancelled = order.cancel(data.reason, actor=actor, at=at)
        else:
            raise invalid_transition(order, "cancel")
        return await self._save(cancelled)

    async def _load(
        self, tenant_id: UUID, order_id: UUID, expected_version: int | Collection[int] | None
    ) -> AnyOrder:
        # The one read of a transition: the caller's expected version is checked on it.
        order = await self.get(tenant_id, order_id)
        if expected_version is not None and not _at(order.version, expected_version):
            raise VersionConflictError(order_id, expected_version, order.version)
        return order

    async def _save(self, order: Order[_S]) -> Order[_S]:
        record = order.last_transition
        assert record is not None, "every transition sets last_transition"
        await self._repository.save(order, expected_version=order.version - 1, record=record)
        if self._on_transition is not None:
            self._on_transition(record)
        return order


def _at(version: int, expected: int | Collection[int]) -> bool:
    return version == expected if isinstance(expected, int) else version in expected
