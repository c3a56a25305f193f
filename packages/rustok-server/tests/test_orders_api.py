"""The order API end to end, over HTTP against uvicorn, on SQLite and on PostgreSQL:
every route, every legal and illegal transition, every rule (422), validation errors,
history, pagination, and Idempotency-Key on creation and payment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from api_fixtures import (
    ORDER_BODIES,
    ORDER_PATHS,
    ORDERS,
    ApiKeys,
    Json,
    ServerFactory,
    assert_problem,
    create_order,
    ok,
    order_in,
    pointers,
    unit_of_work,
)

from rustok_server import Tenant
from rustok_server.db import Database
from rustok_server.http.idempotency import IdempotentRequest

ACTIONS = ("confirm", "pay", "ship", "deliver", "cancel")
ALLOWED: dict[str, list[str]] = {
    "pending": ["cancel", "confirm"],
    "confirmed": ["cancel", "pay"],
    "paid": ["cancel", "ship"],
    "shipped": ["deliver"],
    "delivered": [],
    "cancelled": [],
}


async def test_create_returns_a_pending_order_with_exact_money(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    customer = str(uuid.uuid4())
    async with api_keys.client(server, "acme") as client:
        body = {"customer_id": customer, "amount": "49.9", "currency": "eur"}
        response = await client.post(ORDERS, json=body)
        order = await ok(response, 201)
        again = await ok(await client.get(response.headers["location"]))
        yen = await create_order(client, amount="1200", currency="JPY")
    assert order["state"] == "pending"
    assert order["state_data"] == {}
    assert order["total"] == {"amount": "49.90", "currency": "EUR"}
    assert (order["customer_id"], order["version"]) == (customer, 1)
    assert response.headers["etag"] == '"1"'
    assert again == order
    assert yen["total"] == {"amount": "1200", "currency": "JPY"}


async def test_create_with_bad_fields_lists_one_error_per_field(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        all_bad = await client.post(
            ORDERS, json={"customer_id": "bob", "amount": "lots", "currency": "EURO"}
        )
        float_amount = await client.post(
            ORDERS, json={"customer_id": str(uuid.uuid4()), "amount": 49.9, "currency": "EUR"}
        )
        too_precise = await client.post(
            ORDERS, json={"customer_id": str(uuid.uuid4()), "amount": "1.001", "currency": "EUR"}
        )
        missing = await client.post(ORDERS, json={})
        listed = await ok(await client.get(ORDERS))
    assert sorted(pointers(assert_problem(all_bad, 400))) == [
        "/amount",
        "/currency",
        "/customer_id",
    ]
    assert pointers(assert_problem(float_amount, 400)) == ["/amount"]
    problem = assert_problem(too_precise, 400)
    assert pointers(problem) == ["/amount"]
    assert "decimal place" in problem["errors"][0]["detail"]
    assert sorted(pointers(assert_problem(missing, 400))) == [
        "/amount",
        "/currency",
        "/customer_id",
    ]
    assert listed["items"] == []


async def test_bad_amount_with_a_good_currency_names_the_amount(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.post(
            ORDERS, json={"customer_id": "bob", "amount": "lots", "currency": "EUR"}
        )
    assert sorted(pointers(assert_problem(response, 400))) == ["/amount", "/customer_id"]


@pytest.mark.parametrize("amount", ["0", "-5.00"])
async def test_non_positive_total_breaks_the_order_rule_422(
    start_server: ServerFactory, tenants: dict[str, Tenant], amount: str, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.post(
            ORDERS, json={"customer_id": str(uuid.uuid4()), "amount": amount, "currency": "EUR"}
        )
    problem = assert_problem(response, 422, "NON_POSITIVE_AMOUNT")
    assert pointers(problem) == ["/amount"]


async def test_walk_to_delivered_with_state_data_and_history(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await create_order(client)
        url = f"{ORDERS}/{order['id']}"
        confirmed = await ok(await client.post(f"{url}/confirm"))
        paid = await ok(await client.post(f"{url}/pay", json=ORDER_BODIES["pay"]))
        shipped = await ok(await client.post(f"{url}/ship", json=ORDER_BODIES["ship"]))
        delivered = await ok(await client.post(f"{url}/deliver", json={"signature": "J. Doe"}))
        history = await ok(await client.get(f"{url}/history"))
        fetched = await ok(await client.get(url))
    assert confirmed["state_data"] == {"inventory_reserved": True}
    assert paid["state_data"]["payment_id"] == "pi_1"
    assert paid["state_data"]["payment_method"] == "card"
    assert {"payment_id", "payment_method", "paid_at"} == set(paid["state_data"])
    assert shipped["state_data"]["tracking_number"] == "1Z999"
    assert shipped["state_data"]["carrier"] == "UPS"
    assert delivered["state_data"]["signature"] == "J. Doe"
    assert (delivered["state"], delivered["version"]) == ("delivered", 5)
    assert fetched == delivered
    steps = [(r["trigger"], r["from_state"], r["to_state"], r["version"]) for r in history["items"]]
    assert steps == [
        ("confirm", "pending", "confirmed", 2),
        ("pay", "confirmed", "paid", 3),
        ("ship", "paid", "shipped", 4),
        ("deliver", "shipped", "delivered", 5),
    ]
    assert history["items"][1]["data"] == {"payment_id": "pi_1", "payment_method": "card"}
    assert history["items"][2]["data"] == {"tracking_number": "1Z999", "carrier": "UPS"}
    assert history["items"][3]["data"] == {"signed": True}


async def test_deliver_without_a_body_records_no_signature(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, "shipped")
        delivered = await ok(await client.post(f"{ORDERS}/{order['id']}/deliver"))
    assert delivered["state"] == "delivered"
    assert delivered["state_data"]["signature"] is None


@pytest.mark.parametrize("state", ["pending", "confirmed"])
async def test_cancel_unpaid_order(
    start_server: ServerFactory, tenants: dict[str, Tenant], state: str, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, state)
        url = f"{ORDERS}/{order['id']}"
        cancelled = await ok(await client.post(f"{url}/cancel", json={"reason": "no longer"}))
        history = await ok(await client.get(f"{url}/history"))
    assert cancelled["state"] == "cancelled"
    assert cancelled["state_data"]["reason"] == "no longer"
    assert cancelled["state_data"]["refunded"] is False
    assert cancelled["state_data"]["refund_id"] is None
    last = history["items"][-1]
    assert (last["trigger"], last["from_state"], last["to_state"]) == ("cancel", state, "cancelled")


async def test_cancel_paid_order_with_its_refund(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, "paid")
        url = f"{ORDERS}/{order['id']}"
        body = {"reason": "out of stock", "refund_id": "re_1"}
        cancelled = await ok(await client.post(f"{url}/cancel", json=body))
        history = await ok(await client.get(f"{url}/history"))
    assert cancelled["state_data"]["refunded"] is True
    assert cancelled["state_data"]["refund_id"] == "re_1"
    last = history["items"][-1]
    assert (last["trigger"], last["from_state"]) == ("cancel_with_refund", "paid")
    assert last["data"] == {"reason": "out of stock", "refund_id": "re_1"}


@pytest.mark.parametrize("state", list(ALLOWED))
async def test_every_illegal_transition_is_409_naming_state_and_allowed_actions(
    start_server: ServerFactory, tenants: dict[str, Tenant], state: str, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        for action in ACTIONS:
            if action in ALLOWED[state]:
                continue
            order = await order_in(client, state)
            url = f"{ORDERS}/{order['id']}"
            body = dict(ORDER_BODIES[action])
            if action == "cancel" and state == "paid":
                body["refund_id"] = "re_1"
            response = await client.post(f"{url}/{action}", json=body)
            problem = assert_problem(response, 409, "INVALID_TRANSITION")
            assert problem["state"] == state
            assert problem["action"] == action
            assert problem["allowed_actions"] == ALLOWED[state]
            assert state in problem["detail"]
            if not ALLOWED[state]:
                assert "none (final state)" in problem["detail"]
            assert await ok(await client.get(url)) == order, f"{action} changed a {state} order"
            history = await ok(await client.get(f"{url}/history"))
            assert len(history["items"]) == len(ORDER_PATHS[state])


RULES: list[tuple[str, str, Json, str, str]] = [
    ("pending", "confirm", {"inventory_reserved": False}, "GUARD_FAILED", ""),
    (
        "confirmed",
        "pay",
        {"payment_id": " ", "payment_method": "card"},
        "EMPTY_PAYMENT_ID",
        "/payment_id",
    ),
    (
        "confirmed",
        "pay",
        {"payment_id": "pi", "payment_method": ""},
        "EMPTY_PAYMENT_METHOD",
        "/payment_method",
    ),
    (
        "paid",
        "ship",
        {"tracking_number": "", "carrier": "UPS"},
        "EMPTY_TRACKING_NUMBER",
        "/tracking_number",
    ),
    ("paid", "ship", {"tracking_number": "1Z", "carrier": "  "}, "EMPTY_CARRIER", "/carrier"),
    ("pending", "cancel", {"reason": " "}, "EMPTY_CANCELLATION_REASON", "/reason"),
    ("paid", "cancel", {"reason": "r"}, "REFUND_REQUIRED", "/refund_id"),
    ("paid", "cancel", {"reason": "r", "refund_id": ""}, "REFUND_REQUIRED", "/refund_id"),
    (
        "confirmed",
        "cancel",
        {"reason": "r", "refund_id": "re_1"},
        "REFUND_NOT_APPLICABLE",
        "/refund_id",
    ),
]


@pytest.mark.parametrize(("state", "action", "body", "code", "pointer"), RULES)
async def test_every_rule_is_422_and_changes_nothing(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    state: str,
    action: str,
    body: Json,
    code: str,
    pointer: str,
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, state)
        url = f"{ORDERS}/{order['id']}"
        response = await client.post(f"{url}/{action}", json=body)
        after = await ok(await client.get(url))
    problem = assert_problem(response, 422, code)
    assert pointers(problem) == ([pointer] if pointer else [])
    assert after == order


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("pay", {"payment_id": "pi"}, ["/payment_method"]),
        ("pay", {"payment_id": 7, "payment_method": ["card"]}, ["/payment_id", "/payment_method"]),
        (
            "ship",
            {"tracking_number": "x" * 256, "carrier": "UPS", "eta": "soon"},
            ["/eta", "/tracking_number"],
        ),
        ("cancel", {}, ["/reason"]),
        ("confirm", {"inventory_reserved": "maybe"}, ["/inventory_reserved"]),
    ],
)
async def test_malformed_transition_bodies_are_400_per_field(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    action: str,
    body: Json,
    expected: list[str],
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await create_order(client)
        response = await client.post(f"{ORDERS}/{order['id']}/{action}", json=body)
    assert sorted(pointers(assert_problem(response, 400))) == expected


async def test_if_match_on_an_order_transition(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await create_order(client)
        url = f"{ORDERS}/{order['id']}/confirm"
        stale = await client.post(url, headers={"If-Match": '"2"'})
        fresh = await client.post(url, headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "PRECONDITION_FAILED")
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == '"2"'


async def test_list_filters_by_state_and_pages(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        made = {state: await order_in(client, state) for state in ALLOWED}
        by_state = {
            state: await ok(await client.get(ORDERS, params={"state": state})) for state in ALLOWED
        }
        first = await ok(await client.get(ORDERS, params={"limit": 4}))
        second = await ok(await client.get(ORDERS, params={"cursor": first["next_cursor"]}))
        bad = await client.get(ORDERS, params={"state": "lost"})
    for state, order in made.items():
        assert [o["id"] for o in by_state[state]["items"]] == [order["id"]]
    ids = [o["id"] for o in first["items"] + second["items"]]
    assert ids == [order["id"] for order in made.values()]
    assert second["next_cursor"] is None
    assert pointers(assert_problem(bad, 400)) == ["/query/state"]


async def test_unknown_order_is_404_on_every_route(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    url = f"{ORDERS}/{uuid.uuid4()}"
    async with api_keys.client(server, "acme") as client:
        responses = [await client.get(url), await client.get(f"{url}/history")]
        for action in ACTIONS:
            responses.append(await client.post(f"{url}/{action}", json=ORDER_BODIES[action]))
    for response in responses:
        assert_problem(response, 404, "ORDER_NOT_FOUND")


# -- Idempotency-Key ---------------------------------------------------------------


async def test_create_with_an_idempotency_key_creates_once(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    body = {"customer_id": str(uuid.uuid4()), "amount": "10.00", "currency": "USD"}
    key = {"Idempotency-Key": "order-1"}
    async with api_keys.client(server, "acme") as client:
        first = await client.post(ORDERS, json=body, headers=key)
        retry = await client.post(ORDERS, json=body, headers=key)
        other_body = await client.post(ORDERS, json={**body, "amount": "11.00"}, headers=key)
        other_key = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "order-2"})
        listed = await ok(await client.get(ORDERS))
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    assert "idempotent-replayed" not in first.headers
    assert_problem(other_body, 422, "IDEMPOTENCY_KEY_REUSED")
    assert other_key.json()["id"] != first.json()["id"]
    assert len(listed["items"]) == 2


async def test_idempotency_keys_are_per_tenant(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    body = {"customer_id": str(uuid.uuid4()), "amount": "10.00", "currency": "USD"}
    key = {"Idempotency-Key": "shared-key"}
    async with api_keys.client(server, "acme") as acme, api_keys.client(server, "globex") as globex:
        mine = await ok(await acme.post(ORDERS, json=body, headers=key), 201)
        theirs = await globex.post(ORDERS, json=body, headers=key)
    assert "idempotent-replayed" not in theirs.headers
    assert (await ok(theirs, 201))["id"] != mine["id"]


async def test_concurrent_creates_with_one_key_create_one_order(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    body = {"customer_id": str(uuid.uuid4()), "amount": "10.00", "currency": "USD"}
    async with api_keys.client(server, "acme") as client:
        responses = await asyncio.gather(
            *(client.post(ORDERS, json=body, headers={"Idempotency-Key": "k"}) for _ in range(10))
        )
        listed = await ok(await client.get(ORDERS))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(listed["items"]) == 1


async def test_payment_with_an_idempotency_key_pays_once(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        order = await order_in(client, "confirmed")
        url = f"{ORDERS}/{order['id']}"
        key = {"Idempotency-Key": "pay-1"}
        first = await client.post(f"{url}/pay", json=ORDER_BODIES["pay"], headers=key)
        retry = await client.post(f"{url}/pay", json=ORDER_BODIES["pay"], headers=key)
        keyless = await client.post(f"{url}/pay", json=ORDER_BODIES["pay"])
        history = await ok(await client.get(f"{url}/history"))
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert_problem(keyless, 409, "INVALID_TRANSITION")
    assert [r["trigger"] for r in history["items"]] == ["confirm", "pay"]


async def test_malformed_idempotency_key_is_400(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    body = {"customer_id": str(uuid.uuid4()), "amount": "10.00", "currency": "USD"}
    async with api_keys.client(server, "acme") as client:
        response = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "x" * 256})
    problem = assert_problem(response, 400, "INVALID_IDEMPOTENCY_KEY")
    assert pointers(problem) == ["/header/Idempotency-Key"]


async def test_an_expired_key_no_longer_replays(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    from starlette.responses import Response

    database = Database(database_url)
    tenant = tenants["acme"].id
    try:
        expired = IdempotentRequest.of("k", tenant, "create-order", {"a": 1})
        assert expired is not None
        expired = IdempotentRequest(tenant, expired.scope, "k", expired.fingerprint, timedelta(0))
        async with unit_of_work(database) as unit:
            await expired.remember(unit, Response(b"{}", 201))
            await unit.commit()
        fresh = IdempotentRequest(tenant, expired.scope, "k", expired.fingerprint)
        async with unit_of_work(database) as unit:
            assert await fresh.replay(unit) is None
            await fresh.remember(unit, Response(b'{"second":true}', 201))
            await unit.commit()
        async with unit_of_work(database) as unit:
            replayed = await fresh.replay(unit)
    finally:
        await database.dispose()
    assert replayed is not None
    assert replayed.body == b'{"second":true}'
