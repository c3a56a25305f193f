"""The frozen-database drill: the database stops answering while the server takes every
kind of request, then comes back.

The server is the real command (``python -m rustok_server serve``) in its own process,
with short deadlines (``RUSTOK_DB_QUERY_TIMEOUT`` and ``RUSTOK_DB_WRITE_TIMEOUT``) and a
low breaker threshold. The database freezes:

- PostgreSQL: a cluster of this test's own (never the session's, which other tests use)
  gets ``SIGSTOP``, the postmaster first, then every process it started; connections stay
  open and nothing answers, like a hung server. ``SIGCONT`` thaws it.
- SQLite: another connection holds the write lock (``BEGIN IMMEDIATE``); ``ROLLBACK``
  thaws it. Reads never wait on SQLite in WAL mode: only writes meet the freeze.

For every route kind (a read, a page, a transition, a create with an ``Idempotency-Key``,
an admin route), rounds of requests are sent while the database is frozen, then after the
thaw until every kind is served again. The drill checks that:

- every request is answered (never a client timeout) within its deadline plus a margin
  only a hang would exceed, with a success, a 503 or a 504: never a 500; each 503 and 504
  is a problem (``application/problem+json``) with ``Retry-After``;
- once the breaker is open, refusals come back without waiting for the database;
- on SQLite the reads are served all along;
- after the thaw every route kind is served again within a few seconds;
- no acknowledged write is lost and no half write is visible: every create answered 201
  can be read; every create, retried with its key after the thaw, exists exactly once
  (a 504 may have committed or not: the key makes the retry safe); every transition is
  either whole (state, version and history record) or absent.

The figures (latencies during the freeze per route kind, recovery time per route kind,
breaker changes from the server's JSON log) are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import queue
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Protocol

import httpx
import pytest
from api_fixtures import (
    NODES,
    ORDERS,
    Json,
    assert_problem,
    create_keys,
    create_postgres_database,
    leaked_secrets,
    ok,
    start_serve,
)

from rustok_core.testing import PostgresServer, ServerStartError
from rustok_server import TenantDirectory
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade

pytestmark = pytest.mark.slow

DEADLINE: Final = 0.5
"""``RUSTOK_DB_QUERY_TIMEOUT`` and ``RUSTOK_DB_WRITE_TIMEOUT`` of the drill's server."""
MARGIN: Final = 1.0
"""What an answer may take beyond its deadline: far more than the server needs, far less
than a hang (the freeze lasts `FROZEN_FOR`)."""
FAILURE_THRESHOLD: Final = 3
FROZEN_FOR: Final = 5.0
ROUND: Final = 0.1
"""Least seconds of a round (one request of each kind), so the request count stays bounded."""
FAST: Final = 0.25
"""Most seconds the median refusal may take while the breaker is open (it waits for
nothing; a wait for the database would take `DEADLINE`)."""
RECOVERY: Final = 5.0
"""Most seconds from the thaw until a route kind is served again (about a second is
expected: the breaker's probe runs once a second)."""
GIVE_UP: Final = 10.0
"""Seconds after the thaw the drill keeps trying a route kind that is not served yet."""
CLIENT_TIMEOUT: Final = 10.0
"""The client's timeout: an answer this late is a hang."""
DRAFTS: Final = 160
"""Drafts made before the freeze: each transition of the drill publishes a fresh one (at
most one a `ROUND` while frozen and until the transitions are served again)."""
KINDS: Final = ("read", "page", "transition", "create", "admin")


# -- the frozen databases ----------------------------------------------------------------------


class FrozenDatabase(Protocol):
    """A migrated database with the tenant ``acme`` and its keys, which can be frozen."""

    name: str
    url: str
    keys: dict[str, str]

    def freeze(self) -> None:
        """Stop the database answering (what waits for it waits until `thaw`)."""
        ...

    def thaw(self) -> None:
        """Let the database answer again (idempotent)."""
        ...


async def _prepared(url: str) -> dict[str, str]:
    """Migrate the database at ``url``, add the tenant ``acme``; its key and the admin key."""
    database = Database(url)
    try:
        await upgrade(database)
        await TenantDirectory(database).create("acme", "Acme")
        return await create_keys(database, ["acme"])
    finally:
        await database.dispose()


