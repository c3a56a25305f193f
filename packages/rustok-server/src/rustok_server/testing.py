"""Helpers for testing code that runs on the server: a clock you move by hand and the
real app served by uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LiveServer", "ManualClock"]


class ManualClock:
    """A monotonic clock that only moves when told to; pass it as ``clock=``.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(2.5)
        >>> clock()
        1002.5
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back, got advance({seconds!r})")
        self.now += seconds


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
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
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(self.startup_timeout)
        self._socket.close()
