"""The errors of the commerce domain, each one business rule, all rooted in `RichError`.

A `CommerceError` carries an `ErrorKind` (and so an HTTP status and a stable code) like
every `RichError`: the server turns it into a problem document without knowing commerce.
Invalid input is `VALIDATION` (400); a rule the order's lifecycle refuses is
`BUSINESS_LOGIC` (422); a missing order is `NOT_FOUND` (404).
"""

from __future__ import annotations

from collections.abc import Collection

from rustok_core.error import ErrorKind, RichError


class CommerceError(RichError):
    """Root of every error raised by rustok-commerce.

    Catch this to handle any commerce rule at once; each subclass names one rule and keeps
    the offending input as attributes.
    """


class InvalidAmountError(CommerceError):
    """An amount that is not money: a float, not finite, or finer than the currency allows.

    Attributes:
        amount: the value as given, as text.
        currency: the currency it was meant for, when known.
        reason: ``"not_decimal"``, ``"not_finite"`` or ``"too_precise"``.
    """

    def __init__(self, amount: object, currency: str | None, reason: str, detail: str) -> None:
        self.amount: str = str(amount)
        self.currency = currency
        self.reason = reason
        super().__init__(
            ErrorKind.VALIDATION,
            f"invalid amount {amount!r}" + (f" in {currency}" if currency else "") + f": {detail}",
            user_message=f"The amount {amount} is not valid: {detail}.",
            code="INVALID_AMOUNT",
            fields={"amount": str(amount), "currency": str(currency), "reason": reason},
        )
        self.detail = detail
        self.with_violation("amount", detail)


class NonPositiveAmountError(CommerceError):
    """An order total of zero or less: an order must cost something.

    Attributes:
        amount: the refused amount, as text.
        currency: its currency code.
    """

    def __init__(self, amount: object, currency: str) -> None:
        self.amount: str = str(amount)
        self.currency = currency
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"order amount must be greater than zero, got {amount} {currency}; "
            "create the order with a positive total",
            user_message="The order total must be greater than zero.",
            code="NON_POSITIVE_AMOUNT",
            fields={"amount": str(amount), "currency": currency},
        )
        self.with_violation("amount", "must be greater than zero")


class UnknownCurrencyError(CommerceError):
    """A currency code that is not an ISO 4217 currency usable for prices.

    Attributes:
        currency: the code as given.
        reason: ``"unknown"`` (not in ISO 4217) or ``"no_minor_unit"`` (an ISO 4217 code,
            such as gold ``XAU`` or the test code ``XTS``, that has no minor unit and so
            cannot price an order).
    """

    def __init__(self, currency: str, reason: str = "unknown") -> None:
        self.currency = currency
        self.reason = reason
        if reason == "no_minor_unit":
            detail = (
                f"{currency!r} is an ISO 4217 code without a minor unit (a fund, metal or "
                "test code) and cannot price an order"
            )
        else:
            detail = (
                f"{currency!r} is not an ISO 4217 currency code; use an active upper-case "
                "code such as 'USD', 'EUR' or 'JPY'"
            )
        super().__init__(
            ErrorKind.VALIDATION,
            f"unknown currency: {detail}",
            user_message=f"The currency {currency!r} is not supported.",
            code="UNKNOWN_CURRENCY",
            fields={"currency": currency, "reason": reason},
        )
        self.detail = detail
        self.with_violation("currency", detail)


class CurrencyMismatchError(CommerceError):
    """Arithmetic or comparison between amounts of two different currencies.

    Attributes:
        left: the currency of the left operand.
        right: the currency of the right operand.
        operation: what was attempted (``"add"``, ``"compare"``, ...).
    """

    def __init__(self, left: str, right: str, operation: str) -> None:
        self.left = left
        self.right = right
        self.operation = operation
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"cannot {operation} {left} and {right}: amounts must share one currency; "
            "convert one of them first",
            user_message="Amounts in different currencies cannot be combined.",
            code="CURRENCY_MISMATCH",
            fields={"left": left, "right": right, "operation": operation},
        )


# What each required detail is needed for, and the stable code of its absence.
_DETAILS: dict[str, tuple[str, str]] = {
    "payment_id": ("EMPTY_PAYMENT_ID", "mark an order paid"),
    "payment_method": ("EMPTY_PAYMENT_METHOD", "mark an order paid"),
    "tracking_number": ("EMPTY_TRACKING_NUMBER", "ship an order"),
    "carrier": ("EMPTY_CARRIER", "ship an order"),
    "reason": ("EMPTY_CANCELLATION_REASON", "cancel an order"),
    "refund_id": (
        "REFUND_REQUIRED",
        "cancel a paid order (refund the payment first, then pass its id)",
    ),
}


