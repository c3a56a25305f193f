"""CircuitBreaker: transitions, half-open cap, stale outcomes, cancellation, control, stats."""

from __future__ import annotations

import abc
import asyncio
import logging
import pickle
import threading
from typing import assert_type

import pytest

from rustok_core.error import ErrorKind, RichError
from rustok_core.resilience import (
    CallOutcome,
    CallRejected,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    CircuitStorage,
    Event,
    StateChange,
)
from rustok_core.testing import ManualClock


class Boom(Exception):
    """The protected dependency failed."""


class NotFound(Exception):
    """A business answer: the thing does not exist (not an outage)."""


async def succeed(value: int = 1) -> int:
    return value


async def fail() -> int:
    raise Boom("dependency down")


def make(
    clock: ManualClock,
    *,
    failures: int = 2,
    successes: int = 2,
    timeout: float = 30.0,
    cap: int | None = 3,
    excluded: tuple[type[BaseException], ...] = (),
) -> CircuitBreaker:
    config = CircuitBreakerConfig(
        failure_threshold=failures,
        success_threshold=successes,
        timeout=timeout,
        half_open_max_requests=cap,
        excluded=excluded,
    )
    return CircuitBreaker("test-db", config, clock=clock)


def state_of(breaker: CircuitBreaker) -> CircuitState:
    # A function, so that type checkers do not carry a narrowed state across calls.
    return breaker.state


async def trip(breaker: CircuitBreaker) -> None:
    while breaker.state is not CircuitState.OPEN:
        with pytest.raises(Boom):
            await breaker.call(fail)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# -- transitions ---------------------------------------------------------------


async def test_closed_breaker_passes_calls_and_results_through(clock: ManualClock) -> None:
    breaker = make(clock)
    assert await breaker.call(succeed, 42) == 42
    assert state_of(breaker) is CircuitState.CLOSED


async def test_opens_at_the_failure_threshold_not_before(clock: ManualClock) -> None:
    breaker = make(clock, failures=3)
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert state_of(breaker) is CircuitState.CLOSED
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_success_resets_the_consecutive_failure_count(clock: ManualClock) -> None:
    breaker = make(clock, failures=2)
    with pytest.raises(Boom):
        await breaker.call(fail)
    await breaker.call(succeed)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 1


async def test_the_failing_calls_own_exception_is_reraised_unchanged(clock: ManualClock) -> None:
    breaker = make(clock, failures=1)
    error = Boom("the original")

    async def raise_it() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        await breaker.call(raise_it)
    assert caught.value is error
    assert state_of(breaker) is CircuitState.OPEN


async def test_open_breaker_rejects_without_calling(clock: ManualClock) -> None:
    breaker = make(clock, timeout=30.0)
    await trip(breaker)
    called = False

    async def spy() -> int:
        nonlocal called
        called = True
        return 1

    clock.advance(10.0)
    with pytest.raises(CircuitOpenError) as caught:
        await breaker.call(spy)
    assert not called
    assert caught.value.breaker_name == "test-db"
    assert caught.value.state is CircuitState.OPEN
    assert caught.value.retry_after == pytest.approx(20.0)
    assert breaker.retry_after == pytest.approx(20.0)


async def test_open_becomes_half_open_after_the_timeout(clock: ManualClock) -> None:
    breaker = make(clock, timeout=30.0, successes=2)
    await trip(breaker)
    clock.advance(29.999)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    clock.advance(0.001)
    assert await breaker.call(succeed, 7) == 7
    assert state_of(breaker) is CircuitState.HALF_OPEN


async def test_half_open_closes_after_success_threshold_successes(clock: ManualClock) -> None:
    breaker = make(clock, successes=3)
    await trip(breaker)
    clock.advance(30.0)
    for _ in range(2):
        await breaker.call(succeed)
        assert state_of(breaker) is CircuitState.HALF_OPEN
    await breaker.call(succeed)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 0


async def test_any_half_open_failure_reopens_with_a_fresh_timeout(clock: ManualClock) -> None:
    breaker = make(clock, successes=3, timeout=30.0)
    await trip(breaker)
    clock.advance(30.0)
    await breaker.call(succeed)
    clock.advance(5.0)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.retry_after == pytest.approx(30.0)