@dataclass
class FrozenSqlite:
    """A SQLite file; frozen while another connection holds its write lock."""

    url: str
    keys: dict[str, str]
    path: Path
    name: str = "sqlite"
    holder: sqlite3.Connection | None = None

    def freeze(self) -> None:
        holder = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        self.holder = holder

    def thaw(self) -> None:
        holder, self.holder = self.holder, None
        if holder is not None:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()


@dataclass
class FrozenPostgres:
    """A database on a PostgreSQL cluster of this test's own; frozen while every process
    of the cluster is stopped (``SIGSTOP``)."""

    url: str
    keys: dict[str, str]
    postmaster: int
    name: str = "postgresql"
    stopped: list[int] = field(default_factory=list)

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            if int(fields[1]) == self.postmaster:
                children.append(int(stat.split("/")[2]))
        return [self.postmaster, *children]

    def freeze(self) -> None:
        # The postmaster first (it forks no process after that), then its children,
        # listed again until no new one shows up.
        _signal(self.postmaster, signal.SIGSTOP)
        self.stopped = [self.postmaster]
        while new := [pid for pid in self.processes()[1:] if pid not in self.stopped]:
            for pid in new:
                _signal(pid, signal.SIGSTOP)
            self.stopped.extend(new)

    def thaw(self) -> None:
        # The children first, the postmaster last; every process, not only those stopped
        # (a freeze interrupted half-way).
        postmaster, *children = self.processes()
        for pid in [*children, postmaster]:
            _signal(pid, signal.SIGCONT)
        self.stopped = []


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # a backend that exited meanwhile
        os.kill(pid, signum)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def frozen(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FrozenDatabase]:
    """A fresh database of each kind, ready to be frozen; thawed whatever happens."""
    if request.param == "sqlite":
        path = tmp_path / "rustok.db"
        url = f"sqlite+aiosqlite:///{path}"
        sqlite = FrozenSqlite(url, await _prepared(url), path)
        try:
            yield sqlite
        finally:
            sqlite.thaw()
        return
    try:
        server = PostgresServer().start()  # its own: a SIGSTOP must hit no other test
    except ServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        url = await create_postgres_database(server.url)
        postgres = FrozenPostgres(url, await _prepared(url), server.pid)
        try:
            yield postgres
        finally:
            postgres.thaw()  # a frozen cluster cannot stop
    finally:
        server.stop()


# -- the server under test ---------------------------------------------------------------------


class Pipe:
    """Every line of one of the server's pipes, read by a thread (the server never blocks
    on a full pipe), with when it arrived."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.fresh: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line))
            self.fresh.put(line)
        self.fresh.put("")  # the end

    def next_line(self, timeout: float) -> str:
        """The next line not yet taken ("" at the end)."""
        return self.fresh.get(timeout=timeout)

    def join(self) -> None:
        self._thread.join(timeout=10)

    def breaker_changes(self) -> list[tuple[float, str]]:
        """(when it was read, new state) of every change of the ``database`` breaker the
        server logged."""
        changes = []
        for at, line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(record, dict)
                and record.get("breaker") == "database"
                and "new_state" in record
            ):
                changes.append((at, str(record["new_state"])))
        return changes


@dataclass
class Server:
    url: str
    log: Pipe


@contextlib.contextmanager
def serving(cwd: Path, database: FrozenDatabase) -> Iterator[Server]:
    """``python -m rustok_server serve --port 0`` on ``database``, with the drill's
    deadlines and breaker; stopped (after a thaw) whatever happens."""
    variables = {
        "RUSTOK_DATABASE_URL": database.url,
        "RUSTOK_DB_QUERY_TIMEOUT": str(DEADLINE),
        "RUSTOK_DB_WRITE_TIMEOUT": str(DEADLINE),
        "RUSTOK_BREAKER_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
        "RUSTOK_LOG_FORMAT": "json",
        "RUSTOK_ACCESS_LOG": "false",
        "RUSTOK_RATE_LIMIT_PER_SECOND": "0",
        "RUSTOK_DEMO_TENANT": "false",
    }
    process = start_serve(cwd, "--port", "0", variables=variables)
    assert process.stdout is not None
    assert process.stderr is not None
    out, log = Pipe(process.stdout), Pipe(process.stderr)
    try:
        # Port 0: the server binds a free port itself and names it in its banner.
        banner = out.next_line(timeout=60)
        stderr = "".join(line for _, line in log.lines)
        assert " listening on http://127.0.0.1:" in banner, f"{banner}\n{stderr}"
        yield Server(banner.split(" listening on ")[1].strip(), log)
    finally:
        database.thaw()  # a server waiting on a frozen database may not stop
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.join()
        log.join()
        process.stdout.close()
        process.stderr.close()


# -- the requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request of the drill and its answer (``status`` 0: no answer)."""

    kind: str
    phase: str  # "frozen" or "thawed"
    started: float
    elapsed: float
    status: int
    response: httpx.Response | None
    error: str = ""
    node_id: str = ""  # a transition's node
    key: str = ""  # a create's Idempotency-Key
    body: Json = field(default_factory=dict)  # a create's body

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    @property
    def code(self) -> str:
        """The problem's ``code`` ("" for a success), or why there was no answer."""
        if self.response is None:
            return self.error
        if self.status < 400:
            return ""
        try:
            return str(self.response.json().get("code", ""))
        except ValueError:
            return "not JSON"


