"""The SQL repositories behind the APIs satisfy the domain's repository protocols: the
domain services run on them unchanged, on SQLite and on PostgreSQL, a stale write is
refused by the SQL write itself without touching the row or its history, and a change
sent with ``If-Match`` reads its row once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import pytest
from api_fixtures import (
    NODES,
    ORDERS,
    ApiKeys,
    ServerFactory,
    create_node,
    create_order,
    unit_of_work,
)

from rustok_commerce import (
    CreateOrderInput,
    OrderService,
    Paid,
    PayOrderInput,
)
from rustok_commerce import VersionConflictError as OrderConflictError
from rustok_content import (
    CreateNodeInput,
    NodeKind,
    NodeService,
    Published,
    VersionConflictError,
)
from rustok_core.state_machine import is_state
from rustok_server import Tenant
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database, UnitOfWork


async def test_node_service_runs_on_the_sql_repository(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    tenant = tenants["acme"].id
    database = Database(database_url)
    try:
        async with unit_of_work(database) as unit:
            service = NodeService(SqlNodeRepository(unit))
            draft = await service.create(
                tenant, CreateNodeInput(kind=NodeKind.POST, title="Hi", slug="hi")
            )
            published = await service.publish(tenant, draft.id, actor="alice")
            await unit.commit()
        async with unit_of_work(database) as unit:
            repository = SqlNodeRepository(unit)
            loaded = await repository.get(tenant, draft.id)
            history = await repository.history(tenant, draft.id)
            listed = await repository.page(tenant, state="published")
            other_tenant = await repository.get(tenants["globex"].id, draft.id)
            late = published.update(title="late")
            assert late.last_transition is not None
            with pytest.raises(VersionConflictError):
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
        async with unit_of_work(database) as unit:
            service = OrderService(SqlOrderRepository(unit))
            order = await service.create(
                tenant, CreateOrderInput(customer_id=uuid.uuid4(), amount="5", currency="EUR")
            )
            await service.confirm(tenant, order.id)
            paid = await service.pay(
                tenant, order.id, PayOrderInput(payment_id="pi", payment_method="card")
            )
            await unit.commit()
        async with unit_of_work(database) as unit:
            repository = SqlOrderRepository(unit)
            loaded = await repository.get(tenant, order.id)
            # Two readers of version 3 both move the order; only the SQL write's
            # "WHERE version = 3" tells the second that the first was saved.
            first = await repository.get(tenant, order.id)
            second = await repository.get(tenant, order.id)
            assert first is not None
            assert is_state(first, Paid)
            assert second is not None
            assert is_state(second, Paid)
            shipped = first.ship("1Z999", "UPS")
            refunded = second.cancel_with_refund("lost", "re_1")
            assert shipped.last_transition is not None
            assert refunded.last_transition is not None
            await repository.save(shipped, expected_version=3, record=shipped.last_transition)
            with pytest.raises(OrderConflictError) as refused:
                await repository.save(refunded, expected_version=3, record=refunded.last_transition)
            await unit.commit()
        async with unit_of_work(database) as unit:
            repository = SqlOrderRepository(unit)
            stored = await repository.get(tenant, order.id)
            history = await repository.history(tenant, order.id)
            listed = await repository.page(tenant, state="shipped")
    finally:
        await database.dispose()
    assert loaded == paid
    assert (refused.value.expected_version, refused.value.actual_version) == (3, 4)
    assert stored == shipped
    assert [r.trigger for r in history] == ["confirm", "pay", "ship"]
    assert [o.id for o in listed] == [order.id]


def _entity_reads(monkeypatch: pytest.MonkeyPatch, table: str) -> list[str]:
    """Every statement the API's units of work run from now on that reads ``table``."""
    reads: list[str] = []
    fetch = UnitOfWork.fetch
    reading = re.compile(rf"\bFROM {table}\b")

    async def counted(
        self: UnitOfWork, sql: str, parameters: Sequence[object]
    ) -> Sequence[Sequence[object]]:
        if reading.search(sql):
            reads.append(sql)
        return await fetch(self, sql, parameters)

    monkeypatch.setattr(UnitOfWork, "fetch", counted)
    return reads


@pytest.mark.parametrize(
    ("table", "action"),
    [("content_nodes", f"{NODES}/{{}}/publish"), ("orders", f"{ORDERS}/{{}}/confirm")],
)
async def test_a_transition_with_if_match_reads_its_row_once(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    action: str,
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        made = await (create_node(client) if table == "content_nodes" else create_order(client))
        reads = _entity_reads(monkeypatch, table)
        url = action.format(made["id"])
        stale = await client.post(url, headers={"If-Match": '"2"'})
        reads_of_stale = len(reads)
        applied = await client.post(url, headers={"If-Match": '"1"'})
    assert (stale.status_code, applied.status_code) == (412, 200)
    # The If-Match check is made on the service's read: one read each, refused or applied.
    assert (reads_of_stale, len(reads)) == (1, 2), reads