async def test_every_state_change_is_logged_on_rustok_resilience(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, successes=1)
    with caplog.at_level(logging.INFO, logger="rustok.resilience"):
        await trip(breaker)
        clock.advance(30.0)
        await breaker.call(succeed)
    messages = [r.getMessage() for r in caplog.records if r.name == "rustok.resilience"]
    assert messages == [
        "circuit breaker 'test-db': closed -> open",
        "circuit breaker 'test-db': open -> half_open",
        "circuit breaker 'test-db': half_open -> closed",
    ]
    assert caplog.records[0].levelno == logging.WARNING


async def test_listeners_receive_every_state_change(clock: ManualClock) -> None:
    seen: list[StateChange] = []
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=1.0)
    breaker = CircuitBreaker("api", config, listeners=[seen.append], clock=clock)
    await trip(breaker)
    clock.advance(1.0)
    await breaker.call(succeed)
    assert [(c.breaker, c.old, c.new) for c in seen] == [
        ("api", CircuitState.CLOSED, CircuitState.OPEN),
        ("api", CircuitState.OPEN, CircuitState.HALF_OPEN),
        ("api", CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_a_failing_listener_is_logged_and_does_not_break_calls(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(change: StateChange) -> None:
        raise RuntimeError("listener bug")

    breaker = make(clock, failures=1)
    breaker.add_listener(broken)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN
    assert any("listener" in r.getMessage() for r in caplog.records)
    breaker.remove_listener(broken)
    with pytest.raises(ValueError):
        breaker.remove_listener(broken)


# -- half-open cap and stale outcomes --------------------------------------------


async def test_half_open_admits_at_most_max_requests_among_1000_coroutines(
    clock: ManualClock,
) -> None:
    breaker = make(clock, successes=3, cap=3)
    await trip(breaker)
    clock.advance(30.0)
    release = asyncio.Event()
    running = 0

    async def probe() -> str:
        nonlocal running
        running += 1
        await release.wait()
        return "ok"

    tasks = [asyncio.create_task(breaker.call(probe)) for _ in range(1000)]
    await asyncio.sleep(0)  # every task has now been admitted or rejected
    assert running == 3
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 3
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 997
    assert all(
        r.state is CircuitState.HALF_OPEN for r in results if isinstance(r, CircuitOpenError)
    )
    assert state_of(breaker) is CircuitState.CLOSED


async def test_unlimited_half_open_admits_every_trial(clock: ManualClock) -> None:
    breaker = make(clock, successes=50, cap=None)
    await trip(breaker)
    clock.advance(30.0)
    release = asyncio.Event()

    async def probe() -> int:
        await release.wait()
        return 1

    tasks = [asyncio.create_task(breaker.call(probe)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert sum(await asyncio.gather(*tasks)) == 50
    assert state_of(breaker) is CircuitState.CLOSED


async def test_closing_waits_for_the_trials_still_in_flight(clock: ManualClock) -> None:
    breaker = make(clock, successes=1, cap=2)
    await trip(breaker)
    clock.advance(30.0)
    slow_started, slow_release = asyncio.Event(), asyncio.Event()

    async def slow_failure() -> int:
        slow_started.set()
        await slow_release.wait()
        raise Boom("late failure")

    slow = asyncio.create_task(breaker.call(slow_failure))
    await slow_started.wait()
    await breaker.call(succeed)  # the threshold is met, but a trial is still running
    assert state_of(breaker) is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError):  # and no new trial is admitted meanwhile
        await breaker.call(succeed)
    slow_release.set()
    with pytest.raises(Boom):
        await slow
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_stale_success_cannot_close_a_breaker_that_reopened(clock: ManualClock) -> None:
    breaker = make(clock, successes=1, cap=2)
    await trip(breaker)
    clock.advance(30.0)
    slow_started, slow_release = asyncio.Event(), asyncio.Event()

    async def slow_success() -> int:
        slow_started.set()
        await slow_release.wait()
        return 1

    slow = asyncio.create_task(breaker.call(slow_success))
    await slow_started.wait()
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN
    slow_release.set()
    assert await slow == 1
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats().total_successes == 1


async def test_stale_failures_do_not_restamp_the_open_window(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, timeout=30.0)
    started = 0
    all_started, release = asyncio.Event(), asyncio.Event()

    async def slow_failure() -> int:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        await release.wait()
        raise Boom("down")

    tasks = [asyncio.create_task(breaker.call(slow_failure)) for _ in range(3)]
    await all_started.wait()
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert breaker.stats().state_transitions == 1
    clock.advance(30.0)
    assert await breaker.call(succeed) == 1  # the window was not stretched


async def test_an_obsolete_failure_cannot_reopen_a_manually_closed_breaker(
    clock: ManualClock,
) -> None:
    breaker = make(clock, successes=1, cap=1)
    await trip(breaker)
    clock.advance(30.0)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_failure() -> int:
        started.set()
        await release.wait()
        raise Boom("obsolete")

    task = asyncio.create_task(breaker.call(slow_failure))
    await started.wait()
    breaker.close()
    release.set()
    with pytest.raises(Boom):
        await task
    assert state_of(breaker) is CircuitState.CLOSED


# -- cancellation and excluded exceptions ----------------------------------------


async def test_a_cancelled_call_is_neither_success_nor_failure(clock: ManualClock) -> None:
    breaker = make(clock, failures=1)
    started = asyncio.Event()

    async def hang() -> int:
        started.set()
        await asyncio.Event().wait()
        return 1

    task = asyncio.create_task(breaker.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = breaker.stats()
    assert state_of(breaker) is CircuitState.CLOSED
    assert (stats.total_failures, stats.total_successes, stats.total_cancelled) == (0, 0, 1)


async def test_a_cancelled_trial_gives_its_half_open_slot_back(clock: ManualClock) -> None:
    breaker = make(clock, successes=1, cap=1)
    await trip(breaker)
    clock.advance(30.0)
    started = asyncio.Event()

    async def hang() -> int:
        started.set()
        await asyncio.Event().wait()
        return 1

    task = asyncio.create_task(breaker.call(hang))
    await started.wait()
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)  # the only slot is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.stats().half_open_in_flight == 0
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert await breaker.call(succeed, 5) == 5
    assert state_of(breaker) is CircuitState.CLOSED


async def test_excluded_exceptions_pass_through_and_never_open(clock: ManualClock) -> None:
    breaker = make(clock, failures=2, excluded=(NotFound,))

    async def missing() -> int:
        raise NotFound("tenant 'acme' does not exist")

    for _ in range(5):
        with pytest.raises(NotFound):
            await breaker.call(missing)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().total_excluded == 5


async def test_an_excluded_exception_does_not_count_as_a_success(clock: ManualClock) -> None:
    # pybreaker would reset the failure count on an excluded error; it must not.
    breaker = make(clock, failures=2, excluded=(NotFound,))

    async def missing() -> int:
        raise NotFound("nope")

    with pytest.raises(Boom):
        await breaker.call(fail)
    with pytest.raises(NotFound):
        await breaker.call(missing)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN


async def test_an_excluded_exception_does_not_close_a_half_open_breaker(clock: ManualClock) -> None:
    breaker = make(clock, successes=1, excluded=(NotFound,))
    await trip(breaker)
    clock.advance(30.0)

    async def missing() -> int:
        raise NotFound("nope")

    with pytest.raises(NotFound):
        await breaker.call(missing)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().half_open_in_flight == 0


async def test_an_abcmeta_exception_class_excludes_only_itself(clock: ManualClock) -> None:
    class Abstract(Exception, metaclass=abc.ABCMeta):
        pass

    breaker = make(clock, failures=1, excluded=(Abstract,))
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN


# -- manual control and stats ----------------------------------------------------


async def test_manual_open_close_and_reset(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.open()
    assert state_of(breaker) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    breaker.open()  # already open: no new transition, no new window
    assert breaker.stats().state_transitions == 1
    breaker.close()
    assert state_of(breaker) is CircuitState.CLOSED
    assert await breaker.call(succeed) == 1
    breaker.reset()
    stats = breaker.stats()
    assert stats.state is CircuitState.CLOSED
    assert (stats.total_requests, stats.total_rejected, stats.state_transitions) == (0, 0, 0)


async def test_reset_clears_counters_of_an_open_breaker(clock: ManualClock) -> None:
    breaker = make(clock, failures=2)
    await trip(breaker)
    breaker.reset()
    stats = breaker.stats()
    assert stats.state is CircuitState.CLOSED
    assert (stats.failure_count, stats.total_failures, stats.state_transitions) == (0, 0, 0)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.CLOSED  # one failure after reset, threshold 2


async def test_reset_of_a_closed_breaker_clears_the_failure_count(clock: ManualClock) -> None:
    breaker = make(clock, failures=2)
    with pytest.raises(Boom):
        await breaker.call(fail)
    breaker.reset()
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.CLOSED


async def test_stats_arithmetic(clock: ManualClock) -> None:
    breaker = make(clock, failures=2, excluded=(NotFound,))

    async def missing() -> int:
        raise NotFound("nope")

    assert breaker.stats().success_rate == 1.0
    assert breaker.stats().rejection_rate == 0.0
    await breaker.call(succeed)
    await breaker.call(succeed)
    with pytest.raises(NotFound):
        await breaker.call(missing)
    await trip(breaker)  # two failures
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)
    stats = breaker.stats()
    assert stats.total_requests == 8
    assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (2, 2, 3)
    assert stats.total_excluded == 1
    assert stats.total_requests == (
        stats.total_successes
        + stats.total_failures
        + stats.total_rejected
        + stats.total_excluded
        + stats.total_cancelled
    )
    assert stats.success_rate == pytest.approx(2 / 8)
    assert stats.rejection_rate == pytest.approx(3 / 8)
    assert stats.state_transitions == 1
    assert stats.failure_count == 2


def test_state_numbers_are_stable_for_gauges() -> None:
    assert [s.number for s in CircuitState] == [0, 1, 2, 4, 3, 5]
    assert {s.value: s.number for s in CircuitState if s.forced} == {
        "forced_open": 4,
        "disabled": 3,
        "metrics_only": 5,
    }


async def test_event_listeners_hear_every_outcome_and_rejection(clock: ManualClock) -> None:
    events: list[Event] = []
    breaker = CircuitBreaker(
        "test-db",
        CircuitBreakerConfig(failure_threshold=1, timeout=30.0, excluded=(NotFound,)),
        clock=clock,
        event_listeners=[events.append],
    )

    async def not_found() -> int:
        raise NotFound("no such row")

    await breaker.call(succeed)
    with pytest.raises(NotFound):
        await breaker.call(not_found)
    with pytest.raises(Boom):
        await breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert events == [
        CallOutcome("breaker", "test-db", "success", 0.0),
        CallOutcome("breaker", "test-db", "excluded", 0.0),
        CallOutcome("breaker", "test-db", "failure", 0.0),
        CallRejected("breaker", "test-db", "open", 30.0),
    ]


async def test_a_listener_without_outcomes_hears_only_rejections(clock: ManualClock) -> None:
    everything: list[Event] = []
    rare: list[Event] = []
    breaker = CircuitBreaker(
        "test-db", CircuitBreakerConfig(failure_threshold=1, timeout=30.0), clock=clock
    )
    breaker.add_event_listener(everything.append)
    breaker.add_event_listener(rare.append, outcomes=False)
    await breaker.call(succeed)
    with pytest.raises(Boom):
        await breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert rare == [CallRejected("breaker", "test-db", "open", 30.0)]
    assert everything == [
        CallOutcome("breaker", "test-db", "success", 0.0),
        CallOutcome("breaker", "test-db", "failure", 0.0),
        CallRejected("breaker", "test-db", "open", 30.0),
    ]


async def test_rate_based_outcome_events_carry_the_duration(clock: ManualClock) -> None:
    events: list[Event] = []
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5, slow_call_rate_threshold=1.0, slow_call_duration=1.0
    )
    breaker = CircuitBreaker("test-db", config, clock=clock, event_listeners=[events.append])

    async def slow() -> int:
        clock.advance(2.5)
        return 1

    await breaker.call(slow)
    assert events == [CallOutcome("breaker", "test-db", "success", 2.5)]


async def test_a_failing_event_listener_is_logged_and_ignored(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("test-db", clock=clock, event_listeners=[broken])
    assert await breaker.call(succeed) == 1
    assert any("listener" in r.getMessage() for r in caplog.records)


# -- sync path, decorators, typing -------------------------------------------------


def test_call_sync_follows_the_same_rules(clock: ManualClock) -> None:
    breaker = make(clock, failures=1, successes=1)

    def broken() -> int:
        raise Boom("down")

    assert breaker.call_sync(lambda: 3) == 3
    with pytest.raises(Boom):
        breaker.call_sync(broken)
    with pytest.raises(CircuitOpenError):
        breaker.call_sync(lambda: 3)
    clock.advance(30.0)
    assert breaker.call_sync(lambda: 4) == 4
    assert state_of(breaker) is CircuitState.CLOSED


def test_call_sync_counts_exactly_under_threads(clock: ManualClock) -> None:
    breaker = make(clock, failures=10_000)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(500):
            breaker.call_sync(int)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.stats().total_successes == 4000


async def test_decorator_keeps_signature_and_works_on_both_kinds(clock: ManualClock) -> None:
    breaker = make(clock, failures=1)

    @breaker
    async def load(tenant: str, *, suffix: str = "") -> str:
        """Load a tenant."""
        return tenant + suffix

    @breaker
    def compute(x: int) -> int:
        return x * 2

    assert assert_type(await load("acme", suffix="!"), str) == "acme!"
    assert assert_type(compute(21), int) == 42
    assert load.__name__ == "load"
    assert load.__doc__ == "Load a tenant."
    assert breaker.stats().total_successes == 2


async def test_call_keeps_the_return_type(clock: ManualClock) -> None:
    breaker = make(clock)

    async def fetch(n: int) -> list[int]:
        return [n]

    result = await breaker.call(fetch, 3)
    assert assert_type(result, list[int]) == [3]


# -- configuration and errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", -1),
        ("success_threshold", 0),
        ("half_open_max_requests", 0),
        ("timeout", -0.5),
        ("timeout", float("nan")),
        ("max_timeout", -1.0),
        ("max_timeout", float("nan")),
        ("max_timeout", 59.0),  # below the default timeout, 60 s
        ("timeout_multiplier", 0.5),
        ("timeout_multiplier", float("nan")),
        ("timeout_multiplier", float("inf")),
        ("timeout_multiplier", True),
    ],
)
def test_invalid_config_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CircuitBreakerConfig(**{field: value})  # type: ignore[arg-type]  # testing bad input


def test_excluded_must_be_exception_classes() -> None:
    with pytest.raises(TypeError, match="excluded"):
        CircuitBreakerConfig(excluded=(lambda exc: True,))  # type: ignore[arg-type]  # bad input


def test_presets_are_valid_and_distinct() -> None:
    presets = [
        CircuitBreakerConfig.conservative(),
        CircuitBreakerConfig.aggressive(),
        CircuitBreakerConfig.strict(),
    ]
    assert presets[0] == CircuitBreakerConfig()
    assert presets[1].failure_threshold < presets[0].failure_threshold
    assert presets[2].failure_threshold == 1
    assert len(set(presets)) == 3


def test_a_breaker_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        CircuitBreaker("")


def test_circuit_open_error_is_a_503_rich_error_that_pickles() -> None:
    error = CircuitOpenError("tenant-db", CircuitState.OPEN, 12.5)
    assert isinstance(error, RichError)
    assert error.kind is ErrorKind.EXTERNAL_SERVICE
    assert error.status == 503
    assert "tenant-db" in error.message
    assert error.user_message is not None
    assert "tenant-db" not in error.user_message
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.breaker_name, copy.state, copy.retry_after) == (
        "tenant-db",
        CircuitState.OPEN,
        12.5,
    )


def test_circuit_open_error_reads_like_a_rich_error_built_the_usual_way() -> None:
    error = CircuitOpenError("tenant-db", CircuitState.HALF_OPEN, 0.0)
    usual = RichError(ErrorKind.EXTERNAL_SERVICE, error.message, user_message=error.user_message)
    for attribute in vars(usual):
        assert getattr(error, attribute) == getattr(usual, attribute), attribute
    assert error.to_log_dict() == usual.to_log_dict()
    assert str(error).startswith(str(usual))
    assert "retry after 0.000 s" in str(error)


def test_circuit_open_error_reads_as_one_sentence_with_its_retry_time() -> None:
    error = CircuitOpenError("tenant-db", CircuitState.OPEN, 60.0)
    assert str(error) == (
        "circuit breaker 'tenant-db' is open and refused the call: the dependency it "
        "protects failed repeatedly; retry after 60.000 s"
    )


def test_circuit_open_error_fluent_setters_touch_only_that_instance() -> None:
    first = CircuitOpenError("a", CircuitState.OPEN, 1.0).with_tenant("t1").with_field("k", 1)
    second = CircuitOpenError("a", CircuitState.OPEN, 1.0)
    assert (first.tenant_id, first.fields) == ("t1", {"k": "1"})
    assert (second.tenant_id, second.fields) == (None, {})


def test_a_listener_may_control_the_breaker_from_the_sync_path(clock: ManualClock) -> None:
    breaker = make(clock, failures=1)

    def close_again(change: StateChange) -> None:
        if change.new is CircuitState.OPEN:
            breaker.close()

    breaker.add_listener(close_again)

    def broken() -> int:
        raise Boom("down")

    with pytest.raises(Boom):
        breaker.call_sync(broken)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().state_transitions == 2


def _plain() -> int:
    return 1


@pytest.mark.parametrize("mode", ["consecutive", "count window"])
async def test_a_plain_function_is_refused_with_a_type_error_never_counted_as_a_failure(
    mode: str,
) -> None:
    config = (
        CircuitBreakerConfig(failure_threshold=1)
        if mode == "consecutive"
        else CircuitBreakerConfig(
            failure_rate_threshold=0.5, sliding_window_type="count", minimum_calls=1
        )
    )
    breaker = CircuitBreaker("misused", config)
    for _ in range(3):
        with pytest.raises(TypeError, match="pass an async function, or call a plain function"):
            await breaker.call(_plain)  # type: ignore[arg-type]  # the misuse under test
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_successes) == (
        CircuitState.CLOSED,
        0,
        0,
    )
    assert breaker.call_sync(_plain) == 1  # the sync API takes it


