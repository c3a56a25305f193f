"""The order API, ``/api/commerce/orders``: create, confirm, pay, ship, deliver, cancel.

Each handler loads the order of the request's tenant as a typed ``Order`` (the order
machine checks the stored state), narrows it with ``is_state`` and calls the typed
transition. The request bodies check form only (types, lengths, a decimal amount in an
ISO 4217 currency: a 400 per bad field); the rules of the lifecycle are the domain's
and answer 422 (a blank tracking number, a non-positive total, cancelling a paid order
without a refund). A transition the state does not allow is a 409 naming the state and
the allowed actions; another tenant's order is a 404. Creation and payment accept an
``Idempotency-Key``.
"""

from __future__ import annotations

import decimal
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from rustok_commerce import (
    AnyOrder,
    Confirmed,
    InvalidAmountError,
    MissingOrderDetailError,
    Money,
    Order,
    OrderNotFoundError,
    OrderVersionConflictError,
    Paid,
    Pending,
    RefundNotApplicableError,
    Shipped,
    UnknownCurrencyError,
    currency_minor_units,
)
from rustok_core.state_machine import InvalidTransition, is_state
from rustok_server.content_api import TransitionOut
from rustok_server.db import get_session
from rustok_server.entity_routes import (
    EntityRoute,
    documented,
    entity_response,
    json_response,
    refuse,
)
from rustok_server.errors import PreconditionFailedError
from rustok_server.idempotency import (
    IdempotencyKey,
    IdempotentRequest,
    commit_once,
    replay_or_raise,
)
from rustok_server.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor
from rustok_server.preconditions import IfMatch, check_if_match
from rustok_server.repositories import SqlOrderRepository
from rustok_server.resolution import CurrentTenant

__all__ = [
    "CancelOrderBody",
    "ConfirmOrderBody",
    "CreateOrderBody",
    "DeliverOrderBody",
    "OrderHistory",
    "OrderOut",
    "OrderPage",
    "PayOrderBody",
    "ShipOrderBody",
    "router",
]

PREFIX = "/api/commerce/orders"


class OrderRoute(EntityRoute):
    """Order routes: ``cancel_with_refund`` is the ``/cancel`` action of a paid order."""

    actions: ClassVar[dict[str, str]] = {"cancel_with_refund": "cancel"}


router = APIRouter(prefix=PREFIX, tags=["orders"], route_class=OrderRoute)
Session = Annotated[AsyncSession, Depends(get_session)]
OrderStateName = Literal["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]
_Config = ConfigDict(frozen=True, extra="forbid")
# Text whose emptiness is a rule of the lifecycle (422), not a malformed request.
_Detail = Annotated[str, StringConstraints(max_length=255)]


class CreateOrderBody(BaseModel):
    """A new order: the customer, the total as a decimal string, an ISO 4217 currency.

    The amount is text (``"49.90"``), never a JSON number, and has at most the
    currency's decimal places; that it is positive is a rule of orders (422).
    """

    model_config = _Config

    customer_id: uuid.UUID
    currency: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)]
    amount: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        try:
            currency_minor_units(value)
        except UnknownCurrencyError as error:
            raise ValueError(error.detail) from None
        return value

    @field_validator("amount")
    @classmethod
    def _decimal_text(cls, value: str, info: ValidationInfo) -> str:
        try:
            number = Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number such as '49.90'") from None
        currency = info.data.get("currency")
        if isinstance(currency, str):  # absent when the currency itself was refused
            try:
                Money(number, currency)
            except InvalidAmountError as error:
                raise ValueError(error.detail) from None
        elif not number.is_finite():
            raise ValueError(f"{value!r} is not a finite amount")
        return value


class ConfirmOrderBody(BaseModel):
    """Confirmation; confirming requires the items to be reserved (422 otherwise)."""

    model_config = _Config

    inventory_reserved: bool = True


class PayOrderBody(BaseModel):
    """The payment of a confirmed order; blank ids or methods break a rule (422)."""

    model_config = _Config

    payment_id: _Detail
    payment_method: _Detail


class ShipOrderBody(BaseModel):
    """The shipment of a paid order; a blank tracking number or carrier is a 422."""

    model_config = _Config

    tracking_number: _Detail
    carrier: _Detail


class DeliverOrderBody(BaseModel):
    """The delivery of a shipped order, with the recipient's signature if one was taken."""

    model_config = _Config

    signature: _Detail | None = None