@dataclass
class Drill:
    """The client side of the drill: the API's headers, the node it reads, the drafts it
    publishes, and every request it made."""

    http: httpx.AsyncClient
    tenant: dict[str, str]
    admin: dict[str, str]
    node_id: str
    drafts: list[str]
    samples: list[Sample] = field(default_factory=list)

    async def send(self, kind: str, phase: str) -> Sample:
        """One request of route kind ``kind``."""
        node_id, key, body = "", "", {}
        json_body: Json | None = None
        headers = self.tenant
        if kind == "read":
            method, url = "GET", f"{NODES}/{self.node_id}"
        elif kind == "page":
            method, url = "GET", f"{NODES}?limit=10"
        elif kind == "transition":
            node_id = self.drafts.pop()
            method, url = "POST", f"{NODES}/{node_id}/publish"
        elif kind == "create":
            key = f"drill-{uuid.uuid4().hex}"
            body = {"customer_id": str(uuid.uuid4()), "amount": "9.99", "currency": "EUR"}
            method, url, json_body = "POST", ORDERS, body
            headers = {**self.tenant, "Idempotency-Key": key}
        else:
            method, url, headers = "GET", "/api/admin/tenants", self.admin
        started = time.monotonic()
        response: httpx.Response | None = None
        error = ""
        try:
            response = await self.http.request(method, url, headers=headers, json=json_body)
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        sample = Sample(
            kind,
            phase,
            started,
            time.monotonic() - started,
            0 if response is None else response.status_code,
            response,
            error,
            node_id,
            key,
            body,
        )
        self.samples.append(sample)
        return sample

    async def round(self, kinds: tuple[str, ...] | list[str], phase: str) -> list[Sample]:
        """One request of each of ``kinds`` at once; takes at least `ROUND` seconds."""
        started = time.monotonic()
        samples = await asyncio.gather(*(self.send(kind, phase) for kind in kinds))
        await asyncio.sleep(max(0.0, ROUND - (time.monotonic() - started)))
        return samples


async def _warm_up(http: httpx.AsyncClient, tenant: dict[str, str], admin: dict[str, str]) -> Drill:
    """A published node to read, the drafts to publish, and every route kind served once
    (the tenant and both keys are cached before the freeze)."""
    await ok(await http.get("/health/live", timeout=60))  # the app has started
    made = []
    for _ in range(DRAFTS + 1):
        body = {"kind": "article", "title": "Drill", "slug": f"d-{uuid.uuid4().hex}"}
        made.append((await ok(await http.post(NODES, json=body, headers=tenant), 201))["id"])
    node_id, *drafts = made
    await ok(await http.post(f"{NODES}/{node_id}/publish", headers=tenant))
    drill = Drill(http, tenant, admin, node_id, drafts)
    for kind in KINDS:
        sample = await drill.send(kind, "warm-up")
        assert 200 <= sample.status < 300, (kind, sample.status, sample.error)
    drill.samples.clear()
    return drill


# -- the checks --------------------------------------------------------------------------------


