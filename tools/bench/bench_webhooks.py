"""Webhooks: what subscribed endpoints cost a transition, and how fast the outbox drains.

Every server is started with ``rustok-server serve`` on its embedded SQLite default (a
file per run), with the settings a local receiver needs (``http://`` and loopback
allowed), on one CPU; the client and the receiver run on the other.

- **A transition with two subscribed endpoints**: one keep-alive client confirming
  orders in turn (each confirmation writes the order, its history row, its event and its
  two deliveries in one transaction) while ``rustok-server deliver`` sends the deliveries
  to a fast local receiver from the other CPU (the server runs with
  ``RUSTOK_WEBHOOKS=false``, as DEPLOYMENT.md advises when requests must not share their
  CPU with webhooks); beside the same client on a server whose tenant has no endpoint.
  Target: at most 1.2x.
- **The same, delivered by the server itself** (its own deliverer, on its one CPU): what
  sending two webhooks per transition costs that CPU. No target: it is the transition and
  two outgoing HTTP requests.
- Rounds interleave the servers; one with endpoints has delivered everything before the
  next server is measured.
- **Delivery throughput**: a backlog of deliveries written while no process delivered
  (``RUSTOK_WEBHOOKS=false``), then drained by one ``serve`` process to the receiver;
  beside a plain aiohttp client (the deliverer's own HTTP client, with nothing around it:
  no claim, signature, breaker or record) posting the same bodies to the same receiver with as many
  requests in flight as the deliverer allows (two endpoints, ``webhook_concurrency``
  each), on the same CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _report import Figure, emit
from bench_http import (
    SERVE_SETTINGS,
    STARTUP_TIMEOUT,
    Load,
    Server,
    _confirmations,
    _create_orders,
    _prepare_database,
    asyncio_load,
    call,
    serve,
    split_cpus,
    uvicorn_app,
)

BENCH = "webhooks"
QUICK = os.environ.get("RUSTOK_BENCH_QUICK") == "1"
ROUNDS = 1 if QUICK else 3
PER_ROUND = 400 if QUICK else 1000  # confirmations per server and round
BACKLOG = 512 if QUICK else 1504  # orders created while nothing delivers: 2 deliveries each
ENDPOINTS = 2
CONCURRENCY = 4  # the deliverer's per-endpoint bulkhead (webhook_concurrency's default)
DRAIN_BOUND = 300.0  # seconds a drain may take before the run is failed
TARGET = 1.2
WEBHOOK_SETTINGS = {
    **SERVE_SETTINGS,
    "RUSTOK_WEBHOOK_ALLOW_HTTP": "true",
    "RUSTOK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    # Deliveries follow their transitions within 0.1 s instead of 1 s, so that they are
    # sent while the round that wrote them is measured, not after it.
    "RUSTOK_WEBHOOK_POLL_INTERVAL": "0.1",
}


def _pending(database: Path) -> tuple[int, int]:
    """(pending, delivered) deliveries in the SQLite file, read beside the server."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = dict(
            db.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall()
        )
    return int(rows.get("pending", 0)), int(rows.get("delivered", 0))


def _drained(database: Path, expected: int) -> float:
    """Wait until ``expected`` deliveries are delivered and none is pending; seconds."""
    start = time.perf_counter()
    while True:
        pending, delivered = _pending(database)
        if not pending and delivered >= expected:
            return time.perf_counter() - start
        if time.perf_counter() - start > DRAIN_BOUND:
            raise RuntimeError(f"{pending} deliveries still pending after {DRAIN_BOUND:g} s")
        time.sleep(0.02)


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process ``pid`` has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _subscribe(server: Server, headers: dict[str, str], receiver: str) -> None:
    for n in range(ENDPOINTS):
        body = {"url": f"{receiver}/in/{n}", "event_types": ["*"]}
        status, answer = asyncio.run(
            call(server.port, "POST", "/api/webhooks/endpoints", headers, body)
        )
        if status != 201:
            raise RuntimeError(f"creating an endpoint answered {status}: {answer}")


