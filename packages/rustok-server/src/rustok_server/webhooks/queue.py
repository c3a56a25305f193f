"""The delivery queue in the database: claiming due deliveries, recording each attempt's
outcome, disabling an endpoint that keeps failing, the backlog's figures and the purge.

Every write is one short transaction through the database's one write path
(`rustok_server.db.Database.begin`): on SQLite the process's writer connection, taken in
turn, in a ``BEGIN IMMEDIATE`` transaction that holds the file's write lock; on
PostgreSQL a pooled connection.

**The claim.** A process claims a batch of due deliveries by setting their
``claimed_until`` (now plus the lease) in one statement::

    UPDATE webhook_deliveries SET claimed_until = :until
    WHERE id IN (SELECT id FROM webhook_deliveries
                 WHERE status = 'pending' AND next_attempt_at <= :now
                   AND (claimed_until IS NULL OR claimed_until < :now)
                 ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING id

On PostgreSQL ``FOR UPDATE SKIP LOCKED`` makes concurrent claimers take disjoint rows
without waiting for each other; on SQLite (no ``FOR UPDATE``) the write lock makes the
claims take turns. A claimed delivery is not due for anyone else until its claim expires:
a process killed mid-delivery loses nothing, another one delivers it after the lease
(at least once). Every outcome is written only while the claim is still this process's
(``WHERE claimed_until = :claim``), and gives the claim back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rustok_server.db import Database
from rustok_server.db.statements import encode
from rustok_server.observability.tracing import statement_span
from rustok_server.webhooks.tables import DeliveryStatus

__all__ = [
    "PURGE_BATCH",
    "Attempted",
    "Backlog",
    "Claimed",
    "DeliveryQueue",
    "EndpointState",
]

PURGE_BATCH: Final = 500
"""Events deleted per purge transaction."""

_PENDING = DeliveryStatus.PENDING
_DUE = (
    f"status = '{_PENDING}' AND next_attempt_at <= ?"
    " AND (claimed_until IS NULL OR claimed_until < ?)"
)
_CLAIM = (
    "UPDATE webhook_deliveries SET claimed_until = ? WHERE id IN (SELECT id FROM"
    f" webhook_deliveries WHERE {_DUE} ORDER BY next_attempt_at LIMIT ?{{lock}}) RETURNING id"
)
_PEEK = f"SELECT 1 FROM webhook_deliveries WHERE {_DUE} LIMIT 1"
_LOAD = (
    "SELECT d.id, d.tenant_id, d.attempts, d.endpoint_id, ev.id, ev.type, ev.body,"
    " ev.traceparent, ep.url,"
    " ep.enabled, ep.disabled_reason, ep.secret, ep.previous_secret, ep.previous_secret_until,"
    " ep.failing_since"
    " FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id"
    " LEFT JOIN webhook_endpoints ep ON ep.id = d.endpoint_id"
    " WHERE d.id IN ({ids}) ORDER BY d.next_attempt_at"
)
_MINE = f" WHERE id = ? AND claimed_until = ? AND status = '{_PENDING}'"
_ATTEMPTED = (
    "attempts = attempts + 1, last_attempt_at = ?, last_status_code = ?, last_error = ?,"
    " response_excerpt = ?, claimed_until = NULL"
)
_DELIVERED = (
    f"UPDATE webhook_deliveries SET status = '{DeliveryStatus.DELIVERED}', delivered_at = ?,"
    f" {_ATTEMPTED}{_MINE}"
)
_RETRIED = f"UPDATE webhook_deliveries SET next_attempt_at = ?, {_ATTEMPTED}{_MINE}"
_FAILED = f"UPDATE webhook_deliveries SET status = '{DeliveryStatus.FAILED}', {_ATTEMPTED}{_MINE}"
_SKIPPED = (
    f"UPDATE webhook_deliveries SET status = '{DeliveryStatus.FAILED}', last_error = ?,"
    f" claimed_until = NULL{_MINE}"
)
_POSTPONED = f"UPDATE webhook_deliveries SET next_attempt_at = ?, claimed_until = NULL{_MINE}"
_SUCCEEDING = (
    "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL"
)
_FAILING = "UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL"
_DISABLE = (
    "UPDATE webhook_endpoints SET enabled = ?, disabled_reason = ?, version = version + 1,"
    " updated_at = ? WHERE id = ? AND enabled AND failing_since IS NOT NULL"
    " AND failing_since <= ?"
)
_FAIL_PENDING = (
    f"UPDATE webhook_deliveries SET status = '{DeliveryStatus.FAILED}', last_error = ?,"
    f" claimed_until = NULL WHERE endpoint_id = ? AND status = '{_PENDING}'"
)
_BACKLOG = f"SELECT count(*), min(created_at) FROM webhook_deliveries WHERE status = '{_PENDING}'"
_PURGE = (
    "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e"
    " WHERE e.created_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
    f" WHERE d.event_id = e.id AND (d.status = '{_PENDING}' OR d.last_attempt_at >= ?))"
    " ORDER BY e.created_at LIMIT ?)"
)


_Statements = Sequence[tuple[str, Sequence[object]]]


def _numbered(sql: str, dialect: str) -> str:
    """``sql`` with ``?`` placeholders numbered (``$1``, ``$2``, ...) on PostgreSQL."""
    if dialect == "sqlite":
        return sql
    pieces = sql.split("?")
    return "".join(f"{piece}${n}" for n, piece in enumerate(pieces[:-1], 1)) + pieces[-1]


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EndpointState:
    """What an attempt needs of its endpoint, read when the delivery was claimed."""

    id: uuid.UUID
    url: str
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failing_since: datetime | None
    """Since when it has failed without a success (``None``: its last attempt succeeded)."""

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign at ``now``: the current one, and the previous one while
        its grace time after a rotation lasts."""
        until = self.previous_secret_until
        if self.previous_secret and until is not None and until > now:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One delivery this process claimed, with its event and its endpoint.

    Attributes:
        endpoint: ``None`` if the endpoint was deleted meanwhile.
        claim: the ``claimed_until`` this process wrote: its claim, until then.
        traceparent: the trace of the change that wrote the event (tracing on), which
            the attempt continues.
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    attempts: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str
    endpoint: EndpointState | None
    claim: datetime
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Backlog:
    """The pending deliveries of every tenant: how many, and since when the oldest."""

    depth: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Attempted:
    """What one attempt got: the status answered (``None``: none, the request failed),
    the error, and the stored excerpt of the response."""

    status_code: int | None
    error: str | None
    excerpt: str | None


