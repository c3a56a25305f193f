"""The order API, ``/api/commerce/orders``: create, confirm, pay, ship, deliver, cancel.

Each handler adapts HTTP to ``rustok_commerce.OrderService``: it parses the request (the
bodies are the domain's input models, which check form only: types, lengths, a decimal
amount in an ISO 4217 currency, a 400 per bad field), calls the service over the SQL
repository of the request's unit of work (no transaction for a read), commits, and
renders the order with its ``ETag``; every change but the payment (which commits with its
``Idempotency-Key``) goes through ``Change.apply``, and the get and history routes are
``EntityApi``'s.
The rules of the lifecycle are the service's and answer 422 (a blank tracking number, a
non-positive total, cancelling a paid order without a refund). A transition the state
does not allow is a 409 naming the state and the allowed actions; another tenant's order
is a 404. Creation and payment accept an ``Idempotency-Key``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Final, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)
from starlette.responses import Response

from rustok_commerce import (
    CancelOrderInput,
    ConfirmOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    OrderService,
    PayOrderInput,
    ShipOrderInput,
    VersionConflictError,
)
from rustok_core.state_machine import InvalidTransitionError
from rustok_server.auth.guard import get_actor, require
from rustok_server.auth.scopes import Scope
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.db import UnitOfWork
from rustok_server.http.entity_routes import (
    Change,
    EntityApi,
    EntityOut,
    EntityRoute,
    PageOut,
    documented,
    entity_response,
    page_response,
    unit_of_work,
)
from rustok_server.http.idempotency import (
    IdempotencyKey,
    IdempotentRequest,
    commit_once,
    replay_or_raise,
)
from rustok_server.http.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor
from rustok_server.tenancy.resolution import CurrentTenant, get_tenant

__all__ = ["MoneyOut", "OrderOut", "OrderPageOut", "router"]

PREFIX = "/api/commerce/orders"


class OrderRoute(EntityRoute):
    """Order routes: ``cancel_with_refund`` is the ``/cancel`` action of a paid order."""

    noun: ClassVar[str] = "order"
    actions: ClassVar[dict[str, str]] = {"cancel_with_refund": "cancel"}
    version_conflict: ClassVar[type[Exception]] = VersionConflictError


router: Final[APIRouter] = APIRouter(prefix=PREFIX, tags=["orders"], route_class=OrderRoute)
"""The order routes (``/api/commerce/orders``)."""
Unit = Annotated[UnitOfWork, Depends(unit_of_work)]
READ = require(Scope.ORDERS_READ)
WRITE = require(Scope.ORDERS_WRITE)
OrderStateName = Literal["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]
_Config = ConfigDict(frozen=True, extra="forbid")
# Text whose emptiness is a rule of the lifecycle (422), not a malformed request.


class MoneyOut(BaseModel):
    """An exact amount: decimal text and its ISO 4217 currency."""

    amount: str
    currency: str


class OrderOut(EntityOut):
    """An order: its fields, its state name and that state's data, its version."""

    customer_id: uuid.UUID
    total: MoneyOut
    state: OrderStateName
    state_data: dict[str, JsonValue] = Field(
        description="pending: {}; confirmed: {inventory_reserved}; paid: {payment_id, "
        "payment_method, paid_at}; shipped: {tracking_number, carrier, shipped_at}; "
        "delivered: {delivered_at, signature}; cancelled: {reason, refunded, refund_id, "
        "cancelled_at}"
    )


