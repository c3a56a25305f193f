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
  processes (the CLI, more workers) wait for the file lock, within the write deadline.
- The hot reads (`read`) use one plain ``sqlite3`` connection on the event loop:
  a point read by primary key costs microseconds, less than handing it to a thread, and
  a page read is bounded by the page size. The loop is blocked for exactly that long.

Every unit of work passes the `DatabaseGuard` (`rustok_server.db.guard`): the database
breaker, and a deadline past which the work is cancelled and its connection aborted (not
closed politely: a frozen server would never answer the goodbye). On SQLite the hot
reads are not bounded: in WAL mode a reader never waits, not even for another process
holding the write lock; a write's deadline includes its wait for the write lock.

PostgreSQL: the routes' statements on one asyncpg pool of up to ``pool_size``
connections (`POSTGRES_POOL_SIZE` by default), one round trip each, no ORM; a
connection broken while the database was away is replaced. SQLAlchemy's own pool, for
what is cached or rare (tenant and key loads, the change counter, the admin API, the
CLI), holds `POSTGRES_ORM_POOL_SIZE` connections, checked before use, and opens up to
as many again in a burst. One worker opens at most ``pool_size + 2 *
POSTGRES_ORM_POOL_SIZE`` connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from starlette.requests import Request

from rustok_server.db.guard import DatabaseGuard
from rustok_server.db.statements import ConstraintError

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "POSTGRES_ORM_POOL_SIZE",
    "POSTGRES_POOL_SIZE",
    "READ_TIMEOUT",
    "SQLITE_SYNCHRONOUS",
    "WRITE_TIMEOUT",
    "Database",
    "Transaction",
    "get_session",
]

SQLITE_SYNCHRONOUS: Final = "NORMAL"
"""SQLite's ``synchronous`` mode: see the module's documentation for what it costs."""
READ_TIMEOUT: Final = 2.0
"""Seconds a read may take, unless the guard says otherwise (``RUSTOK_DB_QUERY_TIMEOUT``)."""
WRITE_TIMEOUT: Final = 5.0
"""Seconds each step of a write may take, the wait for SQLite's write lock included,
unless the guard says otherwise (``RUSTOK_DB_WRITE_TIMEOUT``)."""
POSTGRES_POOL_SIZE: Final = 10
"""The most connections one worker's statements pool opens to PostgreSQL (default)."""
POSTGRES_ORM_POOL_SIZE: Final = 2
"""Connections SQLAlchemy's pool keeps for the cached and rare statements (plus as many
again in a burst)."""

