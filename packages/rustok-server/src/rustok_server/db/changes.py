"""How a serving process learns of tenant, key and rate-limit changes made elsewhere
(the CLI, another process, another host): a change counter in the database, bumped in
the transaction of every change (`bump_version`) and read by each server twice a
second, and the listeners of `Database.on_change`, called after the commit of each
transaction that counted a change: the server's own caches, and with
``RUSTOK_REDIS_URL`` an announcement on a Redis channel (`rustok_server.scaleout`
publishes and listens).

The counter works on SQLite and PostgreSQL and needs nothing else, so it stays on with
Redis too: pub/sub drops announcements while a process is disconnected, and the counter
then brings the change within a second anyway.

`ChangeFeed` is the polled interface; `DatabaseChangeFeed` is its implementation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from sqlalchemy import BigInteger, Integer, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.background import BackgroundTask
from rustok_server.db.base import Base
from rustok_server.db.engine import Database

__all__ = [
    "POLL_INTERVAL",
    "ChangeCounterRow",
    "ChangeFeed",
    "ChangeWatcher",
    "DatabaseChangeFeed",
    "bump_version",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.db")

_READ_TIMEOUT: Final = 2.0
POLL_INTERVAL: Final = 0.5
"""Seconds between two reads of the change counter: a change is seen within a second."""


_COUNTED: Final = "rustok_change_counted"
"""The key of `AsyncSession.info` that marks a transaction in which a change was counted."""


class ChangeCounterRow(Base):
    """One row counting changes of tenants, keys and limits, for the serving processes
    to notice what the CLI or another process changed."""

    __tablename__ = "auth_changes"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger(), nullable=False, default=0)


async def bump_version(session: AsyncSession) -> None:
    """Count one change in the caller's transaction, committed with the change itself: once
    per transaction, however many of its writes call this. After that transaction commits,
    each listener of the session's `Database.on_change` is called once."""
    if session.info.get(_COUNTED):
        return
    await session.execute(
        update(ChangeCounterRow)
        .where(ChangeCounterRow.id == 1)
        .values(version=ChangeCounterRow.version + 1)
    )
    session.info[_COUNTED] = True
    database = session.info.get("database")

    def after_commit(_session: object) -> None:
        session.info.pop(_COUNTED, None)
        if isinstance(database, Database):
            for listener in database.on_change:
                listener()

    def after_rollback(_session: object) -> None:
        session.info.pop(_COUNTED, None)

    event.listen(session.sync_session, "after_commit", after_commit, once=True)
    event.listen(session.sync_session, "after_rollback", after_rollback, once=True)


class ChangeFeed(Protocol):
    """Where a server learns that tenants, keys or limits changed."""

    async def version(self) -> int:
        """A number that changes whenever a tenant, key or rate limit changes."""
        ...


class DatabaseChangeFeed:
    """The change counter row of the database (one indexed read).

    Args:
        database: the server's database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def version(self) -> int:
        """The counter's current value (0 before the first change)."""
        async with self.database.reading() as session:
            value = await session.scalar(
                select(ChangeCounterRow.version).where(ChangeCounterRow.id == 1)
            )
        return int(value or 0)


class ChangeWatcher:
    """Reads a `ChangeFeed` every `POLL_INTERVAL` seconds in a background task and calls
    ``on_change`` when its version moved.

    The interval is measured on ``clock``: a test's ``ManualClock`` polls only when the
    test moves it.

    Args:
        feed: the feed to read.
        on_change: what to drop or reload (synchronous and quick, or it schedules work).
        interval: seconds between reads.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        on_change: Callable[[], None],
        *,
        interval: float = POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._polled_at = float("-inf")
        self.feed = feed
        self.on_change = on_change
        self.interval = interval
        self.polls: int = 0
        self._seen: int | None = None
        self._failing = False
        self._background = BackgroundTask(self._run)

    async def poll(self) -> bool:
        """Read the feed once; call ``on_change`` if it moved. Returns whether it did."""
        try:
            current = await asyncio.wait_for(self.feed.version(), _READ_TIMEOUT)
        except Exception as exc:  # the database is failing: its breaker says so
            # One line per outage, not one per poll.
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            logger.log(level, "could not read the change counter: %s", type(exc).__name__)
            return False
        finally:
            self.polls += 1
        if self._failing:
            self._failing = False
            logger.info("the change counter is readable again")
        changed = self._seen is not None and current != self._seen
        self._seen = current
        if changed:
            self.on_change()
        return changed

    def start(self) -> None:
        """Start polling in the running event loop."""
        self._background.start()

    async def stop(self) -> None:
        """Stop polling."""
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            if self.clock() - self._polled_at >= self.interval:
                self._polled_at = self.clock()
                await self.poll()
            await asyncio.sleep(self.interval / 5)
