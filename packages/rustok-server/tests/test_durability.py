"""Durability: ``kill -9`` of the server while it is taking writes loses no write it
acknowledged, on SQLite and on PostgreSQL.

The server is the real command (``python -m rustok_server serve``) in its own process.
Clients create orders and confirm them as fast as the server answers; once enough writes
were acknowledged, the process gets SIGKILL with writes in flight. Every order whose
creation was answered 201 must be in the database, and every confirmation answered 200
must be stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from api_fixtures import ApiKeys
from sqlalchemy import select

from rustok_server import Tenant
from rustok_server.commerce.tables import OrderRow
from rustok_server.db import Database

# Starts `rustok-server serve` and kills it with writes in flight.
pytestmark = pytest.mark.slow

CLIENTS = 8
KILL_AFTER = 150  # acknowledged writes before the kill
ORDER = {"customer_id": str(uuid.uuid4()), "currency": "EUR", "amount": "9.99"}


async def _started(stream: asyncio.StreamReader, log: list[str]) -> bool:
    """Read the server's log until uvicorn accepts connections; False if it ended."""
    while line := (await stream.readline()).decode():
        log.append(line)
        if "Application startup complete" in line:
            return True
    return False


async def _drain(stream: asyncio.StreamReader, log: list[str] | None = None) -> None:
    """Keep reading the server's output, so that it never blocks on a full pipe; its lines
    go to ``log`` if given."""
    while line := await stream.readline():
        if log is not None:
            log.append(line.decode(errors="replace"))


async def test_kill_9_during_writes_loses_no_acknowledged_write(
    database_url: str, tenants: dict[str, Tenant], tmp_path: Path, api_keys: ApiKeys
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSTOK_")}
    env["RUSTOK_DATABASE_URL"] = database_url
    env["RUSTOK_RATE_LIMIT_PER_SECOND"] = "0"  # every write the clients can make
    # Port 0: the server binds a free port itself and names it in its banner.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "rustok_server", "serve", "--port", "0"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    log: list[str] = []
    created: set[uuid.UUID] = set()
    confirmed: set[uuid.UUID] = set()
    enough = asyncio.Event()
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert " listening on http://127.0.0.1:" in banner, banner
        url = banner.split(" listening on ")[1].strip()
        assert await asyncio.wait_for(_started(process.stderr, log), 60), "".join(log)
        drain = asyncio.gather(_drain(process.stdout), _drain(process.stderr, log))

        async def client(http: httpx.AsyncClient) -> None:
            while True:
                try:
                    response = await http.post("/api/commerce/orders", json=ORDER)
                    # A refusal would make this loop spin: only a failed write may repeat.
                    assert response.status_code in {201, 500, 503}, response.text
                    if response.status_code != 201:
                        continue
                    order_id = uuid.UUID(response.json()["id"])
                    created.add(order_id)
                    response = await http.post(f"/api/commerce/orders/{order_id}/confirm")
                    if response.status_code == 200:
                        confirmed.add(order_id)
                except httpx.TransportError:
                    return  # the server is gone
                if len(created) + len(confirmed) >= KILL_AFTER:
                    enough.set()

        async with httpx.AsyncClient(
            base_url=url, headers={"X-Tenant-ID": "acme", **api_keys.auth("acme")}, timeout=30
        ) as http:
            clients = [asyncio.create_task(client(http)) for _ in range(CLIENTS)]
            await enough.wait()
            process.send_signal(signal.SIGKILL)  # writes are in flight
            await asyncio.gather(*clients)
        await drain
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    # Killed, not stopped: no shutdown was logged. asyncio reports 255 ("Unknown child
    # process", with a warning) when the exit status was read by another waiter first.
    assert not [line for line in log if "Shutting down" in line or "Finished server" in line]
    assert process.returncode in {-signal.SIGKILL, 255}, "".join(log)

    database = Database(database_url)
    try:
        async with database.reading() as session:
            rows = (await session.execute(select(OrderRow.id, OrderRow.state))).all()
    finally:
        await database.dispose()
    stored = dict(rows)
    assert len(created) >= KILL_AFTER // 2
    assert created <= set(stored), f"lost: {created - set(stored)}"
    assert {order_id: stored[order_id] for order_id in confirmed} == dict.fromkeys(
        confirmed, "confirmed"
    )
