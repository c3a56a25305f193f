"""rustok_core.resilience.prometheus: the strategies' events as Prometheus metrics, read back
with prometheus_client's own text parser."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rustok_core.resilience import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    Fixed,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
)
from rustok_core.resilience.prometheus import ResilienceMetrics
from rustok_core.testing import ManualClock, test_mode


class Boom(Exception):
    pass


def samples(metrics: ResilienceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry, by name and sorted labels, through the real parser."""
    text = generate_latest(metrics.registry).decode()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def fail() -> None:
    raise Boom


async def succeed() -> str:
    return "ok"


async def test_breaker_state_and_calls_by_outcome() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    clock = ManualClock()
    breaker = CircuitBreaker("db", CircuitBreakerConfig(failure_threshold=2), clock=clock)
    metrics.watch_breaker(breaker)
    state = ("rustok_circuit_breaker_state", (("breaker", "db"),))
    assert samples(metrics)[state] == 0
    assert await breaker.call(succeed) == "ok"
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert samples(metrics)[state] == 1  # open
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    clock.advance(60.0)
    assert await breaker.call(succeed) == "ok"  # the half-open probe
    found = samples(metrics)
    assert found[state] == 2  # half-open until the second success
    calls = "rustok_circuit_breaker_calls_total"
    assert found[(calls, (("breaker", "db"), ("outcome", "success")))] == 2
    assert found[(calls, (("breaker", "db"), ("outcome", "failure")))] == 2
    assert found[(calls, (("breaker", "db"), ("outcome", "rejected")))] == 1
    assert found[(calls, (("breaker", "db"), ("outcome", "cancelled")))] == 0


async def test_retry_hook_counts_retries_not_first_attempts() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Boom
        return "done"

    policy = RetryPolicy(
        max_attempts=3, backoff=Fixed(0.01), name="jwks", on_retry=metrics.retry_hook("jwks")
    )
    with test_mode():
        assert await policy.execute(flaky) == "done"
    assert samples(metrics)[("rustok_retry_attempts_total", (("policy", "jwks"),))] == 2


async def test_bulkhead_and_limiter_refusals_are_counted() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    bulkhead = Bulkhead("export", max_concurrent=1)
    metrics.watch_bulkhead(bulkhead)
    limiter = RateLimiter(
        "api", rate=1.0, burst=1, clock=ManualClock(), listeners=[metrics.limiter_listener()]
    )
    release = None

    async def hold() -> None:
        with pytest.raises(BulkheadFullError):
            await bulkhead.call(succeed)

    async def outer() -> str:
        await hold()
        return "held"

    assert await bulkhead.call(outer) == "held"
    await limiter.acquire("tenant-a")
    with pytest.raises(RateLimitedError):
        await limiter.acquire("tenant-a")
    found = samples(metrics)
    outcome = "rustok_bulkhead_calls_total"
    assert found[(outcome, (("bulkhead", "export"), ("outcome", "success")))] == 1
    assert found[(outcome, (("bulkhead", "export"), ("outcome", "rejected")))] == 1
    assert found[("rustok_rate_limited_total", ())] == 1
    assert release is None


async def test_two_breakers_in_one_scrape_parse_as_one_family_with_a_label_each() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    db, search = CircuitBreaker("db"), CircuitBreaker("search")
    metrics.watch_breaker(db)
    metrics.watch_breaker(search)
    search.open()
    text = generate_latest(metrics.registry).decode()
    families = [
        f for f in text_string_to_metric_families(text) if f.name == "rustok_circuit_breaker_state"
    ]
    assert len(families) == 1
    states = {s.labels["breaker"]: s.value for s in families[0].samples}
    assert states == {"db": 0.0, "search": 1.0}
