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

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.state_machine import Entity, State, TransitionRecord
from rustok_server.db.base import Base, EntityColumns, TransitionColumns
from rustok_server.errors import StoredRecordError

__all__ = ["EntityRows", "SessionRepository"]

_Row = TypeVar("_Row", bound=EntityColumns)
_History = TypeVar("_History", bound=TransitionColumns)
_E = TypeVar("_E", bound=Entity[Any])


def _checked(to_entity: Callable[[_Row], _E], entity_type: str) -> Callable[[_Row], _E]:
    # A row that fails the entity's run-time check is the server's fault, never the
    # client's: a 500 whose log names the row (a listing that meets one fails the same).
    def checked(row: _Row) -> _E:
        try:
            return to_entity(row)
        except Exception as exc:
            raise StoredRecordError(entity_type, row.id) from exc

    return checked


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


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

    Args:
        table: the entity table.
        history: its history table.
        owner: the history table's column naming the entity (``node_id``).
        entity_type: the entity's name in its transition records (``ContentNode``).
        to_entity: the typed entity of a row (the entity's ``from_data`` check).
    """

    __slots__ = ("entity_type", "history_table", "owner", "table", "to_entity")

    def __init__(
        self,
        table: type[_Row],
        history: type[_History],
        *,
        owner: str,
        entity_type: str,
        to_entity: Callable[[_Row], _E],
    ) -> None:
        self.table = table
        self.history_table = history
        self.owner = owner
        self.entity_type = entity_type
        self.to_entity = _checked(to_entity, entity_type)

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
        table = self.table
        query = select(table).where(table.id == entity_id, table.tenant_id == tenant_id)
        row = (await session.execute(query)).scalar_one_or_none()
        return None if row is None else self.to_entity(row)

    async def page(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        filters: Sequence[ColumnElement[bool]],
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[_E]:
        """Up to ``limit`` of the tenant's entities matching ``filters``, in
        ``(created_at, id)`` order, strictly after the position ``after``: one indexed
        range scan, however deep the page."""
        table = self.table
        query = select(table).where(table.tenant_id == tenant_id, *filters)
        if after is not None:
            created_at, ident = after
            query = query.where(
                or_(
                    table.created_at > created_at,
                    and_(table.created_at == created_at, table.id > ident),
                )
            )
        query = query.order_by(table.created_at, table.id).limit(limit)
        return [self.to_entity(row) for row in (await session.scalars(query)).all()]

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