class MissingOrderDetailError(CommerceError):
    """A transition was asked for without a detail that it requires (left empty or blank).

    `field` names the detail: ``payment_id`` or ``payment_method`` (pay),
    ``tracking_number`` or ``carrier`` (ship), ``reason`` (cancel) or ``refund_id``
    (cancelling a paid order). Each has its own stable `code`, such as
    ``EMPTY_PAYMENT_ID`` or ``REFUND_REQUIRED``.

    Attributes:
        field: the name of the missing detail, as in the input model.
        order_id: the order concerned, when known.

    Examples:
        >>> MissingOrderDetailError("tracking_number").code
        'EMPTY_TRACKING_NUMBER'
    """

    def __init__(self, field: str, order_id: object = None) -> None:
        self.field = field
        self.order_id: str | None = None if order_id is None else str(order_id)
        code, needed_for = _DETAILS.get(field, ("MISSING_ORDER_DETAIL", "this transition"))
        target = f" of order {self.order_id}" if self.order_id else ""
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"{field} must not be empty{target}: it is required to {needed_for}",
            user_message=f"{field.replace('_', ' ').capitalize()} is required.",
            code=code,
            fields={"order_id": self.order_id} if self.order_id else None,
        )
        self.with_violation(field, "must not be empty")


class RefundNotApplicableError(CommerceError):
    """A refund id given when cancelling an order that was never paid.

    Attributes:
        order_id: the order concerned.
        state: the state it is in.
    """

    def __init__(self, order_id: object, state: str) -> None:
        self.order_id: str = str(order_id)
        self.state = state
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"order {self.order_id} is {state} and was never paid: there is nothing to "
            "refund; cancel it without refund_id",
            user_message="This order was not paid, so it cannot be refunded.",
            code="REFUND_NOT_APPLICABLE",
            fields={"order_id": self.order_id, "state": state},
        )
        self.with_violation("refund_id", "only allowed when cancelling a paid order")


class OrderNotFoundError(CommerceError):
    """No order with this id exists for this tenant.

    Another tenant's order is reported exactly like a missing one.

    Attributes:
        order_id: the id looked up.
        tenant_id: the tenant it was looked up for.
    """

    def __init__(self, order_id: object, tenant_id: object) -> None:
        self.order_id: str = str(order_id)
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"order {self.order_id} not found for tenant {tenant_id}",
            user_message="The order was not found.",
            code="ORDER_NOT_FOUND",
            fields={"order_id": self.order_id},
            tenant_id=str(tenant_id),
        )


class VersionConflictError(CommerceError):
    """The order is not at the version a change was based on (kind CONFLICT, 409): another
    change was saved first, or the caller's expected version (``If-Match``) is not the
    stored one.

    Two transitions of one order raced: exactly one was saved; this one was not, and
    nothing of it was stored. Reload the order and decide again.
    ``rustok_content.VersionConflictError`` is the same error for content nodes.

    Attributes:
        order_id: the order concerned.
        expected_version: the version this change was based on, or the versions it
            accepted when the caller named several (an ``If-Match`` list).
        actual_version: the version found in storage.
    """

    def __init__(
        self, order_id: object, expected_version: int | Collection[int], actual_version: int
    ) -> None:
        self.order_id: str = str(order_id)
        self.expected_version = expected_version
        self.actual_version = actual_version
        expected = (
            (expected_version,)
            if isinstance(expected_version, int)
            else tuple(sorted(expected_version))
        )
        if len(expected) == 1:
            based_on = f"version {expected[0]}"
        else:
            based_on = f"one of versions {', '.join(map(str, expected))}" if expected else "none"
        super().__init__(
            ErrorKind.CONFLICT,
            f"order {self.order_id} changed meanwhile: this change was based on {based_on} "
            f"but version {actual_version} is stored; reload and retry",
            user_message="The order was changed by someone else; reload it and try again.",
            code="ORDER_VERSION_CONFLICT",
            fields={
                "order_id": self.order_id,
                "expected_version": ",".join(map(str, expected)),
                "actual_version": str(actual_version),
            },
        )