async def test_a_callable_returning_a_coroutine_is_awaited() -> None:
    breaker = CircuitBreaker("lambda")

    async def answer() -> int:
        return 42

    assert await breaker.call(lambda: answer()) == 42
    assert breaker.stats().total_successes == 1


# -- a growing open duration (max_timeout) -----------------------------------------


def growing(
    clock: ManualClock,
    *,
    timeout: float = 1.0,
    max_timeout: float | None = 10.0,
    multiplier: float = 2.0,
    successes: int = 1,
    storage: CircuitStorage | None = None,
) -> CircuitBreaker:
    config = CircuitBreakerConfig(
        failure_threshold=1,
        success_threshold=successes,
        timeout=timeout,
        half_open_max_requests=1,
        max_timeout=max_timeout,
        timeout_multiplier=multiplier,
    )
    return CircuitBreaker("growing", config, clock=clock, storage=storage)


async def refused_for(breaker: CircuitBreaker) -> float:
    """The ``retry_after`` of the error an open breaker refuses a call with."""
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(succeed)
    return refused.value.retry_after


async def failed_trial(breaker: CircuitBreaker, clock: ManualClock) -> None:
    """Wait out the open duration, then fail the trial call: the breaker opens again."""
    clock.advance(breaker.retry_after)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN


