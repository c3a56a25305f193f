"""The rate-based breaker: resilience4j's documented scenarios, replayed.

Each golden test replays a scenario of resilience4j's circuit breaker (its
state-machine tests and documentation): the same configuration, the same
sequence of outcomes, the same states and rates at each step. resilience4j
states thresholds in percent; ours are fractions (50% is 0.5).
"""

from __future__ import annotations

import asyncio

import pytest

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
)
from rustok_core.testing import ManualClock


class Boom(Exception):
    """The protected dependency failed."""


class Ignored(Exception):
    """An answer, not an outage (excluded)."""


def resilience4j_breaker(
    clock: ManualClock, *, window: str = "time", size: int = 20
) -> CircuitBreaker:
    """resilience4j's test configuration: 50% failure rate, 50% slow calls above 4 s,
    4 trial calls, 5 s open, 5 calls minimum."""
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5,
        slow_call_rate_threshold=0.5,
        slow_call_duration=4.0,
        half_open_max_requests=4,
        sliding_window_type="time" if window == "time" else "count",
        sliding_window_size=size,
        minimum_calls=5,
        timeout=5.0,
        excluded=(Ignored,),
    )
    return CircuitBreaker("r4j", config, clock=clock)


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


async def outcome(
    breaker: CircuitBreaker, clock: ManualClock, *, fail: bool = False, takes: float = 0.0
) -> None:
    """One call through the breaker that takes ``takes`` seconds and fails or succeeds."""

    async def dependency() -> None:
        clock.advance(takes)
        if fail:
            raise Boom("down")

    if fail:
        with pytest.raises(Boom):
            await breaker.call(dependency)
    else:
        await breaker.call(dependency)


async def half_open(breaker: CircuitBreaker, clock: ManualClock) -> None:
    breaker.open()
    clock.advance(5.0)
    assert breaker.retry_after == 0.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


# -- closed: the window fills, minimum calls ------------------------------------------


@pytest.mark.parametrize("window", ["count", "time"])
async def test_opens_when_the_failure_rate_reaches_the_threshold_at_minimum_calls(
    clock: ManualClock, window: str
) -> None:
    breaker = resilience4j_breaker(clock, window=window, size=5 if window == "count" else 20)
    for _ in range(3):
        await outcome(breaker, clock, fail=True)
        assert breaker.stats().failure_rate is None  # below minimum calls: not evaluated
    await outcome(breaker, clock)
    assert state_of(breaker) is CircuitState.CLOSED
    await outcome(breaker, clock)  # fifth call: 3 failures of 5 is 60% >= 50%
    stats = breaker.stats()
    assert state_of(breaker) is CircuitState.OPEN
    assert (stats.failure_rate, stats.buffered_calls) == (0.6, 5)  # what opened it
    with pytest.raises(CircuitOpenError):
        await outcome(breaker, clock)


async def test_minimum_calls_not_reached_keeps_it_closed_whatever_the_rate(
    clock: ManualClock,
) -> None:
    breaker = resilience4j_breaker(clock)
    for _ in range(4):
        await outcome(breaker, clock, fail=True)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().buffered_calls == 4
    assert breaker.stats().failure_rate is None


async def test_time_window_opens_at_exactly_the_threshold(clock: ManualClock) -> None:
    # resilience4j: three successes, then failures one second apart; 2 of 5 (40%)
    # stays closed, 3 of 6 (50%) opens.
    breaker = resilience4j_breaker(clock)
    for _ in range(3):
        await outcome(breaker, clock)
        clock.advance(1.0)
    await outcome(breaker, clock, fail=True)
    clock.advance(1.0)
    await outcome(breaker, clock, fail=True)
    assert state_of(breaker) is CircuitState.CLOSED
    clock.advance(1.0)
    assert state_of(breaker) is CircuitState.CLOSED
    await outcome(breaker, clock, fail=True)
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_count_window_forgets_the_oldest_outcomes(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock, window="count", size=5)
    for _ in range(2):
        await outcome(breaker, clock, fail=True)
    for _ in range(5):
        await outcome(breaker, clock)  # the two failures slide out
    assert breaker.stats().failure_rate == 0.0
    for _ in range(2):
        await outcome(breaker, clock, fail=True)
    assert state_of(breaker) is CircuitState.CLOSED  # 2 of the last 5 is 40%


async def test_a_time_window_forgets_outcomes_older_than_its_size(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock, window="time", size=20)
    for _ in range(4):
        await outcome(breaker, clock, fail=True)
    clock.advance(20.0)  # those four failures are now out of the window
    await outcome(breaker, clock, fail=True)
    stats = breaker.stats()
    assert state_of(breaker) is CircuitState.CLOSED
    assert stats.buffered_calls == 1


async def test_a_mostly_failing_dependency_opens_it_despite_sparse_successes(
    clock: ManualClock,
) -> None:
    # The consecutive mode never opens on this (a success every 9 failures, threshold 10).
    rated = CircuitBreaker(
        "rated",
        CircuitBreakerConfig(failure_rate_threshold=0.5, sliding_window_size=20, minimum_calls=10),
        clock=clock,
    )
    consecutive = CircuitBreaker("consecutive", CircuitBreakerConfig(failure_threshold=10))
    for n in range(30):
        for breaker in (rated, consecutive):
            if breaker.state is CircuitState.OPEN:
                continue
            await outcome(breaker, clock, fail=n % 10 != 9)
    assert state_of(rated) is CircuitState.OPEN
    assert state_of(consecutive) is CircuitState.CLOSED


