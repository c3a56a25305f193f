"""A ``prometheus_client`` collector for breakers, retry policies and bulkheads.

Install the extra (``pip install 'rustok-core[prometheus]'``) and register one
collector; it reads each strategy's ``stats()`` at every scrape, so nothing is
counted twice and nothing is formatted by hand::

    from prometheus_client import REGISTRY
    from rustok_core.resilience.prometheus import ResilienceCollector

    REGISTRY.register(ResilienceCollector(breakers=[tenant_db], retries=[policy]))

Metrics (names as in the project's observability design):

- ``rustok_circuit_breaker_state{breaker}``: 0 closed, 1 open, 2 half-open;
- ``rustok_circuit_breaker_calls_total{breaker,outcome}``: outcome ``success``,
  ``failure``, ``rejected``, ``excluded`` or ``cancelled``;
- ``rustok_retry_attempts_total{policy}`` and ``rustok_retry_retries_total{policy}``;
- ``rustok_bulkhead_in_use{bulkhead}`` and ``rustok_bulkhead_rejected_total{bulkhead}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rustok_core.resilience._breaker import CircuitBreaker
from rustok_core.resilience._bulkhead import Bulkhead
from rustok_core.resilience._registry import BreakerRegistry
from rustok_core.resilience._retry import RetryPolicy

__all__ = ["ResilienceCollector"]


class ResilienceCollector(Collector):
    """Exposes the stats of the given breakers, retry policies and bulkheads at each scrape.

    Args:
        breakers: breakers, or a `BreakerRegistry` (read at each scrape, so
            breakers made later are included).
        retries: retry policies, by their ``name``.
        bulkheads: bulkheads, by their ``name``.
    """

    def __init__(
        self,
        *,
        breakers: Iterable[CircuitBreaker] | BreakerRegistry = (),
        retries: Iterable[RetryPolicy] = (),
        bulkheads: Iterable[Bulkhead] = (),
    ) -> None:
        self._registry = breakers if isinstance(breakers, BreakerRegistry) else None
        self._breakers = () if isinstance(breakers, BreakerRegistry) else tuple(breakers)
        self._retries = tuple(retries)
        self._bulkheads = tuple(bulkheads)

    def collect(self) -> Iterator[Metric]:
        """The metric families, built from the strategies' stats now."""
        breakers = self._registry.breakers() if self._registry is not None else self._breakers
        state = GaugeMetricFamily(
            "rustok_circuit_breaker_state",
            "Circuit breaker state (0 closed, 1 open, 2 half-open)",
            labels=["breaker"],
        )
        calls = CounterMetricFamily(
            "rustok_circuit_breaker_calls",
            "Calls through a circuit breaker, by outcome",
            labels=["breaker", "outcome"],
        )
        for breaker in breakers:
            stats = breaker.stats()
            state.add_metric([stats.name], stats.state.number)
            for outcome, value in (
                ("success", stats.total_successes),
                ("failure", stats.total_failures),
                ("rejected", stats.total_rejected),
                ("excluded", stats.total_excluded),
                ("cancelled", stats.total_cancelled),
            ):
                calls.add_metric([stats.name, outcome], value)
        yield state
        yield calls
        attempts = CounterMetricFamily(
            "rustok_retry_attempts", "Attempts made by a retry policy", labels=["policy"]
        )
        retries = CounterMetricFamily(
            "rustok_retry_retries", "Attempts that were retries", labels=["policy"]
        )
        for policy in self._retries:
            retry_stats = policy.stats()
            attempts.add_metric([policy.name], retry_stats.attempts)
            retries.add_metric([policy.name], retry_stats.retries)
        yield attempts
        yield retries
        in_use = GaugeMetricFamily(
            "rustok_bulkhead_in_use", "Bulkhead slots in use", labels=["bulkhead"]
        )
        rejected = CounterMetricFamily(
            "rustok_bulkhead_rejected", "Calls a bulkhead refused", labels=["bulkhead"]
        )
        for bulkhead in self._bulkheads:
            bulkhead_stats = bulkhead.stats()
            in_use.add_metric([bulkhead_stats.name], bulkhead_stats.in_use)
            rejected.add_metric([bulkhead_stats.name], bulkhead_stats.total_rejected)
        yield in_use
        yield rejected