class DeliveryQueue:
    """The statements of the delivery queue on one database.

    Args:
        database: the database of the outbox.
    """

    __slots__ = ("_claim", "_flusher", "_queued", "database", "dialect")

    def __init__(self, database: Database) -> None:
        self.database: Database = database
        self.dialect: str = database.dialect
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        self._claim = self._sql(_CLAIM.format(lock=lock))
        self._queued: list[tuple[_Statements, asyncio.Future[list[int]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _sql(self, sql: str) -> str:
        return _numbered(sql, self.dialect)

    async def _write(self, statements: _Statements) -> list[int]:
        """Run ``statements`` in a write transaction; the rows each changed.

        The outcomes of attempts that end together are written together (a group
        commit): the first starts a flush of everything queued by the time the write
        lock is taken, and what is queued meanwhile goes in the next one. Under load one
        transaction records many outcomes, and the file's write lock on SQLite is taken
        that much less often by the deliverer; alone, an outcome waits for nothing. If
        the transaction fails, every outcome in it fails (their claims expire, and they
        are attempted again).
        """
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queued.append((statements, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                counts = await self._write_now([s for statements, _ in batch for s in statements])
            except Exception as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            first = 0
            for statements, done in batch:
                if not done.done():
                    done.set_result(counts[first : first + len(statements)])
                first += len(statements)

    async def settle(self) -> None:
        """Wait until every outcome queued is written (or failed)."""
        flusher = self._flusher
        if flusher is not None:
            await asyncio.gather(flusher, return_exceptions=True)

    async def _write_now(self, statements: _Statements) -> list[int]:
        """Run ``statements`` in one write transaction; the rows each changed."""
        transaction = await self.database.begin()
        committed = False
        try:
            counts = []
            for sql, values in statements:
                with statement_span(self.dialect, sql):
                    counts.append(await transaction.execute(sql, encode(self.dialect, values)))
            committed = True
        finally:
            await transaction.end(commit=committed)
        return counts

    async def any_due(self, now: datetime) -> bool:
        """Whether a delivery is due and unclaimed at ``now``: a read, so that a process
        with nothing to do never takes the write lock."""
        rows = await self.database.read(self._sql(_PEEK), encode(self.dialect, [now, now]))
        return bool(rows)

    async def claim(self, now: datetime, lease: float, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` due deliveries for ``lease`` seconds from ``now``, soonest
        due first, with their events and endpoints."""
        if limit < 1:
            return []
        until = now + timedelta(seconds=lease)
        transaction = await self.database.begin()
        committed = False
        try:
            with statement_span(self.dialect, self._claim):
                values = encode(self.dialect, [until, now, now, limit])
                ids = [row[0] for row in await transaction.fetch(self._claim, values)]
            rows: Sequence[Sequence[Any]] = []
            if ids:
                marks = ", ".join("?" * len(ids))
                load = self._sql(_LOAD.format(ids=marks))
                with statement_span(self.dialect, load):
                    rows = await transaction.fetch(load, ids)
            committed = True
        finally:
            await transaction.end(commit=committed)
        return [_claimed(row, until) for row in rows]

    async def delivered(self, claimed: Claimed, at: datetime, attempt: Attempted) -> bool:
        """Record a delivery the receiver took (2xx); clears its endpoint's failing time.
        Whether the claim was still this process's."""
        counts = await self._write(
            [
                (self._sql(_DELIVERED), [at, *_attempt(at, attempt), claimed.id, claimed.claim]),
                (self._sql(_SUCCEEDING), [claimed.endpoint_id]),
            ]
        )
        return counts[0] == 1

    async def failed_attempt(
        self, claimed: Claimed, at: datetime, attempt: Attempted, retry_at: datetime | None
    ) -> bool:
        """Record a failed attempt: due again at ``retry_at``, or failed for good when
        that is ``None``; marks its endpoint failing since ``at`` unless it already is.
        Whether the claim was still this process's."""
        if retry_at is None:
            first = (self._sql(_FAILED), [*_attempt(at, attempt), claimed.id, claimed.claim])
        else:
            values = [retry_at, *_attempt(at, attempt), claimed.id, claimed.claim]
            first = (self._sql(_RETRIED), values)
        counts = await self._write([first, (self._sql(_FAILING), [at, claimed.endpoint_id])])
        return counts[0] == 1

    async def skipped(self, claimed: Claimed, reason: str) -> bool:
        """Fail a delivery without an attempt (its endpoint is disabled or gone)."""
        values = [reason[:500], claimed.id, claimed.claim]
        return (await self._write([(self._sql(_SKIPPED), values)]))[0] == 1

    async def postponed(self, claimed: Claimed, until: datetime) -> bool:
        """Give a claimed delivery back, due again at ``until``, its attempts unchanged."""
        values = [until, claimed.id, claimed.claim]
        return (await self._write([(self._sql(_POSTPONED), values)]))[0] == 1

    async def disable_if_failing(
        self, endpoint_id: uuid.UUID, now: datetime, since: datetime, reason: str
    ) -> bool:
        """Disable the endpoint with ``reason`` if it is enabled and has failed since
        ``since`` or earlier, and fail its pending deliveries; whether it was disabled."""
        transaction = await self.database.begin()
        disabled = False
        try:
            values = encode(self.dialect, [False, reason[:500], now, endpoint_id, since])
            disabled = await transaction.execute(self._sql(_DISABLE), values) == 1
            if disabled:
                failed = [f"endpoint disabled: {reason}"[:500], endpoint_id]
                await transaction.execute(self._sql(_FAIL_PENDING), encode(self.dialect, failed))
        except BaseException:
            await transaction.end(commit=False)
            raise
        await transaction.end(commit=True)
        return disabled

    async def backlog(self) -> Backlog:
        """The pending deliveries now (committed ones)."""
        rows = await self.database.read(self._sql(_BACKLOG), [])
        depth, oldest = rows[0] if rows else (0, None)
        return Backlog(int(depth or 0), _time(oldest))

    async def purge(self, before: datetime, *, batch: int = PURGE_BATCH) -> int:
        """Delete up to ``batch`` events written before ``before`` whose deliveries all
        ended before it too (none pending); their deliveries go with them. The number of
        events deleted."""
        sql = self._sql(_PURGE)
        return (await self._write([(sql, [before, before, batch])]))[0]


def _attempt(at: datetime, attempt: Attempted) -> list[object]:
    error = None if attempt.error is None else attempt.error[:500]
    return [at, attempt.status_code, error, attempt.excerpt]


def _claimed(row: Sequence[Any], claim: datetime) -> Claimed:
    (id_, tenant, attempts, endpoint_id, event_id, event_type, body, traceparent, url,
     enabled, reason, secret, previous, previous_until, failing_since) = row  # fmt: skip
    endpoint = None
    if url is not None:
        endpoint = EndpointState(
            id=_uuid(endpoint_id),
            url=str(url),
            enabled=bool(enabled),
            disabled_reason=reason,
            secret=str(secret),
            previous_secret=previous,
            previous_secret_until=_time(previous_until),
            failing_since=_time(failing_since),
        )
    return Claimed(
        id=_uuid(id_),
        tenant_id=_uuid(tenant),
        attempts=int(attempts),
        endpoint_id=_uuid(endpoint_id),
        event_id=_uuid(event_id),
        event_type=str(event_type),
        body=str(body),
        endpoint=endpoint,
        claim=claim,
        traceparent=None if traceparent is None else str(traceparent),
    )
