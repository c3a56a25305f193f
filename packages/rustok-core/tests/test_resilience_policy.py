"""ResiliencePolicy: retry outside, breaker in the middle, timeout inside."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import assert_type

import pytest

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Fixed,
    OperationTimeoutError,
    ResiliencePolicy,
    RetryAttempt,
    RetryPolicy,
)
from rustok_core.testing import ManualClock, test_mode


@pytest.fixture(autouse=True)
def no_waiting() -> Iterator[None]:
    with test_mode():
        yield


def breaker(failures: int = 5) -> CircuitBreaker:
    config = CircuitBreakerConfig(failure_threshold=failures, timeout=60.0)
    return CircuitBreaker("upstream", config, clock=ManualClock(start=0.0))


async def test_each_retry_attempt_goes_through_the_breaker() -> None:
    cb = breaker(failures=10)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("reset")
        return "ok"

    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3, backoff=Fixed(0.0)), breaker=cb)
    assert await policy.execute(flaky) == "ok"
    stats = cb.stats()
    assert (stats.total_requests, stats.total_failures, stats.total_successes) == (3, 2, 1)


async def test_each_timeout_counts_as_one_breaker_failure_and_is_retried() -> None:
    cb = breaker(failures=2)
    seen: list[RetryAttempt] = []

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=5, backoff=Fixed(0.0), on_retry=seen.append),
        breaker=cb,
        timeout=0.005,
    )
    with pytest.raises(CircuitOpenError):
        await policy.execute(hang)
    # two timeouts opened the breaker; the third attempt was refused and, with no
    # budget, not retried
    assert [type(a.error) for a in seen] == [OperationTimeoutError, OperationTimeoutError]
    assert cb.stats().total_failures == 2
    assert cb.state is CircuitState.OPEN


async def test_an_open_breaker_refuses_without_running_or_retrying() -> None:
    cb = breaker()
    cb.open()
    ran = False

    async def spy() -> int:
        nonlocal ran
        ran = True
        return 1

    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3), breaker=cb, timeout=1.0)
    with pytest.raises(CircuitOpenError):
        await policy.execute(spy)
    assert not ran
    assert cb.stats().total_rejected == 1


async def test_the_decorator_form_keeps_the_signature() -> None:
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=2), breaker=breaker(), timeout=1.0)

    @policy
    async def add(a: int, b: int = 1) -> int:
        return a + b

    assert assert_type(await add(2, b=3), int) == 5
    assert add.__name__ == "add"


async def test_every_part_is_optional() -> None:
    async def one() -> int:
        return 1

    assert await ResiliencePolicy().execute(one) == 1
    assert await ResiliencePolicy(timeout=1.0).execute(one) == 1
    with pytest.raises(ValueError, match="timeout"):
        ResiliencePolicy(timeout=0)
