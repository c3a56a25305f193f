"""The SQL repositories behind the APIs satisfy the domain's repository protocols: the
domain services run on them unchanged, on SQLite and on PostgreSQL, and a stale write is
refused without touching the row or its history."""

from __future__ import annotations

import uuid

import pytest

from rustok_commerce import (
    CreateOrderInput,
    OrderService,
    OrderVersionConflictError,
    PayOrderInput,
)
from rustok_content import (
    ConcurrentModificationError,
    CreateNodeInput,
    NodeKind,
    NodeService,
    Published,
)
from rustok_server import Tenant
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database


async def test_node_service_runs_on_the_sql_repository(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    tenant = tenants["acme"].id
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            service = NodeService(SqlNodeRepository(session))
            draft = await service.create(
                tenant, CreateNodeInput(kind=NodeKind.POST, title="Hi", slug="hi")
            )
            published = await service.publish(tenant, draft.id, actor="alice")
            await session.commit()
        async with database.sessions() as session:
            repository = SqlNodeRepository(session)
            loaded = await repository.get(tenant, draft.id)
            history = await repository.history(tenant, draft.id)
            listed = await repository.page(tenant, state="published")
            other_tenant = await repository.get(tenants["globex"].id, draft.id)
            late = published.update(title="late")
            assert late.last_transition is not None
            with pytest.raises(ConcurrentModificationError):
                await repository.save(late, expected_version=1, record=late.last_transition)
    finally:
        await database.dispose()
    assert loaded == published
    assert loaded is not None
    assert isinstance(loaded.state, Published)
    assert [(r.trigger, r.actor, r.version) for r in history] == [("publish", "alice", 2)]
    assert [node.id for node in listed] == [draft.id]
    assert other_tenant is None


async def test_order_service_runs_on_the_sql_repository(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    tenant = tenants["acme"].id
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            service = OrderService(SqlOrderRepository(session))
            order = await service.create(
                tenant, CreateOrderInput(customer_id=uuid.uuid4(), amount="5", currency="EUR")
            )
            await service.confirm(tenant, order.id)
            paid = await service.pay(
                tenant, order.id, PayOrderInput(payment_id="pi", payment_method="card")
            )
            await session.commit()
        async with database.sessions() as session:
            repository = SqlOrderRepository(session)
            loaded = await repository.get(tenant, order.id)
            history = await repository.history(tenant, order.id)
            with pytest.raises(OrderVersionConflictError):
                await OrderService(repository).pay(
                    tenant,
                    order.id,
                    PayOrderInput(payment_id="x", payment_method="y"),
                    expected_version=2,
                )
            listed = await repository.page(tenant, state="paid")
    finally:
        await database.dispose()
    assert loaded == paid
    assert [r.trigger for r in history] == ["confirm", "pay"]
    assert [o.id for o in listed] == [order.id]
