"""``Idempotency-Key``: a retried request returns the first result instead of acting twice.

The first successful response of a request sent with a key is stored, per tenant and
operation, in the same transaction as the change it reports, and kept for
`DEFAULT_TTL`. A retry with the same key and the same body gets that response again
(with ``Idempotent-Replayed: true``); the same key with another body is refused (422),
since answering it with the first result would be wrong. Two requests with one key that
race are decided by the table's primary key: one commits, the other rolls back
everything it did and replays the winner's response.

Expired records are deleted in the background (`IdempotencyPurger`), in bounded batches
(`purge_expired`), so a table whose clients send a fresh key per request stays as large
as one `DEFAULT_TTL` of traffic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import Header
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Uuid, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from rustok_server.background import BackgroundTask
from rustok_server.db import ConstraintError, Database, SessionStatements, Statements
from rustok_server.db.base import TENANT_FK, Base, UtcDateTime, utcnow
from rustok_server.errors import IdempotencyKeyReusedError, InvalidIdempotencyKeyError

__all__ = [
    "DEFAULT_TTL",
    "IDEMPOTENCY_HEADER",
    "PURGE_BATCH",
    "PURGE_INTERVAL",
    "REPLAYED_HEADER",
    "IdempotencyKey",
    "IdempotencyPurger",
    "IdempotencyRow",
    "IdempotentRequest",
    "commit_once",
    "purge_expired",
    "replay_or_raise",
]

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
"""The request header that makes a POST safe to repeat."""
REPLAYED_HEADER: Final = "Idempotent-Replayed"
"""The response header (``true``) of an answer replayed for a repeated ``Idempotency-Key``."""
DEFAULT_TTL: Final = timedelta(hours=24)
"""How long a stored response answers retries."""
PURGE_BATCH: Final = 500
"""Expired records deleted per transaction: a short write, whatever the backlog."""
PURGE_INTERVAL: Final = 60.0
"""Seconds between two purges of expired records."""

_log = logging.getLogger(__name__)

_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")
_KEPT_HEADERS: Final = ("etag", "location")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="A unique key per operation (e.g. a UUID); a retry with the same key "
        "returns the first result instead of acting twice. Kept for 24 hours.",
    ),
]
"""The optional ``Idempotency-Key`` request header."""


class IdempotencyRow(Base):
    """The first result of a request sent with an ``Idempotency-Key``, until it expires.

    ``scope`` names the operation (``POST /api/commerce/orders``, or the payment of one
    order); ``request_hash`` is the SHA-256 of the request body, so that the same key
    sent with another body is refused instead of answered with the wrong result.
    """

    __tablename__ = "idempotency_keys"
    # The purge's scan, oldest expiry first (migration 0003).
    __table_args__: tuple[Index, ...] = (Index("ix_idempotency_keys_expires", "expires_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer(), nullable=False)
    body: Mapped[str] = mapped_column(String(), nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """One request's key, the operation it is for and the fingerprint of its body.

    Args:
        tenant_id: the tenant of the request.
        scope: the operation, e.g. ``"create-order"`` or ``"pay:<order id>"``.
        key: the client's ``Idempotency-Key``.
        fingerprint: SHA-256 (hex) of the request's canonical body.
        ttl: how long the stored response answers retries.
    """

    tenant_id: uuid.UUID
    scope: str
    key: str
    fingerprint: str
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def of(
        cls, key: str | None, tenant_id: uuid.UUID, scope: str, body: object
    ) -> IdempotentRequest | None:
        """The idempotent request for header value ``key``, or ``None`` without a key.

        ``body`` is any JSON-ready value: its canonical JSON is fingerprinted.

        Raises:
            InvalidIdempotencyKeyError: the key is malformed.
        """
        if key is None:
            return None
        if not _KEY.fullmatch(key):
            raise InvalidIdempotencyKeyError(key)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return cls(tenant_id, scope, key, hashlib.sha256(canonical.encode()).hexdigest())

    async def replay(self, statements: Statements | AsyncSession) -> Response | None:
        """The stored response of this key, or ``None`` when there is none (or it expired,
        in which case it is deleted so the key can be used again).

        Raises:
            IdempotencyKeyReusedError: the key was stored for another body.
        """
        run = _statements(statements)
        sql = _SQL[run.dialect]
        rows = await run.fetch(sql.select, [utcnow(), self.tenant_id, self.scope, self.key])
        if not rows:
            return None
        expired, request_hash, status_code, body, stored_headers = rows[0]
        if expired:
            await run.execute(sql.delete, [self.tenant_id, self.scope, self.key])
            return None
        if request_hash != self.fingerprint:
            raise IdempotencyKeyReusedError(self.key, self.scope)
        kept = json.loads(stored_headers) if isinstance(stored_headers, str) else stored_headers
        headers = {str(k): str(v) for k, v in kept.items()}
        headers[REPLAYED_HEADER] = "true"
        return Response(
            str(body).encode(), int(status_code), headers, media_type="application/json"
        )

    async def remember(self, statements: Statements | AsyncSession, response: Response) -> None:
        """Store ``response`` in the unit of work, to be committed with the change it
        reports.

        Raises:
            ConstraintError: the key is stored already (another request got there first).
        """
        run = _statements(statements)
        now = utcnow()
        body = bytes(response.body).decode()
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        values = [
            self.tenant_id,
            self.scope,
            self.key,
            self.fingerprint,
            response.status_code,
            body,
            kept,
            now,
            now + self.ttl,
        ]
        await run.execute(_SQL[run.dialect].insert, values)


@dataclass(frozen=True, slots=True)
class _Sql:
    select: str
    delete: str
    insert: str


def _sql(marks: list[str]) -> _Sql:
    where = f"tenant_id = {marks[1]} AND scope = {marks[2]} AND key = {marks[3]}"
    delete_where = f"tenant_id = {marks[0]} AND scope = {marks[1]} AND key = {marks[2]}"
    columns = "tenant_id, scope, key, request_hash, status_code, body, headers, created_at"
    return _Sql(
        select=f"SELECT expires_at <= {marks[0]}, request_hash, status_code, body, headers"
        f" FROM idempotency_keys WHERE {where}",
        delete=f"DELETE FROM idempotency_keys WHERE {delete_where}",
        insert=f"INSERT INTO idempotency_keys ({columns}, expires_at)"
        f" VALUES ({', '.join(marks[:9])})",
    )


# The statements of the records, built once per dialect.
_SQL: Final = {
    "sqlite": _sql(["?"] * 9),
    "postgresql": _sql([f"${n}" for n in range(1, 10)]),
}


def _statements(statements: Statements | AsyncSession) -> Statements:
    if isinstance(statements, AsyncSession):
        return SessionStatements(statements)
    return statements


async def commit_once(
    statements: Statements, request: IdempotentRequest | None, response: Response
) -> Response:
    """Commit the unit's change with ``response`` stored under the request's key.

    When another request with the same key got there first, this change is rolled back
    and that request's response is returned instead.
    """
    if request is None:
        await statements.commit()
        return response
    try:
        await request.remember(statements, response)
    except ConstraintError:
        await statements.rollback()
        replayed = await request.replay(statements)
        if replayed is None:
            raise
        return replayed
    await statements.commit()
    return response


async def replay_or_raise(
    statements: Statements, request: IdempotentRequest | None, error: Exception
) -> Response:
    """After ``error`` (a lost race, a refused transition): roll back, and return the
    response stored under the request's key if the same request already succeeded;
    otherwise raise ``error``."""
    if request is None:
        raise error
    await statements.rollback()
    replayed = await request.replay(statements)
    if replayed is None:
        raise error
    return replayed


async def purge_expired(
    database: Database, *, batch: int = PURGE_BATCH, now: datetime | None = None
) -> int:
    """Delete up to ``batch`` records that expired by ``now`` (default: the current
    time), in one short write transaction; the number deleted."""
    table = IdempotencyRow
    expired = (
        select(table.tenant_id, table.scope, table.key)
        .where(table.expires_at <= (now if now is not None else utcnow()))
        .order_by(table.expires_at)
        .limit(batch)
    )
    statement = delete(table).where(tuple_(table.tenant_id, table.scope, table.key).in_(expired))
    async with database.writing() as session:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        await session.commit()
    return int(getattr(result, "rowcount", 0))


class IdempotencyPurger:
    """Purges expired records every ``interval`` seconds, ``batch`` at a time until none
    is left, yielding to the requests between two batches.

    Args:
        database: the database of the records.
        interval: seconds between two purges.
        batch: records deleted per transaction.
        first_after: seconds from `start` to the first purge (default: ``interval``,
            so that start-up does not wait for it).
    """

    def __init__(
        self,
        database: Database,
        *,
        interval: float = PURGE_INTERVAL,
        batch: int = PURGE_BATCH,
        first_after: float | None = None,
    ) -> None:
        self.database = database
        self.interval = interval
        self.batch = batch
        self.first_after: float = interval if first_after is None else first_after
        self.purged: int = 0
        """Records deleted since start."""
        self.passes: asyncio.Event = asyncio.Event()
        """Set after each complete purge (cleared by whoever waits for the next one)."""
        self._background = BackgroundTask(self._run)

    async def purge(self) -> int:
        """Delete every expired record, batch by batch; the number deleted."""
        total = 0
        while True:
            deleted = await purge_expired(self.database, batch=self.batch)
            total += deleted
            if deleted < self.batch:
                break
            await asyncio.sleep(0)  # the requests waiting for the writer go first
        self.purged += total
        return total

    async def _run(self) -> None:
        await asyncio.sleep(self.first_after)
        while True:
            try:
                await self.purge()
            except Exception:  # the database is away: try again next time
                _log.warning("purging expired idempotency records failed", exc_info=True)
            self.passes.set()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start purging in the background (the first purge after ``first_after``)."""
        self._background.start()

    async def stop(self) -> None:
        """Stop purging; waits for the task to end."""
        await self._background.stop()
