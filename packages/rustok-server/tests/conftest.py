"""Fixtures of the server tests: a real PostgreSQL server started for the session, a
fresh database per test on SQLite and on PostgreSQL, and the real app under uvicorn."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from rustok_core.testing import ManualClock
from rustok_server import Settings, Tenant, TenantDirectory, create_app
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.testing import LiveServer

# Helper modules beside the tests (api_fixtures) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))


def _postgres_bindir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(
        "the server tests need PostgreSQL's server binaries (initdb, pg_ctl) and found none "
        "via `pg_config --bindir` or /usr/lib/postgresql/*/bin; install the PostgreSQL server "
        "package (e.g. apt-get install postgresql) and run the tests again"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on a loopback port for this test session; yields its base URL.

    Run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
    """
    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="rustok-pg-"))
    prefix: list[str] = []
    user = "postgres"
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    else:
        user = os.environ.get("USER") or "postgres"
    data = root / "data"
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n{tail}")

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(root / "server.log")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
        yield f"postgresql+asyncpg://{user}@127.0.0.1:{port}"
    finally:
        if data.exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


async def _migrated(url: str) -> str:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    return url


async def _create_postgres_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_async_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return f"{server_url}/{name}"


@pytest.fixture
async def postgres_database(postgres_server: str) -> str:
    """The URL of a fresh, migrated database on the session's PostgreSQL server."""
    return await _migrated(await _create_postgres_database(postgres_server))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return await _migrated(f"sqlite+aiosqlite:///{tmp_path / 'rustok.db'}")
    server = request.getfixturevalue("postgres_server")  # started only when needed
    assert isinstance(server, str)
    return await _migrated(await _create_postgres_database(server))


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
def clock() -> ManualClock:
    """The clock of the tenant cache and the breaker of the servers a test starts."""
    return ManualClock()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def start_server(database_url: str, clock: ManualClock) -> Iterator[ServerFactory]:
    """Start the real app under uvicorn on the test database; settings as keywords."""
    servers: list[LiveServer] = []

    def start(**overrides: object) -> LiveServer:
        options: dict[str, object] = {"database_url": database_url, "db_query_timeout": 5.0}
        options.update(overrides)
        app = create_app(Settings.model_validate(options), clock=clock)
        server = LiveServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)
