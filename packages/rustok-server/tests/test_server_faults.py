"""End to end on PostgreSQL: a database that hangs trips the ``database`` breaker;
unknown tenants then get a fast 503, known ones are served stale, and fresh data
returns once the database does."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from api_fixtures import ApiKeys, create_keys
from prometheus_client import generate_latest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from rustok_core.resilience import CircuitState
from rustok_core.testing import ManualClock
from rustok_server import ServerContext, Settings, Tenant, TenantDirectory, create_app
from rustok_server.db import Database
from rustok_server.observability.logs import RequestContextFilter
from rustok_server.observability.metrics import ServerMetrics
from rustok_server.tenancy.tables import TenantRow
from rustok_server.testing import LiveServer


def acme(api_keys: ApiKeys) -> dict[str, str]:
    """acme's tenant header and key."""
    return {"X-Tenant-ID": "acme", **api_keys.auth("acme")}


class FreezableProxy:
    """A TCP proxy on loopback in front of a server, that can stop answering.

    Frozen, it accepts connections and reads what clients send but forwards
    nothing and answers nothing: to a client it is a database that hangs. Thawed,
    the connections held while frozen are closed and new ones are forwarded again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        self._open.set()
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._open.wait()
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def freeze(self) -> None:
        self.loop.call_soon_threadsafe(self._open.clear)

    def thaw(self) -> None:
        def thaw() -> None:
            for writer in list(self._writers):
                writer.close()
            self._writers.clear()
            self._open.set()

        self.loop.call_soon_threadsafe(thaw)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class HangingListener:
    """A loopback port that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)  # the kernel accepts; nobody ever reads or answers
        self.port: int = self.socket.getsockname()[1]


@pytest.fixture
def hanging_listener() -> Iterator[HangingListener]:
    listener = HangingListener()
    yield listener
    listener.socket.close()


@pytest.fixture
async def proxy(postgres_database: str) -> AsyncIterator[FreezableProxy]:
    url = make_url(postgres_database)
    assert url.host is not None
    assert url.port is not None
    frozen = FreezableProxy(url.host, url.port)
    yield frozen
    frozen.close()


@pytest.fixture
async def seeded(postgres_database: str) -> dict[str, Tenant]:
    database = Database(postgres_database)
    try:
        directory = TenantDirectory(database)
        return {
            "acme": await directory.create("acme", "Acme Corporation"),
            "globex": await directory.create("globex", "Globex"),
        }
    finally:
        await database.dispose()


@pytest.fixture
async def api_keys(postgres_database: str, seeded: dict[str, Tenant]) -> ApiKeys:
    """The keys of the ``seeded`` tenants, and an admin key."""
    database = Database(postgres_database)
    try:
        return await create_keys(database, list(seeded))
    finally:
        await database.dispose()


FAULT_SETTINGS: dict[str, object] = {
    # Long enough for a first connection through the proxy on a busy machine: the
    # background reads at start (change counter, rate limits) must not open the breaker.
    "db_query_timeout": 1.0,
    "breaker_failure_threshold": 2,
    "breaker_success_threshold": 1,
    "breaker_timeout": 30.0,
    "cache_ttl": 300.0,
    "cache_idle": 300.0,
}