def _problems(samples: list[Sample]) -> list[str]:
    """What is wrong with the answers of ``samples``: no answer, a status other than a
    success, 503 or 504, or a 503/504 that is not a problem with ``Retry-After``."""
    wrong = []
    for sample in samples:
        response = sample.response
        what = f"{sample.kind} ({sample.phase}, after {sample.elapsed:.3f} s)"
        if response is None:
            wrong.append(f"{what}: no answer ({sample.error})")
        elif sample.status in (503, 504):
            try:
                assert_problem(response, sample.status)
                assert int(response.headers["retry-after"]) >= 1, response.headers
            except (AssertionError, KeyError, ValueError) as exc:
                wrong.append(f"{what}: {sample.status} is not a retryable problem: {exc!r}")
        elif not 200 <= sample.status < 300:
            wrong.append(f"{what}: {sample.status} {response.text[:300]}")
    return wrong


def _figures(samples: list[Sample]) -> str:
    """p50, p99 and max latency, and the statuses, of ``samples``."""
    if not samples:
        return "no request"
    times = sorted(sample.elapsed for sample in samples)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    statuses: dict[str, int] = {}
    for sample in samples:
        label = f"{sample.status}{' ' + sample.code if sample.code else ''}"
        statuses[label] = statuses.get(label, 0) + 1
    return (
        f"n={len(times)} p50={statistics.median(times) * 1000:.0f} ms "
        f"p99={p99 * 1000:.0f} ms max={times[-1] * 1000:.0f} ms {statuses}"
    )


async def _order_counts(http: httpx.AsyncClient, tenant: dict[str, str]) -> dict[str, int]:
    """How many orders the tenant has per customer."""
    counts: dict[str, int] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await ok(await http.get(ORDERS, params=params, headers=tenant))
        for order in page["items"]:
            counts[order["customer_id"]] = counts.get(order["customer_id"], 0) + 1
        cursor = page["next_cursor"]
        if cursor is None:
            return counts


async def _check_creates(drill: Drill) -> dict[str, int]:
    """Every create acknowledged (201) is stored; every create, retried with its key and
    body, exists exactly once. Returns how many of each status were retried."""
    http, tenant = drill.http, drill.tenant
    outcomes: dict[str, int] = {}
    creates = [sample for sample in drill.samples if sample.kind == "create"]
    for sample in creates:
        headers = {**tenant, "Idempotency-Key": sample.key}
        first = await http.post(ORDERS, json=sample.body, headers=headers)
        stored = await ok(first, 201)
        again = await http.post(ORDERS, json=sample.body, headers=headers)
        assert (await ok(again, 201))["id"] == stored["id"], sample.key
        assert again.headers.get("idempotent-replayed") == "true", again.headers
        assert stored["customer_id"] == sample.body["customer_id"]
        await ok(await http.get(f"{ORDERS}/{stored['id']}", headers=tenant))
        if sample.status == 201:
            assert sample.response is not None
            acknowledged = sample.response.json()["id"]
            assert stored["id"] == acknowledged, f"{sample.key}: acknowledged create replaced"
            assert first.headers.get("idempotent-replayed") == "true", first.headers
        replayed = "replayed" if "idempotent-replayed" in first.headers else "created"
        label = f"{sample.status} then {replayed}"
        outcomes[label] = outcomes.get(label, 0) + 1
    counts = await _order_counts(http, tenant)
    twice = {s.key: counts.get(str(s.body["customer_id"]), 0) for s in creates}
    assert all(count == 1 for count in twice.values()), {k: c for k, c in twice.items() if c != 1}
    return outcomes


async def _check_transitions(drill: Drill) -> dict[str, int]:
    """Every publication is whole (state, version, one history record) or absent; one
    acknowledged (200) is whole. Returns how many of each outcome per status."""
    http, tenant = drill.http, drill.tenant
    outcomes: dict[str, int] = {}
    for sample in drill.samples:
        if sample.kind != "transition":
            continue
        url = f"{NODES}/{sample.node_id}"
        node = await ok(await http.get(url, headers=tenant))
        history = (await ok(await http.get(f"{url}/history", headers=tenant)))["items"]
        steps = [(r["trigger"], r["from_state"], r["to_state"], r["version"]) for r in history]
        whole = (node["state"], node["version"], steps) == (
            "published",
            2,
            [("publish", "draft", "published", 2)],
        )
        absent = (node["state"], node["version"], steps) == ("draft", 1, [])
        assert whole or absent, f"half a publication ({sample.status}): {node} {history}"
        if sample.status == 200:
            assert whole, f"an acknowledged publication is lost: {node} {history}"
        label = f"{sample.status} {'published' if whole else 'draft'}"
        outcomes[label] = outcomes.get(label, 0) + 1
    return outcomes


