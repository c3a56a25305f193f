"""The SQL that every entity table and its history table share, written once.

`EntityRows` holds, for one entity table (built on `EntityColumns`) and its history
table (built on `TransitionColumns`), the statements the SQL repositories of content
nodes and orders run: insert, read by id, the keyset page, the optimistic-lock write with
its history row, and the history query. Every statement is SQL text built once per
dialect (and filter), run through `Statements` (a request's `UnitOfWork` on the driver,
or `SessionStatements` in a session); every query filters by tenant. Rows are decoded
from the driver's types column by column and handed to the entity's ``from_data``, the
state machine's run-time check. The feature's repository (``content/repository.py``,
``commerce/repository.py``) says how a row becomes its entity and which domain error
each failure is.

The write is ``UPDATE ... WHERE id = :id AND tenant_id = :tenant AND version =
:expected``, then the history row, in the unit's transaction. When no row matched, its
stored version is read to tell "gone" from "changed meanwhile". Nothing here commits:
the caller commits the unit of work (the state change, its history row and, for
idempotent requests, the stored response).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import JSON, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.state_machine import Entity, State, TransitionRecord
from rustok_server.db.base import Base, EntityColumns, TransitionColumns, UtcDateTime
from rustok_server.db.statements import ConstraintError, SessionStatements, Statements
from rustok_server.errors import StoredRecordError

__all__ = ["EntityEvents", "EntityRows", "SqlRepository"]

_Row = TypeVar("_Row", bound=EntityColumns)
_History = TypeVar("_History", bound=TransitionColumns)
_E = TypeVar("_E", bound=Entity[Any])

_Decoder = Callable[[Any], Any]
_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
_HISTORY_COLUMNS = ("tenant_id", "trigger", "from_state", "to_state", "at", "version", "actor")


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


def _sqlite_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _sqlite_time(value: Any) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _postgres_time(value: Any) -> datetime:
    return value.astimezone(UTC)  # type: ignore[no-any-return]  # asyncpg's datetime


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


def _decoders(table: str, names: Sequence[str]) -> dict[str, tuple[_Decoder, ...]]:
    """Per dialect, the decoder of each named column's driver value."""
    columns = Base.metadata.tables[table].columns
    sqlite: list[_Decoder] = []
    postgres: list[_Decoder] = []
    for name in names:
        kind = columns[name].type
        if isinstance(kind, Uuid):
            sqlite.append(_sqlite_uuid)
            postgres.append(_same)
        elif isinstance(kind, UtcDateTime):
            sqlite.append(_sqlite_time)
            postgres.append(_postgres_time)
        elif isinstance(kind, JSON):
            sqlite.append(_json)
            postgres.append(_json)
        else:
            sqlite.append(_same)
            postgres.append(_same)
    return {"sqlite": tuple(sqlite), "postgresql": tuple(postgres)}


def _marks(dialect: str, count: int, first: int = 1) -> list[str]:
    """``count`` placeholders of ``dialect``, numbered from ``first`` on PostgreSQL."""
    if dialect == "sqlite":
        return ["?"] * count
    return [f"${n}" for n in range(first, first + count)]


class EntityEvents(Protocol):
    """What writes the event of each change beside it (the webhooks' outbox)."""

    async def write(
        self,
        statements: Statements,
        entity: Entity[State],
        record: TransitionRecord | None,
        at: datetime,
    ) -> None:
        """Write the event of ``entity``'s change at ``at`` (``record``: its transition;
        ``None``: its creation) in ``statements``' transaction."""
        ...


class SqlRepository:
    """Base of a SQL repository: its statements run in one unit of work; the caller
    commits.

    Args:
        statements: a request's `UnitOfWork`, any `Statements`, or a session (its
            statements then run on the session's connection).
    """

    __slots__ = ("statements",)

    def __init__(self, statements: Statements | AsyncSession) -> None:
        self.statements: Statements = (
            SessionStatements(statements) if isinstance(statements, AsyncSession) else statements
        )


