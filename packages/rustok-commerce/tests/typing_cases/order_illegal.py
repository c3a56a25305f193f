"""Every transition an order's state does not have: each marked line must be an error of
mypy and of pyright.

Checked by test_order_typing.py. A line marked ``# E: <code>`` must get a mypy error with
that code and the pyright error of the same kind; no other line may get one.
"""

from uuid import UUID

from rustok_core.state_machine import is_state

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

pending: Order[Pending] = Order.new_pending(
    tenant_id=UUID(int=1), customer_id=UUID(int=2), total=Money.of("10", "EUR")
)
confirmed: Order[Confirmed] = pending.confirm()
paid: Order[Paid] = confirmed.pay("pi_1", "card")
shipped: Order[Shipped] = paid.ship("1Z", "UPS")
delivered: Order[Delivered] = shipped.deliver()
cancelled: Order[Cancelled] = pending.cancel("changed my mind")


def never_run() -> None:
    """The illegal calls live in a function nobody calls: importing this file (as pytest's
    document collection does) must not run them."""
    # From Pending: only confirm and cancel.
    pending.pay("pi_1", "card")  # E: misc
    pending.ship("1Z", "UPS")  # E: misc
    pending.deliver()  # E: misc
    pending.cancel_with_refund("late", "re_1")  # E: misc

    # From Confirmed: only pay and cancel.
    confirmed.confirm()  # E: misc
    confirmed.ship("1Z", "UPS")  # E: misc
    confirmed.deliver()  # E: misc
    confirmed.cancel_with_refund("late", "re_1")  # E: misc

    # From Paid: only ship and cancel_with_refund (a plain cancel would lose the refund).
    paid.confirm()  # E: misc
    paid.pay("pi_2", "card")  # E: misc
    paid.deliver()  # E: misc
    paid.cancel("late")  # E: misc

    # From Shipped: only deliver.
    shipped.confirm()  # E: misc
    shipped.pay("pi_2", "card")  # E: misc
    shipped.ship("1Z", "UPS")  # E: misc
    shipped.cancel("late")  # E: misc
    shipped.cancel_with_refund("late", "re_1")  # E: misc

    # Delivered is final.
    delivered.confirm()  # E: misc
    delivered.pay("pi_2", "card")  # E: misc
    delivered.ship("1Z", "UPS")  # E: misc
    delivered.deliver()  # E: misc
    delivered.cancel("late")  # E: misc
    delivered.cancel_with_refund("late", "re_1")  # E: misc

    # Cancelled is final.
    cancelled.confirm()  # E: misc
    cancelled.pay("pi_2", "card")  # E: misc
    cancelled.ship("1Z", "UPS")  # E: misc
    cancelled.deliver()  # E: misc
    cancelled.cancel("again")  # E: misc
    cancelled.cancel_with_refund("again", "re_1")  # E: misc

    # A transition returns the next state, not the one it started from.
    still_pending: Order[Pending] = pending.confirm()  # E: assignment
    not_shipped: Order[Paid] = paid.ship("1Z", "UPS")  # E: assignment


def loaded(order: AnyOrder) -> None:
    """A loaded order has no transition until it is narrowed, then only its state's."""
    order.ship("1Z", "UPS")  # E: misc
    if is_state(order, Paid):
        order.confirm()  # E: misc
        order.cancel("late")  # E: misc
