"""ResiliencePolicy: the steps, their default and explicit orders, describe(), fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import assert_type

import pytest

from rustok_core.resilience import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Event,
    Fallback,
    FallbackUsed,
    Fixed,
    Hedge,
    OperationTimeoutError,
    RateLimitedError,
    RateLimiter,
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


# -- more steps, the order, describe --------------------------------------------------


async def down() -> list[str]:
    raise ConnectionError("down")


async def test_the_default_order_is_described_outside_in() -> None:
    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=3, budget=2.0),
        breaker=breaker(),
        timeout=2.0,
        bulkhead=Bulkhead("db", max_concurrent=4),
        limiter=RateLimiter("db", rate=10.0, burst=10),
        fallback=Fallback[list[str]](lambda error: [], on=ConnectionError),
    )
    assert policy.describe() == (
        "fallback(ConnectionError) > retry(max_attempts=3, budget=2 s) > breaker('upstream') "
        "> limiter('db') > bulkhead('db', max_concurrent=4) > timeout(2 s) > call"
    )


async def test_an_explicit_order_is_applied_and_described() -> None:
    # The breaker outside the retries: it sees one outcome per call, not per attempt.
    cb = breaker(failures=10)
    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=3, backoff=Fixed(0.0)),
        breaker=cb,
        order=("breaker", "retry"),
    )
    assert policy.describe() == "breaker('upstream') > retry(max_attempts=3) > call"
    with pytest.raises(ConnectionError):
        await policy.execute(down)
    assert cb.stats().total_requests == 1


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (("retry",), "configured"),
        (("retry", "breaker", "timeout"), "configured"),
        (("retry", "retry", "breaker"), "twice"),
        (("retry", "breaker", "cache"), "unknown"),
    ],
)
def test_an_order_must_name_each_configured_step_once(order: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResiliencePolicy(retry=RetryPolicy(), breaker=breaker(), order=order)  # type: ignore[arg-type]  # testing bad input


async def test_a_fallback_turns_the_chosen_errors_into_its_value() -> None:
    events: list[Event] = []
    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=2, backoff=Fixed(0.0)),
        fallback=Fallback(lambda error: ["cached"], on=ConnectionError, listeners=[events.append]),
    )
    result = await policy.execute(down)
    assert assert_type(result, list[str]) == ["cached"]
    assert len(events) == 1
    assert isinstance(events[0], FallbackUsed)


async def test_a_fallback_lets_other_errors_through() -> None:
    async def broken() -> int:
        raise KeyError("bug")

    policy = ResiliencePolicy(fallback=Fallback(lambda error: 0, on=ConnectionError))
    with pytest.raises(KeyError):
        await policy.execute(broken)


async def test_a_fallback_answers_for_an_open_breaker() -> None:
    cb = breaker()
    cb.open()
    policy = ResiliencePolicy(
        breaker=cb, fallback=Fallback(lambda error: "stale", on=CircuitOpenError)
    )
    assert await policy.execute(down) == "stale"


async def test_the_bulkhead_and_limiter_steps_refuse_inside_the_policy() -> None:
    limiter = RateLimiter("api", rate=1.0, burst=1, clock=ManualClock(start=0.0))
    policy = ResiliencePolicy(limiter=limiter, bulkhead=Bulkhead("api", max_concurrent=1))

    async def one() -> int:
        return 1

    assert await policy.execute(one) == 1
    with pytest.raises(RateLimitedError):
        await policy.execute(one)


async def test_a_full_bulkhead_inside_the_policy_raises_its_own_error() -> None:
    bulkhead = Bulkhead("api", max_concurrent=1)
    policy = ResiliencePolicy(bulkhead=bulkhead)
    gate = asyncio.Event()

    async def hold() -> int:
        await gate.wait()
        return 1

    running = asyncio.create_task(policy.execute(hold))
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await policy.execute(hold)
    gate.set()
    assert await running == 1


def test_the_sync_path_composes_the_same_steps() -> None:
    cb = breaker(failures=10)
    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=3, backoff=Fixed(0.0)),
        breaker=cb,
        fallback=Fallback(lambda error: -1, on=ConnectionError),
    )
    calls = 0

    @policy
    def flaky() -> int:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    assert flaky() == -1
    assert calls == 3
    assert cb.stats().total_failures == 3


def test_the_sync_path_refuses_a_timeout() -> None:
    with pytest.raises(TypeError, match="timeout"):
        ResiliencePolicy(timeout=1.0).execute_sync(lambda: 1)


async def test_a_limiter_key_gives_each_tenant_its_own_bucket() -> None:
    import contextvars

    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")
    limiter = RateLimiter("api", rate=1.0, burst=1, clock=ManualClock(start=0.0))
    policy = ResiliencePolicy(limiter=limiter, limiter_key=tenant.get)
    assert policy.describe() == "limiter('api', per key) > call"

    async def one() -> int:
        return 1

    tenant.set("acme")
    assert await policy.execute(one) == 1
    with pytest.raises(RateLimitedError) as refused:
        await policy.execute(one)
    assert refused.value.key == "acme"
    tenant.set("globex")
    assert await policy.execute(one) == 1


def test_the_sync_path_takes_the_limiter_key_too() -> None:
    limiter = RateLimiter("api", rate=1.0, burst=1, clock=ManualClock(start=0.0))
    policy = ResiliencePolicy(limiter=limiter, limiter_key=lambda: "acme")
    assert policy.execute_sync(lambda: 1) == 1
    with pytest.raises(RateLimitedError) as refused:
        policy.execute_sync(lambda: 1)
    assert refused.value.key == "acme"


# Each line hands a strategy a selector its type refuses: the refusal at run time is under test.
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RetryPolicy(retry_on=42), "retry_on must be an exception type, a tuple of them"),  # type: ignore[arg-type]
        (lambda: Fallback(lambda error: 0, on=(ValueError, 42)), "on must hold exception types"),  # type: ignore[arg-type]
        (lambda: Hedge("h", delay=0.1, on=KeyboardInterrupt), "on must be an exception type"),  # type: ignore[arg-type]
        (lambda: Fallback(lambda error: 0, on=42), "or a predicate taking the exception"),  # type: ignore[arg-type]
    ],
)
def test_the_strategies_read_the_exceptions_they_select_alike(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        build()
