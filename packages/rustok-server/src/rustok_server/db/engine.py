"""The database: the async engines, the sessions, one writer at a time on SQLite, and the
driver-level connection of the hot reads.

SQLite (one file, one process writing at a time by its nature):

- ``journal_mode=WAL``: readers never wait for the writer, nor the writer for readers.
- ``synchronous=NORMAL`` (`SQLITE_SYNCHRONOUS`): a commit is written to the WAL before
  it is acknowledged, so killing the process (``kill -9``, a crash) loses nothing that was
  acknowledged; only a power loss or an operating-system crash can roll back the last
  transactions committed since the WAL was last synced (the file stays consistent).
  ``FULL`` syncs on every commit and costs most of the write throughput.
- Writes take turns: `writing` holds an `asyncio.Lock` of the process and runs on its
  own connection whose transactions start with ``BEGIN IMMEDIATE``, so a write never
  discovers half-way that another one got there first ("database is locked"). Other
  processes (the CLI, more workers) wait for the file lock up to `SQLITE_BUSY_SECONDS`.
- The hot reads (`read_sqlite`) use one plain ``sqlite3`` connection on the event loop:
  a point read by primary key costs microseconds, less than handing it to a thread, and
  a page read is bounded by the page size. The loop is blocked for exactly that long.

PostgreSQL: a pool sized for one worker (`POSTGRES_POOL_SIZE`), connections checked
before use so that one broken while the database was away is replaced, and the hot
reads on the driver's own connection (`read_postgres`): one round trip, no ORM.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import Request

__all__ = [
    "POSTGRES_POOL_SIZE",
    "SQLITE_BUSY_SECONDS",
    "SQLITE_SYNCHRONOUS",
    "Database",
    "get_session",
]

SQLITE_SYNCHRONOUS: Final = "NORMAL"
"""SQLite's ``synchronous`` mode: see the module's documentation for what it costs."""
SQLITE_BUSY_SECONDS: Final = 30.0
"""How long a SQLite connection waits for another process's write lock."""
POSTGRES_POOL_SIZE: Final = 10
"""Connections one worker keeps open to PostgreSQL (plus as many again under bursts)."""

_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """The async SQLAlchemy engines of one database, its sessions and its hot reads.

    Args:
        url: SQLAlchemy async URL, ``sqlite+aiosqlite:///...`` or
            ``postgresql+asyncpg://...``.
        echo: log every statement.

    Example:
        >>> db = Database("sqlite+aiosqlite:///:memory:")
        >>> db.dialect
        'sqlite'
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect: str = parsed.get_backend_name()
        options: dict[str, Any] = {"echo": echo}
        self._sqlite_path: str | None = None
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                self._sqlite_path = database
        else:
            options.update(
                pool_pre_ping=True, pool_size=POSTGRES_POOL_SIZE, max_overflow=POSTGRES_POOL_SIZE
            )
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"database": self}
        )
        self._write_lock: asyncio.Lock | None = None
        self._reader: sqlite3.Connection | None = None
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # Writes: one connection (an in-memory database is one connection anyway).
            self.writer: AsyncEngine = (
                create_async_engine(url, **options, pool_size=1, max_overflow=0)
                if self._sqlite_path is not None
                else self.engine
            )
            if self.writer is not self.engine:
                event.listen(self.writer.sync_engine, "connect", _sqlite_writer_pragmas)
                event.listen(self.writer.sync_engine, "begin", _begin_immediate)
            self.write_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
                self.writer, expire_on_commit=False, info={"database": self}
            )
        else:
            self.writer = self.engine
            self.write_sessions = self.sessions

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to print or log."""
        return make_url(self.url).render_as_string(hide_password=True)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a unit of work that writes; the caller commits.

        On SQLite the writers of this process take turns (one at a time, in arrival
        order), each on the writer connection in a ``BEGIN IMMEDIATE`` transaction.
        """
        if self.dialect != "sqlite":
            async with self.sessions() as session:
                yield session
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock, self.write_sessions() as session:
            yield session

    def read_sqlite(self, sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]] | None:
        """The rows of ``sql`` on the plain ``sqlite3`` read connection, on the calling
        thread; ``None`` when this database has none (PostgreSQL, an in-memory SQLite)."""
        if self._sqlite_path is None:
            return None
        reader = self._reader
        if reader is None:
            reader = sqlite3.connect(
                self._sqlite_path,
                timeout=SQLITE_BUSY_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
            _sqlite_pragmas(reader, None)
            self._reader = reader
        return reader.execute(sql, parameters).fetchall()

    async def read_postgres(
        self, session: AsyncSession, sql: str, parameters: Sequence[object]
    ) -> list[Any]:
        """The records of ``sql`` (``$1`` placeholders) on the asyncpg connection of
        ``session``: one round trip, the driver's prepared-statement cache."""
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        records: list[Any] = await driver.fetch(sql, *parameters)
        return records

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error when the database is unreachable."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self.engine.dispose()
        if self.writer is not self.engine:
            await self.writer.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:  # DB-API objects are untyped
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.close()


def _sqlite_writer_pragmas(dbapi_connection: Any, record: object) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # Transactions are begun by `_begin_immediate`, not by the driver.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session for this request, closed afterwards.

    A request that may write (any method but GET, HEAD and OPTIONS) gets a writing
    session (`Database.writing`). The handler commits what it wants kept; anything not
    committed is rolled back.
    """
    database: Database = request.app.state.database
    if request.method in _SAFE_METHODS:
        async with database.sessions() as session:
            yield session
    else:
        async with database.writing() as session:
            yield session
