"""The order lifecycle as a typed state machine: `Order[Pending]` to `Order[Delivered]`.

::

    Pending --confirm--> Confirmed --pay--> Paid --ship--> Shipped --deliver--> Delivered
    Pending, Confirmed --cancel--> Cancelled
    Paid --cancel_with_refund--> Cancelled

Each transition method is typed on ``self``: ``Order[Pending].ship(...)`` is a mypy
error, and for an order loaded from storage (whose state mypy cannot know) the same call
raises `InvalidTransitionError` at run time, checked against the one transitions ``Machine`` of
the class. Orders are immutable: a transition returns a new order, with its version plus
one and the `TransitionRecord` of the transition in ``last_transition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias, TypeVar, cast
from uuid import UUID, uuid4

from rustok_commerce._errors import (
    CommerceError,
    MissingOrderDetailError,
    NonPositiveAmountError,
)
from rustok_commerce._money import Money
from rustok_core.state_machine import (
    Entity,
    Guard,
    InvalidStateDataError,
    MachineBuilder,
    State,
    StateMachine,
    TransitionRequest,
)


@dataclass(frozen=True, slots=True)
class Pending(State):
    """Created, waiting for confirmation. The initial state."""


@dataclass(frozen=True, slots=True)
class Confirmed(State):
    """Confirmed, its items reserved.

    Attributes:
        inventory_reserved: whether the items were reserved (confirming requires it).
    """

    inventory_reserved: bool


@dataclass(frozen=True, slots=True)
class Paid(State):
    """Paid: the payment that settled the order.

    Attributes:
        payment_id: the payment's id at the payment provider.
        payment_method: how it was paid (``"card"``, ``"bank_transfer"``, ...).
        paid_at: when the payment was recorded.
    """

    payment_id: str
    payment_method: str
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class Shipped(State):
    """Handed to a carrier.

    Attributes:
        tracking_number: the carrier's tracking number.
        carrier: who carries it.
        shipped_at: when it was shipped.
    """

    tracking_number: str
    carrier: str
    shipped_at: datetime


@dataclass(frozen=True, slots=True)
class Delivered(State):
    """Delivered to the customer. A final state.

    Attributes:
        delivered_at: when it was delivered.
        signature: the recipient's signature, when one was taken.
    """

    delivered_at: datetime
    signature: str | None


@dataclass(frozen=True, slots=True)
class Cancelled(State):
    """Cancelled. A final state.

    Attributes:
        reason: why it was cancelled.
        refunded: whether a payment was refunded (only for an order cancelled once paid).
        refund_id: the refund's id, when refunded.
        cancelled_at: when it was cancelled.
    """

    reason: str
    refunded: bool
    refund_id: str | None
    cancelled_at: datetime


def _inventory_is_reserved(request: TransitionRequest) -> bool:
    target = request.target
    return isinstance(target, Confirmed) and target.inventory_reserved


INVENTORY_RESERVED: Final = Guard(
    _inventory_is_reserved,
    "an order can be confirmed only once its items are reserved; reserve the inventory "
    "and confirm again",
    name="inventory reserved",
)
"""The guard of ``confirm``: the items must be reserved."""

ORDER_MACHINE: Final[StateMachine] = (
    MachineBuilder("Order")
    .state(Pending, initial=True)
    .state(Confirmed)
    .state(Paid)
    .state(Shipped)
    .state(Delivered)
    .state(Cancelled)
    .transition("confirm", Pending, Confirmed, guard=INVENTORY_RESERVED)
    .transition("pay", Confirmed, Paid)
    .transition("ship", Paid, Shipped)
    .transition("deliver", Shipped, Delivered)
    .transition("cancel", (Pending, Confirmed), Cancelled)
    .transition("cancel_with_refund", Paid, Cancelled)
    .build()
)
"""The legal graph of every order, built once at import."""

S = TypeVar("S", bound=State, covariant=True)
"""The state an order is in (covariant: an ``Order[Paid]`` is an ``Order[State]``)."""
T = TypeVar("T", bound=State)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: object) -> str:
    # Typed callers pass text; loaded or dynamic callers (`fire`) may pass anything.
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Order(Entity[S]):
    """An order in state `S`: ``Order[Pending]``, ``Order[Paid]``, ...

    Create one with `Order.new_pending` (never with ``Order(...)``, whose state mypy
    cannot know), then move it with the transition methods, each typed on the state it
    starts from. Every transition returns a new order; the one it is called on is left
    as it was.

    Attributes:
        id: the order's id.
        tenant_id: the tenant it belongs to.
        customer_id: who placed it.
        total: what it costs, positive.
        created_at: when it was created.
        updated_at: when it last changed state.
        state: the current state and its data.
        version: 1 when created, plus one per transition.
        last_transition: the record of the transition that produced this value.

    Examples:
        >>> order = Order.new_pending(
        ...     tenant_id=UUID(int=1), customer_id=UUID(int=2), total=Money.of("10", "EUR")
        ... )
        >>> order.confirm().pay("pi_1", "card").ship("1Z999", "UPS").state_name
        'shipped'
    """

    state_machine: ClassVar[StateMachine] = ORDER_MACHINE
    touched_field: ClassVar[str | None] = "updated_at"

    customer_id: UUID
    total: Money
    created_at: datetime
    updated_at: datetime

    @classmethod
    def new_pending(
        cls,
        *,
        tenant_id: UUID,
        customer_id: UUID,
        total: Money,
        id: UUID | None = None,
        at: datetime | None = None,
    ) -> Order[Pending]:
        """A new order in `Pending`.

        Args:
            tenant_id: the tenant it belongs to.
            customer_id: who places it.
            total: what it costs; must be greater than zero.
            id: its id; a new random UUID by default.
            at: when it is created; now (UTC) by default.

        Raises:
            NonPositiveAmountError: `total` is zero or negative.
        """
        if not total.is_positive:
            raise NonPositiveAmountError(total.amount, total.currency)
        when = at if at is not None else _now()
        return Order(
            id=id if id is not None else uuid4(),
            tenant_id=tenant_id,
            customer_id=customer_id,
            total=total,
            created_at=when,
            updated_at=when,
            state=Pending(),
        )

    if TYPE_CHECKING:
        # Entity._transition, typed to return an Order (mypy cannot say "this class in
        # another state" on the base class). A declaration only: no cost at run time.
        def _transition(
            self,
            trigger: str,
            target: T,
            /,
            *,
            actor: str | None = None,
            at: datetime | None = None,
            data: Mapping[str, object] | None = None,
            **changes: object,
        ) -> Order[T]: ...

    # -- transitions ---------------------------------------------------------------
    # Each method builds its target state with positional arguments named like the
    # state's fields: calling a class with keywords builds a dict on every call.
    # An order in the wrong state is refused as such (409), whatever its arguments: a
    # method whose rule fails checks the state (`_check_trigger`) before raising the
    # rule's error. Valid arguments go straight to `_transition`, which checks the state
    # itself, so the common path looks the machine up once.

    def confirm(
        self: Order[Pending],
        *,
        inventory_reserved: bool = True,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Confirmed]:
        """Pending to Confirmed, once the items are reserved.

        Raises:
            InvalidTransitionError: the order is not `Pending`.
            GuardFailedError: `inventory_reserved` is false (guard ``inventory reserved``).
        """
        return self._transition(
            "confirm",
            Confirmed(inventory_reserved),
            actor=actor,
            at=at,
            data={"inventory_reserved": inventory_reserved},
        )

    def pay(
        self: Order[Confirmed],
        payment_id: str,
        payment_method: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Paid]:
        """Confirmed to Paid, by the payment `payment_id`.

        Raises:
            InvalidTransitionError: the order is not `Confirmed`.
            MissingOrderDetailError: `payment_id` is empty or blank.
            MissingOrderDetailError: `payment_method` is empty or blank.
        """
        payment_id, payment_method = _text(payment_id), _text(payment_method)
        if not payment_id:
            self._check_trigger("pay")
            raise MissingOrderDetailError("payment_id", self.id)
        if not payment_method:
            self._check_trigger("pay")
            raise MissingOrderDetailError("payment_method", self.id)
        when = at if at is not None else _now()
        return self._transition(
            "pay",
            Paid(payment_id, payment_method, when),
            actor=actor,
            at=when,
            data={"payment_id": payment_id, "payment_method": payment_method},
        )

    def ship(
        self: Order[Paid],
        tracking_number: str,
        carrier: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Shipped]:
        """Paid to Shipped, with the carrier's tracking number.

        Raises:
            InvalidTransitionError: the order is not `Paid`.
            MissingOrderDetailError: `tracking_number` is empty or blank.
            MissingOrderDetailError: `carrier` is empty or blank.
        """
        tracking_number, carrier = _text(tracking_number), _text(carrier)
        if not tracking_number:
            self._check_trigger("ship")
            raise MissingOrderDetailError("tracking_number", self.id)
        if not carrier:
            self._check_trigger("ship")
            raise MissingOrderDetailError("carrier", self.id)
        when = at if at is not None else _now()
        return self._transition(
            "ship",
            Shipped(tracking_number, carrier, when),
            actor=actor,
            at=when,
            data={"tracking_number": tracking_number, "carrier": carrier},
        )

    def deliver(
        self: Order[Shipped],
        signature: str | None = None,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Delivered]:
        """Shipped to Delivered, with the recipient's signature if one was taken.

        A blank signature counts as none.

        Raises:
            InvalidTransitionError: the order is not `Shipped`.
        """
        signed = _text(signature) if signature is not None else ""
        when = at if at is not None else _now()
        return self._transition(
            "deliver",
            Delivered(when, signed or None),
            actor=actor,
            at=when,
            data={"signed": bool(signed)},
        )

    def cancel(
        self: Order[Pending | Confirmed],
        reason: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Cancelled]:
        """Pending or Confirmed to Cancelled, for `reason`. Nothing was paid: no refund.

        A paid order is cancelled with `cancel_with_refund`; a shipped or delivered order
        cannot be cancelled.

        Raises:
            InvalidTransitionError: the order is neither `Pending` nor `Confirmed`.
            MissingOrderDetailError: `reason` is empty or blank.
        """
        reason = _text(reason)
        if not reason:
            self._check_trigger("cancel")
            raise MissingOrderDetailError("reason", self.id)
        when = at if at is not None else _now()
        return self._transition(
            "cancel",
            Cancelled(reason=reason, refunded=False, refund_id=None, cancelled_at=when),
            actor=actor,
            at=when,
            data={"reason": reason},
        )

    def cancel_with_refund(
        self: Order[Paid],
        reason: str,
        refund_id: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Order[Cancelled]:
        """Paid to Cancelled, for `reason`, with the refund `refund_id` already issued.

        Raises:
            InvalidTransitionError: the order is not `Paid`.
            MissingOrderDetailError: `reason` is empty or blank.
            MissingOrderDetailError: `refund_id` is empty or blank.
        """
        reason, refund_id = _text(reason), _text(refund_id)
        if not reason:
            self._check_trigger("cancel_with_refund")
            raise MissingOrderDetailError("reason", self.id)
        if not refund_id:
            self._check_trigger("cancel_with_refund")
            raise MissingOrderDetailError("refund_id", self.id)
        when = at if at is not None else _now()
        return self._transition(
            "cancel_with_refund",
            Cancelled(reason=reason, refunded=True, refund_id=refund_id, cancelled_at=when),
            actor=actor,
            at=when,
            data={"reason": reason, "refund_id": refund_id},
        )

    # -- helpers -------------------------------------------------------------------

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> AnyOrder:
        """Rebuild an order loaded from storage from `Entity.to_data`'s output.

        Its state is known only at run time: narrow it with `is_state` (or match on
        ``order.state``) before calling a transition.

        Raises:
            InvalidStateDataError: the state name is unknown or any data (the total among
                them) is invalid.
        """
        try:
            return cast("AnyOrder", super(Order, cls).from_data(data))
        except CommerceError as error:
            # A stored total that breaks a money rule (an unknown currency, more decimals
            # than its minor unit): the row is invalid, like any other bad field.
            raise InvalidStateDataError(
                cls.__name__, str(data.get("state")), error.message
            ) from error


# Not a string: pyright reads no implicitly concatenated string as a type, so a quoted alias
# split over two lines was Unknown to it, and `is_state` narrowed an order to a bare Entity.
AnyOrder: TypeAlias = (
    Order[Pending]
    | Order[Confirmed]
    | Order[Paid]
    | Order[Shipped]
    | Order[Delivered]
    | Order[Cancelled]
)
"""An order in any state: the type of an order loaded from storage."""

ORDER_STATES: Final[tuple[type[State], ...]] = ORDER_MACHINE.states
"""The state classes of an order, in the order they were declared."""
