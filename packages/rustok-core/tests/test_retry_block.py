"""Retrying a block of code: `retrying` and `retrying_async` on a RetryPolicy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from rustok_core.resilience import (
    BlockAttempt,
    Event,
    Fixed,
    RetryAttempt,
    RetryPolicy,
    retrying,
    retrying_async,
)
from rustok_core.testing import ManualClock, set_test_mode, test_mode


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with test_mode():
        yield


def _policy(clock: ManualClock, events: list[Event] | None = None) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        backoff=Fixed(0.5),
        retry_on=ConnectionError,
        clock=clock,
        listeners=[] if events is None else [events.append],
        name="block",
    )


class _Flaky:
    """Fails with ConnectionError ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        if self.runs <= self.failures:
            raise ConnectionError(f"run {self.runs}")
        return "row"


def _run(policy: RetryPolicy, body: Callable[[], object]) -> None:
    for attempt in retrying(policy):
        with attempt:
            body()


async def _run_async(policy: RetryPolicy, body: Callable[[], object]) -> None:
    async for attempt in retrying_async(policy):
        with attempt:
            body()


class _Refused:
    """Raises the same ValueError on every run, counting the runs."""

    def __init__(self) -> None:
        self.error = ValueError("bad input")
        self.runs = 0

    def __call__(self) -> None:
        self.runs += 1
        raise self.error


def test_a_block_failing_twice_then_succeeding_runs_three_times() -> None:
    clock = ManualClock()
    events: list[Event] = []
    policy = _policy(clock, events)
    flaky = _Flaky(failures=2)
    numbers: list[int] = []
    row = ""
    for attempt in retrying(policy):
        with attempt:
            numbers.append(attempt.number)
            row = flaky()
    assert row == "row"
    assert flaky.runs == 3
    assert numbers == [1, 2, 3]
    assert clock() == 1001.0  # two waits of 0.5 s, skipped and counted on the clock
    assert [(e.attempt, e.delay) for e in events if isinstance(e, RetryAttempt)] == [
        (1, 0.5),
        (2, 0.5),
    ]
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.retries, stats.successes) == (1, 3, 2, 1)


def test_a_non_retryable_error_propagates_at_once() -> None:
    policy = _policy(ManualClock())
    refused = _Refused()
    with pytest.raises(ValueError) as raised:
        _run(policy, refused)
    assert raised.value is refused.error
    assert refused.runs == 1
    assert policy.stats().failures == 1


def test_attempts_exhausted_reraise_the_last_error() -> None:
    policy = _policy(ManualClock())
    flaky = _Flaky(failures=10)
    with pytest.raises(ConnectionError, match="run 3"):
        _run(policy, flaky)
    assert flaky.runs == 3
    assert policy.stats().retries == 2


def test_returning_from_the_block_ends_the_retries() -> None:
    policy = _policy(ManualClock())
    flaky = _Flaky(failures=1)

    def fetch() -> str:
        for attempt in retrying(policy):
            with attempt:
                return flaky()
        raise AssertionError("unreachable")

    assert fetch() == "row"
    assert policy.stats().successes == 1


def test_leaving_the_loop_early_ends_the_policys_call() -> None:
    policy = _policy(ManualClock())
    for attempt in retrying(policy):
        with attempt:
            pass
        break
    for _attempt in retrying(policy):
        break  # never entered: the policy's call ends too
    assert policy.stats().calls == 2


def test_an_attempt_not_entered_is_an_error() -> None:
    policy = _policy(ManualClock())
    with pytest.raises(RuntimeError, match="with attempt"):
        for _attempt in retrying(policy):
            pass


async def test_async_block_failing_twice_then_succeeding_runs_three_times() -> None:
    clock = ManualClock()
    events: list[Event] = []
    policy = _policy(clock, events)
    flaky = _Flaky(failures=2)
    attempts: list[BlockAttempt] = []
    row = ""
    async for attempt in retrying_async(policy):
        with attempt:
            attempts.append(attempt)
            await asyncio.sleep(0)
            row = flaky()
    assert row == "row"
    assert flaky.runs == 3
    assert [a.number for a in attempts] == [1, 2, 3]
    assert clock() == 1001.0
    assert len([e for e in events if isinstance(e, RetryAttempt)]) == 2
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.retries, stats.successes) == (1, 3, 2, 1)


async def test_async_non_retryable_error_propagates_at_once() -> None:
    policy = _policy(ManualClock())
    refused = _Refused()
    with pytest.raises(ValueError) as raised:
        await _run_async(policy, refused)
    assert raised.value is refused.error
    assert refused.runs == 1


async def test_async_attempts_exhausted_reraise_the_last_error() -> None:
    policy = _policy(ManualClock())
    flaky = _Flaky(failures=10)
    with pytest.raises(ConnectionError, match="run 3"):
        await _run_async(policy, flaky)
    assert flaky.runs == 3


async def test_async_returning_from_the_block_counts_the_call_at_once() -> None:
    policy = _policy(ManualClock())
    flaky = _Flaky(failures=1)

    async def fetch() -> str:
        async for attempt in retrying_async(policy):
            with attempt:
                return flaky()
        raise AssertionError("unreachable")

    assert await fetch() == "row"
    assert policy.stats().successes == 1


async def test_async_waits_for_real_outside_test_mode() -> None:
    policy = RetryPolicy(max_attempts=2, backoff=Fixed(0.01), retry_on=ConnectionError)
    flaky = _Flaky(failures=1)
    set_test_mode(False)  # the fixture restores test mode
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async for attempt in retrying_async(policy):
            with attempt:
                flaky()
        assert loop.time() - start >= 0.01
    finally:
        set_test_mode(True)
    assert flaky.runs == 2


async def test_async_cancelled_during_a_wait_ends_the_call() -> None:
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(3600), retry_on=ConnectionError)

    async def block() -> None:
        async for attempt in retrying_async(policy):
            with attempt:
                raise ConnectionError("down")

    set_test_mode(False)  # a real wait of an hour, which the cancellation ends
    try:
        task = asyncio.create_task(block())
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        set_test_mode(True)
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.failures) == (1, 1, 1)


async def test_async_leaving_the_loop_early_ends_the_policys_call() -> None:
    policy = _policy(ManualClock())
    blocks = retrying_async(policy)
    async for attempt in blocks:
        with attempt:
            raise ConnectionError("down")  # retried: the loop would go on
        break
    await blocks.aclose()
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.failures) == (1, 1, 1)
