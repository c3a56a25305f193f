"""``async with breaker:`` counts a block as one call, and ``half_open()`` lets trials
through early, in memory and on the Redis fleet circuit, on a clock moved by hand."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    redis_storage,
)
from rustok_core.testing import ManualClock


class Boom(Exception):
    """The protected dependency failed."""


class NotFound(Exception):
    """An answer, not an outage."""


def make(clock: ManualClock, **config: object) -> CircuitBreaker:
    settings: dict[str, object] = {"failure_threshold": 2, "success_threshold": 1, "timeout": 10.0}
    settings.update(config)
    return CircuitBreaker("db", CircuitBreakerConfig(**settings), clock=clock)  # type: ignore[arg-type]


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


async def failing_block(breaker: CircuitBreaker) -> None:
    with pytest.raises(Boom):
        async with breaker:
            raise Boom("down")


async def test_a_block_that_raises_counts_as_a_failure_and_opens_the_breaker() -> None:
    clock = ManualClock()
    breaker = make(clock)
    await failing_block(breaker)
    assert state_of(breaker) is CircuitState.CLOSED
    await failing_block(breaker)
    assert state_of(breaker) is CircuitState.OPEN
    ran = False
    with pytest.raises(CircuitOpenError) as refused:
        async with breaker:
            ran = True
    assert not ran
    assert refused.value.retry_after == pytest.approx(10.0)
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_failures, stats.total_rejected) == (3, 2, 1)


async def test_a_block_that_ends_normally_is_a_success_and_closes_a_half_open_breaker() -> None:
    clock = ManualClock()
    breaker = make(clock)
    await failing_block(breaker)
    async with breaker:
        pass  # a success resets the consecutive count
    await failing_block(breaker)
    assert state_of(breaker) is CircuitState.CLOSED
    await failing_block(breaker)
    assert state_of(breaker) is CircuitState.OPEN
    clock.advance(10.0)
    async with breaker:
        assert state_of(breaker) is CircuitState.HALF_OPEN
    assert state_of(breaker) is CircuitState.CLOSED


async def test_an_excluded_error_or_a_cancellation_in_a_block_is_neither() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, excluded=(NotFound,))
    with pytest.raises(NotFound):
        async with breaker:
            raise NotFound("no such row")
    started = asyncio.Event()

    async def stalled() -> None:
        async with breaker:
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stalled())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state_of(breaker) is CircuitState.CLOSED
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes) == (0, 0)


async def test_blocks_of_many_tasks_and_nested_breakers_keep_their_own_admissions() -> None:
    clock = ManualClock()
    outer = make(clock, failure_threshold=5)
    inner = make(clock, failure_threshold=5)
    release = asyncio.Event()

    async def work(number: int) -> None:
        async with outer:
            async with inner:
                await release.wait()
                if number % 2:
                    raise Boom("odd")

    tasks = [asyncio.create_task(work(n)) for n in range(6)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(result, Boom) for result in results) == 3
    for breaker in (outer, inner):
        stats = breaker.stats()
        assert (stats.total_requests, stats.total_successes, stats.total_failures) == (6, 3, 3)


async def test_half_open_lets_trials_through_before_the_open_duration_has_passed() -> None:
    clock = ManualClock()
    breaker = make(clock, timeout=1.0, max_timeout=8.0)
    await failing_block(breaker)
    await failing_block(breaker)
    assert breaker.retry_after == pytest.approx(1.0)
    breaker.half_open()  # a health check saw the dependency answer
    assert state_of(breaker) is CircuitState.HALF_OPEN
    await failing_block(breaker)  # the trial fails: open again, for longer
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.retry_after == pytest.approx(2.0)
    breaker.half_open()
    async with breaker:
        pass
    assert state_of(breaker) is CircuitState.CLOSED
    breaker.half_open()  # closed: nothing happens
    assert state_of(breaker) is CircuitState.CLOSED


async def test_blocks_and_half_open_on_the_fleet_circuit(redis_url: str) -> None:
    clock = ManualClock()
    namespace = f"blocks-{uuid.uuid4().hex}"
    config = CircuitBreakerConfig(
        failure_threshold=2, success_threshold=1, timeout=1.0, max_timeout=8.0
    )
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    first, second = (
        CircuitBreaker(
            "db",
            config,
            clock=clock,
            storage=redis_storage(client, namespace=namespace, clock=clock),
        )
        for client in clients
    )
    try:
        await _fleet_drill(clock, first, second)
    finally:
        for client in clients:
            client.close()


async def _fleet_drill(clock: ManualClock, first: CircuitBreaker, second: CircuitBreaker) -> None:
    await failing_block(first)
    await failing_block(second)  # one circuit: the second failure opens it
    assert state_of(second) is CircuitState.OPEN
    clock.advance(0.2)  # past the first's trust in its last (closed) reply
    with pytest.raises(CircuitOpenError):
        async with first:
            pass
    first.half_open()  # each process's own health check forces it (others learn on Redis)
    assert state_of(first) is CircuitState.HALF_OPEN
    async with first:
        pass  # the fleet's trial succeeds
    assert state_of(first) is CircuitState.CLOSED
    clock.advance(1.0)  # the second's own open window has passed: it asks Redis
    async with second:
        pass
    assert state_of(second) is CircuitState.CLOSED
    assert second.stats().total_rejected == 0
    first.half_open()  # closed on the fleet: nothing happens
    assert state_of(first) is CircuitState.CLOSED