def assert_503_problem(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    for member in ("type", "title", "status", "detail", "instance"):
        assert member in body
    assert body["status"] == 503
    assert body["trace_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1


async def test_hanging_database_trips_breaker_then_serves_stale_and_recovers(
    postgres_database: str,
    proxy: FreezableProxy,
    seeded: dict[str, Tenant],
    api_keys: ApiKeys,
) -> None:
    clock = ManualClock()
    url = make_url(postgres_database).set(port=proxy.port).render_as_string(hide_password=False)
    app = create_app(Settings.model_validate({"database_url": url, **FAULT_SETTINGS}), clock=clock)
    context: ServerContext = app.state.context
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            first = await client.get("/api/tenant", headers=acme(api_keys))
            assert first.json()["name"] == "Acme Corporation"
            assert (
                await client.get("/health/ready", headers=api_keys.auth("admin"))
            ).status_code == 200

            proxy.freeze()
            clock.advance(301)  # acme's entry is now expired: the next read must load
            stale = await client.get(
                "/api/tenant", headers=acme(api_keys)
            )  # load times out: failure 1
            assert stale.status_code == 200
            assert stale.json()["name"] == "Acme Corporation"
            unknown = await client.get("/health/ready", headers={"X-Tenant-ID": "umbrella"})
            assert_503_problem(unknown)  # failure 2: the breaker opens
            assert context.breaker.state.value == "open"

            rejected_before = context.breaker.stats().total_rejected
            fast = await client.get("/health/ready", headers={"X-Tenant-ID": "hooli"})
            assert_503_problem(fast)
            assert 25 <= int(fast.headers["retry-after"]) <= 30
            assert context.breaker.stats().total_rejected == rejected_before + 1  # not run
            still_stale = await client.get("/api/tenant", headers=acme(api_keys))
            assert still_stale.status_code == 200
            assert context.tenant_cache.stats().stale_served == 2

            not_ready = await client.get("/health/ready", headers=api_keys.auth("admin"))
            assert_503_problem(not_ready)
            assert not_ready.json()["breakers"]["database"]["state"] == "open"

            # The database comes back, with acme renamed meanwhile. While the breaker is
            # open the server pings the database once a second (not a request), and lets
            # trial calls through as soon as it answers, whatever the open duration.
            trials = threading.Event()
            context.breaker.add_listener(
                lambda change: trials.set() if change.new is not CircuitState.OPEN else None
            )
            proxy.thaw()
            database = Database(postgres_database)
            try:
                async with database.writing() as session:
                    await session.execute(update(TenantRow).values(name="Acme Renamed"))
                    await session.commit()
            finally:
                await database.dispose()
            assert await asyncio.to_thread(trials.wait, 30), "the prober never half-opened"
            fresh = await client.get("/api/tenant", headers=acme(api_keys))  # the trial call
            assert fresh.status_code == 200, fresh.text
            assert fresh.json()["name"] == "Acme Renamed"
            assert context.breaker.state.value == "closed"
            known = await client.get("/api/tenant", headers=api_keys.auth("globex"))
            assert known.status_code == 200
            ready = await client.get("/health/ready")
            assert ready.status_code == 200


async def test_database_that_never_answers_opens_breaker_and_503s_fast(
    hanging_listener: HangingListener,
) -> None:
    url = f"postgresql+asyncpg://rustok@127.0.0.1:{hanging_listener.port}/rustok"
    app = create_app(Settings.model_validate({"database_url": url, **FAULT_SETTINGS}))
    context: ServerContext = app.state.context
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            for slug in ("acme", "globex"):  # each waits for the query timeout
                assert_503_problem(await client.get("/health/ready", headers={"X-Tenant-ID": slug}))
            assert context.breaker.state.value == "open"
            answers = await asyncio.gather(
                *(client.get("/health/ready", headers={"X-Tenant-ID": f"t{i}"}) for i in range(50))
            )
            for response in answers:
                assert_503_problem(response)
            assert context.breaker.stats().total_rejected >= 50
            assert context.tenant_cache.stats().loads == 0


class _Records(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_frozen_database_shows_in_the_breaker_gauge_and_one_warning_with_its_request(
    hanging_listener: HangingListener,
) -> None:
    handler = _Records()
    records = handler.records
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("rustok")
    logger.addHandler(handler)
    url = f"postgresql+asyncpg://rustok@127.0.0.1:{hanging_listener.port}/rustok"
    app = create_app(Settings.model_validate({"database_url": url, **FAULT_SETTINGS}))
    metrics: ServerMetrics = app.state.metrics
    context: ServerContext = app.state.context
    opener = None
    try:
        with LiveServer(app) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                for number, slug in enumerate(("acme", "globex", "hooli")):
                    headers = {"X-Tenant-ID": slug, "X-Request-ID": f"freeze-{number}"}
                    assert_503_problem(await client.get("/health/ready", headers=headers))
                    if context.breaker.state.value == "open":
                        opener = headers["X-Request-ID"]
                        break
    finally:
        logger.removeHandler(handler)
    assert opener is not None, "the breaker never opened"
    text = generate_latest(metrics.registry).decode()
    assert 'rustok_circuit_breaker_state{breaker="database"} 1.0' in text
    opened = [r for r in records if "closed -> open" in r.getMessage()]
    assert len(opened) == 1  # once per event, not per request
    assert opened[0].levelno == logging.WARNING
    # The request that opened it, or the change counter's poll in the background (no
    # request), which passes the same breaker.
    assert getattr(opened[0], "request_id", None) in {opener, "-"}
