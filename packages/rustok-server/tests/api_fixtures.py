"""Helpers of the content and order API tests: problem checks, a client per tenant, and
entities walked to a given state over HTTP."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from rustok_core.testing import ManualClock
from rustok_server.auth import TENANT_SCOPES, KeyDirectory
from rustok_server.auth import keys as key_module
from rustok_server.db import Database, UnitOfWork
from rustok_server.http.problem_types import PROBLEM_TYPES
from rustok_server.testing import LiveServer

ServerFactory = Callable[..., LiveServer]


def clean_env(**variables: str) -> dict[str, str]:
    """This run's environment without any ``RUSTOK_*`` variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSTOK_")}
    env.update(variables)
    return env


def start_serve(
    cwd: Path,
    *args: str,
    variables: dict[str, str] | None = None,
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """``python -m rustok_server serve ARGS`` in ``cwd``, as a user starts it: with none of
    this run's ``RUSTOK_*`` variables but ``variables``; stdout (and stderr) piped, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "rustok_server", "serve", *args],
        cwd=cwd,
        env=clean_env(**(variables or {})),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


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


CREATED_KEYS: list[str] = []
"""Every key any test of this run created (the log check looks for each): every key made
in this process (`recording_every_new_key`), and those a test read from a subprocess."""


def secret_of(key: str) -> str:
    """The secret part of an ``rsk_<id>_<secret>`` key."""
    return key.split("_", 2)[2]


def leaked_secrets(lines: Iterable[str], keys: Iterable[str]) -> list[str]:
    """The lines that hold the secret of one of ``keys``."""
    secrets = [secret_of(key) for key in keys]
    return [line for line in lines if any(secret in line for secret in secrets)]


class LogCapture:
    """Every log record made in this process while `installed`, whichever logger made it
    and wherever it goes: a handler on the root logger would miss the loggers that do not
    propagate (uvicorn's), so the capture sits in the log record factory."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _keep(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: the handlers would show them raw
            message = f"{record.msg} {record.args}"
        trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.lines.append(f"{record.name} {message} {trace}")

    @contextmanager
    def installed(self) -> Iterator[list[str]]:
        """Capture while the block runs; yields the captured lines."""
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            self._keep(record)
            return record

        logging.setLogRecordFactory(factory)
        try:
            yield self.lines
        finally:
            logging.setLogRecordFactory(make)


@contextmanager
def recording_every_new_key() -> Iterator[None]:
    """Add to `CREATED_KEYS` every key this process makes while it lasts: every key is
    made by ``KeyDirectory.create`` through ``new_key``, whoever asks (the test fixtures,
    the CLI, the admin API of a live server, the demo data of ``serve``)."""
    make = key_module.new_key

    def recorded() -> tuple[str, str]:
        key_id, token = make()
        CREATED_KEYS.append(token)
        return key_id, token

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_module, "new_key", recorded)
        yield


class WallClock:
    """The current time as a server sees it when a test moves its ``ManualClock``: the
    real time when this was made, plus how far the manual clock moved since."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.started = clock()
        self.origin = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.origin + timedelta(seconds=self.clock() - self.started)


async def create_keys(database: Database, tenants: list[str]) -> ApiKeys:
    """A key with every tenant scope for each of ``tenants``, and an admin key (``admin``)."""
    directory = KeyDirectory(database)
    keys = ApiKeys()
    for slug in tenants:
        keys[slug] = (await directory.create(slug, list(TENANT_SCOPES)))[1]
    keys["admin"] = (await directory.create(None, ["admin"]))[1]
    CREATED_KEYS.extend(keys.values())
    return keys


class ApiKeys(dict[str, str]):
    """The keys of one test, by tenant slug (``admin`` for the admin key), each with every
    scope of its tenant: the ``api_keys`` fixture."""

    def auth(self, tenant: str) -> dict[str, str]:
        """The ``Authorization`` header of ``tenant``'s key."""
        return {"Authorization": f"Bearer {self[tenant]}"}

    def client(self, server: LiveServer, tenant: str) -> httpx.AsyncClient:
        """A client of ``server`` with ``tenant``'s key (none when the test has no key of
        ``tenant``), naming ``tenant`` in ``X-Tenant-ID`` too."""
        headers = {"X-Tenant-ID": tenant, **(self.auth(tenant) if tenant in self else {})}
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


async def create_postgres_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server at ``server_url``: its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_async_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return f"{server_url}/{name}"


@asynccontextmanager
async def unit_of_work(database: Database) -> AsyncIterator[UnitOfWork]:
    """A unit of work on ``database``, as a request takes one (`http.entity_routes`):
    reads on the read connection, the first write begins the transaction on the writer,
    the caller commits, and what it does not commit is rolled back at the end."""
    unit = UnitOfWork(database)
    try:
        yield unit
    finally:
        await unit.close()
