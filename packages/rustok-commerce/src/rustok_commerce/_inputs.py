"""Input models: what a caller (an HTTP handler, a CLI, a test) hands the order service.

They check shape and form (an amount written as a decimal string in a known currency with
no more decimal places than it has, text of at most 255 characters) and report every bad
field at once as a pydantic `ValidationError`: malformed input, a 400 over HTTP.

They do not check the rules of orders: a total that is not positive
(`NonPositiveAmountError`), a blank payment id, tracking number or reason
(`MissingOrderDetailError`), a refund id only for a paid order. Those are the domain's
(`Order`, `OrderService`), a 422 over HTTP, and every caller meets them the same way.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Final
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from rustok_commerce._errors import InvalidAmountError, UnknownCurrencyError
from rustok_commerce._money import Money, currency_minor_units
from rustok_core.text import TEXT_PATTERN, check_holdable

AMOUNT_MAX_INTEGER_DIGITS: Final = 18
"""The most digits an amount may have before its decimal point."""
AMOUNT_MAX_SCALE: Final = 4
"""The most digits an amount may have after its point (no ISO 4217 minor unit has more;
the currency's own minor unit is checked too)."""
AMOUNT_PATTERN: Final = (
    f"^-?[0-9]{{1,{AMOUNT_MAX_INTEGER_DIGITS}}}(?:\\.[0-9]{{1,{AMOUNT_MAX_SCALE}}})?$"
)
"""An amount as text: ASCII digits, an optional leading ``-`` and an optional point; no
spaces, no ``+``, no exponent, no underscores, no other script's digits."""
_AMOUNT: Final = re.compile(AMOUNT_PATTERN, re.ASCII)


# A detail of a transition: surrounding blanks are dropped; that it says something is a
# rule of the transition (MissingOrderDetailError), not a matter of form.
_Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255),
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(check_holdable),
]
_Model = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class CreateOrderInput(BaseModel):
    """A new order: who buys, and the total as a decimal string in an ISO 4217 currency.

    `amount` is text (``"49.90"``), never a JSON number, so no float ever touches it:
    ASCII digits with an optional leading ``-`` and point (`AMOUNT_PATTERN`), at most
    18 digits before the point and 4 after, and no more decimal places than the
    currency's minor unit. That it is positive is a rule
    of orders, checked when the order is made (`NonPositiveAmountError`, 422).
    `currency` is an ISO 4217 code, upper-cased (``"eur"`` becomes ``"EUR"``).

    Examples:
        >>> CreateOrderInput(customer_id=UUID(int=7), amount="49.9", currency="eur").money
        Money(amount=Decimal('49.90'), currency='EUR')
    """

    model_config = _Model

    customer_id: UUID
    # The currency is declared (and so validated) first: the amount's check needs it.
    currency: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)]
    amount: Annotated[
        str,
        StringConstraints(strip_whitespace=False),
        Field(
            max_length=AMOUNT_MAX_INTEGER_DIGITS + AMOUNT_MAX_SCALE + 2,
            json_schema_extra={"pattern": AMOUNT_PATTERN},
            examples=["49.90"],
        ),
    ]

    @field_validator("currency")
    @classmethod
    def _currency_is_iso_4217(cls, value: str) -> str:
        try:
            currency_minor_units(value)
        except UnknownCurrencyError as error:
            raise ValueError(error.detail) from None
        return value

    @field_validator("amount")
    @classmethod
    def _amount_is_decimal_text(cls, value: str, info: ValidationInfo) -> str:
        if not _AMOUNT.fullmatch(value):
            raise ValueError(
                f"{value[:48]!r} is not a decimal number such as '49.90': ASCII digits, "
                f"at most {AMOUNT_MAX_INTEGER_DIGITS} before an optional point and "
                f"{AMOUNT_MAX_SCALE} after it, an optional leading '-'"
            )
        number = Decimal(value)  # finite, and exact: the pattern admits nothing else
        currency = info.data.get("currency")
        if isinstance(currency, str):  # absent when the currency itself was refused
            try:
                Money(number, currency)
            except InvalidAmountError as error:
                raise ValueError(error.detail) from None
        return value

    @property
    def money(self) -> Money:
        """The total as `Money`."""
        return Money.of(self.amount, self.currency)


class ConfirmOrderInput(BaseModel):
    """Confirmation of a pending order: whether its items are reserved (they must be)."""

    model_config = _Model

    inventory_reserved: bool = True


class PayOrderInput(BaseModel):
    """Payment of a confirmed order: the payment's id at the provider, and its method."""

    model_config = _Model

    payment_id: _Text
    payment_method: _Text


class ShipOrderInput(BaseModel):
    """Shipment of a paid order: the carrier's tracking number, and the carrier."""

    model_config = _Model

    tracking_number: _Text
    carrier: _Text


class DeliverOrderInput(BaseModel):
    """Delivery of a shipped order, with the recipient's signature when one was taken
    (a blank signature counts as none)."""

    model_config = _Model

    signature: _Text | None = None


class CancelOrderInput(BaseModel):
    """Cancellation: why, and for a paid order the id of the refund already issued.

    `refund_id` is required when the order is paid and refused otherwise; the service
    checks that, since only it knows the order's state. A blank reason is refused by the
    cancellation itself (`MissingOrderDetailError`).
    """

    model_config = _Model

    reason: _Text = Field(description="Why the order is cancelled.")
    refund_id: _Text | None = Field(
        default=None, description="The refund of the payment; required for a paid order."
    )
