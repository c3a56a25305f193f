"""The database: one async engine and its session factory, and the session dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import Request

__all__ = ["Database", "get_session"]


class Database:
    """An async SQLAlchemy engine with its session factory.

    SQLite gets foreign keys switched on and a busy timeout; PostgreSQL
    connections are checked before use, so a connection broken while the
    database was away is replaced instead of failing a request.

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
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": 30}
        else:
            options["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to print or log."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error when the database is unreachable."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:  # DB-API objects are untyped
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session for this request, closed afterwards.

    The handler commits what it wants kept; anything not committed is rolled back.
    """
    database: Database = request.app.state.database
    async with database.sessions() as session:
        yield session
