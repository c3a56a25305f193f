"""The order service: one saved record per transition, tenants kept apart, races refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from rustok_commerce import (
    AnyOrder,
    Cancelled,
    CancelOrderInput,
    Confirmed,
    ConfirmOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    InMemoryOrderRepository,
    MissingOrderDetailError,
    Money,
    Order,
    OrderNotFoundError,
    OrderRepository,
    OrderService,
    Paid,
    PayOrderInput,
    Pending,
    RefundNotApplicableError,
    ShipOrderInput,
    VersionConflictError,
)
from rustok_core.error import ErrorKind
from rustok_core.state_machine import GuardFailedError, InvalidTransitionError, State, is_state
from rustok_core.testing import ManualClock

TENANT = UUID(int=10)
OTHER_TENANT = UUID(int=11)
CUSTOMER = UUID(int=20)
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def wall_clock(clock: ManualClock, start: datetime = T0) -> Callable[[], datetime]:
    """The service's wall clock read off ``clock``: it moves only when a test advances it."""
    return lambda: start + timedelta(seconds=clock())


def ids() -> Callable[[], UUID]:
    counter = iter(range(1000, 2000))
    return lambda: UUID(int=next(counter))


@pytest.fixture
def repository() -> InMemoryOrderRepository:
    return InMemoryOrderRepository()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


@pytest.fixture
def service(repository: InMemoryOrderRepository, clock: ManualClock) -> OrderService:
    return OrderService(repository, clock=wall_clock(clock), new_id=ids())


def new_order(amount: str = "25.00", currency: str = "EUR") -> CreateOrderInput:
    return CreateOrderInput(customer_id=CUSTOMER, amount=amount, currency=currency)


PAY = PayOrderInput(payment_id="pi_1", payment_method="card")
SHIP = ShipOrderInput(tracking_number="1Z999", carrier="UPS")


def test_in_memory_repository_satisfies_the_protocol(
    repository: InMemoryOrderRepository,
) -> None:
    as_protocol: OrderRepository = repository
    assert as_protocol is repository


async def test_create_stores_a_pending_order(service: OrderService, clock: ManualClock) -> None:
    clock.advance(60)
    order = await service.create(TENANT, new_order("19.9"))
    assert order.id == UUID(int=1000)
    assert order.state == Pending()
    assert order.total == Money(Decimal("19.90"), "EUR")
    assert order.created_at == T0 + timedelta(minutes=1)
    assert await service.get(TENANT, order.id) == order
    assert await service.history(TENANT, order.id) == []


async def test_full_lifecycle_saves_one_record_per_transition(
    service: OrderService, clock: ManualClock
) -> None:
    order = await service.create(TENANT, new_order())
    clock.advance(120)
    await service.confirm(TENANT, order.id, actor="clerk")
    clock.advance(60)
    await service.pay(TENANT, order.id, PAY, actor="psp")
    clock.advance(60)
    await service.ship(TENANT, order.id, SHIP)
    clock.advance(60)
    delivered = await service.deliver(TENANT, order.id, DeliverOrderInput(signature="J. Doe"))

    assert delivered.state.signature == "J. Doe"
    assert delivered.version == 5
    stored = await service.get(TENANT, order.id)
    assert stored == delivered
    history = await service.history(TENANT, order.id)
    assert [(r.trigger, r.from_state, r.to_state, r.version) for r in history] == [
        ("confirm", "pending", "confirmed", 2),
        ("pay", "confirmed", "paid", 3),
        ("ship", "paid", "shipped", 4),
        ("deliver", "shipped", "delivered", 5),
    ]
    assert [r.actor for r in history] == ["clerk", "psp", None, None]
    assert all(r.entity_id == order.id and r.tenant_id == TENANT for r in history)
    assert [r.at for r in history] == [T0 + timedelta(minutes=m) for m in (2, 3, 4, 5)]