class EntityRows(Generic[_Row, _History, _E]):
    """The statements of one entity table and its history table.

    Args:
        table: the entity table.
        history: its history table.
        owner: the history table's column naming the entity (``node_id``).
        entity_type: the entity's name in its transition records (``ContentNode``).
        to_entity: the typed entity of a row's columns, by column name (the entity's
            ``from_data`` check).
        events: writes the event of each insert and save in the same transaction.
    """

    __slots__ = (
        "_columns",
        "_decoders",
        "_history_decoders",
        "_history_name",
        "_name",
        "_select",
        "_statements",
        "entity_type",
        "events",
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
        events: EntityEvents,
    ) -> None:
        self.events: EntityEvents = events
        self.table: type[_Row] = table
        self.history_table: type[_History] = history
        self.owner: str = owner
        self.entity_type: str = entity_type
        self.to_entity: Callable[[dict[str, Any]], _E] = _checked(to_entity, entity_type)
        self._name: str = getattr(table, "__tablename__")  # noqa: B009 - declared by each mapped class
        self._history_name: str = getattr(history, "__tablename__")  # noqa: B009
        self._columns = tuple(column.name for column in Base.metadata.tables[self._name].columns)
        self._decoders = _decoders(self._name, self._columns)
        self._history_decoders = _decoders(self._history_name, (owner, *_HISTORY_COLUMNS, "data"))
        self._select = f"SELECT {', '.join(self._columns)} FROM {self._name}"
        self._statements: dict[tuple[object, ...], str] = {}

    # -- statements, built on first use -------------------------------------------------

    def _statement(self, key: tuple[object, ...], build: Callable[[], str]) -> str:
        """The statement cached under ``key``, built by ``build`` on first use."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def _read_sql(self, dialect: str, filters: tuple[str, ...], keyset: bool) -> str:
        """By id when ``filters`` is ``("id",)``, else a page (tenant, ``filters``
        equal, after the ``keyset`` position)."""

        def build() -> str:
            count = 1 + len(filters) + (2 if keyset else 0) + (0 if filters == ("id",) else 1)
            marks = iter(_marks(dialect, count))
            where = [f"tenant_id = {next(marks)}"] + [f"{n} = {next(marks)}" for n in filters]
            if filters == ("id",):
                return f"{self._select} WHERE {' AND '.join(where)}"
            if keyset:
                where.append(f"(created_at, id) > ({next(marks)}, {next(marks)})")
            return (
                f"{self._select} WHERE {' AND '.join(where)}"
                f" ORDER BY created_at, id LIMIT {next(marks)}"
            )

        return self._statement(("read", dialect, filters, keyset), build)

    def _insert_sql(self, dialect: str) -> str:
        def build() -> str:
            marks = ", ".join(_marks(dialect, len(self._columns)))
            return f"INSERT INTO {self._name} ({', '.join(self._columns)}) VALUES ({marks})"

        return self._statement(("insert", dialect), build)

    def _update_sql(self, dialect: str, names: tuple[str, ...]) -> str:
        def build() -> str:
            marks = _marks(dialect, len(names) + 3)
            assignments = ", ".join(f"{n} = {m}" for n, m in zip(names, marks, strict=False))
            where = marks[len(names) :]
            return (
                f"UPDATE {self._name} SET {assignments}"
                f" WHERE id = {where[0]} AND tenant_id = {where[1]} AND version = {where[2]}"
            )

        return self._statement(("update", dialect, names), build)

    def _history_insert_sql(self, dialect: str) -> str:
        def build() -> str:
            names = (self.owner, *_HISTORY_COLUMNS, "data")
            marks = ", ".join(_marks(dialect, len(names)))
            return f"INSERT INTO {self._history_name} ({', '.join(names)}) VALUES ({marks})"

        return self._statement(("history-insert", dialect), build)

    def _save_sql(self, names: tuple[str, ...]) -> str:
        """On PostgreSQL, the versioned update and its history row in one statement (one
        round trip): the row is inserted only if the update matched; it reports 1 row."""

        def build() -> str:
            update = self._update_sql("postgresql", names)
            history = (self.owner, *_HISTORY_COLUMNS, "data")
            table = Base.metadata.tables[self._history_name]
            first = len(names) + 4
            # Typed placeholders: a SELECT list does not take its types from the INSERT.
            values = ", ".join(
                f"${first + n}::{table.columns[name].type.compile(dialect=_POSTGRES)}"
                for n, name in enumerate(history)
            )
            return (
                f"WITH changed AS ({update} RETURNING id)"
                f" INSERT INTO {self._history_name} ({', '.join(history)})"
                f" SELECT {values} FROM changed"
            )

        return self._statement(("save", names), build)

    def _history_sql(self, dialect: str) -> str:
        def build() -> str:
            first, second = _marks(dialect, 2)
            names = (self.owner, *_HISTORY_COLUMNS, "data")
            return (
                f"SELECT {', '.join(names)} FROM {self._history_name}"
                f" WHERE {self.owner} = {first} AND tenant_id = {second} ORDER BY version"
            )

        return self._statement(("history", dialect), build)

    def _version_sql(self, dialect: str) -> str:
        def build() -> str:
            first, second = _marks(dialect, 2)
            return f"SELECT version FROM {self._name} WHERE id = {first} AND tenant_id = {second}"

        return self._statement(("version", dialect), build)

    # -- reads -----------------------------------------------------------------------------

    async def _read(
        self, statements: Statements, filters: tuple[str, ...], keyset: bool, values: list[Any]
    ) -> list[_E]:
        dialect = statements.dialect
        rows = await statements.fetch(self._read_sql(dialect, filters, keyset), values)
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

    async def get(
        self, statements: Statements, tenant_id: uuid.UUID, entity_id: uuid.UUID
    ) -> _E | None:
        """The tenant's entity, or ``None`` (also for another tenant's)."""
        found = await self._read(statements, ("id",), False, [tenant_id, entity_id])
        return found[0] if found else None

    async def page(
        self,
        statements: Statements,
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
        return await self._read(statements, tuple(filters), after is not None, values)

    async def history(
        self, statements: Statements, tenant_id: uuid.UUID, entity_id: uuid.UUID
    ) -> Sequence[TransitionRecord]:
        """The entity's transition records, oldest first."""
        dialect = statements.dialect
        rows = await statements.fetch(self._history_sql(dialect), [entity_id, tenant_id])
        decoders = self._history_decoders[dialect]
        return [
            TransitionRecord(
                self.entity_type,
                *(decode(value) for decode, value in zip(decoders, row, strict=True)),
            )
            for row in rows
        ]

    # -- writes ----------------------------------------------------------------------------

    async def insert(
        self,
        statements: Statements,
        entity: Entity[State],
        columns: Mapping[str, Any],
        conflict: Callable[[], Exception],
    ) -> None:
        """Insert the new ``entity``'s row of ``columns`` (every column of the table, by
        name) and its creation's event; a constraint that refuses it (a duplicate) rolls
        back and raises ``conflict()``."""
        sql = self._insert_sql(statements.dialect)
        try:
            await statements.execute(sql, [columns[name] for name in self._columns])
        except ConstraintError as exc:
            await statements.rollback()
            raise conflict() from exc
        await self.events.write(statements, entity, None, columns["created_at"])

    async def save(
        self,
        statements: Statements,
        entity: Entity[State],
        *,
        expected_version: int,
        record: TransitionRecord,
        values: dict[str, Any],
        missing: Callable[[], Exception],
        conflict: Callable[[int], Exception],
        integrity: Callable[[ConstraintError], Exception],
    ) -> None:
        """Write the entity (its state, version and ``values``) if its row is still at
        ``expected_version``, and add the history row of ``record`` and its event.

        Raises:
            missing(): the row does not exist for its tenant.
            conflict(stored version): the row is at another version.
            integrity(error): a constraint refused the write (the unit is rolled back).
        """
        dialect = statements.dialect
        changed = {
            "state": entity.state_name,
            "state_data": entity.state.to_data(),
            "version": entity.version,
            **values,
        }
        where = [entity.id, entity.tenant_id, expected_version]
        history = [
            entity.id,
            record.tenant_id,
            record.trigger,
            record.from_state,
            record.to_state,
            record.at,
            record.version,
            record.actor,
            dict(record.data),
        ]
        try:
            if dialect == "postgresql":
                sql = self._save_sql(tuple(changed))
                saved = await statements.execute(sql, [*changed.values(), *where, *history]) == 1
            else:
                update = self._update_sql(dialect, tuple(changed))
                saved = await statements.execute(update, [*changed.values(), *where]) == 1
                if saved:
                    await statements.execute(self._history_insert_sql(dialect), history)
        except ConstraintError as exc:
            await statements.rollback()
            raise integrity(exc) from exc
        if saved:
            await self.events.write(statements, entity, record, record.at)
            return
        found = await statements.fetch(self._version_sql(dialect), [entity.id, entity.tenant_id])
        if not found:
            raise missing()
        raise conflict(int(found[0][0]))