async def test_each_reopening_without_a_close_doubles_the_open_duration_up_to_max_timeout(
    clock: ManualClock,
) -> None:
    breaker = growing(clock, timeout=1.0, max_timeout=10.0)
    assert breaker.stats().open_duration == 1.0
    await trip(breaker)
    durations = [breaker.retry_after]
    for _ in range(5):
        await failed_trial(breaker, clock)
        durations.append(breaker.retry_after)
    assert durations == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert breaker.stats().open_duration == 10.0
    clock.advance(9.5)  # the state change happens once: the open window is not re-read
    assert await refused_for(breaker) == 0.5
    clock.advance(0.5)
    with pytest.raises(Boom):
        await breaker.call(fail)


async def test_the_multiplier_sets_the_growth(clock: ManualClock) -> None:
    breaker = growing(clock, timeout=2.0, max_timeout=100.0, multiplier=3.0)
    await trip(breaker)
    durations = [await refused_for(breaker)]
    for _ in range(4):
        await failed_trial(breaker, clock)
        durations.append(await refused_for(breaker))
    assert durations == [2.0, 6.0, 18.0, 54.0, 100.0]


async def test_recovered_trials_close_and_the_next_opening_lasts_timeout_again(
    clock: ManualClock,
) -> None:
    breaker = growing(clock, successes=2)
    await trip(breaker)
    await failed_trial(breaker, clock)
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 4.0
    clock.advance(4.0)
    await breaker.call(succeed)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().open_duration == 4.0  # the opening its trials are testing
    await breaker.call(succeed)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().open_duration == 1.0  # what the next opening will last
    await trip(breaker)
    assert breaker.retry_after == 1.0
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 2.0


