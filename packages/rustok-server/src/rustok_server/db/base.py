"""What every table of the server is built on: one declarative `Base`, UTC timestamps,
and the columns that every entity table and every transition-history table share.

Each feature declares its own tables (``tenancy/tables.py``, ``content/tables.py``,
``commerce/tables.py``) on the same `Base`, so that one metadata object (and one Alembic
history) describes the whole schema. Every tenant-owned table carries ``tenant_id``.

An entity row holds the entity's fields, its ``state`` name, the ``state_data`` of that
state (JSON) and its ``version``. A history row is one `TransitionRecord`;
``(entity id, version)`` is unique, so a transition can never be recorded twice even if
two writers got past the version check.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, TypeDecorator, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

__all__ = ["TENANT_FK", "Base", "EntityColumns", "TransitionColumns", "UtcDateTime", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone; PostgreSQL's ``timestamptz`` does. Both read back as UTC.
    """

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = DateTime(timezone=True)
    cache_ok: bool | None = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table of the server."""


TENANT_FK: Final = "tenants.id"
"""The column every tenant-owned row refers to."""

# SQLite assigns increasing ids only to an INTEGER PRIMARY KEY; PostgreSQL gets a bigserial.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")


class EntityColumns:
    """Mixin: the columns of an entity with a lifecycle (a content node, an order).

    The feature's table adds the entity's own fields and its indexes.
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), nullable=False
    )
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    state_data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)

    def entity_data(self) -> dict[str, Any]:
        """These columns as the entity's stored form (``from_data``) names them; the
        feature adds its own fields."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "state": self.state,
            "state_data": self.state_data,
        }


class TransitionColumns:
    """Mixin: the columns of one `TransitionRecord` in an entity's history table.

    The feature's table adds the column naming its entity (``node_id``, ``order_id``)
    and the unique constraint on (that column, ``version``).
    """

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)
    from_state: Mapped[str] = mapped_column(String(32), nullable=False)
    to_state: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
