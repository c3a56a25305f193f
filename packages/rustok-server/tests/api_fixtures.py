"""Helpers of the content and order API tests: problem checks, a client per tenant, and
entities walked to a given state over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from rustok_server.auth import TENANT_SCOPES, KeyDirectory
from rustok_server.db import Database
from rustok_server.http.problem_types import PROBLEM_TYPES
from rustok_server.testing import LiveServer

ServerFactory = Callable[..., LiveServer]
Json = dict[str, Any]
NODES = "/api/content/nodes"
ORDERS = "/api/commerce/orders"
RFC9457_MEMBERS = ("type", "title", "status", "detail", "instance")

# The walk to each order state, and the body of each action.
ORDER_PATHS: dict[str, tuple[str, ...]] = {
    "pending": (),
    "confirmed": ("confirm",),
    "paid": ("confirm", "pay"),
    "shipped": ("confirm", "pay", "ship"),
    "delivered": ("confirm", "pay", "ship", "deliver"),
    "cancelled": ("cancel",),
}
ORDER_BODIES: dict[str, Json] = {
    "confirm": {},
    "pay": {"payment_id": "pi_1", "payment_method": "card"},
    "ship": {"tracking_number": "1Z999", "carrier": "UPS"},
    "deliver": {"signature": "J. Doe"},
    "cancel": {"reason": "changed my mind"},
}
NODE_PATHS: dict[str, tuple[tuple[str, Json | None], ...]] = {
    "draft": (),
    "published": (("publish", None),),
    "archived": (("publish", None), ("archive", {"reason": "outdated"})),
}


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> Json:
    """The response is an RFC 9457 problem with ``status`` (and ``code``); returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    for member in RFC9457_MEMBERS:
        assert member in body, f"{member} missing from {body}"
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["trace_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    # Every problem's type names a page the server serves (tests/test_problem_pages.py).
    base, _, name = body["type"].rpartition("/")
    assert base.endswith("/problems"), body["type"]
    assert name in PROBLEM_TYPES, body["type"]
    for leak in ("Traceback", "SELECT", "UPDATE ", "sqlalchemy", "asyncpg", 'File "'):
        assert leak not in response.text
    return body


def pointers(problem: Json) -> list[str]:
    """The JSON pointers of a problem's ``errors``, in order."""
    return [entry["pointer"] for entry in problem.get("errors", [])]


KEYS: dict[str, str] = {}
"""The keys of the current test, by tenant slug (``admin`` for the admin key): every scope
of its tenant. The ``tenants`` fixture fills it."""


CREATED_KEYS: list[str] = []
"""Every key any test of this run created (the log check looks for each)."""


async def create_keys(database: Database, tenants: list[str]) -> dict[str, str]:
    """A key with every tenant scope for each of ``tenants``, and an admin key (``admin``)."""
    directory = KeyDirectory(database)
    keys = {slug: (await directory.create(slug, list(TENANT_SCOPES)))[1] for slug in tenants}
    keys["admin"] = (await directory.create(None, ["admin"]))[1]
    CREATED_KEYS.extend(keys.values())
    return keys


def auth(tenant: str) -> dict[str, str]:
    """The ``Authorization`` header of ``tenant``'s key from `KEYS`."""
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def client_for(server: LiveServer, tenant: str) -> httpx.AsyncClient:
    """A client of ``server`` with ``tenant``'s key, naming ``tenant`` in ``X-Tenant-ID`` too."""
    headers = {"X-Tenant-ID": tenant, **(auth(tenant) if tenant in KEYS else {})}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60.0)


async def ok(response: httpx.Response, status: int = 200) -> Json:
    """The JSON body of a successful response (asserting its status)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def create_node(client: httpx.AsyncClient, slug: str | None = None, **fields: Any) -> Json:
    """A new draft node (the slug is random unless given)."""
    body: Json = {"kind": "article", "title": "A title", "slug": slug or f"n-{uuid.uuid4().hex}"}
    body.update(fields)
    return await ok(await client.post(NODES, json=body), 201)


async def node_in(client: httpx.AsyncClient, state: str) -> Json:
    """A new node walked to ``state`` over HTTP."""
    node = await create_node(client)
    for action, body in NODE_PATHS[state]:
        node = await ok(await client.post(f"{NODES}/{node['id']}/{action}", json=body))
    assert node["state"] == state
    return node


async def create_order(
    client: httpx.AsyncClient, amount: str = "49.90", currency: str = "EUR"
) -> Json:
    """A new pending order."""
    body = {"customer_id": str(uuid.uuid4()), "amount": amount, "currency": currency}
    return await ok(await client.post(ORDERS, json=body), 201)


async def order_in(client: httpx.AsyncClient, state: str) -> Json:
    """A new order walked to ``state`` over HTTP."""
    order = await create_order(client)
    for action in ORDER_PATHS[state]:
        url = f"{ORDERS}/{order['id']}/{action}"
        order = await ok(await client.post(url, json=ORDER_BODIES[action]))
    assert order["state"] == state
    return order