class CancelOrderBody(BaseModel):
    """Why the order is cancelled; a paid order also needs the refund's id (422)."""

    model_config = _Config

    reason: _Detail
    refund_id: _Detail | None = None


class MoneyOut(BaseModel):
    """An exact amount: decimal text and its ISO 4217 currency."""

    amount: str
    currency: str


class OrderOut(BaseModel):
    """An order: its fields, its state name and that state's data, its version."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    version: int = Field(description="Plus one per transition; also sent as the ETag.")
    customer_id: uuid.UUID
    total: MoneyOut
    created_at: datetime
    updated_at: datetime
    state: OrderStateName
    state_data: dict[str, JsonValue] = Field(
        description="pending: {}; confirmed: {inventory_reserved}; paid: {payment_id, "
        "payment_method, paid_at}; shipped: {tracking_number, carrier, shipped_at}; "
        "delivered: {delivered_at, signature}; cancelled: {reason, refunded, refund_id, "
        "cancelled_at}"
    )


class OrderPage(BaseModel):
    """One page of orders, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderHistory(BaseModel):
    """An order's transitions, oldest first."""

    items: list[TransitionOut]


_ORDER_OK = "The order; its version is the ETag."
_CHANGE = documented(OrderOut, _ORDER_OK, 400, 404, 409, 412, 422)
# A payment retried with its Idempotency-Key after it succeeded gets the first answer.
_RACE_LOST = (InvalidTransition, OrderVersionConflictError, PreconditionFailedError)


async def _load(
    repository: SqlOrderRepository,
    tenant_id: uuid.UUID,
    order_id: uuid.UUID,
    if_match: str | None,
) -> AnyOrder:
    order = await repository.get(tenant_id, order_id)
    if order is None:
        raise OrderNotFoundError(order_id, tenant_id)
    check_if_match(if_match, order.version, "order")
    return order


async def _save(repository: SqlOrderRepository, before: int, order: AnyOrder) -> Response:
    record = order.last_transition
    assert record is not None, "every transition sets last_transition"
    await repository.save(order, expected_version=before, record=record)
    return entity_response(order)


async def _store(
    session: AsyncSession, repository: SqlOrderRepository, before: int, order: AnyOrder
) -> Response:
    response = await _save(repository, before, order)
    await session.commit()
    return response


