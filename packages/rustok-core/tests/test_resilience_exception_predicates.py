"""Exceptions excluded by a predicate (``CircuitBreakerConfig.excluded_if``), not only by type:
an HTTP error below 500 is an answer, one of 500 and above an outage; on a clock moved by
hand, in every path of the breaker, in events, stats and ``describe()``."""

from __future__ import annotations

import asyncio
import logging

import pytest
from http_answers import HTTPStatusError, client_error

from rustok_core.resilience import (
    CallOutcome,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    Event,
    JudgedBreaker,
    ResiliencePolicy,
    RetryPolicy,
)
from rustok_core.testing import ManualClock


class NotFound(Exception):
    """Excluded by type."""


def make(clock: ManualClock, events: list[Event] | None = None, **config: object) -> CircuitBreaker:
    settings: dict[str, object] = {
        "failure_threshold": 2,
        "success_threshold": 1,
        "timeout": 10.0,
        "excluded_if": client_error,
    }
    settings.update(config)
    return CircuitBreaker(
        "api",
        CircuitBreakerConfig(**settings),  # type: ignore[arg-type]  # the fields vary by test
        clock=clock,
        event_listeners=[events.append] if events is not None else (),
    )


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


async def raise_(error: Exception) -> None:
    raise error


def raise_sync(error: Exception) -> None:
    raise error


async def test_errors_chosen_by_their_content_are_excluded_the_others_count() -> None:
    events: list[Event] = []
    breaker = make(ManualClock(), events)
    for status in (404, 409, 422):
        with pytest.raises(HTTPStatusError):
            await breaker.call(raise_, HTTPStatusError(status))
    assert state_of(breaker) is CircuitState.CLOSED  # answers, not an outage
    with pytest.raises(HTTPStatusError):
        await breaker.call(raise_, HTTPStatusError(503))
    with pytest.raises(HTTPStatusError):
        await breaker.call(raise_, HTTPStatusError(404))  # does not reset the count either
    assert breaker.stats().failure_count == 1
    with pytest.raises(HTTPStatusError):
        await breaker.call(raise_, HTTPStatusError(500))
    assert state_of(breaker) is CircuitState.OPEN
    stats = breaker.stats()
    assert (stats.total_excluded, stats.total_failures) == (4, 2)
    outcomes = [e.outcome for e in events if isinstance(e, CallOutcome)]
    assert outcomes == ["excluded"] * 3 + ["failure", "excluded", "failure"]


async def test_types_in_excluded_are_excluded_without_asking_the_predicate() -> None:
    asked: list[Exception] = []

    def asks(error: Exception) -> bool:
        asked.append(error)
        return False

    breaker = make(ManualClock(), excluded=(NotFound,), excluded_if=asks)
    with pytest.raises(NotFound):
        await breaker.call(raise_, NotFound("no such row"))
    with pytest.raises(ValueError):
        await breaker.call(raise_, ValueError("bad"))
    assert [type(e) for e in asked] == [ValueError]
    assert (breaker.stats().total_excluded, breaker.stats().total_failures) == (1, 1)


async def test_an_excluded_half_open_trial_gives_its_slot_back() -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_max_requests=1)
    breaker.open()
    clock.advance(10.0)
    with pytest.raises(HTTPStatusError):
        await breaker.call(raise_, HTTPStatusError(404))
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().half_open_in_flight == 0

    async def ok() -> str:
        return "ok"

    assert await breaker.call(ok) == "ok"  # the slot was free again
    assert state_of(breaker) is CircuitState.CLOSED


async def test_the_rate_based_mode_leaves_excluded_errors_out_of_its_window() -> None:
    clock = ManualClock()
    events: list[Event] = []
    breaker = make(
        clock,
        events,
        failure_rate_threshold=0.5,
        sliding_window_type="time",
        sliding_window_size=60,
        minimum_calls=2,
    )
    for _ in range(5):
        with pytest.raises(HTTPStatusError):
            await breaker.call(raise_, HTTPStatusError(404))
    assert breaker.stats().buffered_calls == 0
    for _ in range(2):
        with pytest.raises(HTTPStatusError):
            await breaker.call(raise_, HTTPStatusError(502))
    assert state_of(breaker) is CircuitState.OPEN
    assert [e.outcome for e in events if isinstance(e, CallOutcome)][-3:] == [
        "excluded",
        "failure",
        "failure",
    ]