async def test_close_and_reset_start_again_from_timeout(clock: ManualClock) -> None:
    breaker = growing(clock)
    await trip(breaker)
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 2.0
    breaker.close()
    await trip(breaker)
    assert breaker.retry_after == 1.0
    await failed_trial(breaker, clock)
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 4.0
    breaker.reset()
    breaker.open()
    assert breaker.retry_after == 1.0


async def test_a_manual_open_counts_as_an_opening(clock: ManualClock) -> None:
    breaker = growing(clock, successes=2)
    breaker.open()
    assert breaker.retry_after == 1.0
    clock.advance(1.0)
    await breaker.call(succeed)  # a trial: half-open, one success of two
    assert state_of(breaker) is CircuitState.HALF_OPEN
    breaker.open()  # maintenance while half-open: a second opening in a row
    assert breaker.retry_after == 2.0
    clock.advance(0.5)
    breaker.open()  # already open: no new opening, the window is neither stretched nor grown
    assert breaker.retry_after == 1.5
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 4.0


def test_the_sync_path_grows_the_open_duration_too(clock: ManualClock) -> None:
    breaker = growing(clock)

    def down() -> int:
        raise Boom("down")

    durations = []
    for _ in range(3):
        clock.advance(breaker.retry_after)
        with pytest.raises(Boom):
            breaker.call_sync(down)
        durations.append(breaker.retry_after)
        with pytest.raises(CircuitOpenError) as refused:
            breaker.call_sync(down)
        assert refused.value.retry_after == durations[-1]
    assert durations == [1.0, 2.0, 4.0]


