"""One breaker and one deadline for every statement the server runs.

`DatabaseGuard` is what `rustok_server.db.Database` runs each unit of database work under:
a hot read, the begin, each statement and the end of a write transaction, and each block
of a SQLAlchemy session (tenant and key loads, the change counter, the admin API). For
each one:

- the ``database`` breaker admits it or refuses it at once: while the breaker is open a
  request that needs the database is answered 503 with ``Retry-After``
  (`DatabaseUnavailableError`) without waiting for anything;
- it runs under a deadline (``RUSTOK_DB_QUERY_TIMEOUT`` for reads,
  ``RUSTOK_DB_WRITE_TIMEOUT`` for writes); past it the work is cancelled, the connection
  it ran on is discarded at once (`Database` aborts it rather than closing it politely,
  which would wait for the frozen server), and the request is answered 504
  (`DatabaseTimeoutError`);
- its outcome is counted by the breaker: a timeout or a lost connection is a failure;
  an answer of the database, even a refusal (a constraint, a domain rule), is not.

The breaker's open duration grows from ``RUSTOK_BREAKER_TIMEOUT`` (1 s) while the
database stays down, up to ``RUSTOK_BREAKER_MAX_TIMEOUT``, and starts again from the
first after it closes: the first probe after a thaw comes within about a second.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError

from rustok_core.error import RichError
from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    CircuitStorage,
    StateChange,
)
from rustok_server.background import BackgroundTask
from rustok_server.db.statements import ConstraintError
from rustok_server.errors import DatabaseTimeoutError, DatabaseUnavailableError

__all__ = ["BREAKER_NAME", "PROBE_INTERVAL", "DatabaseGuard", "DatabaseProber", "database_breaker"]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.db")

BREAKER_NAME: Final = "database"
"""The name of the database breaker (in logs, metrics, traces and readiness)."""

# What is the database answering, not the database failing: never counted as a failure.
_ANSWERS: Final[tuple[type[BaseException], ...]] = (
    RichError,  # a domain or request error raised in a session block
    ConstraintError,
    IntegrityError,
    sqlite3.IntegrityError,
    ValidationError,
)


def database_breaker(
    *,
    failure_threshold: int,
    success_threshold: int,
    timeout: float,
    max_timeout: float,
    clock: Callable[[], float],
    storage: CircuitStorage | None = None,
) -> CircuitBreaker:
    """The breaker every database statement passes: opened by consecutive timeouts and
    lost connections, open for ``timeout`` seconds doubling to ``max_timeout`` while the
    database stays down."""
    return CircuitBreaker(
        BREAKER_NAME,
        CircuitBreakerConfig(
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            timeout=timeout,
            excluded=_ANSWERS,
            max_timeout=max(max_timeout, timeout),
        ),
        clock=clock,
        storage=storage,
    )


class DatabaseGuard:
    """The breaker and the deadlines of a `rustok_server.db.Database`.

    Args:
        breaker: the breaker every unit of work passes; ``None`` for none (scripts, the
            CLI), which keeps the deadlines.
        read_timeout: seconds a read may take.
        write_timeout: seconds each step of a write may take (on SQLite this includes
            the wait for the write lock).

    Examples:
        >>> guard = DatabaseGuard(None, read_timeout=2.0, write_timeout=5.0)
        >>> guard.write_timeout
        5.0
    """

    __slots__ = ("breaker", "read_timeout", "write_timeout")

    def __init__(
        self, breaker: CircuitBreaker | None, *, read_timeout: float, write_timeout: float
    ) -> None:
        self.breaker: CircuitBreaker | None = breaker
        self.read_timeout: float = read_timeout
        self.write_timeout: float = write_timeout

    def retry_after(self) -> float:
        """Seconds a refused client should wait: what is left of the open breaker, at
        least a second."""
        breaker = self.breaker
        return max(breaker.retry_after if breaker is not None else 0.0, 1.0)

    @asynccontextmanager
    async def bounded(self, seconds: float, *, counted: bool = True) -> AsyncIterator[None]:
        """Run a block of database work through the breaker within ``seconds``.

        With ``counted=False`` the breaker neither refuses nor counts the block (a SQLite
        read, which never waits for the writer: its successes must not hide the writes'
        timeouts from the breaker).

        Raises:
            DatabaseUnavailableError: the breaker is open (the block did not run), or
                the database was unreachable.
            DatabaseTimeoutError: the block ran past ``seconds`` and was cancelled.
        """
        breaker = self.breaker if counted else None
        try:
            if breaker is None:
                async with asyncio.timeout(seconds):
                    yield
            else:
                async with breaker, asyncio.timeout(seconds):
                    yield
        except CircuitOpenError as exc:
            if exc.breaker_name != BREAKER_NAME:
                raise
            raise DatabaseUnavailableError(max(exc.retry_after, 1.0), breaker_open=True) from None
        except TimeoutError as exc:
            raise DatabaseTimeoutError(seconds, self.retry_after()) from exc
        except _ANSWERS:
            raise
        except Exception as exc:
            outage = _outage(exc)
            if outage == "busy":
                raise DatabaseTimeoutError(seconds, self.retry_after()) from exc
            if outage == "unreachable":
                raise DatabaseUnavailableError(self.retry_after()) from exc
            raise


def _outage(exc: Exception) -> str | None:
    """``"busy"`` (SQLite's write lock held past the deadline), ``"unreachable"``, or
    ``None`` for an error that is no outage (a missing table is a deployment's mistake,
    told as it is)."""
    if isinstance(exc, OSError):
        return "unreachable"
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause)
        if "locked" in text or "busy" in text:
            return "busy"
        return None if "no such" in text else "unreachable"
    return "unreachable" if _is_unreachable(exc) else None


def _is_unreachable(exc: Exception) -> bool:
    """A lost or refused connection, of either driver, maybe wrapped by SQLAlchemy."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - installed with rustok-server[postgres]
        return False
    return isinstance(
        exc,
        asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError,
    )


PROBE_INTERVAL: Final = 1.0
"""Seconds between the health probes of an open database breaker."""


class DatabaseProber:
    """While the database breaker is open, probe the database once a second and, as soon
    as it answers, let trial requests through (half-open).

    A probe costs no request, so recovery after a thaw takes about a second whatever the
    breaker's open duration has grown to; that duration then only says how often
    requests themselves probe a database that stays down. If the trials let through
    after a successful probe fail (the database answers a ping but not the requests'
    statements), the next probe waits twice as long, up to the breaker's longest open
    duration, and a close starts again from ``interval``.

    Args:
        breaker: the database breaker.
        probe: one health check of the database (not through the breaker), bounded by
            its own deadline; raises when the database does not answer.
        interval: seconds between probes.
        sleep: how to wait that long (tests pass one that records the waits).
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        probe: Callable[[], Awaitable[None]],
        *,
        interval: float = PROBE_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.breaker = breaker
        self._sleep = sleep
        self.probe = probe
        self.interval = interval
        self.probes: int = 0
        self._wait = interval
        self._cap = max(interval, breaker.config.max_timeout or breaker.config.timeout)
        self._trials_pending = False
        self._opened = asyncio.Event()
        self._background = BackgroundTask(self._run)
        breaker.add_listener(self._on_change)

    def start(self) -> None:
        """Watch the breaker from the running event loop."""
        if not self._background.running and self.breaker.state is CircuitState.OPEN:
            self._opened.set()
        self._background.start()

    async def stop(self) -> None:
        """Stop watching."""
        await self._background.stop()

    def _on_change(self, change: StateChange) -> None:
        if change.new is CircuitState.OPEN:
            if self._trials_pending:  # the trials after a successful probe failed
                self._wait = min(self._wait * 2, self._cap)
            self._trials_pending = False
            self._opened.set()
        elif change.new is CircuitState.CLOSED:
            self._wait = self.interval
            self._trials_pending = False

    async def _run(self) -> None:
        while True:
            await self._opened.wait()
            await self._sleep(self._wait)
            if self.breaker.state is not CircuitState.OPEN:
                self._opened.clear()
                continue
            self.probes += 1
            try:
                await self.probe()
            except Exception as exc:
                logger.debug("database probe failed: %s", type(exc).__name__)
                continue
            if self.breaker.state is CircuitState.OPEN:
                logger.info("the database answered a probe; trial requests are let through")
                self.breaker.half_open()
                self._trials_pending = True
            self._opened.clear()
