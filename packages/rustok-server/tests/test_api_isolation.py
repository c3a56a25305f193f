"""Tenant isolation, as a property over HTTP on SQLite and on PostgreSQL: for random
pairs of tenants and random routes, tenant B never reads, lists or changes a node or
an order of tenant A; every attempt is a 404 indistinguishable from a missing id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from api_fixtures import (
    NODES,
    ORDER_BODIES,
    ORDERS,
    ApiKeys,
    Json,
    ServerFactory,
    assert_problem,
    create_keys,
    node_in,
    ok,
    order_in,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustok_server import Tenant, TenantDirectory
from rustok_server.db import Database

TENANTS = ("acme", "globex", "umbrella", "hooli")
NODE_STATES = ("draft", "published", "archived")
ORDER_STATES = ("pending", "confirmed", "paid", "shipped")

# (method, path after the id, body): every route that names an entity.
NODE_ROUTES: tuple[tuple[str, str, Json | None], ...] = (
    ("GET", "", None),
    ("PATCH", "", {"title": "taken over"}),
    ("POST", "/publish", None),
    ("POST", "/archive", {"reason": "taken over"}),
    ("POST", "/restore", None),
    ("GET", "/history", None),
)
ORDER_ROUTES: tuple[tuple[str, str, Json | None], ...] = (
    ("GET", "", None),
    ("POST", "/confirm", None),
    ("POST", "/pay", ORDER_BODIES["pay"]),
    ("POST", "/ship", ORDER_BODIES["ship"]),
    ("POST", "/deliver", ORDER_BODIES["deliver"]),
    ("POST", "/cancel", ORDER_BODIES["cancel"]),
    ("POST", "/cancel", {"reason": "taken over", "refund_id": "re_1"}),
    ("GET", "/history", None),
)


@dataclass
class World:
    """A client per tenant and, per tenant, a node and an order in each state."""

    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    nodes: dict[tuple[str, str], Json] = field(default_factory=dict)
    orders: dict[tuple[str, str], Json] = field(default_factory=dict)


@pytest.fixture
async def world(
    database_url: str, tenants: dict[str, Tenant], start_server: ServerFactory, api_keys: ApiKeys
) -> AsyncIterator[World]:
    database = Database(database_url)
    try:
        directory = TenantDirectory(database)
        for slug in TENANTS:
            if slug not in tenants:
                await directory.create(slug, slug.capitalize())
        api_keys.update(await create_keys(database, [s for s in TENANTS if s not in tenants]))
    finally:
        await database.dispose()
    server = start_server()
    built = World()
    for slug in TENANTS:
        client = built.clients[slug] = api_keys.client(server, slug)
        for state in NODE_STATES:
            built.nodes[slug, state] = await node_in(client, state)
        for state in ORDER_STATES:
            built.orders[slug, state] = await order_in(client, state)
    yield built
    for client in built.clients.values():
        await client.aclose()


def _strip(problem: Json) -> Json:
    return {k: v for k, v in problem.items() if k not in ("instance", "trace_id")}


async def _send(
    client: httpx.AsyncClient, method: str, url: str, body: Json | None
) -> httpx.Response:
    return await client.request(method, url, json=body, headers={"If-Match": "*"})


pairs = st.lists(st.sampled_from(TENANTS), min_size=2, max_size=2, unique=True)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pair=pairs,
    is_node=st.booleans(),
    node_case=st.tuples(st.sampled_from(NODE_STATES), st.sampled_from(NODE_ROUTES)),
    order_case=st.tuples(st.sampled_from(ORDER_STATES), st.sampled_from(ORDER_ROUTES)),
)
async def test_another_tenants_entity_is_always_404(
    world: World,
    pair: list[str],
    is_node: bool,
    node_case: tuple[str, tuple[str, str, Json | None]],
    order_case: tuple[str, tuple[str, str, Json | None]],
) -> None:
    owner, intruder = pair
    if is_node:
        state, (method, suffix, body) = node_case
        entity, base, code = world.nodes[owner, state], NODES, "NODE_NOT_FOUND"
    else:
        state, (method, suffix, body) = order_case
        entity, base, code = world.orders[owner, state], ORDERS, "ORDER_NOT_FOUND"
    client = world.clients[intruder]
    foreign = await _send(client, method, f"{base}/{entity['id']}{suffix}", body)
    missing = await _send(client, method, f"{base}/{uuid.uuid4()}{suffix}", body)
    assert _strip(assert_problem(foreign, 404, code)) == _strip(assert_problem(missing, 404, code))
    assert foreign.headers.keys() - {"x-request-id", "date"} == missing.headers.keys() - {
        "x-request-id",
        "date",
    }
    owner_client = world.clients[owner]
    assert await ok(await owner_client.get(f"{base}/{entity['id']}")) == entity
    listed = await ok(await client.get(base, params={"limit": 100}))
    assert entity["id"] not in {item["id"] for item in listed["items"]}
