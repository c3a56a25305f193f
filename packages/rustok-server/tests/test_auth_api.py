"""Authentication and authorization over real HTTP, on SQLite and PostgreSQL: every
operation of the OpenAPI document refuses what it must, the admin API, revocation and
tenant disabling within a second, and per-tenant rate limits."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from api_fixtures import (
    CREATED_KEYS,
    NODES,
    ORDER_BODIES,
    ORDERS,
    ApiKeys,
    ServerFactory,
    assert_problem,
    node_in,
    ok,
    order_in,
    secret_of,
)

from rustok_core.testing import ManualClock
from rustok_server import Tenant
from rustok_server.auth import TENANT_SCOPES, DatabaseChangeFeed
from rustok_server.cli import main
from rustok_server.db import Database

Json = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """How to make one operation succeed.

    Attributes:
        row: what its path names, made before the call: ``node:<state>`` or
            ``order:<state>`` (walked there over HTTP), ``tenant`` (a new one),
            ``tenant:disabled``, ``key`` (a new tenant with a key), ``endpoint`` (a
            webhook endpoint) or ``delivery`` (a webhook delivery of an order).
        body: its JSON body (a function when each call needs a fresh one).
    """

    row: str | None = None
    body: Json | Callable[[], Json] | None = None


HOOKS = "/api/webhooks/endpoints"
RECEIVER = "https://hooks.example.com/receive"  # never resolved when an endpoint is made

# What the OpenAPI document cannot say: which row each operation needs, in which state,
# and a body the domain accepts. Headers (If-Match, Idempotency-Key), path parameters,
# whether a body is expected and the status of success come from the document.
CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/api/tenant"): Call(),
    ("GET", NODES): Call(),
    ("POST", NODES): Call(
        body=lambda: {"kind": "article", "title": "Walked", "slug": f"w-{uuid.uuid4().hex}"}
    ),
    ("GET", f"{NODES}/{{node_id}}"): Call("node:draft"),
    ("PATCH", f"{NODES}/{{node_id}}"): Call("node:draft", {"title": "Walked again"}),
    ("POST", f"{NODES}/{{node_id}}/publish"): Call("node:draft"),
    ("POST", f"{NODES}/{{node_id}}/archive"): Call("node:published", {"reason": "outdated"}),
    ("POST", f"{NODES}/{{node_id}}/restore"): Call("node:archived"),
    ("GET", f"{NODES}/{{node_id}}/history"): Call("node:archived"),
    ("GET", ORDERS): Call(),
    ("POST", ORDERS): Call(
        body={"customer_id": str(uuid.UUID(int=7)), "amount": "49.90", "currency": "EUR"}
    ),
    ("GET", f"{ORDERS}/{{order_id}}"): Call("order:pending"),
    ("POST", f"{ORDERS}/{{order_id}}/confirm"): Call("order:pending", ORDER_BODIES["confirm"]),
    ("POST", f"{ORDERS}/{{order_id}}/pay"): Call("order:confirmed", ORDER_BODIES["pay"]),
    ("POST", f"{ORDERS}/{{order_id}}/ship"): Call("order:paid", ORDER_BODIES["ship"]),
    ("POST", f"{ORDERS}/{{order_id}}/deliver"): Call("order:shipped", ORDER_BODIES["deliver"]),
    ("POST", f"{ORDERS}/{{order_id}}/cancel"): Call("order:pending", ORDER_BODIES["cancel"]),
    ("GET", f"{ORDERS}/{{order_id}}/history"): Call("order:delivered"),
    ("GET", "/api/admin/tenants"): Call(),
    ("POST", "/api/admin/tenants"): Call(
        body=lambda: {"slug": f"w-{uuid.uuid4().hex[:12]}", "name": "Walked"}
    ),
    ("GET", "/api/admin/tenants/{slug}"): Call("tenant"),
    ("PATCH", "/api/admin/tenants/{slug}"): Call(
        "tenant", {"name": "Walked again", "rate_limit": {"per_second": 0, "burst": 0}}
    ),
    ("POST", "/api/admin/tenants/{slug}/disable"): Call("tenant"),
    ("POST", "/api/admin/tenants/{slug}/enable"): Call("tenant:disabled"),
    ("GET", "/api/admin/tenants/{slug}/keys"): Call("key"),
    ("POST", "/api/admin/tenants/{slug}/keys"): Call("tenant", {"scopes": ["orders:read"]}),
    ("DELETE", "/api/admin/tenants/{slug}/keys/{key_id}"): Call("key"),
    ("GET", HOOKS): Call(),
    ("POST", HOOKS): Call(body={"url": RECEIVER, "event_types": ["order.paid"]}),
    ("GET", f"{HOOKS}/{{endpoint_id}}"): Call("endpoint"),
    ("PATCH", f"{HOOKS}/{{endpoint_id}}"): Call(
        "endpoint", {"description": "Walked again", "enabled": False}
    ),
    ("DELETE", f"{HOOKS}/{{endpoint_id}}"): Call("endpoint"),
    ("POST", f"{HOOKS}/{{endpoint_id}}/rotate-secret"): Call("endpoint"),
    ("GET", f"{HOOKS}/{{endpoint_id}}/deliveries"): Call("endpoint"),
    ("GET", f"{HOOKS}/{{endpoint_id}}/deliveries/{{delivery_id}}"): Call("delivery"),
    ("POST", f"{HOOKS}/{{endpoint_id}}/deliveries/{{delivery_id}}/resend"): Call("delivery"),
    ("POST", f"{HOOKS}/{{endpoint_id}}/resend-failed"): Call(
        "endpoint", {"since": "2026-01-01T00:00:00Z"}
    ),
}
# Which rows may give each path parameter, and the field of the row that does.
PARAMETER_ROWS: dict[str, tuple[tuple[str, ...], str]] = {
    "node_id": (("node",), "id"),
    "order_id": (("order",), "id"),
    "slug": (("tenant", "key"), "slug"),
    "key_id": (("key",), "id"),
    "endpoint_id": (("endpoint", "delivery"), "id"),
    "delivery_id": (("delivery",), "id"),
}
# Where a kind of row gives a parameter from another field than PARAMETER_ROWS says.
ROW_FIELDS: dict[tuple[str, str], str] = {("endpoint_id", "delivery"): "endpoint_id"}


@dataclass(frozen=True)
class Operation:
    """One operation of the OpenAPI document, and what the walk needs of it."""

    method: str
    path: str
    scopes: list[str]
    headers: list[str]  # the header parameters it declares
    body_schema: Json | None  # the resolved schema of its JSON body, if it takes one
    success: int  # its one 2xx status

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _operations(document: Json) -> list[Operation]:
    """Every operation under ``/api``, with the scopes of its bearer requirement."""
    schemas = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            requirements = operation.get("security", [])
            assert len(requirements) == 1, f"{method.upper()} {path} is not secured once"
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            schema = None
            if body is not None:
                schema = schemas[body["schema"]["$ref"].rpartition("/")[2]]
            successes = [int(s) for s in operation["responses"] if s.startswith("2")]
            assert len(successes) == 1, f"{method.upper()} {path}: one 2xx, not {successes}"
            found.append(
                Operation(
                    method.upper(),
                    path,
                    list(requirements[0]["bearer"]),
                    [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"],
                    schema,
                    successes[0],
                )
            )
    return found


@dataclass
class Prepared:
    """One operation made ready: its URL and body, and the row its path names."""

    url: str
    body: Json | None
    declared: list[str]  # the header parameters of the operation
    row: Json | None
    row_url: str | None  # where its owner reads the row back

    def at(self, row_id: str) -> str:
        """The URL with another id in place of the row's."""
        assert self.row is not None
        return self.url.replace(str(self.row["id"]), row_id)

    def headers(self) -> dict[str, str]:
        """The headers it declares that a valid request sends: ``If-Match`` with the row's
        version, a fresh ``Idempotency-Key``."""
        headers = {}
        if "If-Match" in self.declared:
            assert self.row is not None
            if "version" in self.row:  # a webhook delivery has none: it is sent without
                headers["If-Match"] = f'"{self.row["version"]}"'
        if "Idempotency-Key" in self.declared:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers


