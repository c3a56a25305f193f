"""OpenTelemetry events and metrics of the resilience strategies (the ``rustok-core[otel]`` extra).

`ResilienceTelemetry` listens to breakers, bulkheads, rate limiters, retry policies, hedges and
chaos strategies, as `rustok_core.resilience.prometheus.ResilienceMetrics` does, and turns their
events into OpenTelemetry **span events** on the span current where the event happens (the
caller's own span, around a request or a job) and into **counters** of an OpenTelemetry meter.
It starts no span of its own: what went wrong shows inside the operation that suffered it.
With no SDK configured, the OpenTelemetry API is a no-op: an event then costs a look at the
current span, which is not recording.

Span events (each has ``rustok.resilience.strategy`` and ``rustok.resilience.name``, the
strategy's kind and the name it was given):

- ``rustok.resilience.state_change``: a breaker changed state; ``rustok.resilience.state``
  (the new state: ``closed``, ``open``, ``half_open``, ``forced_open``, ``disabled``,
  ``metrics_only``) and ``rustok.resilience.previous_state``;
- ``rustok.resilience.rejected``: a breaker, bulkhead or rate limiter refused a call;
  ``rustok.resilience.reason`` (``open``, ``forced_open``, ``half_open_full``, ``full``,
  ``rate``), ``rustok.resilience.retry_after`` (seconds) and, for a limiter's key,
  ``rustok.resilience.key``;
- ``rustok.resilience.retry``: an attempt failed and will be retried;
  ``rustok.resilience.attempt`` (the failed attempt, from 1), ``rustok.resilience.delay``
  (seconds before the next one) and ``rustok.resilience.error_type`` (the error's class);
- ``rustok.resilience.budget_exhausted``: a retry policy stopped because a budget ran out;
  ``rustok.resilience.budget`` (``time`` or ``retries``) and ``rustok.resilience.attempt``
  (the attempts made);
- ``rustok.resilience.fallback``: a fallback turned an error into a value;
  ``rustok.resilience.error_type``;
- ``rustok.resilience.storage``: a shared store (Redis) became unreachable or came back;
  ``rustok.resilience.available`` (a bool);
- ``rustok.resilience.hedge``: a hedge started another attempt; ``rustok.resilience.attempt``
  (1 for the first hedged attempt) and ``rustok.resilience.reason`` (``delay``, ``failure``);
- ``rustok.resilience.hedge_attempt``: one attempt of a hedged call ended;
  ``rustok.resilience.attempt`` (0 for the first) and ``rustok.resilience.outcome``
  (``success``, ``failure``, ``cancelled``);
- ``rustok.resilience.chaos``: a chaos strategy injected into a call;
  ``rustok.resilience.kind`` (``fault``, ``latency``, ``result``) and, for latency,
  ``rustok.resilience.latency`` (seconds).

Metrics (meter ``rustok.resilience``; attributes use the same keys):

- ``rustok.resilience.calls`` (observable counter): calls through a breaker or bulkhead by
  ``rustok.resilience.outcome`` (``success``, ``failure``, ``excluded``, ``cancelled``,
  ``rejected``), and calls a rate limiter refused (``rejected``); a breaker's are read from
  its own totals when the metrics are collected, so that counting them costs its calls
  nothing;
- ``rustok.resilience.retries`` (counter): retries, by retry policy;
- ``rustok.resilience.hedged_attempts`` (counter): attempts a hedge started, by reason;
- ``rustok.resilience.chaos_injections`` (counter): injections, by kind;
- ``rustok.resilience.breaker.state`` (observable gauge): each watched breaker's state as
  `CircuitState.number` (0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open,
  5 metrics only), with ``rustok.resilience.state``.

Examples:
    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> from rustok_core.resilience import CircuitBreaker
    >>> exporter = InMemorySpanExporter()
    >>> provider = TracerProvider()
    >>> provider.add_span_processor(SimpleSpanProcessor(exporter))
    >>> breaker = CircuitBreaker("search")
    >>> ResilienceTelemetry().watch_breaker(breaker)
    >>> with provider.get_tracer("demo").start_as_current_span("request"):
    ...     breaker.open()
    >>> [
    ...     event.attributes["rustok.resilience.state"]
    ...     for event in exporter.get_finished_spans()[0].events
    ... ]
    ['open']
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Meter,
    MeterProvider,
    ObservableCounter,
    Observation,
)
from opentelemetry.util.types import AttributeValue

from rustok_core.__about__ import __version__
from rustok_core.resilience._breaker import CircuitBreaker, StateChange
from rustok_core.resilience._bulkhead import Bulkhead
from rustok_core.resilience._chaos import Chaos, ChaosInjected
from rustok_core.resilience._events import (
    BudgetExhausted,
    CallOutcome,
    CallRejected,
    Event,
    EventListener,
    FallbackUsed,
    StorageUnavailable,
)
from rustok_core.resilience._hedging import Hedge, HedgeEvent, HedgeStarted
from rustok_core.resilience._retry import RetryAttempt

__all__ = [
    "ATTRIBUTE_PREFIX",
    "EVENT_NAMES",
    "METER_NAME",
    "ResilienceTelemetry",
]

ATTRIBUTE_PREFIX: Final = "rustok.resilience."
"""The prefix of every span event name and attribute key this module writes."""
METER_NAME: Final = "rustok.resilience"
"""The name of the meter (and instrumentation scope) of the metrics."""
EVENT_NAMES: Final = (
    "rustok.resilience.state_change",
    "rustok.resilience.rejected",
    "rustok.resilience.retry",
    "rustok.resilience.budget_exhausted",
    "rustok.resilience.fallback",
    "rustok.resilience.storage",
    "rustok.resilience.hedge",
    "rustok.resilience.hedge_attempt",
    "rustok.resilience.chaos",
)
"""The names of the span events this module adds."""

_STRATEGY: Final = "rustok.resilience.strategy"
_NAME: Final = "rustok.resilience.name"
_STATE: Final = "rustok.resilience.state"
_OUTCOME: Final = "rustok.resilience.outcome"
_ATTEMPT: Final = "rustok.resilience.attempt"
_REASON: Final = "rustok.resilience.reason"
_KIND: Final = "rustok.resilience.kind"
_ERROR_TYPE: Final = "rustok.resilience.error_type"

_Attributes = dict[str, AttributeValue]
# A data point of rustok.resilience.calls: (strategy, name, outcome).
_CallKey = tuple[str, str, str]
_BREAKER_OUTCOMES: Final = ("success", "failure", "excluded", "cancelled", "rejected")


def _add_event(name: str, attributes: _Attributes) -> None:
    """Add a span event to the current span, if it records (nothing to do otherwise)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)


