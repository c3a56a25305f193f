"""Every transition an order's state does not have: each marked line must be a mypy error.

Checked by test_order_typing.py, never run. A line ending in ``# illegal`` must get a mypy
error; no other line may.
"""

from uuid import UUID

from rustok_commerce import (
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
    pending.pay("pi_1", "card")  # illegal
    pending.ship("1Z", "UPS")  # illegal
    pending.deliver()  # illegal
    pending.cancel_with_refund("late", "re_1")  # illegal

    # From Confirmed: only pay and cancel.
    confirmed.confirm()  # illegal
    confirmed.ship("1Z", "UPS")  # illegal
    confirmed.deliver()  # illegal
    confirmed.cancel_with_refund("late", "re_1")  # illegal

    # From Paid: only ship and cancel_with_refund (a plain cancel would lose the refund).
    paid.confirm()  # illegal
    paid.pay("pi_2", "card")  # illegal
    paid.deliver()  # illegal
    paid.cancel("late")  # illegal

    # From Shipped: only deliver.
    shipped.confirm()  # illegal
    shipped.pay("pi_2", "card")  # illegal
    shipped.ship("1Z", "UPS")  # illegal
    shipped.cancel("late")  # illegal
    shipped.cancel_with_refund("late", "re_1")  # illegal

    # Delivered is final.
    delivered.confirm()  # illegal
    delivered.pay("pi_2", "card")  # illegal
    delivered.ship("1Z", "UPS")  # illegal
    delivered.deliver()  # illegal
    delivered.cancel("late")  # illegal
    delivered.cancel_with_refund("late", "re_1")  # illegal

    # Cancelled is final.
    cancelled.confirm()  # illegal
    cancelled.pay("pi_2", "card")  # illegal
    cancelled.ship("1Z", "UPS")  # illegal
    cancelled.deliver()  # illegal
    cancelled.cancel("again")  # illegal
    cancelled.cancel_with_refund("again", "re_1")  # illegal

    # A transition returns the next state, not the one it started from.
    still_pending: Order[Pending] = pending.confirm()  # illegal
    not_shipped: Order[Paid] = paid.ship("1Z", "UPS")  # illegal
