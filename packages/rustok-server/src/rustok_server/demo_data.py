"""Sample content and orders for the demo tenant that ``rustok-server serve`` creates.

Every sample goes through the same typed transitions and repositories as the API, so
the demo data has a real history: a draft, a published and an archived node, and one
order in each state of its lifecycle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rustok_commerce import AnyOrder, Money, Order, Pending
from rustok_content import AnyContentNode, ContentNode, Draft, NodeKind
from rustok_server.db import Database
from rustok_server.repositories import SqlNodeRepository, SqlOrderRepository

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


def _node_lives(tenant_id: uuid.UUID) -> list[tuple[ContentNode[Draft], list[AnyContentNode]]]:
    """Each sample node: the draft created, then its successive values."""
    welcome = ContentNode.new_draft(
        tenant_id=tenant_id, kind=NodeKind.PAGE, title="Welcome to RusTok", slug="welcome"
    )
    launch = ContentNode.new_draft(
        tenant_id=tenant_id, kind=NodeKind.POST, title="We are live", slug="we-are-live"
    )
    launched = launch.publish(actor=_ACTOR)
    sale = ContentNode.new_draft(
        tenant_id=tenant_id, kind=NodeKind.ARTICLE, title="Spring sale", slug="spring-sale"
    )
    sale_live = sale.publish(actor=_ACTOR)
    sale_over = sale_live.archive("The sale is over", actor=_ACTOR)
    return [(welcome, []), (launch, [launched]), (sale, [sale_live, sale_over])]


def _order_lives(tenant_id: uuid.UUID) -> list[tuple[Order[Pending], list[AnyOrder]]]:
    """Each sample order: the pending order created, then its successive values."""

    def new(amount: str) -> Order[Pending]:
        return Order.new_pending(
            tenant_id=tenant_id, customer_id=DEMO_CUSTOMER, total=Money.of(amount, "EUR")
        )

    pending = new("19.90")
    a = new("42.00")
    a1 = a.confirm(actor=_ACTOR)
    b = new("7.50")
    b1 = b.confirm(actor=_ACTOR)
    b2 = b1.pay("pay_demo_1", "card", actor=_ACTOR)
    c = new("129.00")
    c1 = c.confirm(actor=_ACTOR)
    c2 = c1.pay("pay_demo_2", "card", actor=_ACTOR)
    c3 = c2.ship("1Z999AA10123456784", "UPS", actor=_ACTOR)
    d = new("64.25")
    d1 = d.confirm(actor=_ACTOR)
    d2 = d1.pay("pay_demo_3", "bank_transfer", actor=_ACTOR)
    d3 = d2.ship("JD014600006281", "DHL", actor=_ACTOR)
    d4 = d3.deliver("R. Customer", actor=_ACTOR)
    e = new("15.00")
    e1 = e.cancel("Ordered by mistake", actor=_ACTOR)
    return [
        (pending, []),
        (a, [a1]),
        (b, [b1, b2]),
        (c, [c1, c2, c3]),
        (d, [d1, d2, d3, d4]),
        (e, [e1]),
    ]


async def seed_demo_data(database: Database, tenant_id: uuid.UUID) -> DemoData:
    """Store the sample nodes and orders of ``tenant_id``, with their history, in one
    transaction.

    Args:
        database: the migrated database.
        tenant_id: the tenant that receives the samples.

    Returns:
        The nodes and orders as stored (their last values).
    """
    node_lives = _node_lives(tenant_id)
    order_lives = _order_lives(tenant_id)
    async with database.sessions() as session:
        nodes = SqlNodeRepository(session)
        for draft, node_steps in node_lives:
            await nodes.add(draft)
            for node in node_steps:
                assert node.last_transition is not None, "a transition's value"
                await nodes.save(
                    node, expected_version=node.version - 1, record=node.last_transition
                )
        orders = SqlOrderRepository(session)
        for created, order_steps in order_lives:
            await orders.add(created)
            for order in order_steps:
                assert order.last_transition is not None, "a transition's value"
                await orders.save(
                    order, expected_version=order.version - 1, record=order.last_transition
                )
        await session.commit()
    return DemoData(
        tuple(steps[-1] if steps else first for first, steps in node_lives),
        tuple(steps[-1] if steps else first for first, steps in order_lives),
    )
