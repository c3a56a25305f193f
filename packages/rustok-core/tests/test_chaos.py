"""Chaos: faults, latency and results injected at a seeded rate, switched on and off at run
time, latency through an injected sleep, events, both kinds of call and the decorator."""

from __future__ import annotations

import random
from typing import assert_type

import pytest

from rustok_core.resilience import Chaos, ChaosInjected
from rustok_core.testing import ManualClock, test_mode


class Calls:
    """A protected call that counts how often it really ran."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        return "real"

    def sync(self) -> str:
        self.count += 1
        return "real"


def seeded_picks(seed: int, rate: float, calls: int) -> list[int]:
    """The calls that a `random.Random(seed)` picks at ``rate``, drawn once per call."""
    draws = random.Random(seed)
    return [n for n in range(calls) if draws.random() < rate]


async def test_a_seeded_rate_injects_exactly_the_calls_the_same_seed_picks() -> None:
    chaos = Chaos.result("drill", "injected", rate=0.3, seed=7)
    call = Calls()
    answers = [await chaos.call(call) for _ in range(1000)]
    injected = [n for n, answer in enumerate(answers) if answer == "injected"]
    assert injected == seeded_picks(7, 0.3, 1000)
    assert chaos.injected == len(injected) == 1000 - call.count
    assert 250 < len(injected) < 350  # the rate, roughly: the seed is not a special one


def test_the_same_seed_injects_the_same_calls_on_every_run() -> None:
    def run() -> list[str]:
        chaos = Chaos.result("drill", "injected", rate=0.5, seed=42)
        return [chaos.call_sync(Calls().sync) for _ in range(200)]

    assert run() == run()


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 100)])
def test_rates_zero_and_one_inject_no_call_and_every_call(rate: float, expected: int) -> None:
    chaos = Chaos.result("drill", "injected", rate=rate)
    answers = [chaos.call_sync(Calls().sync) for _ in range(100)]
    assert answers.count("injected") == expected


async def test_a_fault_is_raised_instead_of_running_the_call() -> None:
    fault = ConnectionError("injected by the drill")
    chaos = Chaos.fault("drill", fault, rate=1.0)
    call = Calls()
    for _ in range(2):
        with pytest.raises(ConnectionError) as raised:
            await chaos.call(call)
        assert raised.value is fault
    assert call.count == 0


def test_a_fault_factory_makes_a_fresh_error_for_each_injection() -> None:
    chaos = Chaos.fault("drill", ConnectionError, rate=1.0)
    errors: list[ConnectionError] = []
    for _ in range(2):
        with pytest.raises(ConnectionError) as raised:
            chaos.call_sync(Calls().sync)
        errors.append(raised.value)
    assert errors[0] is not errors[1]


def test_a_fault_factory_that_returns_no_exception_is_reported() -> None:
    chaos = Chaos.fault("drill", lambda: "oops", rate=1.0)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="not an exception"):
        chaos.call_sync(Calls().sync)


async def test_latency_waits_through_the_injected_sleep_then_runs_the_call() -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    chaos = Chaos.latency("drill", 2.5, rate=1.0, sleep=sleep)
    call = Calls()
    assert await chaos.call(call) == "real"
    assert waited == [2.5]
    assert call.count == 1


def test_latency_of_a_plain_call_waits_through_the_injected_sync_sleep() -> None:
    waited: list[float] = []
    chaos = Chaos.latency("drill", 0.75, rate=1.0, sleep_sync=waited.append)
    call = Calls()
    assert chaos.call_sync(call.sync) == "real"
    assert waited == [0.75]
    assert call.count == 1


async def test_latency_in_test_mode_is_counted_on_the_clock_not_waited() -> None:
    clock = ManualClock()
    chaos = Chaos.latency("drill", 30.0, rate=1.0, clock=clock)
    before = clock()
    with test_mode():
        assert await chaos.call(Calls()) == "real"
        assert chaos.call_sync(Calls().sync) == "real"
    assert clock() - before == 60.0


def test_switching_off_stops_injection_at_once_and_on_resumes_the_seeded_draws() -> None:
    chaos = Chaos.result("drill", "injected", rate=0.5, seed=7)
    picks = seeded_picks(7, 0.5, 40)
    answers = [chaos.call_sync(Calls().sync) for _ in range(20)]
    chaos.enabled = False
    assert not chaos.enabled
    off = [chaos.call_sync(Calls().sync) for _ in range(20)]
    assert off == ["real"] * 20
    chaos.enabled = True
    answers += [chaos.call_sync(Calls().sync) for _ in range(20)]
    # Nothing was drawn while it was off: the draws go on where they stopped.
    assert [n for n, answer in enumerate(answers) if answer == "injected"] == picks


def test_an_enabled_callable_is_asked_on_every_call() -> None:
    switch = {"on": True}
    chaos = Chaos.fault("drill", ConnectionError, rate=1.0, enabled=lambda: switch["on"])
    with pytest.raises(ConnectionError):
        chaos.call_sync(Calls().sync)
    switch["on"] = False
    assert chaos.call_sync(Calls().sync) == "real"
    assert chaos.injected == 1


def test_each_injection_is_reported_to_the_listeners() -> None:
    events: list[ChaosInjected] = []
    latency = Chaos.latency(
        "slow", 1.5, rate=1.0, sleep_sync=lambda _s: None, listeners=[events.append]
    )
    result = Chaos.result("canned", 503, rate=1.0)
    result.add_listener(events.append)
    latency.call_sync(Calls().sync)
    result.call_sync(Calls().sync)
    assert events == [ChaosInjected("slow", "latency", 1.5), ChaosInjected("canned", "result")]


def test_a_failing_listener_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_event: ChaosInjected) -> None:
        raise RuntimeError("listener broke")

    chaos = Chaos.result("drill", "injected", rate=1.0, listeners=[broken])
    assert chaos.call_sync(Calls().sync) == "injected"
    assert "listener" in caplog.text


async def test_the_decorator_injects_into_coroutine_and_plain_functions() -> None:
    chaos = Chaos.result("drill", -1, rate=1.0)

    @chaos
    async def count_async(items: list[str]) -> int:
        return len(items)

    @chaos
    def count(items: list[str]) -> int:
        return len(items)

    assert await count_async(["a"]) == -1
    assert count(["a"]) == -1
    chaos.enabled = False
    assert await count_async(["a"]) == 1
    assert count(["a", "b"]) == 2
    assert count.__name__ == "count"


def test_describe_names_what_it_injects_and_the_rate() -> None:
    assert Chaos.fault("d", ConnectionError, rate=0.1).describe() == "chaos('d', fault, rate=0.1)"
    assert Chaos.latency("d", 2, rate=0.5).describe() == "chaos('d', latency=2 s, rate=0.5)"
    assert Chaos.result("d", None, rate=1).describe() == "chaos('d', result, rate=1)"
    chaos = Chaos.result("d", None, rate=1)
    chaos.enabled = False
    assert repr(chaos) == "<Chaos chaos('d', result, rate=1) disabled>"


@pytest.mark.parametrize("rate", [-0.1, 1.5, True, "0.5"])
def test_a_rate_outside_zero_to_one_is_refused(rate: object) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        Chaos.result("drill", None, rate=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0, -1.0, True])
def test_a_latency_that_is_not_positive_is_refused(seconds: object) -> None:
    with pytest.raises(ValueError, match="latency must be"):
        Chaos.latency("drill", seconds, rate=0.5)  # type: ignore[arg-type]


def test_a_fault_that_is_neither_an_exception_nor_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="fault must be"):
        Chaos.fault("drill", "boom", rate=0.5)  # type: ignore[arg-type]


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        Chaos.fault("", ConnectionError, rate=0.5)


async def test_a_result_chaos_types_calls_as_their_own_result_or_the_injected_one() -> None:
    never_injects = Chaos.result("drill", 503, rate=0.0)
    fault = Chaos.fault("drill", ConnectionError, rate=0.0)
    answer = await never_injects.call(Calls())
    assert_type(answer, str | int)
    assert_type(await fault.call(Calls()), str)
    assert answer == "real"


def test_prometheus_counts_the_injections_by_kind() -> None:
    from prometheus_client import generate_latest

    from rustok_core.resilience.prometheus import ResilienceMetrics

    metrics = ResilienceMetrics()
    chaos = Chaos.result("drill", "injected", rate=0.5, seed=7)
    metrics.watch_chaos(chaos)
    for _ in range(100):
        chaos.call_sync(Calls().sync)
    expected = len(seeded_picks(7, 0.5, 100))
    text = generate_latest(metrics.registry).decode()
    assert f'rustok_chaos_injections_total{{chaos="drill",kind="result"}} {expected:.1f}' in text


def test_a_policy_runs_its_chaos_drill_innermost() -> None:
    from rustok_core.resilience import CircuitBreaker, ResiliencePolicy, RetryPolicy

    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=2),
        breaker=CircuitBreaker("payments"),
        timeout=1.0,
        chaos=Chaos.fault("drill", ConnectionError, rate=0.5),
    )
    assert policy.steps == ("retry", "breaker", "timeout", "chaos")
    assert policy.describe() == (
        "retry(max_attempts=2) > breaker('payments') > timeout(1 s) "
        "> chaos('drill', fault, rate=0.5) > call"
    )


def test_the_breaker_and_retry_of_a_policy_see_the_injected_faults() -> None:
    from rustok_core.resilience import (
        CircuitBreaker,
        CircuitBreakerConfig,
        CircuitOpenError,
        Fixed,
        ResiliencePolicy,
        RetryPolicy,
    )

    breaker = CircuitBreaker("payments", CircuitBreakerConfig(failure_threshold=3))
    retry = RetryPolicy(max_attempts=2, backoff=Fixed(0.1))
    drill = Chaos.fault("drill", ConnectionError, rate=1.0)
    policy = ResiliencePolicy(retry=retry, breaker=breaker, chaos=drill)
    call = Calls()
    with test_mode(), pytest.raises(ConnectionError):
        policy.execute_sync(call.sync)
    with test_mode(), pytest.raises(CircuitOpenError):
        policy.execute_sync(call.sync)  # the third injected fault opened the breaker
    assert call.count == 0
    assert drill.injected == 3
    assert retry.stats().retries == 2


async def test_a_drill_switched_off_in_a_policy_is_passed_by_and_on_applies_next_call() -> None:
    from rustok_core.resilience import ResiliencePolicy, RetryPolicy

    drill = Chaos.fault("drill", ConnectionError, rate=1.0, enabled=False)
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=1), chaos=drill)
    call = Calls()
    assert await policy.execute(call) == "real"
    assert policy.execute_sync(call.sync) == "real"
    assert (call.count, drill.injected) == (2, 0)
    drill.enabled = True
    with pytest.raises(ConnectionError):
        await policy.execute(call)
    with pytest.raises(ConnectionError):
        policy.execute_sync(call.sync)
    assert (call.count, drill.injected) == (2, 2)


async def test_a_drill_switched_on_and_off_again_in_a_policy_follows_each_switch() -> None:
    from rustok_core.resilience import ResiliencePolicy

    drill = Chaos.fault("drill", ConnectionError, rate=1.0)
    policy = ResiliencePolicy(chaos=drill)
    call = Calls()
    with pytest.raises(ConnectionError):
        await policy.execute(call)
    drill.enabled = False
    assert await policy.execute(call) == "real"
    drill.enabled = True
    with pytest.raises(ConnectionError):
        policy.execute_sync(call.sync)
    assert (call.count, drill.injected) == (1, 2)


async def test_a_drill_enabled_by_a_callable_in_a_policy_is_asked_on_each_call() -> None:
    from rustok_core.resilience import ResiliencePolicy

    switch = [False]
    drill = Chaos.fault("drill", ConnectionError, rate=1.0, enabled=lambda: switch[0])
    policy = ResiliencePolicy(chaos=drill)
    call = Calls()
    assert await policy.execute(call) == "real"
    switch[0] = True
    with pytest.raises(ConnectionError):
        await policy.execute(call)
    assert (call.count, drill.injected) == (1, 1)


def test_an_explicit_order_may_put_the_drill_elsewhere() -> None:
    from rustok_core.resilience import CircuitBreaker, ResiliencePolicy

    policy = ResiliencePolicy(
        breaker=CircuitBreaker("payments"),
        chaos=Chaos.latency("drill", 1.0, rate=0.1),
        order=("chaos", "breaker"),
    )
    assert policy.describe() == "chaos('drill', latency=1 s, rate=0.1) > breaker('payments') > call"
