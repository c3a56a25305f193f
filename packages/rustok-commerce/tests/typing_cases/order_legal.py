"""Every legal order chain type-checks clean under mypy and pyright (test_order_typing.py)."""

from uuid import UUID

from rustok_core.state_machine import State, TransitionRecord, is_state

from rustok_commerce import (
    AnyOrder,
    Cancelled,
    Confirmed,
    Delivered,
    Money,
    Order,
    Paid,
    Pending,
    Shipped,
)


def new() -> Order[Pending]:
    return Order.new_pending(
        tenant_id=UUID(int=1), customer_id=UUID(int=2), total=Money.of("10", "EUR")
    )


delivered: Order[Delivered] = (
    new().confirm().pay("pi_1", "card").ship("1Z", "UPS").deliver(signature="J. Doe")
)
cancelled_pending: Order[Cancelled] = new().cancel("changed my mind")
cancelled_confirmed: Order[Cancelled] = new().confirm().cancel("out of stock")
refunded: Order[Cancelled] = new().confirm().pay("pi_1", "card").cancel_with_refund(
    "out of stock", "re_1"
)

# The state's own data is typed.
payment_id: str = new().confirm().pay("pi_1", "card").state.payment_id
signature: str | None = delivered.state.signature
refund_id: str | None = refunded.state.refund_id
record: TransitionRecord | None = delivered.last_transition

# Covariance: an order in any state is an Order[State].
any_state: Order[State] = delivered


def ship_if_paid(order: AnyOrder) -> Order[Shipped] | None:
    """A loaded order is narrowed by is_state before a transition is called."""
    if is_state(order, Paid):
        return order.ship("1Z", "UPS")
    return None


def pay_loaded(data: dict[str, object]) -> Order[Paid] | None:
    """An order rebuilt from storage is an AnyOrder until narrowed."""
    order = Order.from_data(data)
    if is_state(order, Confirmed):
        return order.pay("pi_1", "card")
    if is_state(order, Pending):
        return order.confirm().pay("pi_1", "card")
    return None


def cancel_early(order: Order[Pending] | Order[Confirmed]) -> Order[Cancelled]:
    """cancel accepts an order that is either Pending or Confirmed."""
    return order.cancel("changed my mind")


def narrowing_keeps_the_order(data: dict[str, object]) -> None:
    """is_state narrows a loaded order to the Order in that state, never to a bare Entity
    (whose transitions would be gone): assert_type checks the exact type, for each checker."""
    from typing import assert_type

    order = Order.from_data(data)
    assert_type(order, AnyOrder)
    if is_state(order, Paid):
        assert_type(order, Order[Paid])
    elif is_state(order, Pending) or is_state(order, Confirmed):
        assert_type(order, Order[Pending] | Order[Confirmed])
        assert_type(order.cancel("changed my mind"), Order[Cancelled])