def test_call_sync_and_a_judging_view_use_the_predicate_too() -> None:
    breaker = make(ManualClock())
    with pytest.raises(HTTPStatusError):
        breaker.call_sync(raise_sync, HTTPStatusError(404))
    rated = make(ManualClock(), failure_rate_threshold=0.5, sliding_window_size=2, minimum_calls=2)
    with pytest.raises(HTTPStatusError):
        rated.call_sync(raise_sync, HTTPStatusError(404))
    judged: JudgedBreaker[None] = breaker.judging(lambda result: result is not None)
    with pytest.raises(HTTPStatusError):
        judged.call_sync(raise_sync, HTTPStatusError(400))
    assert breaker.stats().total_excluded == 2
    assert rated.stats().total_excluded == 1


async def test_a_block_raising_a_chosen_error_is_excluded() -> None:
    breaker = make(ManualClock(), failure_threshold=1)
    with pytest.raises(HTTPStatusError):
        async with breaker:
            raise HTTPStatusError(404)
    assert state_of(breaker) is CircuitState.CLOSED
    with pytest.raises(HTTPStatusError):
        async with breaker:
            raise HTTPStatusError(503)
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_predicate_that_raises_is_logged_and_the_error_counts_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(error: Exception) -> bool:
        raise AttributeError("no response on this error")

    breaker = make(ManualClock(), failure_threshold=1, excluded_if=broken)
    with caplog.at_level(logging.ERROR, logger="rustok.resilience"):
        with pytest.raises(HTTPStatusError):  # the call's own error, not the predicate's
            await breaker.call(raise_, HTTPStatusError(404))
    assert state_of(breaker) is CircuitState.OPEN
    [record] = [r for r in caplog.records if "excluded_if" in r.getMessage()]
    assert "'api'" in record.getMessage()
    assert "HTTPStatusError" in record.getMessage()
    assert record.exc_info is not None


async def test_cancellation_never_reaches_the_predicate() -> None:
    asked: list[Exception] = []

    def asks(error: Exception) -> bool:
        asked.append(error)
        return True

    breaker = make(ManualClock(), excluded_if=asks)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await breaker.call(cancelled)
    assert asked == []
    assert breaker.stats().total_cancelled == 1


def test_excluded_if_must_be_a_predicate_not_a_class_or_a_value() -> None:
    with pytest.raises(TypeError, match="exception classes go in excluded"):
        CircuitBreakerConfig(excluded_if=KeyError)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="excluded_if must be None or a predicate"):
        CircuitBreakerConfig(excluded_if=(KeyError,))  # type: ignore[arg-type]  # the mistake under test
    assert CircuitBreakerConfig(excluded_if=None).excluded_if is None
    assert CircuitBreakerConfig(excluded_if=client_error).excluded_if is client_error
    assert CircuitBreakerConfig() == CircuitBreakerConfig(excluded_if=None)


def test_describe_names_the_predicate_of_a_breaker_in_a_policy() -> None:
    breaker = make(ManualClock())
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=2), breaker=breaker)
    assert policy.describe() == (
        "retry(max_attempts=2) > breaker('api', excluded_if=client_error) > call"
    )
    assert policy.judging(lambda r: r is None).describe() == (
        "retry(max_attempts=2, failed_if=<lambda>) "
        "> breaker('api', excluded_if=client_error, failed_if=<lambda>) > call"
    )
    plain = ResiliencePolicy(breaker=CircuitBreaker("db"))
    assert plain.describe() == "breaker('db') > call"


async def test_in_a_policy_the_retry_still_chooses_by_its_own_retry_on() -> None:
    breaker = make(ManualClock(), failure_threshold=10)
    attempts = 0

    async def not_found() -> None:
        nonlocal attempts
        attempts += 1
        raise HTTPStatusError(404)

    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=3, retry_on=lambda error: not client_error(error)),
        breaker=breaker,
    )
    with pytest.raises(HTTPStatusError):
        await policy.execute(not_found)
    assert attempts == 1  # a 404 is not retried either
    assert breaker.stats().total_excluded == 1
