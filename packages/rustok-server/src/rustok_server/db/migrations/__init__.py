"""Alembic migrations of the server schema, shipped in the package and run from code.

Revisions live in ``versions/``, one file per change, chained by ``down_revision``.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from rustok_server.db import Database

__all__ = ["current_revision", "head_revision", "upgrade"]


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "rustok_server.db:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped in this package."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("the package ships no migration revision")
    return head


async def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate ``database`` to ``revision`` (the newest by default); creates tables on first run.

    Args:
        database: the database to migrate.
        revision: an Alembic revision id, or ``"head"``.
    """

    def run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    # Alembic owns the transactions (one per revision), so that a revision may step out
    # of them (``CREATE INDEX CONCURRENTLY`` on PostgreSQL).
    async with database.engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or ``None`` when it was never migrated."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)
