"""How a serving process learns of tenant and key changes made elsewhere (the CLI,
another process, another host): a change counter in the database, bumped in the
transaction of every change and read by each server twice a second, and, with
``RUSTOK_REDIS_URL``, an announcement on a Redis channel after the change's commit
(`announce_changes`; `rustok_server.scaleout` publishes and listens).

The counter works on SQLite and PostgreSQL and needs nothing else, so it stays on with
Redis too: pub/sub drops announcements while a process is disconnected, and the counter
then brings the change within a second anyway.

`ChangeFeed` is the polled interface; `DatabaseChangeFeed` is its implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Final, Protocol

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_server.auth.tables import AuthChangeRow
from rustok_server.db import Database

__all__ = [
    "POLL_INTERVAL",
    "ChangeFeed",
    "ChangeWatcher",
    "DatabaseChangeFeed",
    "announce_changes",
    "bump_version",
]

logger = logging.getLogger("rustok.server.auth")

_READ_TIMEOUT: Final = 2.0
POLL_INTERVAL: Final = 0.5
"""Seconds between two reads of the change counter: a change is seen within a second."""


_announcers: weakref.WeakKeyDictionary[Database, Callable[[], None]] = weakref.WeakKeyDictionary()
_ANNOUNCE: Final = "rustok_announce_change"


def announce_changes(database: Database, announce: Callable[[], None] | None) -> None:
    """Call ``announce()`` after the commit of each transaction of ``database``'s sessions
    that `bump_version` counted a change in (``None`` stops it).

    ``announce`` runs synchronously in the commit, so it must be quick and must not raise.
    """
    if announce is None:
        _announcers.pop(database, None)
    else:
        _announcers[database] = announce


async def bump_version(session: AsyncSession) -> None:
    """Count one change, in the caller's transaction (committed with the change itself);
    after the commit, the change is announced if `announce_changes` asked for it."""
    await session.execute(
        update(AuthChangeRow).where(AuthChangeRow.id == 1).values(version=AuthChangeRow.version + 1)
    )
    database = session.info.get("database")
    announce = _announcers.get(database) if isinstance(database, Database) else None
    if announce is None or session.info.get(_ANNOUNCE):
        return
    session.info[_ANNOUNCE] = True

    def after_commit(_session: object) -> None:
        session.info.pop(_ANNOUNCE, None)
        announce()

    event.listen(session.sync_session, "after_commit", after_commit, once=True)


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
            value = await session.scalar(select(AuthChangeRow.version).where(AuthChangeRow.id == 1))
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
        self.polls = 0
        self._seen: int | None = None
        self._failing = False
        self._task: asyncio.Task[None] | None = None

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
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if self.clock() - self._polled_at >= self.interval:
                self._polled_at = self.clock()
                await self.poll()
            await asyncio.sleep(self.interval / 5)
