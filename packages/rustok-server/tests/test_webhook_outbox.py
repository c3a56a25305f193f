"""The outbox: every creation, update and transition writes its event, and one pending
delivery per enabled endpoint of the tenant that wants its type, in the change's own
transaction, on SQLite and on PostgreSQL. A change that rolls back or is refused writes
nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from api_fixtures import unit_of_work

from rustok_commerce import (
    ConfirmOrderInput,
    CreateOrderInput,
    OrderService,
    PayOrderInput,
)
from rustok_content import CreateNodeInput, NodeKind, NodeService, UpdateNodeInput
from rustok_core.state_machine import InvalidTransitionError
from rustok_server import Tenant
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database
from rustok_server.webhooks.outbox import NODE_EVENTS

Row = Sequence[Any]


async def _endpoint(
    database: Database, tenant: uuid.UUID, *types: str, enabled: bool = True
) -> uuid.UUID:
    """An endpoint of ``tenant`` that wants ``types``, written straight to its tables."""
    endpoint = uuid.uuid4()
    now = datetime.now(UTC)
    async with unit_of_work(database) as unit:
        await unit.execute(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, enabled, secret,"
            " version, created_at, updated_at) VALUES "
            + (
                "(?, ?, ?, '', ?, ?, 1, ?, ?)"
                if unit.dialect == "sqlite"
                else "($1, $2, $3, '', $4, $5, 1, $6, $7)"
            ),
            [endpoint, tenant, "https://hooks.example.com/in", enabled, "whsec_c2VjcmV0", now, now],
        )
        for event_type in types:
            await unit.execute(
                "INSERT INTO webhook_subscriptions (endpoint_id, event_type, tenant_id) VALUES "
                + ("(?, ?, ?)" if unit.dialect == "sqlite" else "($1, $2, $3)"),
                [endpoint, event_type, tenant],
            )
        await unit.commit()
    return endpoint


async def _events(database: Database) -> list[tuple[str, int, dict[str, Any]]]:
    async with unit_of_work(database) as unit:
        rows = await unit.fetch("SELECT type, version, body FROM webhook_events", [])
    found = [(str(row[0]), int(row[1]), json.loads(row[2])) for row in rows]
    return sorted(found, key=lambda event: (event[0].split(".")[0], event[1]))


async def _deliveries(database: Database) -> list[tuple[str, uuid.UUID, str, int]]:
    async with unit_of_work(database) as unit:
        rows = await unit.fetch(
            "SELECT e.type, d.endpoint_id, d.status, d.attempts FROM webhook_deliveries d"
            " JOIN webhook_events e ON e.id = d.event_id",
            [],
        )
    return sorted((str(row[0]), uuid.UUID(str(row[1])), str(row[2]), int(row[3])) for row in rows)


async def test_each_change_writes_its_event_and_the_deliveries_of_who_wants_it(
    database: Database, tenants: dict[str, Tenant]
) -> None:
    acme, globex = tenants["acme"].id, tenants["globex"].id
    every = await _endpoint(database, acme, "*")
    paid_only = await _endpoint(database, acme, "order.paid")
    both = await _endpoint(database, acme, "*", "order.paid")  # named twice, sent once
    await _endpoint(database, acme, "*", enabled=False)
    await _endpoint(database, globex, "*")  # another tenant's
    async with unit_of_work(database) as unit:
        service = OrderService(SqlOrderRepository(unit))
        order = await service.create(
            acme, CreateOrderInput(customer_id=uuid.uuid4(), amount="49.90", currency="EUR")
        )
        await service.confirm(acme, order.id, ConfirmOrderInput())
        paid = await service.pay(
            acme, order.id, PayOrderInput(payment_id="pi_1", payment_method="card"), actor="bob"
        )
        await unit.commit()

    events = await _events(database)
    assert [(kind, version) for kind, version, _ in events] == [
        ("order.created", 1),
        ("order.confirmed", 2),
        ("order.paid", 3),
    ]
    created, _, paid_event = (body for _, _, body in events)
    assert created["data"]["transition"] is None
    assert created["data"]["entity"]["state"] == "pending"
    # The entity as the API renders it, the transition record and the version.
    assert paid_event["type"] == "order.paid"
    assert paid_event["data"]["entity"] == json.loads(json.dumps(paid.to_data()))
    assert paid_event["data"]["version"] == 3
    transition = paid_event["data"]["transition"]
    assert (transition["trigger"], transition["actor"]) == ("pay", "bob")
    assert (transition["from_state"], transition["to_state"]) == ("confirmed", "paid")
    assert datetime.fromisoformat(paid_event["timestamp"]) == paid.updated_at

    kinds = ("order.created", "order.confirmed", "order.paid")
    expected = [(kind, endpoint, "pending", 0) for kind in kinds for endpoint in (every, both)]
    expected.append(("order.paid", paid_only, "pending", 0))
    assert await _deliveries(database) == sorted(expected)


async def test_node_events_name_their_action(
    database: Database, tenants: dict[str, Tenant]
) -> None:
    acme = tenants["acme"].id
    async with unit_of_work(database) as unit:
        service = NodeService(SqlNodeRepository(unit))
        node = await service.create(
            acme, CreateNodeInput(kind=NodeKind.POST, title="Hi", slug="hi")
        )
        await service.update(acme, node.id, UpdateNodeInput(title="Hello"))
        await service.publish(acme, node.id)
        await service.archive(acme, node.id, "outdated")
        await service.restore(acme, node.id)
        await unit.commit()
    assert [(kind, version) for kind, version, _ in await _events(database)] == [
        (kind, version) for version, kind in enumerate(NODE_EVENTS.event_types, start=1)
    ]


async def test_a_change_rolled_back_or_refused_emits_nothing(
    database: Database, tenants: dict[str, Tenant]
) -> None:
    acme = tenants["acme"].id
    await _endpoint(database, acme, "*")
    async with unit_of_work(database) as unit:
        service = OrderService(SqlOrderRepository(unit))
        order = await service.create(
            acme, CreateOrderInput(customer_id=uuid.uuid4(), amount="5", currency="EUR")
        )
        await unit.commit()
    async with unit_of_work(database) as unit:  # closed without a commit
        await OrderService(SqlOrderRepository(unit)).confirm(acme, order.id, ConfirmOrderInput())
    async with unit_of_work(database) as unit:
        with pytest.raises(InvalidTransitionError):
            await OrderService(SqlOrderRepository(unit)).pay(
                acme, order.id, PayOrderInput(payment_id="pi", payment_method="card")
            )
        await unit.commit()
    assert [(kind, version) for kind, version, _ in await _events(database)] == [
        ("order.created", 1)
    ]
    assert [kind for kind, *_ in await _deliveries(database)] == ["order.created"]