_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """The async SQLAlchemy engines of one database, its sessions and its hot reads.

    Args:
        url: SQLAlchemy async URL, ``sqlite+aiosqlite:///...`` or
            ``postgresql+asyncpg://...``.
        echo: log every statement.
        pool_size: on PostgreSQL, the most connections the statements pool opens.
        guard: the breaker and deadlines every unit of work runs under; by default
            no breaker, and `READ_TIMEOUT` and `WRITE_TIMEOUT`.

    Examples:
        >>> db = Database("sqlite+aiosqlite:///:memory:")
        >>> db.dialect
        'sqlite'
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = POSTGRES_POOL_SIZE,
        guard: DatabaseGuard | None = None,
    ) -> None:
        parsed = make_url(url)
        self.url = url
        self.guard: DatabaseGuard = (
            guard
            if guard is not None
            else DatabaseGuard(None, read_timeout=READ_TIMEOUT, write_timeout=WRITE_TIMEOUT)
        )
        self.dialect: str = parsed.get_backend_name()
        options: dict[str, Any] = {"echo": echo}
        self._sqlite_path: str | None = None
        if self.dialect == "sqlite":
            # A write waits for another process's write lock at most its deadline.
            options["connect_args"] = {"timeout": self.guard.write_timeout}
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                self._sqlite_path = database
        else:
            options.update(
                pool_pre_ping=True,  # a cancelled ping aborts its connection: _abort_at_once
                pool_size=POSTGRES_ORM_POOL_SIZE,
                max_overflow=POSTGRES_ORM_POOL_SIZE,
            )
        self.pool_size = pool_size
        self.on_change: list[Callable[[], None]] = []
        """Called after the commit of each transaction that counted a change of tenants,
        keys or limits (`rustok_server.db.changes.bump_version`), in order: the server's
        caches, and with Redis the announcement to the other processes. Each must be quick
        and must not raise."""
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._write_lock: asyncio.Lock | None = None
        self._reader: sqlite3.Connection | None = None
        self._raw_writer: sqlite3.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._pool_lock: asyncio.Lock | None = None
        if self.dialect != "sqlite":
            event.listen(self.engine.sync_engine, "invalidate", _abort_at_once)
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
        else:
            self.writer = self.engine

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to print or log."""
        return make_url(self.url).render_as_string(hide_password=True)

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for a unit of work that only reads, through the breaker, within
        the read deadline (`DatabaseGuard`).

        Raises:
            DatabaseUnavailableError: the breaker is open, or the database is unreachable.
            DatabaseTimeoutError: the block ran past its deadline; its connection was
                aborted.
        """
        # On SQLite a read never waits (WAL): bounded, but neither refused nor counted.
        counted = self.dialect != "sqlite"
        return self._session(self.engine, self.guard.read_timeout, lock=False, counted=counted)

    def writing(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for a unit of work that writes, through the breaker, within the
        write deadline; the caller commits (what it does not commit is rolled back).

        On SQLite the writers of this process take turns (one at a time, in arrival
        order), each on the writer connection in a ``BEGIN IMMEDIATE`` transaction; the
        wait for its turn counts against the deadline.

        Raises:
            DatabaseUnavailableError: the breaker is open, or the database is unreachable.
            DatabaseTimeoutError: the block ran past its deadline; its connection was
                aborted and nothing it wrote was committed.
        """
        lock = self.dialect == "sqlite"
        return self._session(self.writer, self.guard.write_timeout, lock=lock)

    @asynccontextmanager
    async def _session(
        self, engine: AsyncEngine, seconds: float, *, lock: bool, counted: bool = True
    ) -> AsyncIterator[AsyncSession]:
        async with self.guard.bounded(seconds, counted=counted):
            async with self._lock() if lock else contextlib.nullcontext():
                async with engine.connect() as connection:
                    async with AsyncSession(
                        bind=connection, expire_on_commit=False, info={"database": self}
                    ) as session:
                        try:
                            yield session
                        except asyncio.CancelledError:
                            # Past the deadline: abort the connection before the session
                            # rolls back on it, which would wait for the server.
                            await _abort_session_connection(connection)
                            raise

    async def read(self, sql: str, values: Sequence[object]) -> Sequence[Sequence[Any]]:
        """The rows of a query on committed data, outside any transaction: on SQLite on
        the plain ``sqlite3`` read connection, on the event loop; on PostgreSQL on one
        pooled asyncpg connection (one round trip). ``values`` are the driver's
        (`rustok_server.db.statements.encode`)."""
        if self._sqlite_path is not None:
            # Not bounded: in WAL mode a read never waits (module documentation).
            reader = self._reader
            if reader is None:
                self._reader = reader = self._connect_sqlite(self.guard.write_timeout)
            return reader.execute(sql, values).fetchall()
        async with self.guard.bounded(self.guard.read_timeout):
            if self.dialect == "sqlite":  # in memory: the engine's one connection
                async with self.engine.connect() as connection:
                    result = await connection.exec_driver_sql(sql, tuple(values))
                    return [tuple(row) for row in result.all()]
            pool = self._pool or await self._open_pool()
            try:
                return await _fetch(pool, sql, values)
            except _LOST_CONNECTION:
                # A connection broken while the database was away: a read is safe to
                # repeat, and the pool has replaced that connection.
                return await _fetch(pool, sql, values)

    async def begin(self) -> Transaction:
        """A write transaction; end it with `Transaction.end`.

        On SQLite the writers of this process take turns (an `asyncio.Lock`, in
        arrival order) on one ``sqlite3`` writer connection, on the event loop, in a
        ``BEGIN IMMEDIATE`` transaction. While another process holds the file's write
        lock, the wait for it runs in a worker thread. The wait for the turn and for the
        lock together take at most the write deadline. On PostgreSQL, a pooled
        connection in a transaction.

        Raises:
            DatabaseUnavailableError: the breaker is open, or the database is unreachable.
            DatabaseTimeoutError: no transaction could begin within the write deadline.
        """
        guard = self.guard
        if self._sqlite_path is not None:
            lock = self._lock()
            loop = asyncio.get_running_loop()
            async with guard.bounded(guard.write_timeout):
                deadline = loop.time() + guard.write_timeout
                await lock.acquire()
                try:
                    writer = self._raw_writer
                    if writer is None:
                        self._raw_writer = writer = self._connect_sqlite(0.0)
                    await _begin_immediate_raw(writer, max(0.0, deadline - loop.time()))
                except BaseException:
                    lock.release()
                    raise
            return _SqliteTransaction(writer, lock)
        if self.dialect == "sqlite":
            return await _SessionTransaction.begin(self)
        pool = self._pool or await self._open_pool()
        async with guard.bounded(guard.write_timeout):
            connection = await pool.acquire()
            try:
                try:
                    transaction = connection.transaction()
                    await transaction.start()
                except _LOST_CONNECTION:  # nothing was written: try a fresh connection
                    await pool.release(connection)
                    connection = await pool.acquire()
                    transaction = connection.transaction()
                    await transaction.start()
            except asyncio.CancelledError:
                connection.terminate()
                await pool.release(connection)
                raise
            except BaseException:
                await pool.release(connection)
                raise
        return _PostgresTransaction(pool, connection, transaction, guard)

    def _lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    def _connect_sqlite(self, busy_seconds: float) -> sqlite3.Connection:
        assert self._sqlite_path is not None
        connection = sqlite3.connect(
            self._sqlite_path,
            timeout=busy_seconds,
            isolation_level=None,  # transactions are begun explicitly
            check_same_thread=False,
            cached_statements=256,
        )
        _sqlite_pragmas(connection, None)
        return connection

    async def _open_pool(self) -> asyncpg.Pool:
        import asyncpg

        if self._pool_lock is None:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:
            if self._pool is None:
                dsn = make_url(self.url).set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.pool_size,
                    reset=_reset,
                )
            return self._pool

    async def ping(self) -> None:
        """Run ``SELECT 1`` through the guard (`reading`).

        Raises:
            DatabaseUnavailableError: the breaker is open, or the database is unreachable.
            DatabaseTimeoutError: it took longer than the read deadline.
        """
        async with self.reading() as session:
            await session.execute(text("SELECT 1"))

    async def probe(self) -> None:
        """One health check of what a frozen database stops, not through the breaker,
        within the read deadline (`DatabaseProber`): on PostgreSQL ``SELECT 1`` on a
        pooled connection (aborted if it does not answer); on a SQLite file, whether the
        write lock can be taken now (``BEGIN IMMEDIATE`` then ``ROLLBACK``, waiting for
        nothing), since a read never waits there.

        Raises:
            TimeoutError: no answer within the read deadline.
            Exception: the driver's error.
        """
        async with asyncio.timeout(self.guard.read_timeout):
            if self._sqlite_path is not None:
                lock = self._lock()
                if lock.locked():
                    return  # a write of this process is under way: the lock was free
                async with lock:
                    writer = self._raw_writer
                    if writer is None:
                        self._raw_writer = writer = self._connect_sqlite(0.0)
                    writer.execute("BEGIN IMMEDIATE")
                    writer.execute("ROLLBACK")
                return
            if self.dialect == "sqlite":
                async with self.engine.connect() as connection:
                    await connection.exec_driver_sql("SELECT 1")
                return
            pool = self._pool or await self._open_pool()
            await _fetch(pool, "SELECT 1", ())

    async def dispose(self) -> None:
        """Close every pooled connection."""
        for connection in (self._reader, self._raw_writer):
            if connection is not None:
                connection.close()
        self._reader = self._raw_writer = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
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