async def test_without_max_timeout_every_opening_lasts_timeout(clock: ManualClock) -> None:
    breaker = growing(clock, timeout=3.0, max_timeout=None, multiplier=5.0)
    await trip(breaker)
    durations = [await refused_for(breaker)]
    for _ in range(4):
        await failed_trial(breaker, clock)
        durations.append(await refused_for(breaker))
    breaker.open()
    assert durations == [3.0] * 5
    assert breaker.stats().open_duration == 3.0


async def test_a_rate_based_breaker_reopening_from_its_trials_grows_too(
    clock: ManualClock,
) -> None:
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5,
        sliding_window_size=2,
        minimum_calls=2,
        half_open_max_requests=1,
        timeout=1.0,
        max_timeout=3.0,
    )
    breaker = CircuitBreaker("rated", config, clock=clock)
    await trip(breaker)
    assert breaker.retry_after == 1.0
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 2.0
    await failed_trial(breaker, clock)
    assert breaker.retry_after == 3.0  # 4 s, capped
    clock.advance(3.0)
    await breaker.call(succeed)  # the one trial succeeds: closed
    assert state_of(breaker) is CircuitState.CLOSED
    await trip(breaker)
    assert breaker.retry_after == 1.0


def test_growth_settings_are_checked_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"max_timeout must be >= timeout \(30.0 s\)"):
        CircuitBreakerConfig(timeout=30.0, max_timeout=10.0)
    with pytest.raises(ValueError, match="timeout_multiplier must be a finite number >= 1"):
        CircuitBreakerConfig(max_timeout=120.0, timeout_multiplier=0.9)
    config = CircuitBreakerConfig(timeout=30.0, max_timeout=30.0, timeout_multiplier=1)
    assert (config.max_timeout, config.timeout_multiplier) == (30.0, 1)
    defaults = CircuitBreakerConfig()
    assert (defaults.max_timeout, defaults.timeout_multiplier) == (None, 2.0)
    # The new fields come last: positional construction is unchanged.
    assert CircuitBreakerConfig(5, 2, 60.0) == CircuitBreakerConfig()


async def test_an_uncapped_growth_that_overflows_a_float_lasts_for_ever(
    clock: ManualClock,
) -> None:
    breaker = growing(clock, timeout=1.0, max_timeout=float("inf"), multiplier=1e300)
    await trip(breaker)
    await failed_trial(breaker, clock)
    assert breaker.retry_after == pytest.approx(1e300)
    await failed_trial(breaker, clock)  # 1e300 ** 2 is beyond a float
    assert breaker.retry_after == float("inf")


async def test_a_zero_timeout_does_not_grow(clock: ManualClock) -> None:
    breaker = growing(clock, timeout=0.0, max_timeout=5.0)
    await trip(breaker)
    await failed_trial(breaker, clock)
    await failed_trial(breaker, clock)
    assert breaker.stats().open_duration == 0.0
