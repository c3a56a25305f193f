"""The SQL that every entity table and its history table share, written once.

`EntityRows` holds, for one entity table (built on `EntityColumns`) and its history
table (built on `TransitionColumns`), the statements the SQL repositories of content
nodes and orders run: insert, read by id, the keyset page, the optimistic-lock write with
its history row, and the history query. Every query filters by tenant. The feature's
repository (``content/repository.py``, ``commerce/repository.py``) says how a row
becomes its entity and which domain error each failure is.

The write is ``UPDATE ... WHERE id = :id AND tenant_id = :tenant AND version =
:expected``, then the history row, in the session's transaction. When no row matched,
its stored version is read to tell "gone" from "changed meanwhile". Nothing here commits:
the caller commits the unit of work (the state change, its history row and, for
idempotent requests, the stored response).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import JSON, ColumnElement, Uuid, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.state_machine import Entity, State, TransitionRecord
from rustok_server.db.base import Base, EntityColumns, TransitionColumns, UtcDateTime
from rustok_server.db.engine import Database
from rustok_server.errors import StoredRecordError

__all__ = ["EntityRows", "SessionRepository"]

_Row = TypeVar("_Row", bound=EntityColumns)
_History = TypeVar("_History", bound=TransitionColumns)
_E = TypeVar("_E", bound=Entity[Any])

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a timestamp in SQLite


def _checked(
    to_entity: Callable[[dict[str, Any]], _E], entity_type: str
) -> Callable[[dict[str, Any]], _E]:
    # A row that fails the entity's run-time check is the server's fault, never the
    # client's: a 500 whose log names the row (a listing that meets one fails the same).
    def checked(columns: dict[str, Any]) -> _E:
        try:
            return to_entity(columns)
        except Exception as exc:
            raise StoredRecordError(entity_type, columns.get("id")) from exc

    return checked


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _sqlite_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _sqlite_time(value: Any) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


def _database(session: AsyncSession) -> Database:
    database = session.info.get("database")
    if not isinstance(database, Database):
        raise TypeError("the session was not made by a rustok_server Database")
    return database


class SessionRepository:
    """Base of a repository that works in one session; the caller commits.

    Args:
        session: the session to work in.
    """

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class EntityRows(Generic[_Row, _History, _E]):
    """The statements of one entity table and its history table.

    The reads (by id, the keyset page) are SQL text built once per table and filter,
    run on the driver (`Database.read_sqlite`, `Database.read_postgres`); each row's
    columns, decoded from the driver's types, go straight to ``to_entity``, whose
    ``from_data`` is the state machine's run-time check of the state and its data.

    Args:
        table: the entity table.
        history: its history table.
        owner: the history table's column naming the entity (``node_id``).
        entity_type: the entity's name in its transition records (``ContentNode``).
        to_entity: the typed entity of a row's columns, by column name (the entity's
            ``from_data`` check).
    """

    __slots__ = (
        "_columns",
        "_decoders",
        "_select",
        "_statements",
        "entity_type",
        "history_table",
        "owner",
        "table",
        "to_entity",
    )

    def __init__(
        self,
        table: type[_Row],
        history: type[_History],
        *,
        owner: str,
        entity_type: str,
        to_entity: Callable[[dict[str, Any]], _E],
    ) -> None:
        self.table = table
        self.history_table = history
        self.owner = owner
        self.entity_type = entity_type
        self.to_entity = _checked(to_entity, entity_type)
        name: str = getattr(table, "__tablename__")  # noqa: B009 - declared by each mapped class
        columns = list(Base.metadata.tables[name].columns)
        self._columns = tuple(column.name for column in columns)
        # Per dialect, the decoder of each column's driver value.
        sqlite: list[Callable[[Any], Any]] = []
        postgres: list[Callable[[Any], Any]] = []
        for column in columns:
            if isinstance(column.type, Uuid):
                sqlite.append(_sqlite_uuid)
                postgres.append(_same)
            elif isinstance(column.type, UtcDateTime):
                sqlite.append(_sqlite_time)
                postgres.append(_same)
            elif isinstance(column.type, JSON):
                sqlite.append(_json)
                postgres.append(_json)
            else:
                sqlite.append(_same)
                postgres.append(_same)
        self._decoders = {"sqlite": tuple(sqlite), "postgresql": tuple(postgres)}
        self._select = f"SELECT {', '.join(self._columns)} FROM {name}"
        self._statements: dict[tuple[str, tuple[str, ...], bool], str] = {}

    # -- reads -------------------------------------------------------------------------

    def _statement(self, dialect: str, filters: tuple[str, ...], keyset: bool) -> str:
        """The SQL of a read, built on first use: by id when ``filters`` is ``("id",)``,
        else a page (tenant, ``filters`` equal, after the ``keyset`` position)."""
        key = (dialect, filters, keyset)
        statement = self._statements.get(key)
        if statement is None:
            count = 0

            def mark() -> str:
                nonlocal count
                count += 1
                return "?" if dialect == "sqlite" else f"${count}"

            where = [f"tenant_id = {mark()}"] + [f"{name} = {mark()}" for name in filters]
            if filters == ("id",):
                statement = f"{self._select} WHERE {' AND '.join(where)}"
            else:
                if keyset:
                    where.append(f"(created_at, id) > ({mark()}, {mark()})")
                statement = (
                    f"{self._select} WHERE {' AND '.join(where)}"
                    f" ORDER BY created_at, id LIMIT {mark()}"
                )
            self._statements[key] = statement
        return statement

    async def _read(
        self, session: AsyncSession, filters: tuple[str, ...], keyset: bool, values: list[Any]
    ) -> list[_E]:
        database = _database(session)
        dialect = database.dialect
        sql = self._statement(dialect, filters, keyset)
        if dialect == "sqlite":
            bound = [_sqlite_value(value) for value in values]
            # Inside the session's transaction, its own connection sees its own writes.
            rows: Sequence[Sequence[Any]] | None = (
                None if session.in_transaction() else database.read_sqlite(sql, bound)
            )
            if rows is None:
                connection = await session.connection()
                raw = await connection.exec_driver_sql(sql, tuple(bound))
                rows = [tuple(row) for row in raw.all()]
        else:
            rows = await database.read_postgres(session, sql, values)
        decoders = self._decoders[dialect]
        names = self._columns
        to_entity = self.to_entity
        return [
            to_entity(
                {
                    name: decode(value)
                    for name, decode, value in zip(names, decoders, row, strict=True)
                }
            )
            for row in rows
        ]

    async def insert(
        self, session: AsyncSession, row: Base, conflict: Callable[[], Exception]
    ) -> None:
        """Add a new row; an integrity error (a duplicate) rolls back and raises
        ``conflict()``."""
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            await session.rollback()
            raise conflict() from exc

    async def get(
        self, session: AsyncSession, tenant_id: uuid.UUID, entity_id: uuid.UUID
    ) -> _E | None:
        """The tenant's entity, or ``None`` (also for another tenant's)."""
        found = await self._read(session, ("id",), False, [tenant_id, entity_id])
        return found[0] if found else None

    async def page(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        filters: Mapping[str, str],
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[_E]:
        """Up to ``limit`` of the tenant's entities whose columns equal ``filters``, in
        ``(created_at, id)`` order, strictly after the position ``after``: one range scan
        of the index of those filters and that order, however deep the page."""
        values: list[Any] = [tenant_id, *filters.values()]
        if after is not None:
            values += after
        values.append(limit)
        return await self._read(session, tuple(filters), after is not None, values)

    async def save(
        self,
        session: AsyncSession,
        entity: Entity[State],
        *,
        expected_version: int,
        record: TransitionRecord,
        values: dict[str, Any],
        missing: Callable[[], Exception],
        conflict: Callable[[int], Exception],
        integrity: Callable[[IntegrityError], Exception],
    ) -> None:
        """Write the entity (its state, version and ``values``) if its row is still at
        ``expected_version``, and add the history row of ``record``.

        Raises:
            missing(): the row does not exist for its tenant.
            conflict(stored version): the row is at another version.
            integrity(error): a constraint refused the write (the session is rolled back).
        """
        table = self.table
        statement = (
            update(table)
            .where(
                table.id == entity.id,
                table.tenant_id == entity.tenant_id,
                table.version == expected_version,
            )
            .values(
                state=entity.state_name,
                state_data=entity.state.to_data(),
                version=entity.version,
                **values,
            )
            .execution_options(synchronize_session=False)
        )
        try:
            if _rowcount(await session.execute(statement)) == 1:
                session.add(self._history_row(entity.id, record))
                await session.flush()
                return
            actual = await self._stored_version(session, entity)
        except IntegrityError as exc:
            await session.rollback()
            raise integrity(exc) from exc
        if actual is None:
            raise missing()
        raise conflict(actual)

    async def history(
        self, session: AsyncSession, tenant_id: uuid.UUID, entity_id: uuid.UUID
    ) -> Sequence[TransitionRecord]:
        """The entity's transition records, oldest first."""
        table = self.history_table
        owner: ColumnElement[bool] = getattr(table, self.owner) == entity_id
        query = select(table).where(owner, table.tenant_id == tenant_id).order_by(table.version)
        return [self._record(row) for row in (await session.scalars(query)).all()]

    async def _stored_version(self, session: AsyncSession, entity: Entity[State]) -> int | None:
        table = self.table
        query = select(table.version).where(
            table.id == entity.id, table.tenant_id == entity.tenant_id
        )
        return (await session.execute(query)).scalar_one_or_none()

    def _history_row(self, entity_id: uuid.UUID, record: TransitionRecord) -> _History:
        # The mapped subclass takes its columns as keywords; the mixin type cannot say so.
        new_row = cast("Callable[..., _History]", self.history_table)
        return new_row(
            **{self.owner: entity_id},
            tenant_id=record.tenant_id,
            trigger=record.trigger,
            from_state=record.from_state,
            to_state=record.to_state,
            at=record.at,
            version=record.version,
            actor=record.actor,
            data=dict(record.data),
        )

    def _record(self, row: _History) -> TransitionRecord:
        return TransitionRecord(
            self.entity_type,
            getattr(row, self.owner),
            row.tenant_id,
            row.trigger,
            row.from_state,
            row.to_state,
            row.at,
            row.version,
            row.actor,
            row.data,
        )


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLAlchemy stores it in SQLite: a UUID as 32 hex digits, a
    timestamp as UTC text."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(_SQLITE_TIME)
    return value