class Transaction(Protocol):
    """One open write transaction of `Database.begin`, on the driver.

    ``values`` are the driver's (`rustok_server.db.statements.encode`).
    """

    async def fetch(self, sql: str, values: Sequence[object]) -> Sequence[Sequence[Any]]:
        """The rows of a query, in the transaction."""
        ...

    async def execute(self, sql: str, values: Sequence[object]) -> int:
        """Run a write; the rows it changed.

        Raises:
            ConstraintError: a constraint refused it.
        """
        ...

    async def end(self, *, commit: bool) -> None:
        """Commit or roll back, and give the connection back (also when that fails)."""
        ...


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _begin_waiting(connection: sqlite3.Connection, seconds: float) -> None:
    connection.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    try:
        connection.execute("BEGIN IMMEDIATE")
    finally:
        connection.execute("PRAGMA busy_timeout=0")


async def _begin_immediate_raw(connection: sqlite3.Connection, seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on the loop; if another process holds the write lock, wait
    for it in a worker thread, at most ``seconds``, instead of blocking the loop."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    waiting = asyncio.ensure_future(asyncio.to_thread(_begin_waiting, connection, seconds))
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        # The thread runs on: let it finish, then undo what it began.
        with contextlib.suppress(Exception):
            await waiting
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


class _SqliteTransaction:
    """A ``BEGIN IMMEDIATE`` transaction on the writer connection, on the event loop:
    each statement costs microseconds, and nothing else writes meanwhile."""

    __slots__ = ("_connection", "_lock")

    def __init__(self, connection: sqlite3.Connection, lock: asyncio.Lock) -> None:
        self._connection = connection
        self._lock = lock

    async def fetch(self, sql: str, values: Sequence[object]) -> Sequence[Sequence[Any]]:
        return self._connection.execute(sql, values).fetchall()

    async def execute(self, sql: str, values: Sequence[object]) -> int:
        try:
            return self._connection.execute(sql, values).rowcount
        except sqlite3.IntegrityError as exc:
            raise ConstraintError(str(exc)) from exc

    async def end(self, *, commit: bool) -> None:
        connection = self._connection
        try:
            connection.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            try:
                if connection.in_transaction:  # the commit failed: undo it all
                    connection.execute("ROLLBACK")
            finally:
                self._lock.release()


class _PostgresTransaction:
    """A transaction on one pooled asyncpg connection; each statement, and the end,
    through the guard. A statement cancelled (past its deadline, or with its request)
    aborts the connection, and with it the transaction: nothing of it is committed."""

    __slots__ = ("_connection", "_guard", "_pool", "_transaction")

    def __init__(
        self, pool: asyncpg.Pool, connection: Any, transaction: Any, guard: DatabaseGuard
    ) -> None:  # asyncpg's pool hands out proxies of its connections
        self._pool = pool
        self._connection = connection
        self._transaction = transaction
        self._guard = guard

    async def fetch(self, sql: str, values: Sequence[object]) -> Sequence[Sequence[Any]]:
        connection = self._connection
        async with self._guard.bounded(self._guard.write_timeout):
            try:
                rows: list[Any] = await connection.fetch(sql, *values)
            except asyncio.CancelledError:
                connection.terminate()
                raise
        return rows

    async def execute(self, sql: str, values: Sequence[object]) -> int:
        import asyncpg

        connection = self._connection
        async with self._guard.bounded(self._guard.write_timeout):
            try:
                status: str = await connection.execute(sql, *values)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise ConstraintError(str(exc)) from exc
            except asyncio.CancelledError:
                connection.terminate()
                raise
        return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"

    async def end(self, *, commit: bool) -> None:
        connection = self._connection
        try:
            if connection.is_closed():  # aborted: the server rolled it back
                return
            async with self._guard.bounded(self._guard.write_timeout):
                try:
                    if commit:
                        await self._transaction.commit()
                    else:
                        await self._transaction.rollback()
                except asyncio.CancelledError:
                    connection.terminate()
                    raise
        finally:
            await self._pool.release(connection)


class _SessionTransaction:
    """An in-memory SQLite database has one connection, the engine's: its writes run
    in a `Database.writing` session."""

    __slots__ = ("_session", "_stack")

    def __init__(self, stack: contextlib.AsyncExitStack, session: AsyncSession) -> None:
        self._stack = stack
        self._session = session

    @classmethod
    async def begin(cls, database: Database) -> _SessionTransaction:
        stack = contextlib.AsyncExitStack()
        session = await stack.enter_async_context(database.writing())
        return cls(stack, session)

    async def fetch(self, sql: str, values: Sequence[object]) -> Sequence[Sequence[Any]]:
        connection = await self._session.connection()
        result = await connection.exec_driver_sql(sql, tuple(values))
        return [tuple(row) for row in result.all()]

    async def execute(self, sql: str, values: Sequence[object]) -> int:
        connection = await self._session.connection()
        try:
            result = await connection.exec_driver_sql(sql, tuple(values))
        except IntegrityError as exc:
            raise ConstraintError(str(exc.orig)) from exc
        return int(getattr(result, "rowcount", 0))

    async def end(self, *, commit: bool) -> None:
        try:
            if commit:
                await self._session.commit()
            else:
                await self._session.rollback()
        finally:
            await self._stack.aclose()


async def _fetch(pool: asyncpg.Pool, sql: str, values: Sequence[object]) -> list[Any]:
    """A statement on a pooled connection, which is aborted if the statement is
    cancelled (past its deadline, or with its request)."""
    connection = await pool.acquire()
    try:
        rows: list[Any] = await connection.fetch(sql, *values)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    finally:
        await pool.release(connection)
    return rows


async def _abort_session_connection(connection: AsyncConnection) -> None:
    """Abort the driver connection under a session's connection (PostgreSQL), so that
    neither the session's rollback nor the pool's reset waits for the server, and have
    the pool replace it."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    terminate = getattr(driver, "terminate", None)  # asyncpg's; aiosqlite has none
    if terminate is not None:
        terminate()
        await connection.invalidate()


def _abort_at_once(_dbapi_connection: Any, record: Any, _error: object) -> None:
    """SQLAlchemy discards a connection (a statement or a ping past its deadline was
    cancelled on it): abort it now. Its own close waits up to 2 s for the server to say
    goodbye, which a frozen server never does."""
    terminate = getattr(record.driver_connection, "terminate", None)  # asyncpg's
    if terminate is not None:
        terminate()


async def _reset(connection: Any) -> None:
    """What a connection goes back to the pool with: no transaction. The server sets no
    session state (no ``SET``, ``LISTEN`` or advisory locks) for asyncpg's full reset
    to clear, which would cost a round trip per statement."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


_LOST_CONNECTION: tuple[type[BaseException], ...] = (ConnectionError, OSError)
try:  # the PostgreSQL driver is an optional dependency
    import asyncpg as _asyncpg

    _LOST_CONNECTION += (_asyncpg.ConnectionDoesNotExistError, _asyncpg.InterfaceError)
except ImportError:  # pragma: no cover - installed with rustok-server[postgres]
    pass


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session for this request, closed afterwards.

    A request that may write (any method but GET, HEAD and OPTIONS) gets a writing
    session (`Database.writing`). The handler commits what it wants kept; anything not
    committed is rolled back.
    """
    database: Database = request.app.state.database
    if request.method in _SAFE_METHODS:
        async with database.reading() as session:
            yield session
    else:
        async with database.writing() as session:
            yield session
