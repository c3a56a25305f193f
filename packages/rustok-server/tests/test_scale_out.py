"""Scale-out: several server processes (the real ``python -m rustok_server serve``) on one
PostgreSQL and one Redis, each started by the test; and the same 1 s bound without Redis,
on PostgreSQL and on a SQLite file.

A cross-process effect is polled for with a deadline: the time the change was
acknowledged (its response came back) plus the design's 1 s; seen later is a failure.
Every process a test freezes (``SIGSTOP``) is thawed in a ``finally`` block, every process
it starts is stopped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from api_fixtures import (
    CREATED_KEYS,
    ApiKeys,
    assert_problem,
    create_keys,
    create_postgres_database,
    start_serve,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from rustok_core.testing import RedisServer
from rustok_server import Settings, Tenant, TenantDirectory
from rustok_server.auth import KeyDirectory, parse_key
from rustok_server.cli import main
from rustok_server.commerce.tables import OrderRow, OrderTransitionRow
from rustok_server.db import Database
from rustok_server.db.changes import bump_version
from rustok_server.db.migrations import upgrade
from rustok_server.scaleout import change_channel
from rustok_server.testing import LiveServer

BOUND = 1.0  # seconds: a change made anywhere is seen everywhere within this (DESIGN 11)
REDIS_TIMEOUT = 0.25  # RUSTOK_REDIS_TIMEOUT of the processes (the default)
# RUSTOK_DB_QUERY_TIMEOUT of the fleet: long enough for a first connection on a busy
# machine (the processes' background reads at start must not open the breaker).
DB_TIMEOUT = 1.0
BREAKER_TIMEOUT = 3.0  # RUSTOK_BREAKER_TIMEOUT of the fleet: seconds open before a probe
# The longest one failing call may take on a frozen PostgreSQL: the query timeout (the
# connection is then aborted, not closed), and a margin for a busy machine.
FAILING_CALL = DB_TIMEOUT + 1.0
ADMIN = "/api/admin/tenants"

ServerFactory = Callable[..., LiveServer]


# -- the processes ----------------------------------------------------------------------


class Served:
    """One ``python -m rustok_server serve --port 0`` process, its output kept in memory."""

    def __init__(self, cwd: Path, settings: dict[str, str]) -> None:
        variables = {f"RUSTOK_{name.upper()}": value for name, value in settings.items()}
        self.process = start_serve(cwd, "--port", "0", variables=variables)
        self.out: list[str] = []
        self.err: list[str] = []
        self.url = ""
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:  # a text pipe
        for line in stream:
            lines.append(line)

    def wait_started(self, timeout: float = 60.0) -> None:
        """Until uvicorn accepts connections (fails with the log if the process ends)."""
        deadline = time.monotonic() + timeout
        while not any("Application startup complete" in line for line in self.err):
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        (banner,) = [line for line in self.out if " listening on " in line]
        self.url = banner.split(" listening on ")[1].strip()

    def log(self) -> str:
        return "".join(self.out + self.err)

    def lines(self, *parts: str) -> list[str]:
        """The log lines containing every one of ``parts``."""
        return [line for line in self.err if all(part in line for part in parts)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_fleet(cwd: Path, count: int, settings: dict[str, str]) -> list[Served]:
    """``count`` processes started side by side, each answering once this returns."""
    served: list[Served] = []
    try:
        for _ in range(count):
            served.append(Served(cwd, settings))
        for process in served:
            process.wait_started()
    except BaseException:
        for process in served:
            process.stop()
        raise
    return served


def fleet_settings(database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    settings = {
        "database_url": database_url,
        "demo_tenant": "false",
        "access_log": "false",
        "redis_timeout": str(REDIS_TIMEOUT),
        # Generous limits, so that every request goes through the (shared) limiter.
        "rate_limit_per_second": "1000",
        "rate_limit_burst": "1000",
        # No webhook deliverer: its polls of the database would open, and probe, the shared
        # breaker on their own schedule, and these tests count the requests' own calls.
        # (test_webhook_delivery runs deliverers beside `serve --workers 2`.)
        "webhooks": "false",
    }
    if redis_url is not None:
        settings["redis_url"] = redis_url
    settings.update(extra)
    return settings


# -- the data ---------------------------------------------------------------------------


async def _seed(url: str, slugs: list[str]) -> dict[str, str]:
    """Migrate, create the tenants, and a key for each (and an admin key): the keys."""
    database = Database(url)
    try:
        await upgrade(database)
        directory = TenantDirectory(database)
        for slug in slugs:
            await directory.create(slug, slug.title())
        return await create_keys(database, slugs)
    finally:
        await database.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def as_tenant(slug: str, key: str) -> dict[str, str]:
    return {"X-Tenant-ID": slug, **bearer(key)}


def wait_until(
    check: Callable[[], bool], deadline: float, what: str, *, pause: float = 0.01
) -> float:
    """Poll ``check`` until true; fail if that is after ``deadline`` (monotonic). Returns
    when it was first seen true."""
    while True:
        if check():
            seen = time.monotonic()
            assert seen <= deadline, f"{what}: seen {seen - deadline:.3f} s past the deadline"
            return seen
        assert time.monotonic() <= deadline, f"{what}: not seen by the deadline"
        time.sleep(pause)


def on_each(
    clients: list[httpx.Client],
    check: Callable[[httpx.Client], bool],
    deadline: float,
    what: str,
    *,
    pause: float = 0.01,
) -> None:
    """`wait_until` ``check(client)`` holds for every client, by the one deadline."""
    for client in clients:
        wait_until(
            functools.partial(check, client), deadline, f"{what} on {client.base_url}", pause=pause
        )


class Fleet:
    """Three processes on one PostgreSQL database and one Redis, and their data."""

    def __init__(self, served: list[Served], redis: RedisServer, url: str, keys: dict[str, str]):
        self.served = served
        self.redis = redis
        self.database_url = url
        self.keys = keys
        self.http = [httpx.Client(base_url=s.url, timeout=30.0) for s in served]

    def close(self) -> None:
        for client in self.http:
            client.close()
        for process in self.served:
            process.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own: one deployment per Redis (they share its keys)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(
    postgres_server: str, redis_server: RedisServer, tmp_path_factory: Any
) -> Iterator[Fleet]:
    """The three processes of the Redis tests (a quick breaker, for the frozen-PostgreSQL
    test); acme, globex and initech with a key each, and an admin key."""
    url = asyncio.run(create_postgres_database(postgres_server))
    keys = asyncio.run(_seed(url, ["acme", "globex", "initech"]))
    settings = fleet_settings(
        url,
        redis_server.url,
        db_query_timeout=str(DB_TIMEOUT),
        breaker_failure_threshold="2",
        breaker_timeout=str(BREAKER_TIMEOUT),
    )
    served = start_fleet(tmp_path_factory.mktemp("fleet"), 3, settings)
    fleet = Fleet(served, redis_server, url, keys)
    try:
        yield fleet
    finally:
        fleet.close()


# -- (c) a frozen PostgreSQL -------------------------------------------------------------


def _postgres_processes(database_url: str) -> list[int]:
    """The postmaster of the database's server, then its children."""

    async def data_directory() -> str:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return str(await connection.scalar(text("SHOW data_directory")))
        finally:
            await engine.dispose()

    folder = Path(asyncio.run(data_directory()))
    postmaster = int((folder / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


async def _tenant_with_keys(url: str, slug: str) -> tuple[str, str]:
    """A tenant made in the database (no process has it, or its keys, cached) and two of
    its keys."""
    database = Database(url)
    try:
        await TenantDirectory(database).create(slug, slug.title())
        keys = KeyDirectory(database)
        return (
            (await keys.create(slug, ["content:read"]))[1],
            (await keys.create(slug, ["content:read"]))[1],
        )
    finally:
        await database.dispose()


def _breaker_figures(client: httpx.Client, admin: dict[str, str]) -> dict[str, float]:
    """The ``database`` breaker's call counts by outcome, and its ``state``, as the
    process's own ``/metrics`` has them (an admin key, no database needed)."""
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200, response.text
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.labels.get("breaker") != "database":
                continue
            if sample.name == "rustok_circuit_breaker_calls_total":
                figures[sample.labels["outcome"]] = sample.value
            elif sample.name == "rustok_circuit_breaker_state":
                figures["state"] = sample.value
    return figures


async def _count_a_change(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.writing() as session:
            await bump_version(session)
            await session.commit()
    finally:
        await database.dispose()


def _stale_served(client: httpx.Client, admin: dict[str, str]) -> int:
    """How many reads the process's tenant cache answered from a stale entry."""
    return _cache_figure(client, admin, "stale_served")


def _until_changes_applied(
    clients: list[httpx.Client], admin: dict[str, str], database_url: str
) -> None:
    """Until every process has applied the changes committed before this call: each is
    asked for an unknown tenant by an admin's readiness check (a negative entry in its
    tenant cache); then one more
    change is counted, after those entries exist, so every process drops its entry when
    it next hears of a change, having read every change committed until then. (Relying on
    the caller's own change raced: a process that had applied it before the request kept
    its negative entry.)"""
    for client in clients:
        response = client.get("/health/ready", headers={"X-Tenant-ID": "nobody", **admin})
        assert response.status_code == 404, response.text
    asyncio.run(_count_a_change(database_url))
    deadline = time.monotonic() + BOUND
    on_each(clients, lambda c: _loads_nobody_again(c, admin), deadline, "changes applied")


def _loads_nobody_again(client: httpx.Client, admin: dict[str, str]) -> bool:
    """Whether the process's cache no longer has its negative entry for ``nobody`` (a
    change drops negative entries): asking for it is then a miss, not a negative hit."""
    misses = _cache_figure(client, admin, "misses")
    response = client.get("/health/ready", headers={"X-Tenant-ID": "nobody", **admin})
    assert response.status_code == 404, response.text
    return _cache_figure(client, admin, "misses") > misses


def _cache_figure(client: httpx.Client, admin: dict[str, str], name: str) -> int:
    body = client.get("/health/ready", headers=admin).json()
    assert "tenant_cache" in body, body
    return int(body["tenant_cache"][name])


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_breaker_opened_by_a_frozen_postgresql_in_one_process_rejects_in_the_others(
    fleet: Fleet,
) -> None:
    first, *others = fleet.http
    admin = bearer(fleet.keys["admin"])
    slug = f"frozen-{uuid.uuid4().hex[:8]}"
    warm, cold = asyncio.run(_tenant_with_keys(fleet.database_url, slug))
    _until_changes_applied(fleet.http, admin, fleet.database_url)  # nothing changes after
    for client in fleet.http:  # the warm key and its tenant cached; the cold key never seen
        assert client.get("/api/tenant", headers=bearer(warm)).status_code == 200
    before = [_breaker_figures(client, admin) for client in fleet.http]
    assert [figures["state"] for figures in before] == [0, 0, 0]

    frozen = _postgres_processes(fleet.database_url)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        # The first process meets the frozen database: each load waits out the query
        # timeout (the cold key's, and the admin key's reload for /metrics); two failures
        # (RUSTOK_BREAKER_FAILURE_THRESHOLD) open the breaker.
        def first_opened() -> bool:
            assert_problem(first.get("/api/tenant", headers=bearer(cold)), 503)
            return _breaker_figures(first, admin)["state"] == 1

        wait_until(first_opened, time.monotonic() + 4 * FAILING_CALL, "the breaker open")
        assert _breaker_figures(first, admin)["failure"] >= before[0].get("failure", 0) + 2

        for client, earlier in zip(others, before[1:], strict=True):
            # Their own first request that needs the database is refused by the shared
            # circuit at once: they never waited on the database themselves.
            start = time.monotonic()
            response = client.get("/api/tenant", headers=bearer(cold))
            took = time.monotonic() - start
            body = assert_problem(response, 503, "TENANT_STORE_UNAVAILABLE")
            assert body["type"] == "/problems/external-service", body
            assert 1 <= int(response.headers["retry-after"]) <= BREAKER_TIMEOUT
            assert took < DB_TIMEOUT / 2, f"{took:.3f} s"
            now = _breaker_figures(client, admin)  # the admin key, from its cache
            # (Their own background reads, the change counter's polls, pass the same
            # breaker, so their success and failure counts are not compared.)
            assert now["rejected"] > earlier.get("rejected", 0), now

        # A key that was verified keeps working on every process: the warm key and its
        # tenant, and the admin key, even after a change announced on the channel
        # meanwhile (another host's) sends every process back to the database for its
        # keys and tenants (which fails: their last entries stand in, marked stale).
        for client in fleet.http:
            assert client.get("/api/tenant", headers=bearer(warm)).status_code == 200
        stale_before = [_stale_served(client, admin) for client in fleet.http]
        with redis_lib.Redis.from_url(fleet.redis.url) as announcer:
            assert announcer.publish(change_channel(), b"changed") == len(fleet.http)
        deadline = time.monotonic() + BOUND
        for client, before_stale in zip(fleet.http, stale_before, strict=True):

            def served_stale(c: httpx.Client = client, b: int = before_stale) -> bool:
                response = c.get("/api/tenant", headers=bearer(warm))
                return response.status_code == 200 and _stale_served(c, admin) > b

            wait_until(served_stale, deadline, "announced, and the warm tenant served stale")
        for client in fleet.http:
            ready = client.get("/health/ready", headers=admin)
            assert_problem(ready, 503, "NOT_READY")
            assert ready.json()["database"]["reason"] == "circuit breaker open", ready.text
    finally:
        for pid in reversed(frozen):
            os.kill(pid, signal.SIGCONT)
    thawed_at = time.monotonic()

    # Served again within about a second: each process pings the database while the
    # breaker is open and lets trials through as soon as it answers, whatever the open
    # duration; the cold key is then loaded by every process.
    deadline = thawed_at + DB_TIMEOUT + 5.0
    served = wait_until(
        lambda: first.get("/api/tenant", headers=bearer(cold)).status_code == 200,
        deadline,
        "served again",
        pause=0.05,
    )
    print(f"served again {served - thawed_at:.3f} s after the thaw")
    on_each(
        fleet.http,
        lambda c: c.get("/api/tenant", headers=bearer(cold)).status_code == 200,
        deadline,
        "served again",
        pause=0.05,
    )
    for client in fleet.http:
        assert _breaker_figures(client, admin)["state"] == 0


# -- (a) changes reach every process -----------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
def test_a_change_made_on_one_process_is_seen_by_the_others_within_a_second(fleet: Fleet) -> None:
    first, *others = fleet.http
    admin = bearer(fleet.keys["admin"])
    acme = as_tenant("acme", fleet.keys["acme"])
    globex = as_tenant("globex", fleet.keys["globex"])
    for client in fleet.http:  # each process has acme, globex and their keys cached
        assert client.get("/api/tenant", headers=acme).status_code == 200
        assert client.get("/api/tenant", headers=globex).status_code == 200

    # A tenant disabled through the admin API of the first.
    response = first.post(f"{ADMIN}/acme/disable", headers=admin)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + BOUND
    on_each(
        others,
        lambda c: c.get("/api/tenant", headers=acme).status_code == 404,
        deadline,
        "acme disabled",
    )

    # A key revoked on the second, refused by all three.
    key_id = parse_key(fleet.keys["globex"])
    assert key_id is not None
    response = others[0].delete(f"{ADMIN}/globex/keys/{key_id[0]}", headers=admin)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + BOUND
    on_each(
        fleet.http,
        lambda c: c.get("/api/tenant", headers=globex).status_code == 401,
        deadline,
        "globex's key revoked",
    )

    # A tenant created on the third, served by all. The others were asked for it before
    # it existed, so they remember it as unknown (the negative cache) until told.
    slug = f"new-{uuid.uuid4().hex[:8]}"
    for client in fleet.http[:2]:
        unknown = client.get("/health/ready", headers={"X-Tenant-ID": slug, **admin})
        assert unknown.status_code == 404, unknown.text
    response = others[1].post(ADMIN, json={"slug": slug, "name": "New"}, headers=admin)
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + BOUND
    response = others[1].post(
        f"{ADMIN}/{slug}/keys", json={"scopes": ["content:read"]}, headers=admin
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    CREATED_KEYS.append(key)
    new = as_tenant(slug, key)
    on_each(
        fleet.http,
        lambda c: c.get("/api/tenant", headers=new).status_code == 200,
        deadline,
        f"{slug} created",
    )


# -- (b) Redis frozen --------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
def test_a_frozen_redis_costs_no_request_more_than_its_timeout_and_shows_in_readiness(
    fleet: Fleet,
) -> None:
    admin = bearer(fleet.keys["admin"])
    initech = as_tenant("initech", fleet.keys["initech"])
    for client in fleet.http:
        assert client.get("/api/tenant", headers=initech).status_code == 200
        assert client.get("/health/ready").json() == {"status": "ready"}
    slowest = 0.0
    redis_pid = fleet.redis.process.pid if fleet.redis.process is not None else 0
    assert redis_pid

    def timed(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
        nonlocal slowest
        start = time.monotonic()
        response = client.get(path, headers=headers)
        slowest = max(slowest, time.monotonic() - start)
        return response

    os.kill(redis_pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5.0  # the ping, or the first call, finds it frozen
        on_each(
            fleet.http,
            lambda c: timed(c, "/health/ready", {}).json().get("status") == "degraded",
            deadline,
            "readiness degraded",
            pause=0.05,
        )
        for client in fleet.http:
            anonymous = timed(client, "/health/ready", {})
            assert anonymous.status_code == 200
            assert anonymous.json() == {"status": "degraded", "reasons": ["redis unreachable"]}
            detailed = timed(client, "/health/ready", admin).json()
            assert detailed["redis"]["status"] == "unreachable"
            assert detailed["breakers"]["database"]["state"] == "closed"
        for _ in range(10):  # every process keeps serving, at its usual pace
            for client in fleet.http:
                assert timed(client, "/api/tenant", initech).status_code == 200
                assert timed(client, "/health/ready", admin).status_code == 200
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    assert slowest <= REDIS_TIMEOUT + 0.05, f"a request took {slowest:.3f} s"

    deadline = time.monotonic() + 5.0
    on_each(
        fleet.http,
        lambda c: c.get("/health/ready").json() == {"status": "ready"},
        deadline,
        "readiness back to ready",
        pause=0.05,
    )
    for process in fleet.served:  # one line when Redis went, one when it came back
        assert len(process.lines(" rustok.server.redis ", "Redis unreachable")) == 1, process.log()
        assert len(process.lines(" rustok.server.redis ", "Redis reachable again")) == 1
        # The breaker and the limiter each say so once too; never once per request.
        assert len(process.lines("Redis unreachable")) <= 3, process.log()

    # The buckets are shared again: three requests in all, on three processes, use up a
    # burst of three.
    limit = {"rate_limit": {"per_second": 0.01, "burst": 3}}
    response = fleet.http[0].patch(f"{ADMIN}/initech", json=limit, headers=admin)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + BOUND
    on_each(
        fleet.http,
        lambda c: c.get(f"{ADMIN}/initech", headers=admin).json()["rate_limit"] is not None,
        deadline,
        "initech's own limit",
    )
    statuses = [client.get("/api/tenant", headers=initech).status_code for client in fleet.http]
    assert statuses == [200, 200, 200]
    assert fleet.http[1].get("/api/tenant", headers=initech).status_code == 429


# -- (d) kill -9 of one of three under writes ---------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_kill_9_of_one_of_three_loses_no_acknowledged_write(
    postgres_server: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    url = await create_postgres_database(postgres_server)
    keys = await _seed(url, ["acme"])
    settings = fleet_settings(url, own_redis.url, rate_limit_per_second="0")
    served = await asyncio.to_thread(start_fleet, tmp_path, 3, settings)
    created: set[uuid.UUID] = set()
    confirmed: set[uuid.UUID] = set()
    survivors_failed: list[str] = []
    killed = asyncio.Event()
    acknowledged_after_kill = 0
    enough = asyncio.Event()
    headers = as_tenant("acme", keys["acme"])
    order = {"customer_id": str(uuid.uuid4()), "currency": "EUR", "amount": "9.99"}
    try:
        clients = [httpx.AsyncClient(base_url=s.url, headers=headers, timeout=30.0) for s in served]

        async def writer(number: int) -> None:
            nonlocal acknowledged_after_kill
            target = number % 3
            while not enough.is_set():
                http = clients[target]
                try:
                    response = await http.post("/api/commerce/orders", json=order)
                    if response.status_code == 201:
                        order_id = uuid.UUID(response.json()["id"])
                        created.add(order_id)
                        response = await http.post(f"/api/commerce/orders/{order_id}/confirm")
                        if response.status_code == 200:
                            confirmed.add(order_id)
                    if target != 0 and response.status_code not in {200, 201}:
                        survivors_failed.append(response.text)
                except httpx.TransportError:
                    if target != 0:
                        survivors_failed.append(f"transport error on {target}")
                    target = 1 + number % 2  # the killed one: go on with a survivor
                    continue
                if len(created) + len(confirmed) >= 120 and not killed.is_set():
                    served[0].process.send_signal(signal.SIGKILL)  # writes in flight
                    killed.set()
                elif killed.is_set() and target != 0:
                    acknowledged_after_kill += 1
                    if acknowledged_after_kill >= 60:
                        enough.set()

        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(6))), 60)
        for http in clients:
            await http.aclose()
    finally:
        for process in served:
            process.stop()
    assert served[0].process.returncode == -signal.SIGKILL
    assert survivors_failed == []

    database = Database(url)
    try:
        async with database.reading() as session:
            orders = dict((await session.execute(select(OrderRow.id, OrderRow.version))).all())
            states = dict((await session.execute(select(OrderRow.id, OrderRow.state))).all())
            history: dict[uuid.UUID, list[int]] = {}
            rows = await session.execute(
                select(OrderTransitionRow.order_id, OrderTransitionRow.version).order_by(
                    OrderTransitionRow.order_id, OrderTransitionRow.version
                )
            )
            for order_id, version in rows.all():
                history.setdefault(order_id, []).append(version)
    finally:
        await database.dispose()
    assert len(confirmed) >= 60  # before and after the kill
    assert created <= set(orders), f"lost: {created - set(orders)}"
    assert {states[order_id] for order_id in confirmed} == {"confirmed"}
    for order_id, version in orders.items():  # one history row per version past the first
        assert history.get(order_id, []) == list(range(2, version + 1)), order_id


# -- (e) without Redis ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_without_redis_a_disabled_tenant_is_refused_by_the_other_process_within_a_second(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'rustok.db'}"
    else:
        url = asyncio.run(create_postgres_database(request.getfixturevalue("postgres_server")))
    keys = asyncio.run(_seed(url, ["acme"]))
    served = start_fleet(tmp_path, 2, fleet_settings(url, None))
    try:
        with (
            httpx.Client(base_url=served[0].url, timeout=30.0) as first,
            httpx.Client(base_url=served[1].url, timeout=30.0) as second,
        ):
            acme = as_tenant("acme", keys["acme"])
            assert second.get("/api/tenant", headers=acme).status_code == 200
            response = first.post(f"{ADMIN}/acme/disable", headers=bearer(keys["admin"]))
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + BOUND
            wait_until(
                lambda: second.get("/api/tenant", headers=acme).status_code == 404,
                deadline,
                "acme disabled, on the other process",
            )
    finally:
        for process in served:
            process.stop()


# -- the channel alone ---------------------------------------------------------------------


@pytest.mark.redis
async def test_the_channel_alone_carries_changes_from_the_api_and_the_cli(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    redis_server: RedisServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    api_keys: ApiKeys,
) -> None:
    """The servers' clock never moves, so their change counters are never read and their
    key caches never expire: only the Redis channel can tell them."""
    one = start_server(redis_url=redis_server.url)
    two = start_server(redis_url=redis_server.url)
    admin = api_keys.auth("admin")
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=30.0) as first,
        httpx.AsyncClient(base_url=two.url, timeout=30.0) as second,
    ):
        for slug in ("acme", "globex"):
            headers = {"X-Tenant-ID": slug, **api_keys.auth(slug)}
            assert (await second.get("/api/tenant", headers=headers)).status_code == 200
        response = await first.post(f"{ADMIN}/acme/disable", headers=admin)
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + BOUND
        acme = {"X-Tenant-ID": "acme", **api_keys.auth("acme")}
        while (await second.get("/api/tenant", headers=acme)).status_code != 404:
            assert time.monotonic() < deadline, "the API's change did not arrive"
            await asyncio.sleep(0.01)

        # The command line announces its changes on the channel too.
        monkeypatch.setenv("RUSTOK_DATABASE_URL", database_url)
        monkeypatch.setenv("RUSTOK_REDIS_URL", redis_server.url)
        code = await asyncio.to_thread(main, ["tenants", "disable", "globex"])
        assert code == 0
        deadline = time.monotonic() + BOUND
        globex = {"X-Tenant-ID": "globex", **api_keys.auth("globex")}
        while (await second.get("/api/tenant", headers=globex)).status_code != 404:
            assert time.monotonic() < deadline, "the command line's change did not arrive"
            await asyncio.sleep(0.01)


def test_redis_settings_default_to_none_and_a_short_timeout() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    assert settings.redis_url is None
    assert settings.redis_timeout == REDIS_TIMEOUT