class Walk:
    """Builds a valid request of every operation, with rows made for it over HTTP.

    Args:
        admin: a client with the admin key.
        owners: a client per tenant, with its key (rows are made with them).
    """

    def __init__(self, admin: httpx.AsyncClient, owners: dict[str, httpx.AsyncClient]) -> None:
        self.admin = admin
        self.owners = owners

    async def row(self, kind: str, tenant: str) -> tuple[Json, str | None]:
        """A new row of ``kind`` (see `Call.row`) of ``tenant``, and where to read it."""
        entity, _, state = kind.partition(":")
        if entity == "node":
            node = await node_in(self.owners[tenant], state)
            return node, f"{NODES}/{node['id']}"
        if entity == "order":
            order = await order_in(self.owners[tenant], state)
            return order, f"{ORDERS}/{order['id']}"
        if entity == "endpoint":
            endpoint = await self.endpoint(tenant, "order.paid")
            return endpoint, f"{HOOKS}/{endpoint['id']}"
        if entity == "delivery":
            return await self.delivery(tenant)
        assert entity in ("tenant", "key"), f"unknown row {kind!r}"
        slug = f"w-{uuid.uuid4().hex[:12]}"
        body = {"slug": slug, "name": "Walked"}
        made = await ok(await self.admin.post("/api/admin/tenants", json=body), 201)
        if state == "disabled":
            await ok(await self.admin.post(f"/api/admin/tenants/{slug}/disable"))
        if entity == "key":
            url = f"/api/admin/tenants/{slug}/keys"
            key = await ok(await self.admin.post(url, json={"scopes": ["orders:read"]}), 201)
            return {"slug": slug, "id": key["id"]}, None
        return made, None

    async def endpoint(self, tenant: str, event_type: str) -> Json:
        """A new webhook endpoint of ``tenant`` wanting ``event_type``, as it is read (no
        secret)."""
        body = {"url": RECEIVER, "event_types": [event_type]}
        endpoint = await ok(await self.owners[tenant].post(HOOKS, json=body), 201)
        del endpoint["secret"]
        return endpoint

    async def delivery(self, tenant: str) -> tuple[Json, str]:
        """A delivery of ``tenant``: the one an order made over HTTP gives its new
        endpoint, once the deliverer has made its first attempt (the receiver is never
        reached), so that the row stays as read through the retry's wait."""
        owner = self.owners[tenant]
        endpoint = await self.endpoint(tenant, "order.created")
        await order_in(owner, "pending")
        listed = f"{HOOKS}/{endpoint['id']}/deliveries"
        (delivery,) = (await ok(await owner.get(listed)))["items"]
        url = f"{listed}/{delivery['id']}"
        for _ in range(100):
            if delivery["attempts"] or delivery["status"] != "pending":
                break
            await asyncio.sleep(0.05)
            delivery = await ok(await owner.get(url))
        return delivery, url

    async def prepare(self, operation: Operation, tenant: str = "acme") -> Prepared:
        """A request of ``operation`` that succeeds, on a new row of ``tenant``."""
        name = operation.name
        call = CALLS.get((operation.method, operation.path))
        assert call is not None, f"no request for {name}: add one to CALLS in test_auth_api.py"
        row, row_url = (None, None) if call.row is None else await self.row(call.row, tenant)
        url = operation.path
        for parameter in re.findall(r"\{(\w+)\}", operation.path):
            assert parameter in PARAMETER_ROWS, f"{name}: add {{{parameter}}} to PARAMETER_ROWS"
            kinds, field = PARAMETER_ROWS[parameter]
            assert row is not None, f"{name}: give it a row in CALLS"
            assert call.row is not None
            assert call.row.partition(":")[0] in kinds, f"{name}: {{{parameter}}} needs {kinds}"
            field = ROW_FIELDS.get((parameter, call.row.partition(":")[0]), field)
            url = url.replace(f"{{{parameter}}}", str(row[field]))
        body = call.body() if callable(call.body) else call.body
        schema = operation.body_schema
        if schema is None:
            assert body is None, f"{name} takes no body: give none in CALLS"
        else:
            assert body is not None, f"{name} takes a body: give one in CALLS"
            assert set(schema.get("required", ())) <= set(body), (name, body)
            assert set(body) <= set(schema["properties"]), (name, body)
        for header in operation.headers:
            assert header in ("If-Match", "Idempotency-Key", "X-Tenant-ID", "X-Request-ID"), (
                f"{name} declares the header {header}: give it a value in Prepared.headers"
            )
        assert "If-Match" not in operation.headers or row is not None, name
        return Prepared(url, body, operation.headers, row, row_url)


