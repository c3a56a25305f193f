"""The states an operator forces on a breaker: forced open, disabled, metrics only, and the
way back (release, close, open, reset), on a controllable clock."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rustok_core.resilience import (
    CallOutcome,
    CallRejected,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Event,
    ResiliencePolicy,
    StateChange,
    redis_storage,
)
from rustok_core.resilience.prometheus import ResilienceMetrics
from rustok_core.testing import ManualClock


class Boom(Exception):
    pass


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise Boom


def fail_sync() -> str:
    raise Boom


def is_ok(result: str) -> bool:
    return result == "ok"


def not_ok(result: str) -> bool:
    return result != "ok"


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def make(
    clock: ManualClock, **config: object
) -> tuple[CircuitBreaker, list[StateChange], list[Event]]:
    changes: list[StateChange] = []
    events: list[Event] = []
    settings: dict[str, object] = {"failure_threshold": 2, "timeout": 30.0, **config}
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(**settings),  # type: ignore[arg-type]  # test settings
        clock=clock,
        listeners=[changes.append],
        event_listeners=[events.append],
    )
    return breaker, changes, events


# -- forced open ---------------------------------------------------------------------


async def test_a_forced_open_breaker_refuses_every_call_past_any_open_timeout() -> None:
    clock = ManualClock()
    breaker, changes, events = make(clock)
    ran: list[str] = []

    async def call() -> str:
        ran.append("ran")
        return "ok"

    breaker.force_open()
    assert state_of(breaker) is CircuitState.FORCED_OPEN
    for _ in range(3):
        clock.advance(1_000_000.0)  # far past the 30 s open timeout
        with pytest.raises(CircuitOpenError) as refused:
            await breaker.call(call)
        assert refused.value.state is CircuitState.FORCED_OPEN
        assert refused.value.retry_after == 30.0  # a hint: the timeout
        assert "forced open" in str(refused.value)
    with pytest.raises(CircuitOpenError):
        breaker.call_sync(lambda: "ok")
    with pytest.raises(CircuitOpenError):
        await breaker.judging(not_ok).call(call)
    with pytest.raises(CircuitOpenError):
        async with breaker:
            ran.append("block")
    assert ran == []
    assert state_of(breaker) is CircuitState.FORCED_OPEN
    assert breaker.retry_after == 30.0
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_rejected) == (6, 6)
    assert {e.reason for e in events if isinstance(e, CallRejected)} == {"forced_open"}
    breaker.release()
    assert await breaker.call(call) == "ok"
    assert [(c.old, c.new) for c in changes] == [
        (CircuitState.CLOSED, CircuitState.FORCED_OPEN),
        (CircuitState.FORCED_OPEN, CircuitState.CLOSED),
    ]


async def test_forcing_an_open_breaker_open_keeps_it_from_half_opening() -> None:
    clock = ManualClock()
    breaker, _, _ = make(clock)
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert state_of(breaker) is CircuitState.OPEN
    breaker.force_open()
    clock.advance(31.0)  # the opening would have ended: no trial call
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    breaker.half_open()  # leaves a forced state alone
    assert state_of(breaker) is CircuitState.FORCED_OPEN
    breaker.release()
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 0
    assert await breaker.call(succeed) == "ok"


# -- disabled ------------------------------------------------------------------------


async def test_a_disabled_breaker_lets_every_call_through_and_counts_nothing() -> None:
    clock = ManualClock()
    breaker, changes, events = make(clock)
    breaker.disable()
    events.clear()
    for _ in range(10):
        with pytest.raises(Boom):
            await breaker.call(fail)
        with pytest.raises(Boom):
            breaker.call_sync(fail_sync)
        with pytest.raises(Boom):
            async with breaker:
                raise Boom
    assert await breaker.call(succeed) == "ok"
    assert await breaker.judging(is_ok).call(succeed) == "ok"  # judged failed
    assert state_of(breaker) is CircuitState.DISABLED
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_successes, stats.total_failures) == (0, 0, 0)
    assert (stats.failure_count, stats.total_rejected) == (0, 0)
    assert events == []
    breaker.release()
    assert state_of(breaker) is CircuitState.CLOSED
    with pytest.raises(Boom):
        await breaker.call(fail)  # counted again: one failure of two
    assert state_of(breaker) is CircuitState.CLOSED
    assert [c.new for c in changes] == [CircuitState.DISABLED, CircuitState.CLOSED]


async def test_a_disabled_rate_based_breaker_counts_nothing_either() -> None:
    clock = ManualClock()
    breaker, _, events = make(
        clock, failure_rate_threshold=0.5, sliding_window_size=4, minimum_calls=2
    )
    breaker.disable()
    events.clear()
    for _ in range(8):
        with pytest.raises(Boom):
            await breaker.call(fail)
        with pytest.raises(Boom):
            breaker.call_sync(fail_sync)
    assert state_of(breaker) is CircuitState.DISABLED
    assert breaker.stats().buffered_calls == 0
    assert breaker.stats().total_requests == 0
    assert events == []


# -- metrics only --------------------------------------------------------------------


async def test_a_metrics_only_breaker_counts_and_reports_outcomes_but_never_opens() -> None:
    clock = ManualClock()
    breaker, changes, events = make(clock)
    breaker.metrics_only()
    for _ in range(20):
        with pytest.raises(Boom):
            await breaker.call(fail)
        with pytest.raises(Boom):
            breaker.call_sync(fail_sync)
        clock.advance(60.0)
    assert await breaker.call(succeed) == "ok"
    assert state_of(breaker) is CircuitState.METRICS_ONLY
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_failures, stats.total_successes) == (41, 40, 1)
    assert stats.total_rejected == 0
    outcomes = [e.outcome for e in events if isinstance(e, CallOutcome)]
    assert outcomes.count("failure") == 40
    assert outcomes[-1] == "success"
    assert [c.new for c in changes] == [CircuitState.METRICS_ONLY]


async def test_a_metrics_only_rate_based_breaker_never_opens() -> None:
    clock = ManualClock()
    breaker, _, _ = make(clock, failure_rate_threshold=0.5, sliding_window_size=4, minimum_calls=2)
    breaker.metrics_only()
    for _ in range(10):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert await breaker.judging(is_ok).call(succeed) == "ok"  # judged failed
    assert state_of(breaker) is CircuitState.METRICS_ONLY
    assert breaker.stats().total_failures == 11


async def test_a_call_admitted_before_the_state_was_forced_changes_nothing() -> None:
    clock = ManualClock()
    breaker, _, _ = make(clock, failure_threshold=1)
    release = asyncio.Event()

    async def slow_failure() -> str:
        await release.wait()
        raise Boom

    running = asyncio.create_task(breaker.call(slow_failure))
    await asyncio.sleep(0)  # admitted while closed
    breaker.metrics_only()
    release.set()
    with pytest.raises(Boom):
        await running
    assert state_of(breaker) is CircuitState.METRICS_ONLY  # one failure would have opened it
    assert breaker.stats().total_failures == 1


# -- the way back ----------------------------------------------------------------------


async def test_close_open_and_reset_end_a_forced_state() -> None:
    clock = ManualClock()
    breaker, changes, _ = make(clock)
    breaker.force_open()
    breaker.close()
    assert state_of(breaker) is CircuitState.CLOSED
    breaker.disable()
    breaker.open()
    assert state_of(breaker) is CircuitState.OPEN
    clock.advance(30.0)
    assert await breaker.call(succeed) == "ok"  # a trial: the opening ends as usual
    breaker.metrics_only()
    breaker.reset()
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().state_transitions == 0
    breaker.release()  # nothing forced: nothing happens
    assert state_of(breaker) is CircuitState.CLOSED
    assert [c.new for c in changes][:4] == [
        CircuitState.FORCED_OPEN,
        CircuitState.CLOSED,
        CircuitState.DISABLED,
        CircuitState.OPEN,
    ]


async def test_forcing_the_same_state_twice_reports_one_change() -> None:
    breaker, changes, _ = make(ManualClock())
    breaker.force_open()
    breaker.force_open()
    breaker.disable()
    assert [(c.old, c.new) for c in changes] == [
        (CircuitState.CLOSED, CircuitState.FORCED_OPEN),
        (CircuitState.FORCED_OPEN, CircuitState.DISABLED),
    ]
    assert repr(breaker) == "<CircuitBreaker 'db' disabled>"


def test_a_policy_describes_a_forced_breaker_by_its_state() -> None:
    breaker, _, _ = make(ManualClock())
    policy = ResiliencePolicy(breaker=breaker)
    assert policy.describe() == "breaker('db') > call"
    breaker.force_open()
    assert policy.describe() == "breaker('db', forced_open) > call"
    breaker.release()
    assert policy.describe() == "breaker('db') > call"


# -- Prometheus ----------------------------------------------------------------------


def gauge(metrics: ResilienceMetrics) -> float:
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rustok_circuit_breaker_state":
                return sample.value
    raise AssertionError("no state gauge")


async def test_the_state_gauge_has_a_value_for_each_forced_state() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    breaker, _, _ = make(ManualClock())
    metrics.watch_breaker(breaker)
    seen = []
    for force in (breaker.disable, breaker.force_open, breaker.metrics_only, breaker.release):
        force()
        seen.append(gauge(metrics))
    assert seen == [3, 4, 5, 0]
    breaker.metrics_only()
    with pytest.raises(Boom):
        await breaker.call(fail)
    text = generate_latest(metrics.registry).decode()
    assert 'rustok_circuit_breaker_calls_total{breaker="db",outcome="failure"} 1.0' in text


# -- with the circuit on Redis: forced states are this process's ----------------------


@pytest.mark.redis
async def test_on_redis_a_forced_state_is_this_processs_only(redis_url: str) -> None:
    namespace = f"forced-{uuid.uuid4().hex[:12]}"
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(failure_threshold=2, timeout=30.0)
    here, there = (
        CircuitBreaker(
            "db",
            config,
            storage=redis_storage(redis_url, namespace=namespace, clock=clock),
            clock=clock,
        )
        for _ in "ab"
    )
    here.force_open()
    assert await there.call(succeed) == "ok"  # the other process is not isolated
    with pytest.raises(CircuitOpenError):
        await here.call(succeed)
    here.metrics_only()
    for _ in range(3):
        with pytest.raises(Boom):
            await here.call(fail)  # counted here, never sent to the fleet
    assert state_of(here) is CircuitState.METRICS_ONLY
    assert here.stats().total_failures == 3
    assert await there.call(succeed) == "ok"
    assert state_of(there) is CircuitState.CLOSED
    for _ in range(2):
        with pytest.raises(Boom):
            await there.call(fail)  # the fleet opens
    assert state_of(here) is CircuitState.METRICS_ONLY
    here.release()  # back to the fleet's state
    assert state_of(here) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await here.call(succeed)