async def test_the_record_is_the_one_the_transition_produced(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    confirmed = await service.confirm(TENANT, order.id)
    (record,) = await service.history(TENANT, order.id)
    assert record == confirmed.last_transition


async def test_deliver_without_input_has_no_signature(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    await service.pay(TENANT, order.id, PAY)
    await service.ship(TENANT, order.id, SHIP)
    assert (await service.deliver(TENANT, order.id)).state.signature is None


async def test_cancel_pending_and_confirmed_orders_without_refund(service: OrderService) -> None:
    first = await service.create(TENANT, new_order())
    second = await service.create(TENANT, new_order())
    await service.confirm(TENANT, second.id)
    one = await service.cancel(TENANT, first.id, CancelOrderInput(reason="duplicate"))
    two = await service.cancel(TENANT, second.id, CancelOrderInput(reason="out of stock"))
    assert one.state.refunded is False
    assert two.state.refunded is False
    assert [r.trigger for r in await service.history(TENANT, second.id)] == ["confirm", "cancel"]


async def test_cancel_a_paid_order_with_its_refund(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    await service.pay(TENANT, order.id, PAY)
    cancelled = await service.cancel(
        TENANT, order.id, CancelOrderInput(reason="out of stock", refund_id="re_1")
    )
    assert cancelled.state == Cancelled(
        reason="out of stock",
        refunded=True,
        refund_id="re_1",
        cancelled_at=cancelled.state.cancelled_at,
    )
    history = await service.history(TENANT, order.id)
    assert history[-1].trigger == "cancel_with_refund"


async def test_cancelling_a_paid_order_requires_a_refund_id(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    paid = await service.pay(TENANT, order.id, PAY)
    with pytest.raises(MissingOrderDetailError) as info:
        await service.cancel(TENANT, order.id, CancelOrderInput(reason="late"))
    assert info.value.kind is ErrorKind.BUSINESS_LOGIC
    assert info.value.field == "refund_id"
    assert await service.get(TENANT, order.id) == paid
    assert len(await service.history(TENANT, order.id)) == 2


async def test_a_refund_id_for_an_unpaid_order_is_refused(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    with pytest.raises(RefundNotApplicableError, match="never paid") as info:
        await service.cancel(TENANT, order.id, CancelOrderInput(reason="late", refund_id="re_1"))
    assert info.value.state == "pending"
    assert (await service.get(TENANT, order.id)).state == Pending()


async def test_a_shipped_order_cannot_be_cancelled(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    await service.pay(TENANT, order.id, PAY)
    await service.ship(TENANT, order.id, SHIP)
    with pytest.raises(InvalidTransitionError) as info:
        await service.cancel(TENANT, order.id, CancelOrderInput(reason="late", refund_id="re_1"))
    assert (info.value.from_state, info.value.trigger) == ("shipped", "cancel")
    assert info.value.allowed == ("deliver",)


async def test_a_transition_from_the_wrong_state_stores_nothing(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    with pytest.raises(InvalidTransitionError) as info:
        await service.ship(TENANT, order.id, SHIP)
    assert info.value.status == 409
    assert await service.get(TENANT, order.id) == order
    assert await service.history(TENANT, order.id) == []


@pytest.mark.parametrize(
    ("call", "from_state"),
    [
        ("confirm", "confirmed"),
        ("pay", "pending"),
        ("deliver", "pending"),
    ],
)
async def test_each_service_transition_checks_the_state(
    service: OrderService, call: str, from_state: str
) -> None:
    order = await service.create(TENANT, new_order())
    if from_state == "confirmed":
        await service.confirm(TENANT, order.id)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "confirm": lambda: service.confirm(TENANT, order.id),
        "pay": lambda: service.pay(TENANT, order.id, PAY),
        "deliver": lambda: service.deliver(TENANT, order.id),
    }
    with pytest.raises(InvalidTransitionError) as info:
        await calls[call]()
    assert (info.value.from_state, info.value.trigger) == (from_state, call)


async def test_a_failing_guard_stores_nothing(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    with pytest.raises(GuardFailedError):
        await service.confirm(TENANT, order.id, ConfirmOrderInput(inventory_reserved=False))
    assert (await service.get(TENANT, order.id)).version == 1


async def test_a_broken_rule_stores_nothing(repository: InMemoryOrderRepository) -> None:
    # The input model takes a blank id as well-formed; the rule of payment refuses it.
    service = OrderService(repository)
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    blank = PayOrderInput(payment_id="  ", payment_method="card")
    with pytest.raises(MissingOrderDetailError, match="payment_id"):
        await service.pay(TENANT, order.id, blank)
    assert len(await service.history(TENANT, order.id)) == 1


async def test_unknown_order_is_not_found(service: OrderService) -> None:
    with pytest.raises(OrderNotFoundError) as info:
        await service.get(TENANT, UUID(int=999))
    assert info.value.kind is ErrorKind.NOT_FOUND
    assert info.value.tenant_id == str(TENANT)
    with pytest.raises(OrderNotFoundError):
        await service.history(TENANT, UUID(int=999))


async def test_another_tenants_order_is_not_found(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    with pytest.raises(OrderNotFoundError):
        await service.get(OTHER_TENANT, order.id)
    with pytest.raises(OrderNotFoundError):
        await service.confirm(OTHER_TENANT, order.id)
    assert (await service.get(TENANT, order.id)).version == 1
    assert (await service.list_orders(OTHER_TENANT)).items == ()


async def test_list_orders_pages_and_filters_by_state(service: OrderService) -> None:
    created = [await service.create(TENANT, new_order()) for _ in range(5)]
    await service.create(OTHER_TENANT, new_order())
    await service.confirm(TENANT, created[1].id)
    await service.confirm(TENANT, created[3].id)

    everything = await service.list_orders(TENANT)
    assert [o.id for o in everything.items] == [o.id for o in created]
    assert everything.next_after is None
    first = await service.list_orders(TENANT, limit=2)
    assert first.next_after == (created[1].created_at, created[1].id)
    page = await service.list_orders(TENANT, after=first.next_after, limit=2)
    assert [o.id for o in page.items] == [created[2].id, created[3].id]
    confirmed = await service.list_orders(TENANT, state=Confirmed)
    assert [o.id for o in confirmed.items] == [created[1].id, created[3].id]
    assert (await service.list_orders(TENANT, state=Paid)).items == ()


async def test_list_orders_refuses_a_state_of_another_machine(service: OrderService) -> None:
    class Elsewhere(State):
        pass

    with pytest.raises(ValueError, match="not a state of an order"):
        await service.list_orders(TENANT, state=Elsewhere)
    with pytest.raises(ValueError, match="'refunded' is not a state"):
        await service.list_orders(TENANT, state="refunded")


@pytest.mark.parametrize("limit", [0, 501])
async def test_list_orders_refuses_bad_paging(service: OrderService, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await service.list_orders(TENANT, limit=limit)


async def test_list_orders_takes_a_state_name(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    assert [o.id for o in (await service.list_orders(TENANT, state="pending")).items] == [order.id]


async def test_a_stale_expected_version_is_refused_before_anything_changes(
    service: OrderService,
) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id, expected_version=1)
    with pytest.raises(VersionConflictError) as info:
        await service.pay(TENANT, order.id, PAY, expected_version=1)
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert (await service.get(TENANT, order.id)).state_name == "confirmed"
    paid = await service.pay(TENANT, order.id, PAY, expected_version=2)
    assert paid.version == 3


async def test_an_expected_version_may_be_any_of_several(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    with pytest.raises(VersionConflictError) as info:
        await service.confirm(TENANT, order.id, expected_version=frozenset({2, 7}))
    assert (info.value.expected_version, info.value.actual_version) == ({2, 7}, 1)
    assert "one of versions 2, 7" in info.value.message
    confirmed = await service.confirm(TENANT, order.id, expected_version=frozenset({1, 7}))
    assert confirmed.version == 2


async def test_of_two_concurrent_transitions_exactly_one_wins(
    repository: InMemoryOrderRepository,
) -> None:
    service = OrderService(repository)
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    # Two clients loaded the same confirmed order; both transition it; both save.
    first = await repository.get(TENANT, order.id)
    second = await repository.get(TENANT, order.id)
    assert first is not None
    assert second is not None
    paid = fire_pay(first, "pi_a")
    cancelled = fire_cancel(second)
    assert paid.last_transition is not None
    assert cancelled.last_transition is not None
    await repository.save(paid, expected_version=2, record=paid.last_transition)
    with pytest.raises(VersionConflictError) as info:
        await repository.save(cancelled, expected_version=2, record=cancelled.last_transition)
    assert (info.value.expected_version, info.value.actual_version) == (2, 3)
    assert info.value.kind is ErrorKind.CONFLICT
    assert (await service.get(TENANT, order.id)).state_name == "paid"
    assert [r.trigger for r in await service.history(TENANT, order.id)] == ["confirm", "pay"]


async def test_concurrent_service_calls_apply_each_transition_once(
    service: OrderService,
) -> None:
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    results = await asyncio.gather(
        *(service.pay(TENANT, order.id, PAY) for _ in range(10)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, Order)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(e, InvalidTransitionError | VersionConflictError) for e in losses)
    history = await service.history(TENANT, order.id)
    assert [r.trigger for r in history] == ["confirm", "pay"]


async def test_adding_the_same_order_twice_is_refused(
    repository: InMemoryOrderRepository,
) -> None:
    order = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "EUR"))
    await repository.add(order)
    with pytest.raises(VersionConflictError):
        await repository.add(order)


async def test_saving_a_record_of_another_order_is_refused(
    repository: InMemoryOrderRepository,
) -> None:
    one = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "EUR"))
    two = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "EUR"))
    await repository.add(one)
    await repository.add(two)
    record = two.confirm().last_transition
    assert record is not None
    with pytest.raises(ValueError, match="does not belong"):
        await repository.save(one.confirm(), expected_version=1, record=record)
    assert await repository.history(TENANT, one.id) == ()


async def test_saving_an_order_never_added_is_not_found(
    repository: InMemoryOrderRepository,
) -> None:
    order = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "EUR"))
    confirmed = order.confirm()
    assert confirmed.last_transition is not None
    with pytest.raises(OrderNotFoundError):
        await repository.save(confirmed, expected_version=1, record=confirmed.last_transition)


async def test_page_refuses_a_negative_limit(repository: InMemoryOrderRepository) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        await repository.page(TENANT, limit=-1)


async def test_loaded_orders_carry_no_last_transition(service: OrderService) -> None:
    order = await service.create(TENANT, new_order())
    confirmed = await service.confirm(TENANT, order.id)
    assert confirmed.last_transition is not None
    assert (await service.get(TENANT, order.id)).last_transition is None


def fire_pay(order: AnyOrder, payment_id: str) -> Order[Paid]:
    assert is_state(order, Confirmed)
    return order.pay(payment_id, "card")


def fire_cancel(order: AnyOrder) -> Order[Cancelled]:
    assert is_state(order, Confirmed)
    return order.cancel("changed my mind")


async def test_on_transition_hears_each_saved_record_and_nothing_refused(
    repository: InMemoryOrderRepository, clock: ManualClock
) -> None:
    heard: list[str] = []
    service = OrderService(
        repository, clock=wall_clock(clock), on_transition=lambda r: heard.append(r.trigger)
    )
    order = await service.create(TENANT, new_order())
    await service.confirm(TENANT, order.id)
    await service.pay(TENANT, order.id, PAY)
    with pytest.raises(InvalidTransitionError):
        await service.confirm(TENANT, order.id)  # refused: nothing saved, nothing heard
    assert heard == ["confirm", "pay"]
    assert [r.trigger for r in await service.history(TENANT, order.id)] == heard
