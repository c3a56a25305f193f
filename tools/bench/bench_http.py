"""HTTP benchmark: our server as users start it (``rustok-server serve``), on SQLite and
on PostgreSQL, against bare FastAPI, bare FastAPI plus the database driver alone, and the
conventional way to write the same read (the peer).

Our server is started by the README's command, ``rustok-server serve``, with its defaults
(one worker unless named), the access log off (``RUSTOK_ACCESS_LOG=false``) and the rate
limiter running at a limit no run reaches. The baselines and the peer run under one
uvicorn worker with the options ``serve`` passes to uvicorn (`UVICORN_SETTINGS`: no
access log, no server header, uvicorn's automatic loop and HTTP parser, which are uvloop
and httptools with ``uvicorn[standard]``). Servers are pinned to one CPU while the load
generator runs on another (when the machine has two); the ``--workers 2`` figure and
the one-worker figure beside it run unpinned, sharing both CPUs with the load generator.
Baselines, in the same run:

- bare FastAPI: one route returning a constant JSON object;
- bare FastAPI plus a raw ``sqlite3`` point read (on the event loop) of a content node's
  row, the same row our read returns, as a dict;
- bare FastAPI plus a raw asyncpg ``fetchrow`` of that row (a pool of 10);
- the peer (``peer_template.py``): the official full-stack FastAPI template's pattern
  (a SQLAlchemy ORM session per request through ``Depends``, a JWT decoded and its user
  row loaded per request, a pydantic response model) reading the same row.

Measured, per database (PostgreSQL when its server binaries are on the machine: a
private cluster, ``rustok_core.testing.PostgresServer``):

- a tenant-resolved read: ``GET /api/content/nodes/{id}`` with ``X-Tenant-ID`` and the
  tenant's API key, ``CONNECTIONS`` connections, beside bare FastAPI, the driver and the
  peer; the same read under ``serve --workers 2``;
- one keep-alive client reading in turn (what an SDK or a script sees): its latency
  beside bare FastAPI's with the same client;
- an order ``confirm`` transition (``POST /api/commerce/orders/{id}/confirm``, one fresh
  pending order per request), ``CONNECTIONS`` connections;
- a mixed load: ``MIXED_CONNECTIONS`` connections, 90% reads, 10% confirms;
- on SQLite also ``GET /health/live`` and ``GET /api/tenant``.

The load generator is ``wrk`` when it is on the PATH (Debian: ``apt-get install wrk``),
else the asyncio client in this file: keep-alive connections on raw sockets, each sending
one request and reading the whole response before the next, timing every request. Writes,
the mixed load and the one-client figure (each request timed) always use the asyncio
client, and are judged against the bare app measured with that same client and
concurrency.

Targets (DESIGN 7): the read >= 0.5x bare on SQLite, >= 0.35x bare and >= 0.6x
bare+asyncpg on PostgreSQL, >= 2x the peer; one client's latency <= 3x bare's; confirm
>= 0.12x with a p99 <= 20x bare's; the mixed load >= 0.25x bare with a p99 <= 100 ms.
Only loopback is used; every run is bounded in time.

After the load runs, the SQLite read is profiled in process (pyinstrument, when
installed): requests are sent straight to the ASGI app, and the share of the time spent
in our own modules (``rustok_*``) is printed.

Run: ``python tools/bench/bench_http.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Scope

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, median, percentile
from rustok_server import Tenant
from rustok_server.auth.tenant_api import TenantOut
from rustok_server.request_state import request_state

BENCH = "http"
QUICK = os.environ.get("RUSTOK_BENCH_QUICK") == "1"  # one short round, while iterating
ROUNDS = 1 if QUICK else 3  # every route measured once per round, rounds interleaved
SLICE = 1.0 if QUICK else 2.0  # seconds of load per route and round
WARM_UP = 1.0  # seconds of load per route before the first round
CONNECTIONS = 16
MIXED_CONNECTIONS = 64
WRITE_REQUESTS = 600  # confirm transitions: one fresh order each
MIXED_ORDERS = 1500  # the mixed load's confirms (each round stops at SLICE seconds)
PROFILE_REQUESTS = 300  # in-process requests per measurement
TENANT = {"X-Tenant-ID": "acme"}  # plus the tenant's API key, made per database
# The limiter runs on every request, at a limit no run reaches.
RATE_LIMIT = {"RUSTOK_RATE_LIMIT_PER_SECOND": "1000000", "RUSTOK_RATE_LIMIT_BURST": "1000000"}
# `serve`'s settings for every run: its defaults, but no access record per request.
SERVE_SETTINGS = {**RATE_LIMIT, "RUSTOK_ACCESS_LOG": "false"}
PEER_NAME = "template-style FastAPI (ORM session, JWT, user row per request)"
PEER_SECRET = "bench-peer-secret-of-32-bytes-or-more"
PEER_TARGET = 2.0  # our read at least twice the peer's throughput (DESIGN 7)
SEQUENTIAL_TARGET = 3.0  # one client's latency at most 3x bare FastAPI's (DESIGN 7)
STARTUP_TIMEOUT = 30.0
HERE = Path(__file__).parent


def bare_app() -> FastAPI:
    """The baseline: FastAPI returning a constant, nothing else (``uvicorn --factory``)."""
    app = FastAPI()

    @app.get("/")
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    return app


# The row our read returns, read the plainest way each driver allows.
_ROW_SQL = (
    "SELECT id, tenant_id, kind, title, slug, author_id, parent_id, category_id, state, "
    "state_data, version, created_at, updated_at FROM content_nodes "
    "WHERE tenant_id = {0} AND id = {1}"
)


def bare_sqlite_app() -> FastAPI:
    """Bare FastAPI plus a raw ``sqlite3`` point read on the event loop: the row of
    ``RUSTOK_BENCH_ROW`` (tenant hex, node hex) in the file ``RUSTOK_BENCH_SQLITE``."""
    app = FastAPI()
    connection = sqlite3.connect(
        os.environ["RUSTOK_BENCH_SQLITE"], isolation_level=None, check_same_thread=False
    )
    tenant_id, node_id = os.environ["RUSTOK_BENCH_ROW"].split(",")
    sql = _ROW_SQL.format("?", "?")

    @app.get("/")
    async def row() -> dict[str, object]:
        cursor = connection.execute(sql, (tenant_id, node_id))
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))

    return app


def bare_asyncpg_app() -> FastAPI:
    """Bare FastAPI plus a raw asyncpg ``fetchrow`` (a pool of 10) of the row of
    ``RUSTOK_BENCH_ROW`` in the database ``RUSTOK_BENCH_POSTGRES`` (a libpq DSN)."""
    import asyncpg

    tenant_id, node_id = (uuid.UUID(v) for v in os.environ["RUSTOK_BENCH_ROW"].split(","))
    sql = _ROW_SQL.format("$1", "$2")
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(os.environ["RUSTOK_BENCH_POSTGRES"], max_size=10))
        yield
        await pools[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def row() -> dict[str, object]:
        record = await pools[0].fetchrow(sql, tenant_id, node_id)
        return dict(record) if record is not None else {}

    return app


# -- servers -------------------------------------------------------------------------------


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): one each when there are two or more, else no pinning."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if len(available) < 2:
        return None, None
    return {available[0]}, {available[1]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


UVICORN_SETTINGS = (
    "--no-access-log",
    "--no-server-header",
    "--loop",
    "auto",
    "--http",
    "auto",
)
"""The baselines' uvicorn options: those `rustok-server serve` passes (no access log, no
server header, uvicorn's own loop and parser choice: uvloop and httptools, which
``uvicorn[standard]`` brings), so that only the app differs."""


def uvicorn_choices() -> str:
    """The loop and HTTP parser uvicorn's ``auto`` picks here."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"loop {loop}, HTTP parser {parser}"


