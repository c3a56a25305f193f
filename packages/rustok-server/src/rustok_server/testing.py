"""Helpers for testing code that runs on the server: the real app served by uvicorn on a
loopback port, in a background thread, and a counter of the queries it sends.

The clock to move by hand is ``rustok_core.testing.ManualClock``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import event
from starlette.types import ASGIApp

from rustok_server.db import Database

__all__ = ["LiveServer", "QueryCounter"]

T = TypeVar("T")


class _Server(uvicorn.Server):
    loop: asyncio.AbstractEventLoop

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class LiveServer:
    """The app served by uvicorn on ``127.0.0.1`` (a free port) in a background thread.

    Use as a context manager: on entry the server has started (lifespan run) and
    `url` is set; on exit it shuts down gracefully.

    Args:
        app: the ASGI application.
        startup_timeout: seconds to wait for the server to start.
    """

    def __init__(self, app: ASGIApp, *, startup_timeout: float = 30.0) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url: str = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, lifespan="on", log_level="warning", access_log=False, server_header=False
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._server.ready.wait(self.startup_timeout) or not self._server.started:
            self._server.should_exit = True
            self._thread.join(self.startup_timeout)
            self._socket.close()
            raise RuntimeError(f"the app did not start on {self.url}; see the log above")
        return self

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` on the server's event loop (where its database engine lives)."""

        async def run() -> T:
            return await fn()

        future = asyncio.run_coroutine_threadsafe(run(), self._server.loop)
        return await asyncio.wrap_future(future)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(self.startup_timeout)
        self._socket.close()


class QueryCounter:
    """Counts the SQL statements a database runs (from any thread or event loop).

    Examples:
        >>> counter = QueryCounter(Database("sqlite+aiosqlite:///:memory:"))
        >>> counter.count
        0
    """

    def __init__(self, database: Database) -> None:
        self.statements: list[str] = []
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        """Statements run since the counter was attached."""
        return len(self.statements)
