"""Property tests: random trigger sequences, applied at run time, follow the typed graph.

For any sequence of triggers fired on an order whose state is known only at run time:
the order never reaches a state outside the graph; `InvalidTransitionError` is raised exactly
when the typed API has no such method for that state; and a refused trigger leaves the
order as it was.
"""

from __future__ import annotations

import inspect
import typing
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from rustok_commerce import (
    ORDER_MACHINE,
    ORDER_STATES,
    MissingOrderDetailError,
    Money,
    Order,
    currency_minor_units,
)
from rustok_core.state_machine import Entity, InvalidTransitionError, State, fire

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TRIGGERS = sorted(ORDER_MACHINE.triggers)


def _typed_sources(trigger: str) -> frozenset[str]:
    """The state names the typed method for `trigger` accepts, read from its ``self``
    annotation (``Order[Pending]``, ``Order[Pending | Confirmed]``), not from the machine."""
    method = getattr(Order, trigger)
    hints = typing.get_type_hints(method, globalns=vars(inspect.getmodule(method)))
    (state_arg,) = typing.get_args(hints["self"])
    states = typing.get_args(state_arg) or (state_arg,)
    return frozenset(s.state_name for s in states)


TYPED_SOURCES = {trigger: _typed_sources(trigger) for trigger in TRIGGERS}
STATE_NAMES = {state.state_name for state in ORDER_STATES}

_text = st.text(alphabet="abcXYZ019-_ ", min_size=0, max_size=8)
_kwargs: dict[str, st.SearchStrategy[dict[str, object]]] = {
    "confirm": st.fixed_dictionaries({}),
    "pay": st.fixed_dictionaries({"payment_id": _text, "payment_method": _text}),
    "ship": st.fixed_dictionaries({"tracking_number": _text, "carrier": _text}),
    "deliver": st.fixed_dictionaries({"signature": st.none() | _text}),
    "cancel": st.fixed_dictionaries({"reason": _text}),
    "cancel_with_refund": st.fixed_dictionaries({"reason": _text, "refund_id": _text}),
}
_steps = st.lists(
    st.sampled_from(TRIGGERS).flatmap(
        lambda trigger: st.tuples(st.just(trigger), _kwargs[trigger])
    ),
    max_size=12,
)


def test_the_typed_api_and_the_machine_describe_one_graph() -> None:
    # The property below compares run-time refusals with the typed API; first make sure
    # the two are read independently and agree on the whole graph.
    for trigger in TRIGGERS:
        from_machine = {
            s.state_name for s in ORDER_STATES if ORDER_MACHINE.target(trigger, s) is not None
        }
        assert TYPED_SOURCES[trigger] == from_machine, trigger


@settings(max_examples=300, deadline=None)
@given(steps=_steps)
def test_random_trigger_sequences_follow_the_typed_graph(
    steps: list[tuple[str, dict[str, object]]],
) -> None:
    order: Entity[State] = Order.new_pending(
        tenant_id=UUID(int=1), customer_id=UUID(int=2), total=Money.of("5", "EUR"), at=T0
    )
    applied = 0
    for trigger, kwargs in steps:
        state_before = order.state_name
        stored_before = order.to_data()
        typed_allows = state_before in TYPED_SOURCES[trigger]
        refused: InvalidTransitionError | MissingOrderDetailError | None = None
        try:
            moved = fire(order, trigger, **kwargs)
        except (InvalidTransitionError, MissingOrderDetailError) as error:
            refused = error
        if isinstance(refused, InvalidTransitionError):
            assert not typed_allows, f"{trigger} from {state_before} refused"
            assert refused.from_state == state_before
            assert order.to_data() == stored_before
            continue
        if refused is not None:
            # A rule of a legal transition (an empty id): refused, and nothing changed.
            assert typed_allows
            assert order.to_data() == stored_before
            continue
        assert typed_allows, f"{trigger} from {state_before} was allowed at run time"
        assert moved.state_name in STATE_NAMES
        target = ORDER_MACHINE.target(trigger, state_before)
        assert target is not None
        assert moved.state_name == target.state_name
        assert moved.version == order.version + 1
        assert moved.last_transition is not None
        assert moved.last_transition.from_state == state_before
        assert order.to_data() == stored_before  # the original is never changed
        applied += 1
        order = moved
    assert order.version == 1 + applied
    assert Order.from_data(order.to_data()) == order


@given(
    currency=st.sampled_from(["USD", "EUR", "JPY", "KWD", "CHF"]),
    minor=st.integers(min_value=1, max_value=10**15),
)
def test_any_positive_total_survives_the_whole_lifecycle(currency: str, minor: int) -> None:
    total = Money(Decimal(minor).scaleb(-currency_minor_units(currency)), currency)
    order = (
        Order.new_pending(tenant_id=UUID(int=1), customer_id=UUID(int=2), total=total)
        .confirm()
        .pay("pi", "card")
        .ship("1Z", "UPS")
        .deliver()
    )
    assert order.total == total
    assert Order.from_data(order.to_data()).total == total
