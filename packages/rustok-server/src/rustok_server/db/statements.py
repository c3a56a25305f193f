"""Where the SQL repositories' statements run: `UnitOfWork` on the driver, or
`SessionStatements` inside a SQLAlchemy session.

Both take SQL text with the dialect's placeholders (``?`` on SQLite, ``$1`` on
PostgreSQL) and Python values (UUIDs, aware datetimes, dicts for JSON columns), which
they encode as each driver stores them; both raise `ConstraintError` when a constraint
refuses a write. The caller commits.

`UnitOfWork` is what a request uses. It holds no connection until it needs one: a read
outside a transaction runs on `Database.read` (on SQLite the plain ``sqlite3`` read
connection, on the event loop; on PostgreSQL one pooled asyncpg connection for the
statement). The first write begins the transaction (`Database.begin`): on SQLite the
writer connection of the process, taken in turn and begun with ``BEGIN IMMEDIATE``; on
PostgreSQL a pooled connection in a transaction. From then on every statement, reads too,
runs in that transaction until `UnitOfWork.commit` or `UnitOfWork.rollback`. A unit that
is closed while its transaction is open rolls it back.

`SessionStatements` runs the same statements in a session (scripts, the demo data, code
that already holds a session), on the session's connection.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_server.observability.tracing import statement_span

if TYPE_CHECKING:
    from rustok_server.db.engine import Database, Transaction

__all__ = ["ConstraintError", "SessionStatements", "Statements", "UnitOfWork", "encode"]

SQLITE_TIME: Final = "%Y-%m-%d %H:%M:%S.%f"
"""How a timestamp is stored in SQLite (SQLAlchemy's own format, UTC)."""


class ConstraintError(Exception):
    """A constraint (a unique key, a foreign key) refused a write.

    Args:
        detail: the driver's message, naming the constraint.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Statements(Protocol):
    """Runs SQL text of one dialect; the caller commits."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: which placeholders the SQL uses."""
        ...

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (reads then see its writes)."""
        ...

    async def fetch(self, sql: str, parameters: Sequence[object]) -> Sequence[Sequence[Any]]:
        """The rows of a query."""
        ...

    async def execute(self, sql: str, parameters: Sequence[object]) -> int:
        """Run a write (beginning the transaction if none is open); the rows it changed.

        Raises:
            ConstraintError: a constraint refused it.
        """
        ...

    async def commit(self) -> None:
        """Commit what was written (nothing happens when nothing was)."""
        ...

    async def rollback(self) -> None:
        """Undo what was written since the last commit."""
        ...


def encode(dialect: str, values: Sequence[object]) -> list[object]:
    """``values`` as the driver of ``dialect`` takes them: on SQLite a UUID as 32 hex
    digits and a timestamp as UTC text (how SQLAlchemy stores them); JSON as text on
    both."""
    if dialect == "sqlite":
        return [_sqlite(value) for value in values]
    return [json.dumps(value) if isinstance(value, dict | list) else value for value in values]


def _sqlite(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(SQLITE_TIME)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


class UnitOfWork:
    """One request's statements on the driver, without a connection until it needs one.

    Args:
        database: the database.

    Examples:
        >>> from rustok_server.db import Database
        >>> UnitOfWork(Database("sqlite+aiosqlite:///rustok.db")).in_transaction
        False
    """

    __slots__ = ("_database", "_transaction", "dialect")

    def __init__(self, database: Database) -> None:
        self._database = database
        self.dialect: str = database.dialect
        self._transaction: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        """Whether this unit has begun its transaction (by a write)."""
        return self._transaction is not None

    async def fetch(self, sql: str, parameters: Sequence[object]) -> Sequence[Sequence[Any]]:
        """The rows of a query: in the transaction when one is open, else on a read
        connection (committed data)."""
        values = encode(self.dialect, parameters)
        transaction = self._transaction
        with statement_span(self.dialect, sql):
            if transaction is None:
                return await self._database.read(sql, values)
            return await transaction.fetch(sql, values)

    async def execute(self, sql: str, parameters: Sequence[object]) -> int:
        """Run a write in this unit's transaction, begun now if need be; rows changed.

        Raises:
            ConstraintError: a constraint refused it (the transaction stays open, for
                the caller to roll back).
        """
        transaction = self._transaction
        if transaction is None:
            self._transaction = transaction = await self._database.begin()
        with statement_span(self.dialect, sql):
            return await transaction.execute(sql, encode(self.dialect, parameters))

    async def commit(self) -> None:
        """Commit the transaction, if one was begun."""
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            await transaction.end(commit=True)

    async def rollback(self) -> None:
        """Roll the transaction back, if one was begun."""
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            await transaction.end(commit=False)

    async def close(self) -> None:
        """Roll back whatever was not committed, and give the connection back."""
        await self.rollback()


class SessionStatements:
    """The same statements inside a SQLAlchemy session, on its connection.

    Args:
        session: the session; its database must be a `rustok_server.db.Database`'s.
    """

    __slots__ = ("_session", "dialect")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        bind = session.bind
        if bind is None:
            raise TypeError("the session is bound to no engine")
        self.dialect: str = bind.dialect.name

    @property
    def in_transaction(self) -> bool:
        """Whether the session's transaction is open."""
        return self._session.in_transaction()

    async def fetch(self, sql: str, parameters: Sequence[object]) -> Sequence[Sequence[Any]]:
        """The rows of a query, on the session's connection."""
        connection = await self._session.connection()
        result = await connection.exec_driver_sql(sql, tuple(encode(self.dialect, parameters)))
        return [tuple(row) for row in result.all()]

    async def execute(self, sql: str, parameters: Sequence[object]) -> int:
        """Run a write on the session's connection; the rows it changed.

        Raises:
            ConstraintError: a constraint refused it.
        """
        connection = await self._session.connection()
        try:
            result = await connection.exec_driver_sql(sql, tuple(encode(self.dialect, parameters)))
        except IntegrityError as exc:
            raise ConstraintError(str(exc.orig)) from exc
        rowcount: int = _cursor(result).rowcount
        return rowcount

    async def commit(self) -> None:
        """Commit the session."""
        await self._session.commit()

    async def rollback(self) -> None:
        """Roll the session back."""
        await self._session.rollback()


def _cursor(result: object) -> CursorResult[Any]:
    assert isinstance(result, CursorResult)
    return result