class Server:
    """One HTTP server in a child process on a free loopback port, ready to serve.

    Build it with `serve` (our app, started exactly as users start it) or `uvicorn_app`
    (a baseline app, under the uvicorn options `serve` uses)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        env: dict[str, str],
        cpus: set[int] | None,
        log: Path | None = None,
        *,
        started_lines: int = 0,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"

        def pin() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        # The server's own log goes to ``log`` when given (the drill's 503s are logged).
        self._log = None if log is None else log.open("ab")
        offset = 0 if log is None else log.stat().st_size
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            preexec_fn=pin,
            start_new_session=True,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready(log, offset, started_lines):
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.process.returncode} at startup")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not serve on {self.url}")
            time.sleep(0.05)

    def _ready(self, log: Path | None, offset: int, started_lines: int) -> bool:
        """Listening, and (with several workers) every worker's startup logged."""
        if started_lines and log is not None:
            with log.open("rb") as text:
                text.seek(offset)
                if text.read().count(b"Application startup complete") < started_lines:
                    return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve(
    env: dict[str, str], cpus: set[int] | None, log: Path | None = None, *, workers: int = 1
) -> Server:
    """Our server as the README starts it: the ``rustok-server serve`` command, its
    defaults, a free port, the settings in ``env`` (``RUSTOK_*``)."""
    command_path = Path(sys.executable).with_name("rustok-server")
    command = str(command_path) if command_path.exists() else shutil.which("rustok-server")
    if command is None:
        raise RuntimeError("the rustok-server command is not installed")
    port = free_port()
    argv = [command, "serve", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    name = f"rustok-server serve{f' --workers {workers}' if workers > 1 else ''}"
    return Server(name, argv, port, env, cpus, log, started_lines=workers)


def uvicorn_app(
    target: str, env: dict[str, str], cpus: set[int] | None, log: Path | None = None
) -> Server:
    """A baseline app factory (``module:function`` beside this file) under one uvicorn
    worker with the options `serve` uses (`UVICORN_SETTINGS`)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", target, "--app-dir", str(HERE)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    argv += [*UVICORN_SETTINGS, "--log-level", "warning"]
    return Server(target, argv, port, env, cpus, log)


# -- load generators -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """What one load run measured (latencies kept when the client saw each request)."""

    client: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx answers and socket errors
    latencies_ms: tuple[float, ...] = ()

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def merge(loads: Sequence[Load]) -> Load:
    """Several runs as one: total requests over total time; percentiles of every
    request when the client kept them, else the median of the runs' percentiles."""
    latencies = tuple(value for load in loads for value in load.latencies_ms)
    if latencies:
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    else:
        p50 = median([load.p50_ms for load in loads])
        p99 = median([load.p99_ms for load in loads])
    return Load(
        loads[0].client,
        sum(load.requests for load in loads),
        sum(load.seconds for load in loads),
        p50,
        p99,
        sum(load.bad for load in loads),
        latencies,
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def wrk(url: str, headers: dict[str, str], seconds: float, cpus: set[int] | None) -> Load:
    """One ``wrk`` run: one thread, ``CONNECTIONS`` connections, ``seconds`` long."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if cpus is not None:
        command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    requests = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if requests is None or set(latency) != {"50", "99"}:
        raise RuntimeError(f"unreadable wrk output:\n{out}")
    elapsed = float(requests[2]) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[requests[3]]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(non_2xx[1]) if non_2xx else 0
    if errors:
        bad += sum(int(errors[i]) for i in range(1, 5))
    p50, p99 = _wrk_ms(latency["50"]), _wrk_ms(latency["99"])
    return Load("wrk", int(requests[1]), elapsed, p50, p99, bad)


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; (status, body) of the answer."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


async def asyncio_load(
    port: int,
    requests: Iterator[bytes],
    *,
    seconds: float | None,
    connections: int = CONNECTIONS,
) -> Load:
    """The asyncio client: ``connections`` keep-alive connections, each sending the next
    request of ``requests`` once the previous answer is read, until the iterator ends
    or ``seconds`` pass; each request is timed from its write to the end of its body."""
    latencies: list[float] = []
    bad = 0
    clock = time.perf_counter
    deadline = None if seconds is None else clock() + seconds

    async def connection() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in requests:
                start = clock()
                status, _ = await exchange(reader, writer, request)
                end = clock()
                latencies.append((end - start) * 1e3)
                if not 200 <= status < 300:
                    bad += 1
                if deadline is not None and end > deadline:
                    break
        finally:
            writer.close()

    start = clock()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = clock() - start
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Load("asyncio", len(latencies), elapsed, p50, p99, bad, tuple(latencies))


def _forever(request: bytes) -> Iterator[bytes]:
    while True:
        yield request


@dataclass(frozen=True, slots=True)
class Target:
    """One measured route: the same GET, again and again."""

    name: str
    server: Server
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()

    def run(self, seconds: float, use_wrk: bool, cpus: set[int] | None) -> Load:
        headers = dict(self.headers)
        if use_wrk:
            return wrk(self.server.url + self.path, headers, seconds, cpus)
        request = http_request("GET", self.path, headers)
        return asyncio.run(asyncio_load(self.server.port, _forever(request), seconds=seconds))


# -- data --------------------------------------------------------------------------------------


async def _prepare_database(url: str) -> tuple[uuid.UUID, dict[str, str]]:
    """Migrate the database, create the tenant ``acme`` and a key of every tenant scope;
    (its id, the headers of its requests: the tenant and the key)."""
    from rustok_server import TenantDirectory
    from rustok_server.auth import TENANT_SCOPES, KeyDirectory
    from rustok_server.db import Database
    from rustok_server.db.migrations import upgrade

    database = Database(url)
    try:
        await upgrade(database)
        tenant = await TenantDirectory(database).create("acme", "Acme Corporation")
        _key, secret = await KeyDirectory(database).create("acme", list(TENANT_SCOPES))
    finally:
        await database.dispose()
    return tenant.id, {**TENANT, "Authorization": f"Bearer {secret}"}


async def _create_postgres_database(server_url: str, name: str) -> str:
    """A new database on the server; its SQLAlchemy URL."""
    import asyncpg

    connection = await asyncpg.connect(server_url.replace("+asyncpg", "") + "/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{server_url}/{name}"


async def call(
    port: int, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, object]:
    """One request on a new connection; (status, decoded JSON body or None)."""
    payload = b"" if body is None else json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        status, answer = await exchange(
            reader, writer, http_request(method, path, headers, payload)
        )
    finally:
        writer.close()
    return status, (json.loads(answer) if answer else None)


async def _create_node(port: int, headers: dict[str, str]) -> str | None:
    """A published content node of ``acme``; None when the content API is not there."""
    status, node = await call(
        port,
        "POST",
        "/api/content/nodes",
        headers,
        {"kind": "article", "title": "Benchmark article", "slug": "benchmark-article"},
    )
    if status == 404:
        return None
    if status != 201 or not isinstance(node, dict):
        raise RuntimeError(f"creating a content node answered {status}: {node}")
    node_id = str(node["id"])
    status, _ = await call(port, "POST", f"/api/content/nodes/{node_id}/publish", headers)
    if status != 200:
        raise RuntimeError(f"publishing content node {node_id} answered {status}")
    return node_id


async def _create_orders(port: int, count: int, headers: dict[str, str]) -> list[str] | None:
    """``count`` pending orders of ``acme``; None when the order API is not there."""
    ids: list[str] = []
    body = {"customer_id": str(uuid.uuid4()), "currency": "EUR", "amount": "49.90"}
    request = http_request("POST", "/api/commerce/orders", headers, json.dumps(body).encode())
    missing = False

    async def connection(n: int) -> None:
        nonlocal missing
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(n):
                status, answer = await exchange(reader, writer, request)
                if status == 404:
                    missing = True
                    return
                if status != 201:
                    raise RuntimeError(f"creating an order answered {status}: {answer[:300]!r}")
                ids.append(str(json.loads(answer)["id"]))
        finally:
            writer.close()

    per_connection = -(-count // CONNECTIONS)
    await asyncio.gather(*(connection(per_connection) for _ in range(CONNECTIONS)))
    return None if missing else ids[:count]


def _confirmations(order_ids: Sequence[str], headers: dict[str, str]) -> Iterator[bytes]:
    body = json.dumps({"inventory_reserved": True}).encode()
    for order_id in order_ids:
        yield http_request("POST", f"/api/commerce/orders/{order_id}/confirm", headers, body)


# -- profile -----------------------------------------------------------------------------------


async def _asgi_requests(app: ASGIApp, path: str, headers: dict[str, str], count: int) -> float:
    """Send ``count`` GETs straight to an ASGI app; seconds per request."""
    raw_headers = [(b"host", b"127.0.0.1")]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    statuses: set[int] = set()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    start = time.perf_counter()
    for _ in range(count):
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": list(raw_headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
    elapsed = (time.perf_counter() - start) / count
    if statuses != {200}:
        raise RuntimeError(f"GET {path} answered {statuses} in process")
    return elapsed


@dataclass(frozen=True, slots=True)
class InProcess:
    """Per-request costs measured in this process, straight through ASGI (no HTTP)."""

    bare_us: float  # the bare app
    read_us: float  # the tenant-resolved read
    tenant_us: float  # GET /api/tenant, async dependency
    tenant_thread_us: float  # the same route with a plain ``def`` dependency
    select_us: float  # a SQLAlchemy session running ``SELECT 1`` on the same database
    our_share: float | None  # share of the read's time in rustok_* code (pyinstrument)
    our_top: tuple[str, ...]


def _add_thread_dependency_route(app: FastAPI) -> None:
    """GET /api/_bench/tenant: GET /api/tenant, but with a plain ``def`` dependency,
    which FastAPI runs in a worker thread (what the tenant dependency first was)."""

    def tenant_in_thread(request: Request) -> Tenant:
        tenant = request_state(request).get("tenant")
        assert tenant is not None  # a tenant-resolved route
        return tenant

    @app.get("/api/_bench/tenant")
    async def current_tenant(tenant: Tenant = Depends(tenant_in_thread)) -> TenantOut:  # noqa: B008  FastAPI's dependency idiom
        return TenantOut(id=tenant.id, slug=tenant.slug, name=tenant.name, domain=tenant.domain)


async def _in_process(database_url: str, path: str, headers: dict[str, str]) -> InProcess:
    from sqlalchemy import text

    from rustok_server import Settings, create_app

    app = create_app(
        Settings(
            database_url=database_url,
            rate_limit_per_second=float(RATE_LIMIT["RUSTOK_RATE_LIMIT_PER_SECOND"]),
            rate_limit_burst=int(RATE_LIMIT["RUSTOK_RATE_LIMIT_BURST"]),
        )
    )
    _add_thread_dependency_route(app)
    database = app.state.context.database
    bare = bare_app()

    async def select_one() -> float:
        start = time.perf_counter()
        for _ in range(PROFILE_REQUESTS):
            async with database.reading() as session:
                await session.execute(text("SELECT 1"))
        return (time.perf_counter() - start) / PROFILE_REQUESTS

    await _asgi_requests(app, path, headers, PROFILE_REQUESTS)  # warm: tenant, key cached
    times: dict[str, list[float]] = {}
    steps = {
        "bare": lambda: _asgi_requests(bare, "/", {}, PROFILE_REQUESTS),
        "read": lambda: _asgi_requests(app, path, headers, PROFILE_REQUESTS),
        "tenant": lambda: _asgi_requests(app, "/api/tenant", headers, PROFILE_REQUESTS),
        "thread": lambda: _asgi_requests(app, "/api/_bench/tenant", headers, PROFILE_REQUESTS),
        "select": select_one,
    }
    for _ in range(3):
        for name, step in steps.items():
            times.setdefault(name, []).append(await step())
    share, top = await _profile(app, path, headers)
    await database.dispose()
    us = {name: median(values) * 1e6 for name, values in times.items()}
    return InProcess(
        us["bare"], us["read"], us["tenant"], us["thread"], us["select"], share, tuple(top)
    )


def _self_times(frame: object, ours: dict[str, float]) -> None:
    path = getattr(frame, "file_path", None) or ""
    if "rustok_" in path and "/tools/bench/" not in path:
        module = path.rsplit("/", 1)[-1]
        key = f"{module}:{getattr(frame, 'function', '?')}"
        ours[key] = ours.get(key, 0.0) + float(getattr(frame, "total_self_time", 0.0))
    for child in getattr(frame, "children", ()):
        _self_times(child, ours)


async def _profile(
    app: ASGIApp, path: str, headers: dict[str, str]
) -> tuple[float | None, list[str]]:
    """(share of the time in rustok_* code, our top functions by self time) of
    ``path`` under pyinstrument; (None, []) when pyinstrument is not installed."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None, []
    profiler = Profiler(interval=0.001)
    profiler.start()
    await _asgi_requests(app, path, headers, PROFILE_REQUESTS)
    profiler.stop()
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    if root is None or not root.time:
        return None, []
    ours: dict[str, float] = {}
    _self_times(root, ours)
    total = float(root.time)
    top = sorted(ours.items(), key=lambda item: -item[1])[:5]
    return sum(ours.values()) / total, [f"{name} {seconds / total:.1%}" for name, seconds in top]


# -- figures -----------------------------------------------------------------------------------


def _figures(
    name: str,
    load: Load,
    baseline: Load,
    target: tuple[float, float | None] | None = None,
    driver: tuple[str, Load, float | None] | None = None,
) -> list[Figure]:
    """Throughput, p50 and p99 against bare FastAPI; with ``target`` (throughput ratio,
    p99 ratio or None), verdicts; with ``driver`` (its name, its load, a throughput
    ratio target or None), the throughput beside the driver's baseline too."""
    base = f"bare FastAPI constant ({baseline.client})"
    ratio = load.rps / baseline.rps if baseline.rps else 0.0
    p99_ratio = load.p99_ms / baseline.p99_ms if baseline.p99_ms else float("inf")
    rps_target = None if target is None else target[0]
    p99_target = None if target is None else target[1]
    figures = [
        Figure(
            BENCH,
            f"{name}: throughput ({load.client})",
            load.rps,
            "req/s",
            base,
            baseline.rps,
            None if rps_target is None else f">= {rps_target:.2f}x baseline",
            None if rps_target is None else ratio >= rps_target,
        ),
        Figure(BENCH, f"{name}: p50 ({load.client})", load.p50_ms, "ms", base, baseline.p50_ms),
        Figure(
            BENCH,
            f"{name}: p99 ({load.client})",
            load.p99_ms,
            "ms",
            base,
            baseline.p99_ms,
            None if p99_target is None else f"<= {p99_target:g}x baseline",
            None if p99_target is None else p99_ratio <= p99_target,
        ),
    ]
    if driver is not None:
        driver_name, driver_load, driver_target = driver
        driver_ratio = load.rps / driver_load.rps if driver_load.rps else 0.0
        figures.append(
            Figure(
                BENCH,
                f"{name}: throughput ({load.client}), beside the driver",
                load.rps,
                "req/s",
                f"{driver_name} ({driver_load.client})",
                driver_load.rps,
                None if driver_target is None else f">= {driver_target:.2f}x baseline",
                None if driver_target is None else driver_ratio >= driver_target,
            )
        )
    return figures


def _mixed(read: bytes, order_ids: Sequence[str], headers: dict[str, str]) -> Iterator[bytes]:
    """Nine reads, then one confirm of the next fresh order, until the orders run out."""
    confirms = _confirmations(order_ids, headers)
    while True:
        for _ in range(9):
            yield read
        confirm = next(confirms, None)
        if confirm is None:
            return
        yield confirm


@dataclass(frozen=True, slots=True)
class Setup:
    """One database under test: its name, URL, the driver baseline's server target and
    environment, and our targets' figures' targets."""

    name: str
    url: str
    driver_target: str
    driver_name: str
    driver_env: dict[str, str]
    read_target: tuple[float, float | None]
    driver_read_target: float | None


def _measure(
    setup: Setup,
    bare: Server,
    server_cpus: set[int] | None,
    client_cpus: set[int] | None,
    use_wrk: bool,
    log: Path,
    bad: dict[str, int],
) -> tuple[list[Figure], str, dict[str, str]]:
    """Every figure of one database; (figures, the path of the read, its headers)."""
    from peer_template import sync_url, template_token

    tenant_id, headers = asyncio.run(_prepare_database(setup.url))
    env = {"RUSTOK_DATABASE_URL": setup.url, **SERVE_SETTINGS}
    figures: list[Figure] = []
    with serve(env, server_cpus, log) as ours:
        node_id = asyncio.run(_create_node(ours.port, headers))
        if node_id is None:
            raise RuntimeError("the content API is not installed")
        node = uuid.UUID(node_id)
        row = f"{tenant_id.hex},{node.hex}" if setup.name == "SQLite" else f"{tenant_id},{node}"
        driver_env = {**setup.driver_env, "RUSTOK_BENCH_ROW": row}
        order_ids = asyncio.run(_create_orders(ours.port, WRITE_REQUESTS + MIXED_ORDERS, headers))
        if order_ids is None:
            raise RuntimeError("the order API is not installed")
        write_ids, mixed_ids = order_ids[:WRITE_REQUESTS], order_ids[WRITE_REQUESTS:]
        path = f"/api/content/nodes/{node_id}"
        read_name = f"{setup.name}: tenant-resolved GET /api/content/nodes/{{id}}"
        peer_env = {
            "RUSTOK_BENCH_PEER_DB": sync_url(setup.url),
            "RUSTOK_BENCH_PEER_SECRET": PEER_SECRET,
        }
        peer_headers = {"Authorization": f"Bearer {template_token(tenant_id, PEER_SECRET)}"}
        with (
            uvicorn_app(setup.driver_target, driver_env, server_cpus, log) as driver,
            uvicorn_app("peer_template:template_app", peer_env, server_cpus, log) as peer,
        ):
            targets = [
                Target("baseline", bare, "/"),
                Target("driver", driver, "/"),
                Target("peer", peer, f"/items/{node_id}", tuple(peer_headers.items())),
                Target(read_name, ours, path, tuple(headers.items())),
            ]
            if setup.name == "SQLite":
                targets += [
                    Target(f"{setup.name}: GET /health/live", ours, "/health/live"),
                    Target(
                        f"{setup.name}: tenant only, GET /api/tenant",
                        ours,
                        "/api/tenant",
                        tuple(headers.items()),
                    ),
                ]
            runs: dict[str, list[Load]] = {target.name: [] for target in targets}
            writes: dict[str, list[Load]] = {"baseline": [], "confirm": []}
            mixed: dict[str, list[Load]] = {"baseline": [], "mixed": []}
            sequential: dict[str, list[Load]] = {"baseline": [], "driver": [], "read": []}
            read_request = http_request("GET", path, headers)
            constant = http_request("GET", "/", {})
            for target in targets:
                target.run(WARM_UP, use_wrk, client_cpus)
            # Rounds interleave every target, so a noisy moment weighs on all alike.
            for round_ in range(ROUNDS):
                for target in targets:
                    runs[target.name].append(target.run(SLICE, use_wrk, client_cpus))
                for name, server, request in (
                    ("baseline", bare, constant),
                    ("driver", driver, constant),
                    ("read", ours, read_request),
                ):
                    in_turn = asyncio_load(
                        server.port, _forever(request), seconds=SLICE, connections=1
                    )
                    sequential[name].append(asyncio.run(in_turn))
                writes["baseline"].append(
                    asyncio.run(asyncio_load(bare.port, _forever(constant), seconds=SLICE))
                )
                share = write_ids[round_::ROUNDS]
                confirm = asyncio_load(ours.port, _confirmations(share, headers), seconds=None)
                writes["confirm"].append(asyncio.run(confirm))
                mixed["baseline"].append(
                    asyncio.run(
                        asyncio_load(
                            bare.port,
                            _forever(constant),
                            seconds=SLICE,
                            connections=MIXED_CONNECTIONS,
                        )
                    )
                )
                load = _mixed(read_request, mixed_ids[round_::ROUNDS], headers)
                mixed["mixed"].append(
                    asyncio.run(
                        asyncio_load(ours.port, load, seconds=SLICE, connections=MIXED_CONNECTIONS)
                    )
                )
    # Two workers, as `serve --workers 2` runs them, beside one worker placed the same way:
    # neither pinned, both CPUs shared with the client.
    spread: dict[int, list[Load]] = {1: [], 2: []}
    with serve(env, None, log) as one, serve(env, None, log, workers=2) as two:
        unpinned = {
            count: Target(read_name, server, path, tuple(headers.items()))
            for count, server in ((1, one), (2, two))
        }
        for target in unpinned.values():
            target.run(WARM_UP, use_wrk, client_cpus)
        for _ in range(ROUNDS):
            for count, target in unpinned.items():
                spread[count].append(target.run(SLICE, use_wrk, client_cpus))
    loads = {name: merge(results) for name, results in runs.items()}
    baseline, driver_load = loads.pop("baseline"), loads.pop("driver")
    peer_load = loads.pop("peer")
    figures += _figures(f"{setup.name}: baseline {setup.driver_name}", driver_load, baseline)
    figures += _figures(f"{setup.name}: peer, {PEER_NAME}", peer_load, baseline)
    bad[f"{setup.name} peer"] = peer_load.bad
    for target in targets[3:]:
        is_read = target.name == read_name
        figures += _figures(
            target.name,
            loads[target.name],
            baseline,
            setup.read_target if is_read else None,
            (setup.driver_name, driver_load, setup.driver_read_target) if is_read else None,
        )
        bad[target.name] = loads[target.name].bad
    read_load = loads[read_name]
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: read beside the peer: throughput ({read_load.client})",
            read_load.rps,
            "req/s",
            f"{PEER_NAME} ({peer_load.client})",
            peer_load.rps,
            f">= {PEER_TARGET:.2f}x baseline",
            read_load.rps >= PEER_TARGET * peer_load.rps,
        )
    )
    one_client, one_bare = merge(sequential["read"]), merge(sequential["baseline"])
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: one keep-alive client reading in turn: p50 latency",
            one_client.p50_ms,
            "ms",
            "bare FastAPI constant, same client",
            one_bare.p50_ms,
            f"<= {SEQUENTIAL_TARGET:g}x baseline",
            one_client.p50_ms <= SEQUENTIAL_TARGET * one_bare.p50_ms,
        )
    )
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: one keep-alive client reading in turn: p99 latency",
            one_client.p99_ms,
            "ms",
            "bare FastAPI constant, same client",
            one_bare.p99_ms,
        )
    )
    one_driver = merge(sequential["driver"])
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: one keep-alive client reading in turn: p50 latency, beside the driver",
            one_client.p50_ms,
            "ms",
            f"{setup.driver_name}, same client",
            one_driver.p50_ms,
        )
    )
    bad[f"{setup.name} one client"] = one_client.bad
    two_load, one_load = merge(spread[2]), merge(spread[1])
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: the read under serve --workers 2: throughput ({two_load.client})",
            two_load.rps,
            "req/s",
            "the same read, one worker, placed alike (not pinned)",
            one_load.rps,
        )
    )
    bad[f"{setup.name} two workers"] = two_load.bad
    bad[f"{setup.name} one worker, unpinned"] = one_load.bad
    confirm_load = merge(writes["confirm"])
    figures += _figures(
        f"{setup.name}: order confirm, POST .../{{id}}/confirm, {CONNECTIONS} connections",
        confirm_load,
        merge(writes["baseline"]),
        (0.12, 20.0),
        (setup.driver_name, driver_load, None),
    )
    bad[f"{setup.name} confirm"] = confirm_load.bad
    mixed_load = merge(mixed["mixed"])
    figures += _figures(
        f"{setup.name}: mixed load, {MIXED_CONNECTIONS} connections, 90% reads 10% confirms",
        mixed_load,
        merge(mixed["baseline"]),
        (0.25, None),
        (setup.driver_name, driver_load, None),
    )
    figures.append(
        Figure(
            BENCH,
            f"{setup.name}: mixed load p99 (asyncio), absolute",
            mixed_load.p99_ms,
            "ms",
            target="<= 100 ms",
            met=mixed_load.p99_ms <= 100.0,
        )
    )
    bad[f"{setup.name} mixed"] = mixed_load.bad
    return figures, path, headers