@contextlib.contextmanager
def _deliver(env: dict[str, str], cpus: set[int] | None, log: Path) -> Iterator[None]:
    """``rustok-server deliver`` with ``env``, on ``cpus``, until the block ends."""
    command = Path(sys.executable).with_name("rustok-server")
    found = str(command) if command.exists() else shutil.which("rustok-server")
    if found is None:
        raise RuntimeError("the rustok-server command is not installed")

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    with log.open("ab") as errors:
        process = subprocess.Popen(
            [found, "deliver", "--log-level", "warning"],
            env={**os.environ, **env},
            preexec_fn=pin,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            assert process.stdout is not None
            deadline = time.monotonic() + STARTUP_TIMEOUT
            if b"delivering webhooks" not in process.stdout.readline():
                raise RuntimeError(f"rustok-server deliver did not start: see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError("rustok-server deliver was slow to start")
            yield
        finally:
            process.terminate()
            process.wait(10)


class _Case:
    """One server and its database: orders to confirm, endpoints or none, delivered by
    the server itself or by ``rustok-server deliver`` on ``deliver_cpus``."""

    def __init__(
        self,
        name: str,
        folder: Path,
        cpus: set[int] | None,
        receiver: str | None,
        stack: contextlib.ExitStack,
        *,
        deliver_cpus: set[int] | bool | None = False,
    ) -> None:
        self.file = folder / f"{name}.db"
        url = f"sqlite+aiosqlite:///{self.file}"
        _tenant, self.headers = asyncio.run(_prepare_database(url))
        env = {**WEBHOOK_SETTINGS, "RUSTOK_DATABASE_URL": url}
        if deliver_cpus is not False:
            env["RUSTOK_WEBHOOKS"] = "false"
        self.server = stack.enter_context(serve(env, cpus, folder / f"{name}.log"))
        if deliver_cpus is not False:
            assert deliver_cpus is not True
            stack.enter_context(_deliver(env, deliver_cpus, folder / f"{name}-deliver.log"))
        orders = asyncio.run(_create_orders(self.server.port, ROUNDS * PER_ROUND, self.headers))
        if orders is None:
            raise RuntimeError("the order API is not there")
        self.orders = orders
        self.receiver = receiver
        if receiver is not None:  # after the orders: only the confirmations are delivered
            _subscribe(self.server, self.headers, receiver)
        self.confirmed = 0
        self.loads: list[Load] = []
        self.cpu_seconds = 0.0

    def round(self) -> None:
        batch = self.orders[self.confirmed : self.confirmed + PER_ROUND]
        self.confirmed += len(batch)
        cpu = _cpu_seconds(self.server.process.pid)
        load = asyncio.run(
            asyncio_load(
                self.server.port,
                _confirmations(batch, self.headers),
                seconds=None,
                connections=1,
            )
        )
        if load.bad:
            raise RuntimeError(f"{load.bad} confirmations failed")
        self.loads.append(load)
        if self.receiver is not None:
            _drained(self.file, ENDPOINTS * self.confirmed)
        # The server's CPU for the round's transitions and, when it delivers them itself,
        # their deliveries.
        self.cpu_seconds += _cpu_seconds(self.server.process.pid) - cpu

    @property
    def ms_per_request(self) -> float:
        requests = sum(load.requests for load in self.loads)
        return sum(load.seconds for load in self.loads) * 1e3 / requests

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1e3 / sum(load.requests for load in self.loads)


def _backlog(folder: Path, cpus: set[int] | None, receiver: str) -> Path:
    """A database with ``BACKLOG`` orders' deliveries pending, written with no deliverer
    (``BACKLOG`` is a multiple of the connections that create them)."""
    file = folder / "backlog.db"
    url = f"sqlite+aiosqlite:///{file}"
    _tenant, headers = asyncio.run(_prepare_database(url))
    env = {**WEBHOOK_SETTINGS, "RUSTOK_DATABASE_URL": url, "RUSTOK_WEBHOOKS": "false"}
    with serve(env, cpus, folder / "backlog.log") as server:
        _subscribe(server, headers, receiver)
        if asyncio.run(_create_orders(server.port, BACKLOG, headers)) is None:
            raise RuntimeError("the order API is not there")
    pending, _ = _pending(file)
    if pending != ENDPOINTS * BACKLOG:
        raise RuntimeError(f"{pending} deliveries pending, expected {ENDPOINTS * BACKLOG}")
    return file


def _drain(folder: Path, file: Path, cpus: set[int] | None) -> float:
    """Seconds one ``serve`` process takes to deliver the backlog of ``file``."""
    env = {**WEBHOOK_SETTINGS, "RUSTOK_DATABASE_URL": f"sqlite+aiosqlite:///{file}"}
    with serve(env, cpus, folder / "drain.log"):
        return _drained(file, ENDPOINTS * BACKLOG)


def _bodies(file: Path) -> list[bytes]:
    with contextlib.closing(sqlite3.connect(f"file:{file}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT e.body FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
        ).fetchall()
    return [str(row[0]).encode() for row in rows]


async def _plain_posts(receiver: str, bodies: list[bytes]) -> float:
    """Seconds a plain aiohttp client takes to post ``bodies``, ``ENDPOINTS * CONCURRENCY``
    in flight."""
    import aiohttp

    queue = iter(bodies)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as client:

        async def worker(n: int) -> None:
            for body in queue:
                url = f"{receiver}/in/{n % ENDPOINTS}"
                async with client.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 204:
                        raise RuntimeError(f"the receiver answered {answer.status}")

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(ENDPOINTS * CONCURRENCY)))
        return time.perf_counter() - start


def main() -> int:
    server_cpus, client_cpus = split_cpus()
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rustok-webhooks-")))
        receiver = stack.enter_context(
            uvicorn_app("webhook_receiver:app", {}, client_cpus, folder / "receiver.log")
        ).url
        without = _Case("without", folder, server_cpus, None, stack)
        apart = _Case("apart", folder, server_cpus, receiver, stack, deliver_cpus=client_cpus)
        itself = _Case("itself", folder, server_cpus, receiver, stack)
        for _ in range(ROUNDS):
            without.round()
            apart.round()
            itself.round()
        backlog = _backlog(folder, server_cpus, receiver)
        bodies = _bodies(backlog)
        drain_seconds = _drain(folder, backlog, server_cpus)
        if server_cpus is not None:
            os.sched_setaffinity(0, server_cpus)  # the baseline client where the server ran
        plain_seconds = asyncio.run(_plain_posts(receiver, bodies))
        if client_cpus is not None:
            os.sched_setaffinity(0, client_cpus)

    ratio = apart.cpu_ms_per_request / without.cpu_ms_per_request
    delivered = ENDPOINTS * BACKLOG
    confirm = f"POST /orders/{{id}}/confirm, {ENDPOINTS} endpoints subscribed"
    emit(
        [
            Figure(
                BENCH,
                f"{confirm}: server CPU per transition, delivered by `rustok-server deliver`",
                apart.cpu_ms_per_request,
                "ms/req",
                "the same, no endpoint",
                without.cpu_ms_per_request,
                target=f"<= {TARGET}x",
                met=ratio <= TARGET,
            ),
            Figure(
                BENCH,
                f"{confirm}: one client's latency, delivered by `rustok-server deliver`",
                apart.ms_per_request,
                "ms/req",
                "the same, no endpoint",
                without.ms_per_request,
            ),
            Figure(
                BENCH,
                f"{confirm}: server CPU per transition and its 2 deliveries, by the server",
                itself.cpu_ms_per_request,
                "ms/req",
                "the same, no endpoint",
                without.cpu_ms_per_request,
            ),
            Figure(
                BENCH,
                f"{confirm}: one client's latency, delivered by the server itself",
                itself.ms_per_request,
                "ms/req",
                "the same, no endpoint",
                without.ms_per_request,
            ),
            Figure(
                BENCH,
                f"deliveries to a fast local receiver, one serve process ({delivered} queued)",
                delivered / drain_seconds,
                "deliveries/s",
                f"plain aiohttp client, {ENDPOINTS * CONCURRENCY} in flight",
                len(bodies) / plain_seconds,
            ),
        ]
    )
    print(
        f"[{BENCH}] (ours: `rustok-server serve`, SQLite, access log off; {ROUNDS} rounds of "
        f"{PER_ROUND} confirmations per server; CPUs server/client+receiver: "
        f"{server_cpus or 'any'}/{client_cpus or 'any'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
