"""RusTok commerce: the order lifecycle, money and the rules of both.

Everything public is imported from here::

    from rustok_commerce import Money, CreateOrderInput, CommerceError
"""

from rustok_commerce.__about__ import __version__
from rustok_commerce._errors import (
    CommerceError,
    CurrencyMismatchError,
    EmptyCancellationReasonError,
    EmptyCarrierError,
    EmptyPaymentIdError,
    EmptyPaymentMethodError,
    EmptyTrackingNumberError,
    InvalidAmountError,
    MissingOrderDetailError,
    NonPositiveAmountError,
    OrderNotFoundError,
    RefundNotApplicableError,
    RefundRequiredError,
    UnknownCurrencyError,
)
from rustok_commerce._inputs import (
    CancelOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    PayOrderInput,
    ShipOrderInput,
)
from rustok_commerce._money import Money, currency_minor_units, is_currency

__all__ = [
    "CancelOrderInput",
    "CommerceError",
    "CreateOrderInput",
    "CurrencyMismatchError",
    "DeliverOrderInput",
    "EmptyCancellationReasonError",
    "EmptyCarrierError",
    "EmptyPaymentIdError",
    "EmptyPaymentMethodError",
    "EmptyTrackingNumberError",
    "InvalidAmountError",
    "MissingOrderDetailError",
    "Money",
    "NonPositiveAmountError",
    "OrderNotFoundError",
    "PayOrderInput",
    "RefundNotApplicableError",
    "RefundRequiredError",
    "ShipOrderInput",
    "UnknownCurrencyError",
    "__version__",
    "currency_minor_units",
    "is_currency",
]
