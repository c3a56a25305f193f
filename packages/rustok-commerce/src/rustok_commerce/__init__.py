"""RusTok commerce: the order lifecycle, money and the rules of both.

Everything public is imported from here::

    from rustok_commerce import Order, Paid, Money, OrderService, CommerceError
"""

from rustok_commerce.__about__ import __version__
from rustok_commerce._errors import (
    CommerceError,
    CurrencyMismatchError,
    InvalidAmountError,
    MissingOrderDetailError,
    NonPositiveAmountError,
    OrderNotFoundError,
    RefundNotApplicableError,
    UnknownCurrencyError,
    VersionConflictError,
)
from rustok_commerce._inputs import (
    AMOUNT_MAX_INTEGER_DIGITS,
    AMOUNT_MAX_SCALE,
    AMOUNT_PATTERN,
    CancelOrderInput,
    ConfirmOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    PayOrderInput,
    ShipOrderInput,
)
from rustok_commerce._money import Money, currency_minor_units, is_currency
from rustok_commerce._order import (
    INVENTORY_RESERVED,
    ORDER_MACHINE,
    ORDER_STATES,
    AnyOrder,
    Cancelled,
    Confirmed,
    Delivered,
    Order,
    Paid,
    Pending,
    Shipped,
)
from rustok_commerce._repository import (
    InMemoryOrderRepository,
    OrderPosition,
    OrderRepository,
)
from rustok_commerce._service import OrderPage, OrderService

__all__ = [
    "AMOUNT_MAX_INTEGER_DIGITS",
    "AMOUNT_MAX_SCALE",
    "AMOUNT_PATTERN",
    "INVENTORY_RESERVED",
    "ORDER_MACHINE",
    "ORDER_STATES",
    "AnyOrder",
    "CancelOrderInput",
    "Cancelled",
    "CommerceError",
    "ConfirmOrderInput",
    "Confirmed",
    "CreateOrderInput",
    "CurrencyMismatchError",
    "DeliverOrderInput",
    "Delivered",
    "InMemoryOrderRepository",
    "InvalidAmountError",
    "MissingOrderDetailError",
    "Money",
    "NonPositiveAmountError",
    "Order",
    "OrderNotFoundError",
    "OrderPage",
    "OrderPosition",
    "OrderRepository",
    "OrderService",
    "Paid",
    "PayOrderInput",
    "Pending",
    "RefundNotApplicableError",
    "ShipOrderInput",
    "Shipped",
    "UnknownCurrencyError",
    "VersionConflictError",
    "__version__",
    "currency_minor_units",
    "is_currency",
]