# -- slow calls --------------------------------------------------------------------------


async def test_slow_calls_open_it_when_their_rate_reaches_the_threshold(
    clock: ManualClock,
) -> None:
    # resilience4j: slow failure, slow success, fast failure, fast success, slow
    # success: 3 slow of 5 (60%) opens it, though only 2 of 5 failed (40%).
    breaker = resilience4j_breaker(clock)
    await outcome(breaker, clock, fail=True, takes=5.0)
    await outcome(breaker, clock, takes=5.0)
    await outcome(breaker, clock, fail=True, takes=0.1)
    await outcome(breaker, clock, takes=0.1)
    assert state_of(breaker) is CircuitState.CLOSED
    await outcome(breaker, clock, takes=5.0)
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_call_lasting_exactly_the_slow_duration_is_not_slow(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock, window="count", size=5)
    for _ in range(5):
        await outcome(breaker, clock, takes=4.0)
    assert breaker.stats().slow_call_rate == 0.0
    assert state_of(breaker) is CircuitState.CLOSED


# -- half-open evaluation -----------------------------------------------------------------


async def test_half_open_permits_exactly_the_configured_trials(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock)
    await half_open(breaker, clock)
    started = asyncio.Event()
    gate = asyncio.Event()

    async def trial() -> None:
        started.set()
        await gate.wait()

    trials = [asyncio.create_task(breaker.call(trial)) for _ in range(4)]
    await started.wait()
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(trial)
    assert refused.value.state is CircuitState.HALF_OPEN
    gate.set()
    await asyncio.gather(*trials)
    assert state_of(breaker) is CircuitState.CLOSED


async def test_half_open_trials_above_the_failure_rate_reopen_it(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock)
    await half_open(breaker, clock)
    await outcome(breaker, clock, fail=True)
    await outcome(breaker, clock, fail=True)
    await outcome(breaker, clock)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().failure_rate is None  # 3 of the 4 trials reported
    await outcome(breaker, clock, fail=True)  # 3 of 4 failed: 75%
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats().failure_rate == 0.75
    assert breaker.retry_after == 5.0


async def test_half_open_trials_above_the_slow_call_rate_reopen_it(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock)
    await half_open(breaker, clock)
    for _ in range(3):
        await outcome(breaker, clock, takes=5.0)
    await outcome(breaker, clock, takes=1.0)  # 3 slow of 4: 75%, no failure
    assert state_of(breaker) is CircuitState.OPEN


async def test_half_open_trials_below_the_thresholds_close_it(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock)
    await half_open(breaker, clock)
    await outcome(breaker, clock, fail=True)
    for _ in range(3):
        await outcome(breaker, clock)  # 1 of 4 failed: 25%
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().buffered_calls == 0  # closed starts with an empty window
    await outcome(breaker, clock)
    assert breaker.stats().buffered_calls == 1


async def test_an_excluded_error_gives_its_trial_permit_back(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock)
    await half_open(breaker, clock)

    async def ignored() -> None:
        raise Ignored("not found")

    for _ in range(4):
        with pytest.raises(Ignored):
            await breaker.call(ignored)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    for _ in range(4):
        await outcome(breaker, clock)  # four permits are still there
    assert state_of(breaker) is CircuitState.CLOSED


def test_the_sync_path_follows_the_same_rates(clock: ManualClock) -> None:
    breaker = resilience4j_breaker(clock, window="count", size=5)

    def down() -> None:
        raise Boom("down")

    def slow() -> None:
        clock.advance(5.0)

    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call_sync(down)
    breaker.call_sync(slow)
    breaker.call_sync(slow)
    assert state_of(breaker) is CircuitState.CLOSED
    breaker.call_sync(slow)  # 2 of 5 failed (40%), 3 of 5 slow (60%)
    assert state_of(breaker) is CircuitState.OPEN


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"slow_call_rate_threshold": 0.5}, "slow_call_duration"),
        ({"slow_call_duration": 2.0}, "slow_call_rate_threshold"),
        ({"failure_rate_threshold": 0.5, "sliding_window_size": 0}, "sliding_window_size"),
        ({"failure_rate_threshold": 0.5, "minimum_calls": 0}, "minimum_calls"),
        ({"failure_rate_threshold": 0.5, "sliding_window_type": "ring"}, "sliding_window_type"),
        ({"failure_rate_threshold": 0.5, "half_open_max_requests": None}, "half_open_max_requests"),
    ],
)
def test_invalid_rate_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CircuitBreakerConfig(**kwargs)  # type: ignore[arg-type]  # testing bad input


def test_the_consecutive_mode_stays_the_default() -> None:
    assert not CircuitBreakerConfig().rate_based
    assert CircuitBreakerConfig(failure_rate_threshold=0.5).rate_based