class ResilienceTelemetry:
    """OpenTelemetry span events and counters fed by the strategies' events.

    Watch each strategy once (``watch_breaker``, ``watch_bulkhead``, ``watch_hedge``,
    ``watch_chaos``), or pass ``listener()``/``limiter_listener()`` and ``retry_hook()`` to
    the strategies that take listeners at construction (rate limiters, retry policies,
    fallbacks). The span events go to whatever span is current when the event happens.

    Args:
        meter_provider: where the counters are made; the global meter provider (a no-op
            until an SDK sets one) when omitted.

    Example::

        telemetry = ResilienceTelemetry()
        telemetry.watch_breaker(breaker)
        retry = RetryPolicy(name="jwks", on_retry=telemetry.retry_hook("jwks"))
        limiter = RateLimiter("api", rate=100, burst=200, listeners=[telemetry.limiter_listener()])
    """

    meter: Meter
    """The meter of the counters (named `METER_NAME`)."""
    calls: ObservableCounter
    """``rustok.resilience.calls``: calls through breakers and bulkheads, and refusals (read
    when the metrics are collected)."""
    retries: Counter
    """``rustok.resilience.retries``: retries made by retry policies."""
    hedged_attempts: Counter
    """``rustok.resilience.hedged_attempts``: attempts hedges started beside the first."""
    chaos_injections: Counter
    """``rustok.resilience.chaos_injections``: calls chaos strategies injected into."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.meter = provider.get_meter(METER_NAME, __version__)
        # Calls are counted where they happen: a breaker in its totals (read at collection,
        # so that a watched closed call costs nothing more: 1.0x the unwatched one, was 3.1x
        # through a counter's add per call), the others' outcomes and refusals in _tallies.
        self._tallies: dict[_CallKey, int] = {}
        self._tallies_lock = threading.Lock()  # sync calls may end in several threads
        self._counted: list[_CountedBreaker] = []
        self.calls = self.meter.create_observable_counter(
            "rustok.resilience.calls",
            callbacks=[self._observe_calls],
            unit="{call}",
            description="Calls through a breaker or bulkhead by outcome, and calls refused.",
        )
        self.retries = self.meter.create_counter(
            "rustok.resilience.retries",
            unit="{retry}",
            description="Retries made by a retry policy (attempts after the first).",
        )
        self.hedged_attempts = self.meter.create_counter(
            "rustok.resilience.hedged_attempts",
            unit="{attempt}",
            description="Attempts a hedge started beside the first, by reason.",
        )
        self.chaos_injections = self.meter.create_counter(
            "rustok.resilience.chaos_injections",
            unit="{call}",
            description="Calls a chaos strategy injected a fault, latency or result into.",
        )
        self._breakers: list[weakref.ref[CircuitBreaker]] = []
        self.meter.create_observable_gauge(
            "rustok.resilience.breaker.state",
            callbacks=[self._observe_breakers],
            description="Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled, "
            "4 forced open, 5 metrics only.",
        )

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Report the state changes and refusals of ``breaker`` as span events, count its
        calls by outcome, and show its state on the ``rustok.resilience.breaker.state`` gauge.

        The calls are read from the breaker's totals (those of `CircuitBreaker.stats`, never
        set back by `CircuitBreaker.reset`) when the metrics are collected, counted from
        this watch on; a breaker that is garbage-collected keeps the counts of the last
        collection before it went."""
        name = breaker.name

        def on_change(change: StateChange) -> None:
            _add_event(
                "rustok.resilience.state_change",
                {
                    _STRATEGY: "breaker",
                    _NAME: name,
                    _STATE: change.new.value,
                    "rustok.resilience.previous_state": change.old.value,
                },
            )

        breaker.add_listener(on_change)
        # Refusals (and storage events) only, as span events: the calls, refusals included,
        # are read from the totals.
        breaker.add_event_listener(self._listener(count_calls=False), outcomes=False)
        self._breakers.append(weakref.ref(breaker))
        with self._tallies_lock:
            self._counted.append(_CountedBreaker(breaker))

    def watch_bulkhead(self, bulkhead: Bulkhead) -> None:
        """Report the refusals of ``bulkhead`` as span events and count its calls by outcome."""
        bulkhead.add_listener(self.listener())

    def watch_hedge(self, hedge: Hedge) -> None:
        """Report the attempts ``hedge`` starts and ends as span events, and count the
        attempts it starts beside the first, by reason."""
        counter = self.hedged_attempts

        def on_event(event: HedgeEvent) -> None:
            attributes: _Attributes = {
                _STRATEGY: "hedge",
                _NAME: event.name,
                _ATTEMPT: event.attempt,
            }
            if isinstance(event, HedgeStarted):
                attributes[_REASON] = event.reason
                _add_event("rustok.resilience.hedge", attributes)
                counter.add(1, {_NAME: event.name, _REASON: event.reason})
            else:
                attributes[_OUTCOME] = event.outcome
                _add_event("rustok.resilience.hedge_attempt", attributes)

        hedge.add_listener(on_event)

    def watch_chaos(self, chaos: Chaos[object]) -> None:
        """Report each injection of ``chaos`` as a span event and count them, so that a
        drill shows in the traces of the calls it broke."""
        counter = self.chaos_injections

        def on_event(event: ChaosInjected) -> None:
            attributes: _Attributes = {_STRATEGY: "chaos", _NAME: event.name, _KIND: event.kind}
            if event.latency:
                attributes["rustok.resilience.latency"] = event.latency
            _add_event("rustok.resilience.chaos", attributes)
            counter.add(1, {_NAME: event.name, _KIND: event.kind})

        chaos.add_listener(on_event)

    def listener(self) -> EventListener:
        """A listener for any strategy's events (`CallOutcome`, `CallRejected`, `RetryAttempt`,
        `BudgetExhausted`, `FallbackUsed`, `StorageUnavailable`): span events for all but
        call outcomes, counters for call outcomes, refusals and retries.

        Give it to the strategies that take ``listeners=`` at construction::

            RetryPolicy(name="jwks", listeners=[telemetry.listener()])
            Fallback(lambda error: [], listeners=[telemetry.listener()])
        """
        return self._listener(count_calls=True)

    def _listener(self, *, count_calls: bool) -> EventListener:
        """`listener`; with ``count_calls`` false, call outcomes and refusals are not counted
        (a watched breaker's are read from its totals)."""
        count, retries = self._count, self.retries

        def on_event(event: Event) -> None:
            if isinstance(event, CallOutcome):
                if count_calls:
                    count((event.strategy, event.name, event.outcome), 1)
            elif isinstance(event, CallRejected):
                attributes: _Attributes = {
                    _STRATEGY: event.strategy,
                    _NAME: event.name,
                    _REASON: event.reason,
                    "rustok.resilience.retry_after": event.retry_after,
                }
                if event.key:
                    attributes["rustok.resilience.key"] = event.key
                _add_event("rustok.resilience.rejected", attributes)
                if count_calls:
                    count((event.strategy, event.name, "rejected"), 1)
            elif isinstance(event, RetryAttempt):
                _add_event("rustok.resilience.retry", _retry_attributes(event))
                retries.add(1, {_NAME: event.policy})
            elif isinstance(event, BudgetExhausted):
                _add_event(
                    "rustok.resilience.budget_exhausted",
                    {
                        _STRATEGY: "retry",
                        _NAME: event.policy,
                        "rustok.resilience.budget": event.budget,
                        _ATTEMPT: event.attempts,
                    },
                )
            elif isinstance(event, FallbackUsed):
                _add_event(
                    "rustok.resilience.fallback",
                    {
                        _STRATEGY: "fallback",
                        _NAME: event.name,
                        _ERROR_TYPE: type(event.error).__qualname__,
                    },
                )
            elif isinstance(event, StorageUnavailable):
                _add_event(
                    "rustok.resilience.storage",
                    {
                        _STRATEGY: event.strategy,
                        _NAME: event.name,
                        "rustok.resilience.available": event.available,
                    },
                )

        return on_event

    def limiter_listener(self) -> EventListener:
        """A listener for `RateLimiter` (``listeners=[...]``): each refusal as a span event
        and in the ``rustok.resilience.calls`` counter (the same as `listener`).

        Example::

            RateLimiter("api", rate=100, burst=200, listeners=[telemetry.limiter_listener()])
        """
        return self.listener()

    def retry_hook(self, policy: str) -> Callable[[RetryAttempt], None]:
        """An ``on_retry`` hook for the retry policy named ``policy``: each retry as a span
        event and in the ``rustok.resilience.retries`` counter.

        Give a policy either this hook or `listener`, not both (each reports every retry).

        Example::

            RetryPolicy(name="jwks", on_retry=telemetry.retry_hook("jwks"))
        """
        retries = self.retries
        counted = {_NAME: policy}

        def on_retry(attempt: RetryAttempt) -> None:
            attributes = _retry_attributes(attempt)
            attributes[_NAME] = policy
            _add_event("rustok.resilience.retry", attributes)
            retries.add(1, counted)

        return on_retry

    def _count(self, key: _CallKey, calls: int) -> None:
        with self._tallies_lock:
            self._tallies[key] = self._tallies.get(key, 0) + calls

    def _observe_calls(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._tallies_lock:
            alive: list[_CountedBreaker] = []
            for counted in self._counted:
                if counted.alive():
                    alive.append(counted)
                else:  # its calls up to the last collection stay: a counter never goes back
                    for key, calls in counted.seen():
                        self._tallies[key] = self._tallies.get(key, 0) + calls
            self._counted[:] = alive
            totals = dict(self._tallies)
        for counted in alive:
            for key, calls in counted.read():
                totals[key] = totals.get(key, 0) + calls
        return [
            Observation(count, {_STRATEGY: strategy, _NAME: name, _OUTCOME: outcome})
            for (strategy, name, outcome), count in totals.items()
            if count
        ]

    def _observe_breakers(self, _options: CallbackOptions) -> Iterable[Observation]:
        alive: list[weakref.ref[CircuitBreaker]] = []
        observations: list[Observation] = []
        for ref in self._breakers:
            breaker = ref()
            if breaker is None:
                continue
            alive.append(ref)
            state = breaker.state
            observations.append(
                Observation(state.number, {_NAME: breaker.name, _STATE: state.value})
            )
        self._breakers[:] = alive
        return observations


class _CountedBreaker:
    """The calls of a watched breaker since it was watched, by outcome, from its totals."""

    __slots__ = ("_keys", "_ref", "_seen", "_since")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._keys = [("breaker", breaker.name, outcome) for outcome in _BREAKER_OUTCOMES]
        self._ref = weakref.ref(breaker)
        self._since = breaker._lifetime_outcomes()  # counted from the watch on, as events were
        self._seen: list[int] = [0] * len(_BREAKER_OUTCOMES)

    def alive(self) -> bool:
        return self._ref() is not None

    def read(self) -> list[tuple[_CallKey, int]]:
        """The calls by outcome now (as last read, once the breaker is gone)."""
        breaker = self._ref()
        if breaker is not None:
            now = breaker._lifetime_outcomes()
            self._seen = [n - s for n, s in zip(now, self._since, strict=True)]
        return self.seen()

    def seen(self) -> list[tuple[_CallKey, int]]:
        """The calls by outcome as last read."""
        return list(zip(self._keys, self._seen, strict=True))


def _retry_attributes(attempt: RetryAttempt) -> _Attributes:
    return {
        _STRATEGY: "retry",
        _NAME: attempt.policy,
        _ATTEMPT: attempt.attempt,
        "rustok.resilience.delay": attempt.delay,
        _ERROR_TYPE: type(attempt.error).__qualname__,
    }