def _strip(problem: Json, *ids: str) -> Json:
    """A problem without what differs between two requests: ``instance``, ``trace_id``,
    and the ids it names."""
    kept = {k: v for k, v in problem.items() if k not in ("instance", "trace_id")}
    for row_id in ids:
        kept = {k: v.replace(row_id, "<id>") if isinstance(v, str) else v for k, v in kept.items()}
    return kept


async def _send(
    client: httpx.AsyncClient,
    operation: Operation,
    ready: Prepared,
    key: str | None,
    url: str | None,
    secrets: list[str],
    more: dict[str, str],
) -> httpx.Response:
    """Send a prepared request with ``key`` (to ``url`` instead, with ``more`` headers);
    the answer shows none of ``secrets``."""
    headers = {**ready.headers(), **more}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    url = url or ready.url
    response = await client.request(operation.method, url, json=ready.body, headers=headers)
    assert not [secret for secret in secrets if secret in response.text], operation.name
    return response


def _wrong_key(scopes: list[str], narrow: str, api_keys: ApiKeys) -> str:
    """A key that holds none of ``scopes``."""
    if "admin" in scopes:
        return api_keys["acme"]
    return narrow if "orders:read" not in scopes else api_keys["admin"]  # narrow: orders:read


async def test_every_api_operation_is_secured_and_refuses_what_it_must(
    start_server: ServerFactory, tenants: dict[str, Tenant], clock: ManualClock, api_keys: ApiKeys
) -> None:
    """For each operation of the OpenAPI document, over HTTP, with a valid request on a
    row of the state it needs: no credential 401; a revoked or an expired key 401; a key
    without its scope 403; another tenant named 403 (the same for one that does not
    exist); another tenant's row 404 (the same as a missing one); the right key 2xx."""
    server = start_server()
    owners = {slug: api_keys.client(server, slug) for slug in ("acme", "globex")}
    admin = httpx.AsyncClient(base_url=server.url, headers=api_keys.auth("admin"), timeout=30)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client, admin:
        document = (await client.get("/openapi.json")).json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        operations = _operations(document)
        listed = {(operation.method, operation.path) for operation in operations}
        assert set(CALLS) <= listed, f"CALLS names what the document lacks: {set(CALLS) - listed}"
        walk = Walk(admin, owners)
        keys = "/api/admin/tenants/acme/keys"
        narrow = (await ok(await admin.post(keys, json={"scopes": ["orders:read"]}), 201))["key"]
        every = list(TENANT_SCOPES)
        revoked = await ok(await admin.post(keys, json={"scopes": every}), 201)
        expiring = {"scopes": every, "expires_in_days": 1}
        expired = await ok(await admin.post(keys, json=expiring), 201)
        for key in (revoked, expired):  # both verified, so cached, before they stop
            mine = {"Authorization": f"Bearer {key['key']}"}
            assert (await client.get("/api/tenant", headers=mine)).status_code == 200
        await ok(await admin.delete(f"{keys}/{revoked['id']}"))
        clock.advance(86_400.0)  # a day: the expiring key's last second has passed
        dead = [revoked["key"], expired["key"]]
        secrets = [secret_of(key) for key in (*api_keys.values(), narrow, *dead)]
        acme_key_id, globex_key_id = (
            api_keys["acme"].split("_")[1],
            api_keys["globex"].split("_")[1],
        )

        for operation in operations:
            name, method, scopes = operation.name, operation.method, operation.scopes
            responses = document["paths"][operation.path][method.lower()]["responses"]
            assert {"401", "403", "429"} <= set(responses), name
            ready = await walk.prepare(operation)

            def send(
                key: str | None,
                ready: Prepared = ready,
                url: str | None = None,
                more: dict[str, str] | None = None,
                operation: Operation = operation,
            ) -> Awaitable[httpx.Response]:
                return _send(client, operation, ready, key, url, secrets, more or {})

            anonymous = await send(None)
            assert_problem(anonymous, 401, "CREDENTIAL_REQUIRED")
            assert anonymous.headers["www-authenticate"].startswith("Bearer"), name
            for key in dead:
                assert_problem(await send(key), 401, "INVALID_CREDENTIAL")
            refused = await send(_wrong_key(scopes, narrow, api_keys))
            assert " or ".join(scopes) in assert_problem(refused, 403, "SCOPE_REQUIRED")["detail"]

            if "admin" in scopes:
                if "{key_id}" in operation.path:  # another tenant's key: as if there were none
                    foreign = await send(api_keys["admin"], url=ready.at(globex_key_id))
                    missing = await send(api_keys["admin"], url=ready.at("0" * 16))
                    assert _strip(assert_problem(foreign, 404), globex_key_id) == _strip(
                        assert_problem(missing, 404), "0" * 16
                    ), name
                right = await send(api_keys["admin"])
            else:
                other = await send(api_keys["acme"], more={"X-Tenant-ID": "globex"})
                nobody = await send(api_keys["acme"], more={"X-Tenant-ID": "nobody"})
                assert _strip(assert_problem(other, 403, "TENANT_FORBIDDEN")) == _strip(
                    assert_problem(nobody, 403, "TENANT_FORBIDDEN")
                ), name
                if ready.row is not None:  # another tenant's row: 404, as if it were missing
                    theirs = await walk.prepare(operation, "globex")
                    assert theirs.row is not None
                    assert theirs.row_url is not None
                    foreign_id, missing_id = str(theirs.row["id"]), str(uuid.uuid4())
                    foreign = await send(api_keys["acme"], theirs)
                    missing = await send(api_keys["acme"], theirs, theirs.at(missing_id))
                    assert _strip(assert_problem(foreign, 404), foreign_id) == _strip(
                        assert_problem(missing, 404), missing_id
                    ), name
                    assert await ok(await owners["globex"].get(theirs.row_url)) == theirs.row
                right = await send(api_keys["acme"])
            assert right.status_code == operation.success, (name, right.text)
            if operation.path.endswith("/history"):
                actors = [item["actor"] for item in right.json()["items"]]
                assert actors, name
                assert set(actors) == {acme_key_id}, (name, actors)
    for owner in owners.values():
        await owner.aclose()