@router.post(
    "",
    status_code=201,
    summary="Create a pending order",
    responses=documented(OrderOut, "The new order; Location names it.", 400, 422, status=201),
)
async def create_order(
    body: CreateOrderBody,
    tenant: CurrentTenant,
    session: Session,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create an order in ``pending``. With an ``Idempotency-Key``, a retry returns the
    order the first request created."""
    request = IdempotentRequest.of(
        idempotency_key, tenant.id, "create-order", body.model_dump(mode="json")
    )
    if request is not None and (replayed := await request.replay(session)) is not None:
        return replayed
    order = Order.new_pending(
        tenant_id=tenant.id,
        customer_id=body.customer_id,
        total=Money.of(body.amount, body.currency),
    )
    await SqlOrderRepository(session).add(order)
    response = entity_response(order, status_code=201, location=f"{PREFIX}/{order.id}")
    return await commit_once(session, request, response)


@router.get("", summary="List orders", responses=documented(OrderPage, "One page.", 400))
async def list_orders(
    tenant: CurrentTenant,
    session: Session,
    state: Annotated[OrderStateName | None, Query(description="Only orders in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One page of the tenant's orders, oldest first (by creation time, then id)."""
    after = Cursor.decode(cursor) if cursor is not None else None
    page = await SqlOrderRepository(session).page(tenant.id, state=state, after=after, limit=limit)
    return json_response(
        {
            "items": [order.to_data() for order in page.items],
            "next_cursor": None if page.next_cursor is None else page.next_cursor.encode(),
        }
    )


@router.get("/{order_id}", summary="Get an order", responses=documented(OrderOut, _ORDER_OK, 404))
async def get_order(order_id: uuid.UUID, tenant: CurrentTenant, session: Session) -> Response:
    """The order, with its state and that state's data."""
    order = await SqlOrderRepository(session).get(tenant.id, order_id)
    if order is None:
        raise OrderNotFoundError(order_id, tenant.id)
    return entity_response(order)


@router.post("/{order_id}/confirm", summary="Confirm a pending order", responses=_CHANGE)
async def confirm_order(
    order_id: uuid.UUID,
    tenant: CurrentTenant,
    session: Session,
    body: ConfirmOrderBody | None = None,
    if_match: IfMatch = None,
) -> Response:
    """``pending`` to ``confirmed``, once its items are reserved."""
    repository = SqlOrderRepository(session)
    order = await _load(repository, tenant.id, order_id, if_match)
    if not is_state(order, Pending):
        refuse(order, "confirm")
    reserved = body.inventory_reserved if body is not None else True
    return await _store(
        session, repository, order.version, order.confirm(inventory_reserved=reserved)
    )


@router.post("/{order_id}/pay", summary="Record the payment", responses=_CHANGE)
async def pay_order(
    order_id: uuid.UUID,
    body: PayOrderBody,
    tenant: CurrentTenant,
    session: Session,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """``confirmed`` to ``paid``. With an ``Idempotency-Key``, a retry returns the first
    result instead of a 409."""
    request = IdempotentRequest.of(
        idempotency_key, tenant.id, f"pay:{order_id}", body.model_dump(mode="json")
    )
    if request is not None and (replayed := await request.replay(session)) is not None:
        return replayed
    repository = SqlOrderRepository(session)
    try:
        order = await _load(repository, tenant.id, order_id, if_match)
        if not is_state(order, Confirmed):
            refuse(order, "pay")
        paid = order.pay(body.payment_id, body.payment_method)
        response = await _save(repository, order.version, paid)
    except _RACE_LOST as error:
        return await replay_or_raise(session, request, error)
    return await commit_once(session, request, response)


@router.post("/{order_id}/ship", summary="Ship a paid order", responses=_CHANGE)
async def ship_order(
    order_id: uuid.UUID,
    body: ShipOrderBody,
    tenant: CurrentTenant,
    session: Session,
    if_match: IfMatch = None,
) -> Response:
    """``paid`` to ``shipped``, with the carrier's tracking number."""
    repository = SqlOrderRepository(session)
    order = await _load(repository, tenant.id, order_id, if_match)
    if not is_state(order, Paid):
        refuse(order, "ship")
    shipped = order.ship(body.tracking_number, body.carrier)
    return await _store(session, repository, order.version, shipped)


@router.post("/{order_id}/deliver", summary="Record the delivery", responses=_CHANGE)
async def deliver_order(
    order_id: uuid.UUID,
    tenant: CurrentTenant,
    session: Session,
    body: DeliverOrderBody | None = None,
    if_match: IfMatch = None,
) -> Response:
    """``shipped`` to ``delivered``, with the recipient's signature if one was taken."""
    repository = SqlOrderRepository(session)
    order = await _load(repository, tenant.id, order_id, if_match)
    if not is_state(order, Shipped):
        refuse(order, "deliver")
    delivered = order.deliver(body.signature if body is not None else None)
    return await _store(session, repository, order.version, delivered)


@router.post("/{order_id}/cancel", summary="Cancel an order", responses=_CHANGE)
async def cancel_order(
    order_id: uuid.UUID,
    body: CancelOrderBody,
    tenant: CurrentTenant,
    session: Session,
    if_match: IfMatch = None,
) -> Response:
    """``pending`` or ``confirmed`` to ``cancelled``; ``paid`` too, with ``refund_id``."""
    repository = SqlOrderRepository(session)
    order = await _load(repository, tenant.id, order_id, if_match)
    if is_state(order, Paid):
        if body.refund_id is None:
            raise MissingOrderDetailError("refund_id", order.id)
        cancelled = order.cancel_with_refund(body.reason, body.refund_id)
    elif is_state(order, Pending) or is_state(order, Confirmed):
        if body.refund_id is not None:
            raise RefundNotApplicableError(order.id, order.state_name)
        cancelled = order.cancel(body.reason)
    else:
        refuse(order, "cancel")
    return await _store(session, repository, order.version, cancelled)


@router.get(
    "/{order_id}/history",
    summary="An order's transitions",
    responses=documented(OrderHistory, "The transitions, oldest first.", 404),
)
async def order_history(order_id: uuid.UUID, tenant: CurrentTenant, session: Session) -> Response:
    """Every transition of the order, oldest first."""
    repository = SqlOrderRepository(session)
    if await repository.get(tenant.id, order_id) is None:
        raise OrderNotFoundError(order_id, tenant.id)
    records = await repository.history(tenant.id, order_id)
    return json_response({"items": [record.to_data() for record in records]})
