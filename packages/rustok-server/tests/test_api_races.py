"""Races over HTTP, on SQLite and on PostgreSQL: many clients fire the same transition
of one entity at once; exactly one wins, every other gets a 409 problem, and exactly one
history row is written."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from api_fixtures import (
    NODES,
    ORDER_BODIES,
    ORDERS,
    ServerFactory,
    assert_problem,
    auth,
    client_for,
    create_node,
    ok,
    order_in,
)

from rustok_server import Tenant

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
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    limits = httpx.Limits(max_connections=RACERS)
    async with client_for(server, "acme") as setup:
        order = await order_in(setup, "confirmed")
    url = f"{ORDERS}/{order['id']}"
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"X-Tenant-ID": "acme", **auth("acme")},
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
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    limits = httpx.Limits(max_connections=RACERS)
    async with client_for(server, "acme") as setup:
        node = await create_node(setup)
    url = f"{NODES}/{node['id']}"
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"X-Tenant-ID": "acme", **auth("acme")},
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


async def test_concurrent_updates_lose_nothing(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with client_for(server, "acme") as client:
        node = await create_node(client)
        url = f"{NODES}/{node['id']}"
        responses = await asyncio.gather(
            *(client.patch(url, json={"title": f"Title {i}"}) for i in range(20))
        )
        history = await ok(await client.get(f"{url}/history"))
        final = await ok(await client.get(url))
    won = [r for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "CONCURRENT_MODIFICATION")
    # Every accepted change is in the history, each at its own version; none is lost.
    assert len(history["items"]) == len(won) == final["version"] - 1
    assert sorted(r["version"] for r in history["items"]) == list(range(2, final["version"] + 1))
    assert final == max((r.json() for r in won), key=lambda body: int(body["version"]))


async def test_concurrent_payments_with_one_idempotency_key_all_get_the_first_result(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with client_for(server, "acme") as client:
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


async def test_concurrent_changes_naming_one_version_apply_once_and_refuse_the_rest_412(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with client_for(server, "acme") as client:
        node = await create_node(client)
        url = f"{NODES}/{node['id']}"
        responses = await asyncio.gather(
            *(
                client.patch(url, json={"title": f"Title {i}"}, headers={"If-Match": '"1"'})
                for i in range(20)
            )
        )
        final = await ok(await client.get(url))
    # Whether a loser read version 2 or lost the write to the version lock, If-Match
    # named version 1: a 412, never a 409.
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 19}
    for response in responses:
        if response.status_code == 412:
            assert_problem(response, 412, "PRECONDITION_FAILED")
    assert final["version"] == 2


async def test_concurrent_changes_with_if_match_star_lose_races_as_409(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with client_for(server, "acme") as client:
        node = await create_node(client)
        url = f"{NODES}/{node['id']}"
        responses = await asyncio.gather(
            *(
                client.patch(url, json={"title": f"Title {i}"}, headers={"If-Match": "*"})
                for i in range(20)
            )
        )
        final = await ok(await client.get(url))
    won = [r for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "CONCURRENT_MODIFICATION")
    assert len(won) == final["version"] - 1
