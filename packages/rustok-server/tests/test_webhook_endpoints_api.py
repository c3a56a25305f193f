"""The webhook endpoints API over HTTP against uvicorn, on SQLite and on PostgreSQL: the
secret shown once, its rotation, the URLs and event types refused, another tenant's
endpoint and delivery as missing ones, the deliveries the outbox wrote for an order made
over HTTP, and their re-sending.

The servers run without the deliverer (``webhooks=False``): a delivery stays as the
outbox wrote it, or as a test set it in the database."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from api_fixtures import (
    NODES,
    ORDERS,
    ApiKeys,
    Json,
    ServerFactory,
    assert_problem,
    create_order,
    ok,
    pointers,
)
from sqlalchemy import func, select, update

from rustok_commerce import Order
from rustok_content import ContentNode
from rustok_server.db import Database
from rustok_server.testing import LiveServer
from rustok_server.webhooks.outbox import EVENT_TYPES, NODE_EVENTS, ORDER_EVENTS
from rustok_server.webhooks.tables import WebhookDeliveryRow, WebhookEndpointRow

ENDPOINTS = "/api/webhooks/endpoints"
RECEIVER = "https://hooks.example.com/receive"


@asynccontextmanager
async def _clients(
    server: LiveServer, api_keys: ApiKeys
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with api_keys.client(server, "acme") as acme, api_keys.client(server, "globex") as globex:
        yield acme, globex


async def _endpoint(client: httpx.AsyncClient, *types: str, url: str = RECEIVER) -> Json:
    body = {"url": url, "event_types": list(types or ("order.created",))}
    return await ok(await client.post(ENDPOINTS, json=body), 201)


async def _deliveries(client: httpx.AsyncClient, endpoint_id: str, **query: Any) -> list[Json]:
    page = await ok(await client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", params=query))
    items: list[Json] = page["items"]
    return items


async def _set_deliveries(database: Database, endpoint_id: str, **values: Any) -> None:
    async with database.writing() as session:
        await session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.endpoint_id == uuid.UUID(endpoint_id))
            .values(**values)
        )
        await session.commit()


def _without_ids(problem: Json, *ids: str) -> Json:
    kept = {k: v for k, v in problem.items() if k not in ("instance", "trace_id")}
    for row_id in ids:
        kept = {k: v.replace(row_id, "<id>") if isinstance(v, str) else v for k, v in kept.items()}
    return kept


def test_the_event_types_an_endpoint_may_want_are_those_the_outboxes_write() -> None:
    assert (*NODE_EVENTS.event_types, *ORDER_EVENTS.event_types) == EVENT_TYPES
    # Every trigger of each machine has its own action: a new transition names its event.
    for outbox, entity in ((NODE_EVENTS, ContentNode), (ORDER_EVENTS, Order)):
        assert set(entity.state_machine.triggers) == set(outbox.actions)


async def test_the_secret_is_shown_at_creation_and_never_again(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        body = {"url": RECEIVER, "event_types": ["order.created"], "description": "Shop"}
        created = await client.post(ENDPOINTS, json=body)
        endpoint = await ok(created, 201)
        secret = endpoint.pop("secret")
        url = created.headers["location"]
        await create_order(client)  # a delivery to list
        answers = [
            await client.get(url),
            await client.get(ENDPOINTS),
            await client.patch(url, json={"description": "Shop, again"}),
            await client.get(f"{url}/deliveries"),
            await client.delete(url),
        ]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert url == f"{ENDPOINTS}/{endpoint['id']}"
    assert created.headers["etag"] == '"1"'
    assert endpoint["url"] == RECEIVER
    assert endpoint["event_types"] == ["order.created"]
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (True, None)
    assert (endpoint["version"], endpoint["previous_secret_until"]) == (1, None)
    assert await ok(answers[0]) == endpoint
    assert (await ok(answers[1]))["items"] == [endpoint]
    assert (await ok(answers[2]))["version"] == 2
    assert len((await ok(answers[3]))["items"]) == 1
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text
        assert secret.removeprefix("whsec_") not in answer.text
        assert 'secret"' not in answer.text


async def test_a_rotation_shows_a_new_secret_and_the_old_one_signs_through_the_grace(
    start_server: ServerFactory, api_keys: ApiKeys, database: Database
) -> None:
    server = start_server(webhooks=False, webhook_secret_grace=3600)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client)
        url = f"{ENDPOINTS}/{endpoint['id']}"
        before = datetime.now(UTC)
        rotated = await client.post(f"{url}/rotate-secret", headers={"If-Match": '"1"'})
        shown = await ok(await client.get(url))
        stale = await client.post(f"{url}/rotate-secret", headers={"If-Match": '"1"'})
    new = await ok(rotated)
    assert new["secret"].startswith("whsec_")
    assert new["secret"] != endpoint["secret"]
    assert rotated.headers["etag"] == '"2"'
    until = datetime.fromisoformat(new["previous_secret_until"])
    assert before + timedelta(seconds=3600) <= until <= datetime.now(UTC) + timedelta(hours=1)
    assert shown == {k: v for k, v in new.items() if k != "secret"}
    assert_problem(stale, 412, "PRECONDITION_FAILED")
    async with database.reading() as session:
        row = await session.get(WebhookEndpointRow, uuid.UUID(endpoint["id"]))
    assert row is not None
    assert (row.secret, row.previous_secret) == (new["secret"], endpoint["secret"])
    assert row.previous_secret_until == until


PASSWORD = "hunter2-never-logged"
REFUSED_URLS = [
    ("http://hooks.example.com/receive", "https"),
    ("hooks.example.com/receive", "https"),
    ("ftp://hooks.example.com/receive", "https"),
    ("https:///receive", "no host"),
    (f"https://user:{PASSWORD}@hooks.example.com/receive", "password"),
    ("https://hooks.example.com/receive#part", "fragment"),
    ("https://hooks.example.com/re ceive", "spaces"),
    ("https://hooks.example.com:99999/receive", "not a valid URL"),
    (f"https://hooks.example.com/{'a' * 2048}", "2048"),
    ("https://127.0.0.1/receive", "loopback"),
    ("https://127.1/receive", "loopback"),
    ("https://localhost:8080/receive", "loopback"),
    ("https://[::1]/receive", "loopback"),
    ("https://[::ffff:10.1.2.3]/receive", "private"),
    ("https://10.0.0.7/receive", "private"),
    ("https://192.168.1.20/receive", "private"),
    ("https://169.254.169.254/latest/meta-data", "metadata"),
    ("https://100.64.0.1/receive", "shared"),
    ("https://0.0.0.0/receive", "unspecified"),
    ("https://0x7f.0.0.1/receive", "loopback"),
    ("https://[fd00:ec2::254]/receive", "metadata"),
]


async def test_urls_the_server_will_not_send_to_are_400_naming_the_url(
    start_server: ServerFactory, api_keys: ApiKeys, no_key_in_any_log: list[str]
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client)
        for url, why in REFUSED_URLS:
            for answer in (
                await client.post(ENDPOINTS, json={"url": url, "event_types": ["*"]}),
                await client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"url": url}),
            ):
                problem = assert_problem(answer, 400)
                assert pointers(problem) == ["/url"], (url, problem)
                assert why in str(problem), (url, problem)
                assert PASSWORD not in answer.text
        listed = await ok(await client.get(ENDPOINTS))
    assert [item["url"] for item in listed["items"]] == [RECEIVER]
    assert not [line for line in no_key_in_any_log if PASSWORD in line]


async def test_http_and_private_addresses_are_accepted_where_the_settings_allow_them(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(
        webhooks=False, webhook_allow_http=True, webhook_allow_private_addresses=True
    )
    async with api_keys.client(server, "acme") as client:
        local = await _endpoint(client, url="http://127.0.0.1:8080/receive")
        private = await _endpoint(client, url="https://10.0.0.7/receive")
        named = await client.post(
            ENDPOINTS, json={"url": "http://user@localhost/", "event_types": ["*"]}
        )
    assert local["url"] == "http://127.0.0.1:8080/receive"
    assert private["url"] == "https://10.0.0.7/receive"
    assert pointers(assert_problem(named, 400, "INVALID_WEBHOOK_URL")) == ["/url"]


async def test_an_unknown_event_type_is_a_400_naming_it(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        body = {"url": RECEIVER, "event_types": ["order.paid", "order.teleported"]}
        created = await client.post(ENDPOINTS, json=body)
        endpoint = await _endpoint(client, "*")
        patched = await client.patch(
            f"{ENDPOINTS}/{endpoint['id']}", json={"event_types": ["node.exploded"]}
        )
        empty = await client.post(ENDPOINTS, json={"url": RECEIVER, "event_types": []})
    problem = assert_problem(created, 400, "UNKNOWN_EVENT_TYPE")
    assert pointers(problem) == ["/event_types/1"]
    assert "order.teleported" in problem["detail"]
    assert "order.paid" in problem["detail"]  # what may be chosen
    assert "node.exploded" in assert_problem(patched, 400, "UNKNOWN_EVENT_TYPE")["detail"]
    assert pointers(assert_problem(empty, 400)) == ["/event_types"]


async def test_another_tenant_s_endpoint_and_delivery_are_404_like_missing_ones(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with _clients(server, api_keys) as (acme, globex):
        theirs = await _endpoint(globex)
        theirs.pop("secret")
        await create_order(globex)
        (delivery,) = await _deliveries(globex, theirs["id"])
        endpoint_url = f"{ENDPOINTS}/{theirs['id']}"
        delivery_url = f"{endpoint_url}/deliveries/{delivery['id']}"
        missing_id = str(uuid.uuid4())
        tries = [
            ("GET", endpoint_url, None),
            ("PATCH", endpoint_url, {"enabled": False}),
            ("POST", f"{endpoint_url}/rotate-secret", None),
            ("GET", f"{endpoint_url}/deliveries", None),
            ("POST", f"{endpoint_url}/resend-failed", {"since": "2026-01-01T00:00:00Z"}),
            ("DELETE", endpoint_url, None),
        ]
        for method, url, body in tries:
            foreign = await acme.request(method, url, json=body)
            missing = await acme.request(method, url.replace(theirs["id"], missing_id), json=body)
            assert _without_ids(assert_problem(foreign, 404), theirs["id"]) == _without_ids(
                assert_problem(missing, 404, "WEBHOOK_ENDPOINT_NOT_FOUND"), missing_id
            ), (method, url)
        for url in (delivery_url, f"{delivery_url}/resend"):
            method = "POST" if url.endswith("resend") else "GET"
            foreign = await acme.request(method, url)
            assert_problem(foreign, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
            other = await globex.request(method, url.replace(delivery["id"], missing_id))
            assert_problem(other, 404, "WEBHOOK_DELIVERY_NOT_FOUND")
        assert await ok(await globex.get(endpoint_url)) == theirs
        assert await ok(await globex.get(delivery_url)) == delivery
        assert (await ok(await acme.get(ENDPOINTS)))["items"] == []


async def test_an_order_made_over_http_writes_a_pending_delivery_to_each_subscriber(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        orders = await _endpoint(client, "order.created", "order.paid")
        every = await _endpoint(client, "*")
        nodes = await _endpoint(client, "node.created")
        order = await create_order(client)
        found = {e["id"]: await _deliveries(client, e["id"]) for e in (orders, every, nodes)}
        pending = await _deliveries(client, orders["id"], status="pending")
        delivered = await _deliveries(client, orders["id"], status="delivered")
        one = await ok(
            await client.get(f"{ENDPOINTS}/{orders['id']}/deliveries/{pending[0]['id']}")
        )
        bad_status = await client.get(
            f"{ENDPOINTS}/{orders['id']}/deliveries", params={"status": "lost"}
        )
    (delivery,) = found[orders["id"]]
    assert delivery["event_type"] == "order.created"
    assert delivery["endpoint_id"] == orders["id"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
    assert delivery["last_attempt_at"] is None
    assert delivery["last_status_code"] is None
    assert delivery["delivered_at"] is None
    assert datetime.fromisoformat(delivery["created_at"]) >= datetime.fromisoformat(
        order["created_at"]
    )
    assert [d["event_id"] for d in found[every["id"]]] == [delivery["event_id"]]
    assert found[nodes["id"]] == []
    assert pending == [delivery]
    assert delivered == []
    assert one == delivery
    assert pointers(assert_problem(bad_status, 400)) == ["/query/status"]


async def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client, "order.created", "order.confirmed")
        order = await create_order(client)
        await ok(await client.post(f"{ORDERS}/{order['id']}/confirm"))
        await create_order(client)
        url = f"{ENDPOINTS}/{endpoint['id']}/deliveries"
        first = await ok(await client.get(url, params={"limit": 2}))
        second = await ok(await client.get(url, params={"cursor": first["next_cursor"]}))
        every = await _deliveries(client, endpoint["id"])
    assert [d["event_type"] for d in every] == ["order.created", "order.confirmed", "order.created"]
    times = [datetime.fromisoformat(d["created_at"]) for d in every]
    assert times == sorted(times, reverse=True)
    assert first["items"] + second["items"] == every
    assert second["next_cursor"] is None


async def test_a_resend_queues_a_delivery_again_due_now_with_no_attempts(
    start_server: ServerFactory, api_keys: ApiKeys, database: Database
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client)
        await create_order(client)
        (delivery,) = await _deliveries(client, endpoint["id"])
        later = datetime.now(UTC) + timedelta(hours=3)
        await _set_deliveries(
            database,
            endpoint["id"],
            status="failed",
            attempts=10,
            next_attempt_at=later,
            claimed_until=later,
            last_status_code=503,
            last_error="HTTP 503",
        )
        url = f"{ENDPOINTS}/{endpoint['id']}/deliveries/{delivery['id']}"
        (failed,) = await _deliveries(client, endpoint["id"], status="failed")
        before = datetime.now(UTC)
        resent = await client.post(f"{url}/resend", headers={"If-Match": '"1"'})
        again = await ok(await client.get(url))
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 10, 503)
    assert resent.status_code == 200, resent.text
    assert resent.json() == {"queued": 1}
    assert (again["status"], again["attempts"]) == ("pending", 0)
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(again["next_attempt_at"])
    assert datetime.fromisoformat(again["next_attempt_at"]) <= datetime.now(UTC)
    async with database.reading() as session:
        row = await session.get(WebhookDeliveryRow, uuid.UUID(delivery["id"]))
    assert row is not None
    assert row.claimed_until is None


async def test_resend_failed_queues_the_failed_deliveries_of_events_since_a_time(
    start_server: ServerFactory, api_keys: ApiKeys, database: Database
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client)
        for _ in range(4):
            await create_order(client)
        old, failed, also_failed, delivered = await _deliveries(client, endpoint["id"])
        await _set_deliveries(database, endpoint["id"], status="failed", attempts=10)
        async with database.writing() as session:
            two_days_ago = datetime.now(UTC) - timedelta(days=2)
            await session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == uuid.UUID(old["id"]))
                .values(created_at=two_days_ago)
            )
            await session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == uuid.UUID(delivered["id"]))
                .values(status="delivered", delivered_at=datetime.now(UTC))
            )
            await session.commit()
        since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        url = f"{ENDPOINTS}/{endpoint['id']}/resend-failed"
        resent = await client.post(url, json={"since": since})
        statuses = {d["id"]: d["status"] for d in await _deliveries(client, endpoint["id"])}
        malformed = [
            await client.post(url, json={"since": since})
            for since in ("2026-01-01T00:00:00", 0, "1700000000", "2026-02-30T00:00:00Z")
        ]
    assert resent.status_code == 200, resent.text
    assert resent.json() == {"queued": 2}
    assert statuses == {
        old["id"]: "failed",
        failed["id"]: "pending",
        also_failed["id"]: "pending",
        delivered["id"]: "delivered",
    }
    for answer in malformed:
        assert pointers(assert_problem(answer, 400)) == ["/since"]


async def test_a_disabled_endpoint_says_why_and_a_patch_enables_it_again(
    start_server: ServerFactory, api_keys: ApiKeys, database: Database
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client)
        url = f"{ENDPOINTS}/{endpoint['id']}"
        await create_order(client)
        (delivery,) = await _deliveries(client, endpoint["id"])
        async with database.writing() as session:  # as the deliverer disables one
            await session.execute(
                update(WebhookEndpointRow)
                .where(WebhookEndpointRow.id == uuid.UUID(endpoint["id"]))
                .values(
                    enabled=False,
                    disabled_reason="failing for 5 days",
                    failing_since=datetime.now(UTC) - timedelta(days=5),
                )
            )
            await session.commit()
        disabled = await ok(await client.get(url))
        refused = await client.post(f"{url}/deliveries/{delivery['id']}/resend")
        refused_all = await client.post(
            f"{url}/resend-failed", json={"since": "2026-01-01T00:00:00Z"}
        )
        enabled = await ok(await client.patch(url, json={"enabled": True}))
        resent = await client.post(f"{url}/deliveries/{delivery['id']}/resend")
        by_request = await ok(await client.patch(url, json={"enabled": False}))
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "failing for 5 days")
    assert disabled["failing_since"] is not None
    for answer in (refused, refused_all):
        problem = assert_problem(answer, 409, "WEBHOOK_ENDPOINT_DISABLED")
        assert "failing for 5 days" in problem["detail"]
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["failing_since"]) == (
        True,
        None,
        None,
    )
    assert resent.status_code == 200, resent.text
    assert by_request["enabled"] is False
    assert by_request["disabled_reason"]


async def test_a_patch_changes_what_it_names_and_checks_if_match(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        endpoint = await _endpoint(client, "order.created")
        url = f"{ENDPOINTS}/{endpoint['id']}"
        changes = {"event_types": ["node.created", "node.published"], "url": RECEIVER + "/2"}
        patched = await client.patch(url, json=changes, headers={"If-Match": '"1"'})
        stale = await client.patch(url, json={"description": "late"}, headers={"If-Match": '"1"'})
        await create_order(client)
        await ok(await client.post(NODES, json={"kind": "article", "title": "T", "slug": "t"}), 201)
        deliveries = await _deliveries(client, endpoint["id"])
        unknown = await client.patch(url, json={"colour": "red"})
    body = await ok(patched)
    assert patched.headers["etag"] == '"2"'
    assert body["event_types"] == ["node.created", "node.published"]
    assert (body["url"], body["description"], body["version"]) == (RECEIVER + "/2", "", 2)
    assert "version 2" in assert_problem(stale, 412, "PRECONDITION_FAILED")["detail"]
    assert [d["event_type"] for d in deliveries] == ["node.created"]
    assert pointers(assert_problem(unknown, 400)) == ["/colour"]


async def test_deleting_an_endpoint_deletes_its_deliveries(
    start_server: ServerFactory, api_keys: ApiKeys, database: Database
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        gone = await _endpoint(client)
        kept = await _endpoint(client)
        await create_order(client)
        deleted = await client.delete(f"{ENDPOINTS}/{gone['id']}")
        again = await client.get(f"{ENDPOINTS}/{gone['id']}")
        deleted_again = await client.delete(f"{ENDPOINTS}/{gone['id']}")
        kept_deliveries = await _deliveries(client, kept["id"])
    assert (await ok(deleted))["id"] == gone["id"]
    assert_problem(again, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    assert_problem(deleted_again, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    assert len(kept_deliveries) == 1
    async with database.reading() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.endpoint_id == uuid.UUID(gone["id"]))
        )
    assert left == 0


async def test_endpoints_are_listed_oldest_first_a_page_at_a_time(
    start_server: ServerFactory, api_keys: ApiKeys
) -> None:
    server = start_server(webhooks=False)
    async with api_keys.client(server, "acme") as client:
        made = [(await _endpoint(client))["id"] for _ in range(3)]
        first = await ok(await client.get(ENDPOINTS, params={"limit": 2}))
        second = await ok(await client.get(ENDPOINTS, params={"cursor": first["next_cursor"]}))
        bad = await client.get(ENDPOINTS, params={"cursor": "nonsense"})
    assert [e["id"] for e in first["items"] + second["items"]] == made
    assert second["next_cursor"] is None
    assert_problem(bad, 400, "INVALID_CURSOR")
