"""Every transition of an order, every rule it checks, and what it leaves unchanged."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from rustok_commerce import (
    ORDER_STATES,
    AnyOrder,
    Cancelled,
    Confirmed,
    Delivered,
    MissingOrderDetailError,
    Money,
    NonPositiveAmountError,
    Order,
    Paid,
    Pending,
    Shipped,
)
from rustok_core.error import ErrorKind
from rustok_core.state_machine import (
    GuardFailedError,
    InvalidStateDataError,
    InvalidTransitionError,
    State,
    allowed_triggers,
    fire,
    is_state,
)

TENANT = UUID(int=1)
CUSTOMER = UUID(int=2)
ORDER_ID = UUID(int=3)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def pending() -> Order[Pending]:
    return Order.new_pending(
        tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("99.90", "EUR"), id=ORDER_ID, at=T0
    )


def confirmed() -> Order[Confirmed]:
    return pending().confirm(at=at(1))


def paid() -> Order[Paid]:
    return confirmed().pay("pi_1", "card", at=at(2))


def shipped() -> Order[Shipped]:
    return paid().ship("1Z999", "UPS", at=at(3))


def delivered() -> Order[Delivered]:
    return shipped().deliver("J. Doe", at=at(4))


def cancelled() -> Order[Cancelled]:
    return pending().cancel("changed my mind", at=at(1))


ONE_OF_EACH: dict[str, AnyOrder] = {
    "pending": pending(),
    "confirmed": confirmed(),
    "paid": paid(),
    "shipped": shipped(),
    "delivered": delivered(),
    "cancelled": cancelled(),
}


# -- creation ------------------------------------------------------------------------


def test_new_order_is_pending_at_version_one() -> None:
    order = pending()
    assert order.state == Pending()
    assert order.state_name == "pending"
    assert (order.id, order.tenant_id, order.customer_id) == (ORDER_ID, TENANT, CUSTOMER)
    assert order.total == Money.of("99.9", "EUR")
    assert order.created_at == order.updated_at == T0
    assert order.version == 1
    assert order.last_transition is None


def test_new_order_gets_a_fresh_id_and_the_current_time_by_default() -> None:
    before = datetime.now(UTC)
    first = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "USD"))
    second = Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of("1", "USD"))
    assert first.id != second.id
    assert first.created_at >= before


@pytest.mark.parametrize("amount", ["0", "-0.01"])
def test_new_order_refuses_a_total_that_is_not_positive(amount: str) -> None:
    with pytest.raises(NonPositiveAmountError) as info:
        Order.new_pending(tenant_id=TENANT, customer_id=CUSTOMER, total=Money.of(amount, "USD"))
    assert info.value.kind is ErrorKind.BUSINESS_LOGIC
    assert info.value.status == 422
    assert info.value.currency == "USD"


# -- each transition ------------------------------------------------------------------


def test_confirm_moves_pending_to_confirmed_with_inventory_reserved() -> None:
    order = pending().confirm(actor="clerk", at=at(1))
    assert order.state == Confirmed(inventory_reserved=True)
    assert order.version == 2
    assert order.updated_at == at(1)
    assert order.created_at == T0
    record = order.last_transition
    assert record is not None
    assert (record.trigger, record.from_state, record.to_state) == (
        "confirm",
        "pending",
        "confirmed",
    )
    assert (record.entity_type, record.entity_id, record.tenant_id) == ("Order", ORDER_ID, TENANT)
    assert (record.at, record.actor, record.version) == (at(1), "clerk", 2)
    assert dict(record.data) == {"inventory_reserved": True}


def test_confirm_is_refused_by_its_guard_when_inventory_is_not_reserved() -> None:
    order = pending()
    with pytest.raises(GuardFailedError, match="items are reserved") as info:
        order.confirm(inventory_reserved=False)
    assert info.value.guard == "inventory reserved"
    assert info.value.kind is ErrorKind.BUSINESS_LOGIC
    assert order == pending()


def test_pay_moves_confirmed_to_paid_with_the_payment() -> None:
    order = confirmed().pay(" pi_1 ", "card", actor="psp", at=at(2))
    assert order.state == Paid(payment_id="pi_1", payment_method="card", paid_at=at(2))
    assert order.version == 3
    assert order.last_transition is not None
    assert dict(order.last_transition.data) == {"payment_id": "pi_1", "payment_method": "card"}


def test_ship_moves_paid_to_shipped_with_tracking() -> None:
    order = paid().ship("1Z999", "UPS", at=at(3))
    assert order.state == Shipped(tracking_number="1Z999", carrier="UPS", shipped_at=at(3))
    assert order.version == 4


def test_deliver_moves_shipped_to_delivered_with_a_signature() -> None:
    order = shipped().deliver("J. Doe", at=at(4))
    assert order.state == Delivered(delivered_at=at(4), signature="J. Doe")
    assert order.version == 5
    assert order.last_transition is not None
    assert dict(order.last_transition.data) == {"signed": True}


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_deliver_without_a_signature(signature: str | None) -> None:
    assert shipped().deliver(signature).state.signature is None


def test_cancel_a_pending_order_without_refund() -> None:
    order = pending().cancel("changed my mind", at=at(1))
    assert order.state == Cancelled(
        reason="changed my mind", refunded=False, refund_id=None, cancelled_at=at(1)
    )
    assert order.last_transition is not None
    assert order.last_transition.from_state == "pending"


def test_cancel_a_confirmed_order_without_refund() -> None:
    order = confirmed().cancel("out of stock", at=at(2))
    assert order.state.refunded is False
    assert order.last_transition is not None
    assert order.last_transition.from_state == "confirmed"


def test_cancel_with_refund_moves_paid_to_cancelled_refunded() -> None:
    order = paid().cancel_with_refund("out of stock", "re_1", at=at(3))
    assert order.state == Cancelled(
        reason="out of stock", refunded=True, refund_id="re_1", cancelled_at=at(3)
    )
    assert order.last_transition is not None
    assert order.last_transition.trigger == "cancel_with_refund"
    assert dict(order.last_transition.data) == {"reason": "out of stock", "refund_id": "re_1"}


def test_full_lifecycle_keeps_identity_and_total() -> None:
    order = delivered()
    assert (order.id, order.tenant_id, order.customer_id) == (ORDER_ID, TENANT, CUSTOMER)
    assert order.total == Money.of("99.90", "EUR")
    assert order.version == 5
    assert order.created_at == T0
    assert order.updated_at == at(4)


def test_a_transition_leaves_the_original_order_unchanged() -> None:
    original = pending()
    original.confirm()
    assert original == pending()
    assert original.state_name == "pending"
    assert original.version == 1


def test_orders_and_states_are_immutable() -> None:
    order = paid()
    with pytest.raises(FrozenInstanceError):
        order.version = 9  # type: ignore[misc]  # frozen: the assignment must fail
    with pytest.raises(FrozenInstanceError):
        order.state.payment_id = "other"  # type: ignore[misc]  # frozen: must fail


# -- rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payment_id", "method", "field"),
    [
        ("", "card", "payment_id"),
        ("  ", "card", "payment_id"),
        ("pi_1", "", "payment_method"),
    ],
)
def test_pay_requires_payment_id_and_method(payment_id: str, method: str, field: str) -> None:
    order = confirmed()
    with pytest.raises(MissingOrderDetailError) as info:
        order.pay(payment_id, method)
    assert info.value.kind is ErrorKind.BUSINESS_LOGIC
    assert info.value.field == field
    assert info.value.order_id == str(ORDER_ID)
    assert [v.pointer for v in info.value.violations] == [f"/{field}"]
    assert order == confirmed()


@pytest.mark.parametrize(
    ("tracking", "carrier", "field"),
    [("", "UPS", "tracking_number"), ("1Z", " ", "carrier")],
)
def test_ship_requires_tracking_number_and_carrier(tracking: str, carrier: str, field: str) -> None:
    with pytest.raises(MissingOrderDetailError, match="required to ship an order") as info:
        paid().ship(tracking, carrier)
    assert info.value.field == field


def test_empty_payment_id_has_its_own_code() -> None:
    with pytest.raises(MissingOrderDetailError) as info:
        confirmed().pay("", "card")
    assert info.value.code == "EMPTY_PAYMENT_ID"
    assert info.value.status == 422


def test_cancel_requires_a_reason() -> None:
    with pytest.raises(MissingOrderDetailError) as plain:
        pending().cancel(" ")
    with pytest.raises(MissingOrderDetailError) as refunded:
        paid().cancel_with_refund("", "re_1")
    assert plain.value.field == refunded.value.field == "reason"
    assert plain.value.code == "EMPTY_CANCELLATION_REASON"


def test_cancel_with_refund_requires_the_refund_id() -> None:
    with pytest.raises(MissingOrderDetailError, match="refund the payment first") as info:
        paid().cancel_with_refund("out of stock", "")
    assert (info.value.field, info.value.code) == ("refund_id", "REFUND_REQUIRED")


# -- run-time checks for loaded orders --------------------------------------------------

# The legal graph, written out by hand: the machine must agree with it.
LEGAL: dict[str, set[str]] = {
    "pending": {"confirm", "cancel"},
    "confirmed": {"pay", "cancel"},
    "paid": {"ship", "cancel_with_refund"},
    "shipped": {"deliver"},
    "delivered": set(),
    "cancelled": set(),
}
ARGS: dict[str, dict[str, object]] = {
    "confirm": {},
    "pay": {"payment_id": "pi_9", "payment_method": "card"},
    "ship": {"tracking_number": "1Z", "carrier": "UPS"},
    "deliver": {"signature": None},
    "cancel": {"reason": "late"},
    "cancel_with_refund": {"reason": "late", "refund_id": "re_9"},
}


@pytest.mark.parametrize("state", list(LEGAL))
def test_allowed_triggers_follow_the_graph(state: str) -> None:
    assert set(allowed_triggers(ONE_OF_EACH[state])) == LEGAL[state]


@pytest.mark.parametrize(
    ("state", "trigger"),
    [(s, t) for s in LEGAL for t in ARGS if t not in LEGAL[s]],
)
def test_illegal_trigger_on_a_loaded_order_raises_and_changes_nothing(
    state: str, trigger: str
) -> None:
    order = Order.from_data(ONE_OF_EACH[state].to_data())
    before = order.to_data()
    with pytest.raises(InvalidTransitionError) as info:
        fire(order, trigger, **ARGS[trigger])
    error = info.value
    assert (error.entity_type, error.from_state, error.trigger) == ("Order", state, trigger)
    assert error.entity_id == str(ORDER_ID)
    assert set(error.allowed) == LEGAL[state]
    assert error.kind is ErrorKind.CONFLICT
    assert error.status == 409
    assert order.to_data() == before


@pytest.mark.parametrize(
    ("state", "trigger", "blank"),
    [
        ("pending", "pay", {"payment_id": "", "payment_method": ""}),
        ("pending", "pay", {"payment_id": "pi_1", "payment_method": ""}),
        ("confirmed", "ship", {"tracking_number": "", "carrier": ""}),
        ("confirmed", "ship", {"tracking_number": "1Z", "carrier": " "}),
        ("paid", "cancel", {"reason": ""}),
        ("delivered", "cancel_with_refund", {"reason": "", "refund_id": ""}),
        ("pending", "cancel_with_refund", {"reason": "late", "refund_id": ""}),
    ],
)
def test_state_is_checked_before_the_rules(
    state: str, trigger: str, blank: dict[str, object]
) -> None:
    # An order in the wrong state asked for a transition with blank details is refused
    # for its state (409), not for the details: the state is the more fundamental error.
    with pytest.raises(InvalidTransitionError) as info:
        fire(ONE_OF_EACH[state], trigger, **blank)
    assert info.value.from_state == state


def test_plain_cancel_of_a_paid_order_is_refused_at_run_time() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        fire(paid(), "cancel", reason="late")
    assert info.value.allowed == ("cancel_with_refund", "ship")


def test_unknown_trigger_is_an_invalid_transition() -> None:
    with pytest.raises(InvalidTransitionError):
        fire(pending(), "refund")


@pytest.mark.parametrize("state", list(LEGAL))
def test_stored_form_round_trips_in_every_state(state: str) -> None:
    order = ONE_OF_EACH[state]
    data = order.to_data()
    assert data["state"] == state
    loaded = Order.from_data(data)
    assert loaded == order
    assert loaded.total == order.total
    assert loaded.last_transition is None


def test_stored_form_keeps_money_as_text() -> None:
    data = paid().to_data()
    assert data["total"] == {"amount": "99.90", "currency": "EUR"}
    assert data["state_data"] == {
        "payment_id": "pi_1",
        "payment_method": "card",
        "paid_at": "2025-03-01T12:02:00Z",
    }


def test_loading_an_unknown_state_is_refused() -> None:
    data = pending().to_data()
    data["state"] = "refunded"
    with pytest.raises(InvalidStateDataError, match="refunded"):
        Order.from_data(data)


def test_loading_an_unknown_currency_is_refused() -> None:
    data = pending().to_data()
    data["total"] = {"amount": "1.00", "currency": "ABC"}
    with pytest.raises(InvalidStateDataError):
        Order.from_data(data)


def test_is_state_narrows_a_loaded_order() -> None:
    loaded: AnyOrder = Order.from_data(paid().to_data())
    assert not is_state(loaded, Confirmed)
    assert is_state(loaded, Paid)
    assert loaded.ship("1Z", "DHL").state_name == "shipped"


def test_the_order_states_are_declared_in_lifecycle_order() -> None:
    names = [state.state_name for state in ORDER_STATES]
    assert names == ["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]
    assert all(issubclass(state, State) for state in ORDER_STATES)