class OrderPageOut(PageOut[OrderOut]):
    """One page of orders, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""


_ORDER_OK = "The order; its version is the ETag."
_CHANGE = documented(OrderOut, _ORDER_OK, 400, 404, 409, 412, 422)
# A payment retried with its Idempotency-Key after it succeeded gets the first answer.
_RACE_LOST = (InvalidTransitionError, VersionConflictError)


ORDERS = EntityApi("order_id", OrderService, SqlOrderRepository, tenant=get_tenant, actor=get_actor)
"""The dependencies of the order routes, and their get and history routes."""
Orders = Annotated[OrderService, Depends(ORDERS.service)]
OrderChange = Annotated[Change[OrderService], Depends(ORDERS.change)]


@router.post(
    "",
    dependencies=[WRITE],
    status_code=201,
    summary="Create a pending order",
    responses=documented(OrderOut, "The new order; Location names it.", 400, 422, status=201),
)
async def create_order(
    body: CreateOrderInput,
    tenant: CurrentTenant,
    service: Orders,
    unit: Unit,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create an order in ``pending``. With an ``Idempotency-Key``, a retry returns the
    order the first request created."""
    request = IdempotentRequest.of(
        idempotency_key, tenant.id, "create-order", body.model_dump(mode="json")
    )
    if request is not None and (replayed := await request.replay(unit)) is not None:
        return replayed
    order = await service.create(tenant.id, body)
    response = entity_response(order, status_code=201, location=f"{PREFIX}/{order.id}")
    return await commit_once(unit, request, response)


@router.get(
    "",
    dependencies=[READ],
    summary="List orders",
    responses=documented(OrderPageOut, "One page.", 400),
)
async def list_orders(
    tenant: CurrentTenant,
    service: Orders,
    state: Annotated[OrderStateName | None, Query(description="Only orders in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One page of the tenant's orders, oldest first (by creation time, then id)."""
    after = Cursor.decode(cursor).position if cursor is not None else None
    page = await service.list_orders(tenant.id, state=state, after=after, limit=limit)
    return page_response(page.items, page.next_after)


@router.post(
    "/{order_id}/confirm",
    dependencies=[WRITE],
    summary="Confirm a pending order",
    responses=_CHANGE,
)
async def confirm_order(change: OrderChange, body: ConfirmOrderInput | None = None) -> Response:
    """``pending`` to ``confirmed``, once its items are reserved."""
    return await change.apply(change.service.confirm, body)


@router.post(
    "/{order_id}/pay", dependencies=[WRITE], summary="Record the payment", responses=_CHANGE
)
async def pay_order(
    body: PayOrderInput, change: OrderChange, idempotency_key: IdempotencyKey = None
) -> Response:
    """``confirmed`` to ``paid``. With an ``Idempotency-Key``, a retry returns the first
    result instead of a 409."""
    unit, order_id = change.unit, change.entity_id
    request = IdempotentRequest.of(
        idempotency_key, change.tenant_id, f"pay:{order_id}", body.model_dump(mode="json")
    )
    if request is not None and (replayed := await request.replay(unit)) is not None:
        return replayed
    try:
        paid = await change.service.pay(
            change.tenant_id,
            order_id,
            body,
            expected_version=change.expected_version,
            actor=change.actor,
        )
    except _RACE_LOST as error:
        return await replay_or_raise(unit, request, error)
    return await commit_once(unit, request, entity_response(paid))


@router.post(
    "/{order_id}/ship", dependencies=[WRITE], summary="Ship a paid order", responses=_CHANGE
)
async def ship_order(body: ShipOrderInput, change: OrderChange) -> Response:
    """``paid`` to ``shipped``, with the carrier's tracking number."""
    return await change.apply(change.service.ship, body)


@router.post(
    "/{order_id}/deliver", dependencies=[WRITE], summary="Record the delivery", responses=_CHANGE
)
async def deliver_order(change: OrderChange, body: DeliverOrderInput | None = None) -> Response:
    """``shipped`` to ``delivered``, with the recipient's signature if one was taken."""
    return await change.apply(change.service.deliver, body)


@router.post(
    "/{order_id}/cancel", dependencies=[WRITE], summary="Cancel an order", responses=_CHANGE
)
async def cancel_order(body: CancelOrderInput, change: OrderChange) -> Response:
    """``pending`` or ``confirmed`` to ``cancelled``; ``paid`` too, with ``refund_id``."""
    return await change.apply(change.service.cancel, body)


ORDERS.add_reads(router, noun="order", out=OrderOut, ok=_ORDER_OK, dependencies=[READ])