def main() -> int:
    server_cpus, client_cpus = split_cpus()
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        print(f"[{BENCH}] wrk is not installed (Debian: apt-get install wrk); asyncio client")
    figures: list[Figure] = []
    notes: list[str] = []
    bad: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rustok-bench-http-")))
        log = tmp / "server.log"
        bare = stack.enter_context(uvicorn_app("bench_http:bare_app", {}, server_cpus, log))
        sqlite_file = tmp / "bench.db"
        setups = [
            Setup(
                "SQLite",
                f"sqlite+aiosqlite:///{sqlite_file}",
                "bench_http:bare_sqlite_app",
                "bare FastAPI + sqlite3 point read",
                {"RUSTOK_BENCH_SQLITE": str(sqlite_file)},
                (0.5, None),
                None,
            )
        ]
        try:
            from rustok_core.testing import PostgresServer, ServerStartError

            postgres = stack.enter_context(PostgresServer())
        except (ImportError, ServerStartError) as error:
            notes.append(f"PostgreSQL not measured: {str(error).splitlines()[0]}")
        else:
            url = asyncio.run(_create_postgres_database(postgres.url, "bench"))
            setups.append(
                Setup(
                    "PostgreSQL",
                    url,
                    "bench_http:bare_asyncpg_app",
                    "bare FastAPI + asyncpg fetchrow",
                    {"RUSTOK_BENCH_POSTGRES": url.replace("+asyncpg", "")},
                    (0.35, None),
                    0.6,
                )
            )
        reads: dict[str, tuple[str, dict[str, str]]] = {}
        for setup in setups:
            measured, path, headers = _measure(
                setup, bare, server_cpus, client_cpus, use_wrk, log, bad
            )
            reads[setup.name] = (path, headers)
            figures += measured
        costs = asyncio.run(_in_process(setups[0].url, *reads["SQLite"]))

    read_name = "SQLite: GET /api/content/nodes/{id}"
    base = "bare FastAPI constant, in process"
    figures += [
        Figure(
            BENCH, f"in process, no HTTP: {read_name}", costs.read_us, "us/req", base, costs.bare_us
        ),
        Figure(
            BENCH,
            "in process: GET /api/tenant (async tenant dependency)",
            costs.tenant_us,
            "us/req",
            "same route, plain def dependency (worker thread)",
            costs.tenant_thread_us,
        ),
        Figure(
            BENCH,
            "in process: SQLAlchemy session running SELECT 1, same database",
            costs.select_us,
            "us/req",
            base,
            costs.bare_us,
        ),
    ]
    if costs.our_share is not None:
        figures.append(
            Figure(
                BENCH,
                f"in process: share of {read_name} in rustok_* code",
                costs.our_share * 100,
                "%",
            )
        )
    emit(figures)
    if costs.our_top:
        print(f"[{BENCH}] (our functions by self time: {'; '.join(costs.our_top)})")
    for note in notes:
        print(f"[{BENCH}] ({note})")
    print(
        f"[{BENCH}] (ours: `rustok-server serve`, one worker unless named, access log "
        f"off, rate limits on at an unreachable limit; baselines and peer: one uvicorn "
        f"worker with serve's options, {uvicorn_choices()}; {CONNECTIONS} connections, mixed load "
        f"{MIXED_CONNECTIONS}; {ROUNDS} rounds of {SLICE:g} s per route; client: "
        f"{'wrk' if use_wrk else 'asyncio'} (writes and mixed load: asyncio); CPUs "
        f"server/client: {server_cpus or 'any'}/{client_cpus or 'any'})"
    )
    failures = {name: count for name, count in bad.items() if count}
    if failures:
        print(f"[{BENCH}] answers that were not 2xx, or socket errors: {failures}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
