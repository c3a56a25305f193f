"""Sample content and orders for the demo tenant that ``rustok-server serve`` creates.

Every sample goes through the same domain services and repositories as the API, so
the demo data has a real history: a draft, a published and an archived node, and one
order in each state of its lifecycle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rustok_commerce import (
    AnyOrder,
    CancelOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    OrderService,
    PayOrderInput,
    ShipOrderInput,
)
from rustok_content import AnyContentNode, CreateNodeInput, NodeKind, NodeService
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database

__all__ = ["DEMO_CUSTOMER", "DemoData", "seed_demo_data"]

DEMO_CUSTOMER = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
"""The customer of every demo order."""

_ACTOR = "demo"


@dataclass(frozen=True, slots=True)
class DemoData:
    """What `seed_demo_data` stored.

    Attributes:
        nodes: a draft, a published and an archived node.
        orders: one order per state: pending, confirmed, paid, shipped, delivered,
            cancelled.
    """

    nodes: tuple[AnyContentNode, ...]
    orders: tuple[AnyOrder, ...]


async def _seed_nodes(service: NodeService, tenant_id: uuid.UUID) -> list[AnyContentNode]:
    def draft(kind: NodeKind, title: str, slug: str) -> CreateNodeInput:
        return CreateNodeInput(kind=kind, title=title, slug=slug)

    welcome = await service.create(tenant_id, draft(NodeKind.PAGE, "Welcome to RusTok", "welcome"))
    launch = await service.create(tenant_id, draft(NodeKind.POST, "We are live", "we-are-live"))
    launched = await service.publish(tenant_id, launch.id, actor=_ACTOR)
    sale = await service.create(tenant_id, draft(NodeKind.ARTICLE, "Spring sale", "spring-sale"))
    await service.publish(tenant_id, sale.id, actor=_ACTOR)
    sale_over = await service.archive(tenant_id, sale.id, "The sale is over", actor=_ACTOR)
    return [welcome, launched, sale_over]


async def _seed_orders(service: OrderService, tenant_id: uuid.UUID) -> list[AnyOrder]:
    async def confirmed(amount: str) -> uuid.UUID:
        order = await new(amount)
        await service.confirm(tenant_id, order.id, actor=_ACTOR)
        return order.id

    async def new(amount: str) -> AnyOrder:
        order = CreateOrderInput(customer_id=DEMO_CUSTOMER, amount=amount, currency="EUR")
        return await service.create(tenant_id, order)

    def pay(payment_id: str, method: str) -> PayOrderInput:
        return PayOrderInput(payment_id=payment_id, payment_method=method)

    pending = await new("19.90")
    a = await service.get(tenant_id, await confirmed("42.00"))
    b = await service.pay(
        tenant_id, await confirmed("7.50"), pay("pay_demo_1", "card"), actor=_ACTOR
    )
    c = await confirmed("129.00")
    await service.pay(tenant_id, c, pay("pay_demo_2", "card"), actor=_ACTOR)
    c3 = await service.ship(
        tenant_id,
        c,
        ShipOrderInput(tracking_number="1Z999AA10123456784", carrier="UPS"),
        actor=_ACTOR,
    )
    d = await confirmed("64.25")
    await service.pay(tenant_id, d, pay("pay_demo_3", "bank_transfer"), actor=_ACTOR)
    await service.ship(
        tenant_id, d, ShipOrderInput(tracking_number="JD014600006281", carrier="DHL"), actor=_ACTOR
    )
    d4 = await service.deliver(
        tenant_id, d, DeliverOrderInput(signature="R. Customer"), actor=_ACTOR
    )
    e = await new("15.00")
    e1 = await service.cancel(
        tenant_id, e.id, CancelOrderInput(reason="Ordered by mistake"), actor=_ACTOR
    )
    return [pending, a, b, c3, d4, e1]


async def seed_demo_data(database: Database, tenant_id: uuid.UUID) -> DemoData:
    """Store the sample nodes and orders of ``tenant_id``, with their history, in one
    transaction, through `NodeService` and `OrderService` as the API does.

    Args:
        database: the migrated database.
        tenant_id: the tenant that receives the samples.

    Returns:
        The nodes and orders as stored (their last values).
    """
    async with database.writing() as session:
        nodes = await _seed_nodes(NodeService(SqlNodeRepository(session)), tenant_id)
        orders = await _seed_orders(OrderService(SqlOrderRepository(session)), tenant_id)
        await session.commit()
    return DemoData(tuple(nodes), tuple(orders))
