"""Expired idempotency records are purged in bounded batches, on SQLite and on
PostgreSQL: the table shrinks, the records still answering retries stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from rustok_server import Tenant
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.http.idempotency import IdempotencyPurger, IdempotencyRow, purge_expired

EXPIRED = 25
LIVE = 3


async def _fill(database: Database, tenant_id: uuid.UUID) -> None:
    now = utcnow()
    async with database.writing() as session:
        for n in range(EXPIRED + LIVE):
            expires = now - timedelta(minutes=1) if n < EXPIRED else now + timedelta(hours=1)
            session.add(
                IdempotencyRow(
                    tenant_id=tenant_id,
                    scope="create-order",
                    key=f"key-{n}",
                    request_hash="0" * 64,
                    status_code=201,
                    body="{}",
                    headers={},
                    created_at=expires - timedelta(hours=24),
                    expires_at=expires,
                )
            )
        await session.commit()


async def _count(database: Database) -> int:
    async with database.reading() as session:
        return int(
            (await session.execute(select(func.count()).select_from(IdempotencyRow))).scalar_one()
        )


async def test_expired_records_are_purged_in_bounded_batches(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    try:
        await _fill(database, tenants["acme"].id)
        sizes = [await _count(database)]
        deleted = []
        while (n := await purge_expired(database, batch=10)) > 0:
            deleted.append(n)
            sizes.append(await _count(database))
    finally:
        await database.dispose()
    assert deleted == [10, 10, 5]
    assert sizes == [EXPIRED + LIVE, EXPIRED + LIVE - 10, EXPIRED + LIVE - 20, LIVE]


async def test_the_background_purger_empties_the_backlog(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    purger = IdempotencyPurger(database, interval=3600, batch=7, first_after=0)
    try:
        await _fill(database, tenants["acme"].id)
        purger.start()
        await purger.passes.wait()
        remaining = await _count(database)
    finally:
        await purger.stop()
        await database.dispose()
    assert (purger.purged, remaining) == (EXPIRED, LIVE)
