"""The database guard: which outcomes the ``database`` breaker counts, what a client is
told, and the prober that half-opens the breaker once the database answers again. In
process, on a clock moved by hand; the frozen-database drill runs it end to end."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from rustok_core.resilience import CircuitState
from rustok_core.testing import ManualClock
from rustok_server.db import Database
from rustok_server.db.guard import DatabaseGuard, DatabaseProber, database_breaker
from rustok_server.errors import (
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    TenantNotFoundError,
)


def guard_on(clock: ManualClock, *, failures: int = 2) -> DatabaseGuard:
    breaker = database_breaker(
        failure_threshold=failures,
        success_threshold=1,
        timeout=1.0,
        max_timeout=8.0,
        clock=clock,
    )
    return DatabaseGuard(breaker, read_timeout=0.05, write_timeout=0.05)


def state_of(guard: DatabaseGuard) -> CircuitState:
    assert guard.breaker is not None
    return guard.breaker.state


async def test_a_timeout_is_a_504_and_opens_the_breaker_then_requests_are_refused_unrun() -> None:
    clock = ManualClock()
    guard = guard_on(clock)
    for _ in range(2):
        with pytest.raises(DatabaseTimeoutError) as timed_out:
            async with guard.bounded(0.01):
                await asyncio.Event().wait()  # a database that never answers
        assert timed_out.value.kind.status == 504
        assert timed_out.value.retry_after >= 1.0
    assert state_of(guard) is CircuitState.OPEN
    ran = False
    with pytest.raises(DatabaseUnavailableError) as refused:
        async with guard.bounded(0.01):
            ran = True
    assert not ran
    assert refused.value.breaker_open
    assert refused.value.kind.status == 503
    assert refused.value.retry_after == pytest.approx(1.0)


async def test_the_databases_answers_are_not_failures() -> None:
    clock = ManualClock()
    guard = guard_on(clock, failures=1)
    with pytest.raises(TenantNotFoundError):
        async with guard.bounded(1.0):
            raise TenantNotFoundError("acme")
    with pytest.raises(sqlite3.IntegrityError):
        async with guard.bounded(1.0):
            raise sqlite3.IntegrityError("UNIQUE constraint failed")
    assert state_of(guard) is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError("refused"), DatabaseUnavailableError),
        (sqlite3.OperationalError("database is locked"), DatabaseTimeoutError),
        (sqlite3.OperationalError("disk I/O error"), DatabaseUnavailableError),
    ],
)
async def test_a_lost_connection_or_a_held_lock_is_a_counted_failure_told_as_a_problem(
    error: Exception, expected: type[Exception]
) -> None:
    clock = ManualClock()
    guard = guard_on(clock, failures=1)
    with pytest.raises(expected) as told:
        async with guard.bounded(1.0):
            raise error
    assert told.value.__cause__ is error
    assert state_of(guard) is CircuitState.OPEN


async def test_a_bug_is_not_hidden_behind_a_database_problem() -> None:
    guard = guard_on(ManualClock())
    with pytest.raises(KeyError):
        async with guard.bounded(1.0):
            raise KeyError("a bug")


class Probe:
    """A database health check that fails until told otherwise."""

    def __init__(self) -> None:
        self.answering = False
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        self.called.set()
        if not self.answering:
            raise TimeoutError("no answer")


async def test_the_prober_half_opens_the_breaker_as_soon_as_the_database_answers() -> None:
    clock = ManualClock()
    guard = guard_on(clock, failures=1)
    breaker = guard.breaker
    assert breaker is not None
    probe = Probe()
    prober = DatabaseProber(breaker, probe, interval=0.0)
    prober.start()
    try:
        await asyncio.sleep(0)
        assert probe.calls == 0  # closed: nothing to probe
        breaker.open()
        for _ in range(3):  # the database is still down: it stays open
            probe.called.clear()
            await probe.called.wait()
        assert state_of(guard) is CircuitState.OPEN
        changed = asyncio.Event()
        breaker.add_listener(lambda _change: changed.set())
        probe.answering = True
        await changed.wait()
        assert state_of(guard) is CircuitState.HALF_OPEN  # trials may go now, not later
        assert breaker.retry_after == 0.0
        calls = probe.calls
        async with guard.bounded(1.0):
            pass  # a trial request succeeds
        assert state_of(guard) is CircuitState.CLOSED
        for _ in range(3):
            await asyncio.sleep(0)
        assert probe.calls == calls  # closed again: no more probes
    finally:
        await prober.stop()


async def test_when_the_trials_after_a_probe_fail_the_next_probe_waits_twice_as_long() -> None:
    clock = ManualClock()
    guard = guard_on(clock, failures=1)  # the breaker's longest opening: 8 s
    breaker = guard.breaker
    assert breaker is not None
    probe = Probe()
    probe.answering = True  # a ping is answered, but the requests' statements are not
    waits: list[float] = []
    waited = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        waited.set()
        await asyncio.sleep(0)

    half_opened = asyncio.Event()
    breaker.add_listener(
        lambda change: half_opened.set() if change.new is CircuitState.HALF_OPEN else None
    )
    prober = DatabaseProber(breaker, probe, interval=1.0, sleep=sleep)
    prober.start()
    try:
        breaker.open()
        for _ in range(5):
            await half_opened.wait()
            half_opened.clear()
            await failing_trial(guard)  # open again
        assert waits[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]
        await half_opened.wait()
        async with guard.bounded(1.0):
            pass  # the trial succeeds: closed, and the next outage starts from 1 s again
        assert state_of(guard) is CircuitState.CLOSED
        waited.clear()
        waits.clear()
        breaker.open()
        await waited.wait()
        assert waits == [1.0]
    finally:
        await prober.stop()


async def failing_trial(guard: DatabaseGuard) -> None:
    with pytest.raises(DatabaseUnavailableError):
        async with guard.bounded(1.0):
            raise ConnectionResetError("the statement failed")


async def test_a_sqlite_probe_fails_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rustok.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        await database.probe()  # free: the lock can be taken
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await database.probe()
        holder.execute("ROLLBACK")
        await database.probe()
    finally:
        holder.close()
        await database.dispose()