def _report(
    name: str,
    during: list[Sample],
    recovered: dict[str, float],
    changes: list[tuple[float, str]],
    frozen_at: float,
    thawed_at: float,
) -> str:
    """The drill's figures: latencies while frozen and recovery time, per route kind, and
    the breaker's changes (seconds since the freeze)."""
    lines = [f"frozen-database drill on {name}:"]
    for kind in KINDS:
        lines.append(f"  {kind:10} frozen: {_figures([s for s in during if s.kind == kind])}")
    for kind in KINDS:
        took = f"{recovered[kind]:.3f} s" if kind in recovered else "never"
        lines.append(f"  {kind:10} served again {took} after the thaw")
    states = ", ".join(f"{state} at {at - frozen_at:+.3f} s" for at, state in changes)
    lines.append(f"  breaker: {states or 'no change'} (thawed at {thawed_at - frozen_at:+.3f} s)")
    return "\n".join(lines)


# -- the drill ---------------------------------------------------------------------------------


async def test_frozen_database_drill(frozen: FrozenDatabase, tmp_path: Path) -> None:
    keys = frozen.keys
    tenant = {"X-Tenant-ID": "acme", "Authorization": f"Bearer {keys['acme']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with serving(tmp_path, frozen) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
            drill = await _warm_up(http, tenant, admin)

            frozen_at = time.monotonic()
            frozen.freeze()
            try:
                while time.monotonic() - frozen_at < FROZEN_FOR:
                    await drill.round(KINDS, "frozen")
            finally:
                frozen.thaw()
            thawed_at = time.monotonic()

            # Every route kind again, until each is served.
            pending = list(KINDS)
            recovered: dict[str, float] = {}
            while pending and time.monotonic() - thawed_at < GIVE_UP and drill.drafts:
                for sample in await drill.round(pending, "thawed"):
                    if 200 <= sample.status < 300:
                        recovered[sample.kind] = sample.ended - thawed_at
                        pending.remove(sample.kind)

            during = [sample for sample in drill.samples if sample.phase == "frozen"]
            changes = server.log.breaker_changes()
            print(_report(frozen.name, during, recovered, changes, frozen_at, thawed_at))

            # Every request answered: a success, or a retryable problem; never a 500.
            wrong = _problems(drill.samples)
            assert not wrong, "\n".join(wrong[:20])
            assert not pending, f"not served again {GIVE_UP:g} s after the thaw: {pending}"

            # No acknowledged write lost, no half write visible.
            creates = await _check_creates(drill)
            transitions = await _check_transitions(drill)
            print(f"  creates, retried after the thaw: {creates}")
            print(f"  transitions, read after the thaw: {transitions}")

            # No request waited for the frozen database past its deadline.
            slow = [s for s in during if s.elapsed > DEADLINE + MARGIN]
            assert not slow, [
                f"{s.kind} sent {s.started - frozen_at:+.3f} s after the freeze: "
                f"{s.status} {s.code} after {s.elapsed:.3f} s"
                for s in slow
            ]
            if frozen.name == "sqlite":  # a reader never waits for the write lock
                reads = [s for s in during if s.kind in ("read", "page")]
                assert all(s.status == 200 for s in reads), _figures(reads)

            # The breaker opened during the freeze; its refusals then waited for nothing.
            assert any(state == "open" for at, state in changes if at < thawed_at), (
                f"the database breaker never opened during the freeze: {changes}"
            )
            refused = [s for s in during if s.code == "DATABASE_UNAVAILABLE"]
            assert refused, "no request was refused while the breaker was open"
            opened = min(s.ended for s in refused)
            waited = sorted(s.elapsed for s in refused if s.started >= opened)
            assert statistics.median(waited) < FAST, waited

            # Served again soon after the thaw; the breaker closed.
            late = {kind: took for kind, took in recovered.items() if took > RECOVERY}
            assert not late, late
            closed = [at for at, state in server.log.breaker_changes() if state == "closed"]
            assert any(at > thawed_at for at in closed), server.log.breaker_changes()
    assert not leaked_secrets([line for _, line in server.log.lines], keys.values())
