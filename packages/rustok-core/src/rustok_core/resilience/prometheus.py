"""Prometheus metrics of the resilience strategies (the ``rustok-core[prometheus]`` extra).

`ResilienceMetrics` listens to breakers, bulkheads and rate limiters and is the ``on_retry``
hook of retry policies, and keeps ``prometheus_client`` metrics current from their events.
Values live in prometheus_client's own metric objects, so they are exposed by any of its
exposition paths, multiprocess mode included (``PROMETHEUS_MULTIPROC_DIR``): a collector
that read ``stats()`` at scrape time would show only the process that answered the scrape.

Metrics (label values are the strategies' names, so keep those few and fixed):

- ``rustok_circuit_breaker_state{breaker}``: 0 closed, 1 open, 2 half-open, and the states
  an operator forces: 3 disabled, 4 forced open, 5 metrics only (resilience4j's numbers);
- ``rustok_circuit_breaker_calls_total{breaker,outcome}``: success, failure, excluded,
  cancelled, rejected;
- ``rustok_retry_attempts_total{policy}``: retries (attempts after the first);
- ``rustok_bulkhead_calls_total{bulkhead,outcome}``: success, failure, excluded, cancelled,
  rejected;
- ``rustok_rate_limited_total``: calls a rate limiter refused;
- ``rustok_hedged_attempts_total{hedge,reason}``: attempts a hedge started beside the first,
  by reason (delay, failure);
- ``rustok_chaos_injections_total{chaos,kind}``: calls a chaos strategy injected into, by
  kind (fault, latency, result).

Examples:
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> from rustok_core.resilience import CircuitBreaker
    >>> metrics = ResilienceMetrics(CollectorRegistry())
    >>> metrics.watch_breaker(CircuitBreaker("search"))
    >>> b'rustok_circuit_breaker_state{breaker="search"} 0.0' in generate_latest(metrics.registry)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from rustok_core.resilience._breaker import CircuitBreaker, CircuitState, StateChange
from rustok_core.resilience._bulkhead import Bulkhead
from rustok_core.resilience._chaos import Chaos, ChaosInjected
from rustok_core.resilience._events import CallOutcome, CallRejected, Event, EventListener
from rustok_core.resilience._hedging import Hedge, HedgeEvent, HedgeStarted
from rustok_core.resilience._retry import RetryAttempt

__all__ = ["BREAKER_STATE_VALUES", "CALL_OUTCOMES", "ResilienceMetrics"]

BREAKER_STATE_VALUES: Final = {state: state.number for state in CircuitState}
"""What ``rustok_circuit_breaker_state`` holds for each state."""
CALL_OUTCOMES: Final = ("success", "failure", "excluded", "cancelled", "rejected")
"""The ``outcome`` label values of the call counters."""


class ResilienceMetrics:
    """prometheus_client metrics fed by the strategies' events.

    Args:
        registry: where the metrics are registered; a new `CollectorRegistry` when
            omitted (never the global one, so that several instances can coexist).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.breaker_state = Gauge(
            "rustok_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, "
            "5 metrics only.",
            ["breaker"],
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.breaker_calls = Counter(
            "rustok_circuit_breaker_calls",
            "Calls through a circuit breaker, by outcome.",
            ["breaker", "outcome"],
            registry=self.registry,
        )
        self.retry_attempts = Counter(
            "rustok_retry_attempts",
            "Retries made by a retry policy (attempts after the first).",
            ["policy"],
            registry=self.registry,
        )
        self.bulkhead_calls = Counter(
            "rustok_bulkhead_calls",
            "Calls through a bulkhead, by outcome.",
            ["bulkhead", "outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "rustok_rate_limited", "Calls a rate limiter refused.", registry=self.registry
        )
        self.hedged_attempts: Counter = Counter(
            "rustok_hedged_attempts",
            "Attempts a hedge started beside the first, by reason (delay, failure).",
            ["hedge", "reason"],
            registry=self.registry,
        )
        self.chaos_injections: Counter = Counter(
            "rustok_chaos_injections",
            "Calls a chaos strategy injected a fault, latency or result into, by kind.",
            ["chaos", "kind"],
            registry=self.registry,
        )

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Keep the state gauge and call counters of ``breaker`` current."""
        gauge = self.breaker_state.labels(breaker.name)
        gauge.set(BREAKER_STATE_VALUES[breaker.state])
        calls = {o: self.breaker_calls.labels(breaker.name, o) for o in CALL_OUTCOMES}

        def on_change(change: StateChange) -> None:
            gauge.set(BREAKER_STATE_VALUES[change.new])

        breaker.add_listener(on_change)
        breaker.add_event_listener(_count_calls(calls))

    def watch_bulkhead(self, bulkhead: Bulkhead) -> None:
        """Count the calls of ``bulkhead`` by outcome."""
        calls = {o: self.bulkhead_calls.labels(bulkhead.name, o) for o in CALL_OUTCOMES}
        bulkhead.add_listener(_count_calls(calls))

    def watch_hedge(self, hedge: Hedge) -> None:
        """Count the attempts ``hedge`` starts beside the first, by reason."""
        started = {r: self.hedged_attempts.labels(hedge.name, r) for r in ("delay", "failure")}

        def on_event(event: HedgeEvent) -> None:
            if isinstance(event, HedgeStarted):
                started[event.reason].inc()

        hedge.add_listener(on_event)

    def watch_chaos(self, chaos: Chaos[object]) -> None:
        """Count the calls ``chaos`` injects into (so a drill shows on the dashboards)."""
        injected = self.chaos_injections.labels(chaos.name, chaos.kind)

        def on_event(_event: ChaosInjected) -> None:
            injected.inc()

        chaos.add_listener(on_event)

    def limiter_listener(self) -> EventListener:
        """A listener for `RateLimiter` (``listeners=[...]``) counting the calls it refuses.

        Example::

            RateLimiter("api", rate=100, burst=200, listeners=[metrics.limiter_listener()])
        """
        counter = self.rate_limited

        def on_event(event: Event) -> None:
            if isinstance(event, CallRejected):
                counter.inc()

        return on_event

    def retry_hook(self, policy: str) -> Callable[[RetryAttempt], None]:
        """An ``on_retry`` hook for the retry policy named ``policy``.

        Example::

            RetryPolicy(name="jwks", on_retry=metrics.retry_hook("jwks"))
        """
        counter = self.retry_attempts.labels(policy)

        def on_retry(_attempt: RetryAttempt) -> None:
            counter.inc()

        return on_retry


def _count_calls(calls: dict[str, Counter]) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if isinstance(event, CallOutcome):
            calls[event.outcome].inc()
        elif isinstance(event, CallRejected):
            calls["rejected"].inc()

    return on_event