async def test_a_key_made_to_expire_in_a_day_is_refused_once_the_clock_passes_it(
    start_server: ServerFactory, tenants: dict[str, Tenant], clock: ManualClock, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(
        base_url=server.url, headers=api_keys.auth("admin"), timeout=30
    ) as admin:
        body = {"scopes": ["content:read"], "expires_in_days": 1}
        url = "/api/admin/tenants/acme/keys"
        made = [await ok(await admin.post(url, json=body), 201) for _ in range(2)]
        for key in made:
            created = datetime.fromisoformat(key["created_at"])
            assert datetime.fromisoformat(key["expires_at"]) - created == timedelta(days=1)
        cached, unseen = ({"Authorization": f"Bearer {key['key']}"} for key in made)
        tenant = "/api/tenant"
        assert (await admin.get(tenant, headers=cached)).status_code == 200
        clock.advance(86_400.0 - 0.5)
        # Read again (its entry is older than a second): still good, trusted for a second.
        assert (await admin.get(tenant, headers=cached)).status_code == 200
        clock.advance(0.5)  # its expiry, while that entry is still trusted
        assert_problem(await admin.get(tenant, headers=cached), 401, "INVALID_CREDENTIAL")
        assert_problem(await admin.get(tenant, headers=unseen), 401, "INVALID_CREDENTIAL")
        clock.advance(2.0)  # both read again from the database: still expired
        for key in (cached, unseen):
            assert_problem(await admin.get(tenant, headers=key), 401, "INVALID_CREDENTIAL")


async def test_admin_api_manages_tenants_and_keys_and_changes_apply_at_once(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    admin = api_keys.auth("admin")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post(
            "/api/admin/tenants", json={"slug": "umbrella", "name": "Umbrella"}, headers=admin
        )
        assert created.status_code == 201, created.text
        listed = await client.get("/api/admin/tenants", headers=admin)
        assert "umbrella" in [t["slug"] for t in listed.json()]
        key = await client.post(
            "/api/admin/tenants/umbrella/keys",
            json={"scopes": list(TENANT_SCOPES), "expires_in_days": 30},
            headers=admin,
        )
        assert key.status_code == 201, key.text
        token = key.json()["key"]
        assert token in CREATED_KEYS  # every key made is looked for in the logs
        mine = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/tenant", headers=mine)).json()["slug"] == "umbrella"
        keys = await client.get("/api/admin/tenants/umbrella/keys", headers=admin)
        assert [k["id"] for k in keys.json()] == [key.json()["id"]]
        assert token not in keys.text
        renamed = await client.patch(
            "/api/admin/tenants/umbrella", json={"name": "Umbrella Corp"}, headers=admin
        )
        assert renamed.json()["name"] == "Umbrella Corp"
        assert (await client.get("/api/tenant", headers=mine)).json()["name"] == "Umbrella Corp"
        disabled = await client.post("/api/admin/tenants/umbrella/disable", headers=admin)
        assert disabled.json()["active"] is False
        assert_problem(await client.get("/api/tenant", headers=mine), 404, "TENANT_NOT_FOUND")
        await client.post("/api/admin/tenants/umbrella/enable", headers=admin)
        assert (await client.get("/api/tenant", headers=mine)).status_code == 200
        revoked = await client.delete(
            f"/api/admin/tenants/umbrella/keys/{key.json()['id']}", headers=admin
        )
        assert revoked.json()["revoked_at"] is not None
        assert_problem(await client.get("/api/tenant", headers=mine), 401, "INVALID_CREDENTIAL")


async def test_each_admin_change_is_counted_once_in_its_own_transaction(
    start_server: ServerFactory, tenants: dict[str, Tenant], database_url: str, api_keys: ApiKeys
) -> None:
    """The change counter moves with the change it counts: once for a tenant change with
    its rate limit, never for a change that was refused (and so rolled back)."""
    server = start_server()
    admin = api_keys.auth("admin")
    counter = Database(database_url)
    feed = DatabaseChangeFeed(counter)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def counted(method: str, path: str, body: Json | None = None) -> int:
                before = await feed.version()
                response = await client.request(method, path, json=body, headers=admin)
                assert response.status_code < 500, response.text
                return await feed.version() - before

            tenants_path = "/api/admin/tenants"
            assert await counted("POST", tenants_path, {"slug": "hooli", "name": "Hooli"}) == 1
            limited = {"name": "Hooli XYZ", "rate_limit": {"per_second": 1, "burst": 2}}
            assert await counted("PATCH", f"{tenants_path}/hooli", limited) == 1
            taken = {"domain": "shop.acme.example"}  # acme's own domain: a 409
            assert await counted("PATCH", f"{tenants_path}/hooli", taken) == 0
            assert await counted("POST", tenants_path, {"slug": "hooli", "name": "Again"}) == 0
            assert await counted("POST", f"{tenants_path}/hooli/disable") == 1
            shown = await client.get(f"{tenants_path}/hooli", headers=admin)
            assert shown.json()["name"] == "Hooli XYZ"
            assert shown.json()["rate_limit"] == {"per_second": 1.0, "burst": 2}
    finally:
        await counter.dispose()


async def test_a_cli_change_on_the_same_database_is_seen_within_a_second(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    clock: ManualClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    api_keys: ApiKeys,
) -> None:
    monkeypatch.setenv("RUSTOK_DATABASE_URL", database_url)  # main() sets it; undone after
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.get("/api/tenant", headers=api_keys.auth("acme"))).status_code == 200
        assert (await client.get("/api/tenant", headers=api_keys.auth("globex"))).status_code == 200
        key_id = api_keys["globex"].split("_")[1]
        cli = ["--database-url", database_url]
        assert await asyncio.to_thread(main, [*cli, "tenants", "disable", "acme"]) == 0
        assert await asyncio.to_thread(main, [*cli, "keys", "revoke", key_id]) == 0
        clock.advance(1.0)
        assert_problem(await client.get("/api/tenant", headers=api_keys.auth("acme")), 404)
        assert_problem(await client.get("/api/tenant", headers=api_keys.auth("globex")), 401)


async def test_a_burst_over_the_limit_draws_429s_and_other_tenants_are_unaffected(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(rate_limit_per_second=5, rate_limit_burst=10)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        answers = [
            await client.get("/api/tenant", headers=api_keys.auth("acme")) for _ in range(60)
        ]
        other = await client.get("/api/tenant", headers=api_keys.auth("globex"))
    assert [r.status_code for r in answers[:10]] == [200] * 10
    refused = answers[10:]
    for response in refused:
        assert_problem(response, 429, "RATE_LIMITED")
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-limit"] == "10"
        assert response.headers["ratelimit-remaining"] == "0"
        assert int(response.headers["ratelimit-reset"]) >= 1
    assert len(refused) == 50
    assert other.status_code == 200


async def test_a_tenant_s_own_limit_set_through_the_admin_api_applies(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()  # limits off by default in these tests
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        patched = await client.patch(
            "/api/admin/tenants/acme",
            json={"rate_limit": {"per_second": 1, "burst": 2}},
            headers=api_keys.auth("admin"),
        )
        assert patched.json()["rate_limit"] == {"per_second": 1.0, "burst": 2}
        codes = [
            (await client.get("/api/tenant", headers=api_keys.auth("acme"))).status_code
            for _ in range(4)
        ]
        other = await client.get("/api/tenant", headers=api_keys.auth("globex"))
    assert codes == [200, 200, 429, 429]
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/openapi.json"])
async def test_public_paths_need_no_credential(
    start_server: ServerFactory, tenants: dict[str, Tenant], path: str
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(path, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200


async def test_a_refused_key_is_logged_by_its_id_never_its_secret(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    no_key_in_any_log: list[str],
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    key = api_keys["acme"]
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    async with httpx.AsyncClient(base_url=server.url) as client:
        refused = await client.get("/api/tenant", headers={"Authorization": f"Bearer {wrong}"})
        served = await client.get("/api/tenant", headers=api_keys.auth("acme"))
    assert_problem(refused, 401, "INVALID_CREDENTIAL")
    assert served.status_code == 200
    key_id = key.split("_")[1]
    assert [line for line in no_key_in_any_log if f"wrong secret for key {key_id}" in line]
    for secret in (secret_of(key), secret_of(wrong)):
        assert not [line for line in no_key_in_any_log if secret in line]
        assert secret not in refused.text
