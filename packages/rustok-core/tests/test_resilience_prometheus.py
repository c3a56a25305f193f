"""The prometheus_client collector, read back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rustok_core.resilience import (
    BreakerRegistry,
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    Fixed,
    RetryPolicy,
)
from rustok_core.resilience.prometheus import ResilienceCollector
from rustok_core.testing import ManualClock, test_mode


def scrape(collector: ResilienceCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def ok() -> int:
    return 1


async def down() -> int:
    raise ConnectionError("down")


async def test_two_breakers_parse_as_one_family_each_with_a_label_per_breaker() -> None:
    db = CircuitBreaker("tenant-db", clock=ManualClock())
    search = CircuitBreaker("search", clock=ManualClock())
    await db.call(ok)
    search.open()
    with pytest.raises(CircuitOpenError):
        await search.call(ok)
    samples = scrape(ResilienceCollector(breakers=[db, search]))
    assert samples[("rustok_circuit_breaker_state", (("breaker", "tenant-db"),))] == 0
    assert samples[("rustok_circuit_breaker_state", (("breaker", "search"),))] == 1
    calls = "rustok_circuit_breaker_calls_total"
    assert samples[(calls, (("breaker", "tenant-db"), ("outcome", "success")))] == 1
    assert samples[(calls, (("breaker", "search"), ("outcome", "rejected")))] == 1


def test_a_registry_is_read_at_each_scrape() -> None:
    registry = BreakerRegistry(lambda host: CircuitBreaker(f"http:{host}"))
    collector = ResilienceCollector(breakers=registry)
    registry.get("a.example").open()
    samples = scrape(collector)
    assert samples[("rustok_circuit_breaker_state", (("breaker", "http:a.example"),))] == 1


async def test_retry_attempts_and_bulkhead_slots_are_exposed() -> None:
    policy = RetryPolicy(max_attempts=2, backoff=Fixed(0.0), name="payments")
    bulkhead = Bulkhead("reports", max_concurrent=2)
    with test_mode(), pytest.raises(ConnectionError):
        await policy.execute(down)
    await bulkhead.call(ok)
    samples = scrape(ResilienceCollector(retries=[policy], bulkheads=[bulkhead]))
    assert samples[("rustok_retry_attempts_total", (("policy", "payments"),))] == 2
    assert samples[("rustok_retry_retries_total", (("policy", "payments"),))] == 1
    assert samples[("rustok_bulkhead_in_use", (("bulkhead", "reports"),))] == 0
    assert samples[("rustok_bulkhead_rejected_total", (("bulkhead", "reports"),))] == 0
