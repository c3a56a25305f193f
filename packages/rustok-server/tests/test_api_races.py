"""Races over HTTP, on SQLite and on PostgreSQL: many clients fire the same transition
of one entity at once; exactly one wins, every other gets a 409 problem, and exactly one
history row is written."""

from __future__ import annotations

import asyncio
from collections import Counter

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
    create_node,
    ok,
    order_in,
)

from rustok_server import Tenant
from rustok_server.testing import LiveServer

RACERS = 50


async def _race(client: httpx.AsyncClient, url: str, body: object) -> list[httpx.Response]:
    start = asyncio.Event()

    async def one() -> httpx.Response:
        await start.wait()
        return await client.post(url, json=body)

    tasks = [asyncio.create_task(one()) for _ in range(RACERS)]
    await asyncio.sleep(0)  # let every task reach the start line
    start.set()
    return await asyncio.gather(*tasks)


def _one_winner(responses: list[httpx.Response]) -> httpx.Response:
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: RACERS - 1}, statuses
    for response in responses:
        if response.status_code == 409:
            problem = assert_problem(response, 409)
            assert problem["code"] in {
                "INVALID_TRANSITION",
                "ORDER_VERSION_CONFLICT",
                "CONCURRENT_MODIFICATION",
            }
    return next(r for r in responses if r.status_code == 200)


async def test_fifty_concurrent_payments_pay_once(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    limits = httpx.Limits(max_connections=RACERS)
    async with api_keys.client(server, "acme") as setup:
        order = await order_in(setup, "confirmed")
    url = f"{ORDERS}/{order['id']}"
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"X-Tenant-ID": "acme", **api_keys.auth("acme")},
        limits=limits,
        timeout=60,
    ) as client:
        responses = await _race(client, f"{url}/pay", ORDER_BODIES["pay"])
        history = await ok(await client.get(f"{url}/history"))
        final = await ok(await client.get(url))
    winner = _one_winner(responses)
    assert winner.json() == final
    assert (final["state"], final["version"]) == ("paid", 3)
    assert [r["trigger"] for r in history["items"]] == ["confirm", "pay"]


async def test_fifty_concurrent_publishes_publish_once(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    limits = httpx.Limits(max_connections=RACERS)
    async with api_keys.client(server, "acme") as setup:
        node = await create_node(setup)
    url = f"{NODES}/{node['id']}"
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"X-Tenant-ID": "acme", **api_keys.auth("acme")},
        limits=limits,
        timeout=60,
    ) as client:
        responses = await _race(client, f"{url}/publish", None)
        history = await ok(await client.get(f"{url}/history"))
        final = await ok(await client.get(url))
    winner = _one_winner(responses)
    assert winner.json() == final
    assert (final["state"], final["version"]) == ("published", 2)
    assert [r["trigger"] for r in history["items"]] == ["publish"]


async def _concurrent_updates(
    server: LiveServer, api_keys: ApiKeys, headers: dict[str, str]
) -> tuple[list[httpx.Response], Json, Json]:
    """Twenty updates of one new node at once, sent with ``headers``: the responses, the
    node's history and the node as it ends."""
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client)
        url = f"{NODES}/{node['id']}"
        responses = await asyncio.gather(
            *(client.patch(url, json={"title": f"Title {i}"}, headers=headers) for i in range(20))
        )
        history = await ok(await client.get(f"{url}/history"))
        final = await ok(await client.get(url))
    return list(responses), history, final


async def test_concurrent_updates_lose_nothing(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    responses, history, final = await _concurrent_updates(start_server(), api_keys, {})
    won = [r for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "CONCURRENT_MODIFICATION")
    # Every accepted change is in the history, each at its own version; none is lost.
    assert len(history["items"]) == len(won) == final["version"] - 1
    assert sorted(r["version"] for r in history["items"]) == list(range(2, final["version"] + 1))
    assert final == max((r.json() for r in won), key=lambda body: int(body["version"]))


async def test_concurrent_payments_with_one_idempotency_key_all_get_the_first_result(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, "confirmed")
        url = f"{ORDERS}/{order['id']}"
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{url}/pay", json=ORDER_BODIES["pay"], headers={"Idempotency-Key": "pay-once"}
                )
                for _ in range(20)
            )
        )
        history = await ok(await client.get(f"{url}/history"))
        final = await ok(await client.get(url))
    assert {response.status_code for response in responses} == {200}, [
        r.text for r in responses if r.status_code != 200
    ]
    assert all(response.json() == final for response in responses)
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == len(responses) - 1
    assert [r["trigger"] for r in history["items"]] == ["confirm", "pay"]


@pytest.mark.parametrize(
    ("if_match", "refusal"),
    [('"1"', (412, "PRECONDITION_FAILED")), ("*", (409, "CONCURRENT_MODIFICATION"))],
)
async def test_concurrent_changes_that_lose_are_412_when_if_match_named_a_version(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    if_match: str,
    refusal: tuple[int, str],
    api_keys: ApiKeys,
) -> None:
    responses, _, final = await _concurrent_updates(
        start_server(), api_keys, {"If-Match": if_match}
    )
    # A loser that read a newer version and one that lost the write to the version lock
    # are answered alike: 412 when If-Match named version 1, 409 for "*" (a lost race).
    won = [r for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, *refusal)
    assert len(won) == final["version"] - 1
    if if_match != "*":
        assert len(won) == 1
