"""rustok_core.resilience.otel: the strategies' events as span events on the caller's span and
as counters, read back from the real OpenTelemetry SDK (in-memory span exporter and metric
reader)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from rustok_core.resilience import (
    Bulkhead,
    BulkheadFullError,
    Chaos,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    Fallback,
    Fixed,
    Hedge,
    PolicyRegistry,
    RateLimitedError,
    RateLimiter,
    ResiliencePolicy,
    RetryPolicy,
)
from rustok_core.resilience.otel import EVENT_NAMES, ResilienceTelemetry
from rustok_core.testing import ManualClock, test_mode


class Boom(Exception):
    pass


class Traces:
    """A tracer whose finished spans land in memory, and telemetry counting into a reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = provider.get_tracer("test")
        self.reader = InMemoryMetricReader()
        self.telemetry = ResilienceTelemetry(MeterProvider(metric_readers=[self.reader]))

    def span(self) -> ReadableSpan:
        """The one span finished so far."""
        (span,) = self.exporter.get_finished_spans()
        return span

    def events(self) -> list[tuple[str, dict[str, AttributeValue]]]:
        """The events of the one finished span, by name and attributes."""
        return [(e.name, dict(e.attributes or {})) for e in self.span().events]

    def points(self, metric: str) -> dict[tuple[tuple[str, AttributeValue], ...], float]:
        """The data points of ``metric``, by sorted attributes."""
        data = self.reader.get_metrics_data()
        found: dict[tuple[tuple[str, AttributeValue], ...], float] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for each in scope.metrics:
                    if each.name != metric:
                        continue
                    for point in each.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        found[_key(point.attributes or {})] = point.value
        return found


def _key(attributes: Mapping[str, AttributeValue]) -> tuple[tuple[str, AttributeValue], ...]:
    return tuple(sorted(attributes.items()))


@pytest.fixture
def traces() -> Traces:
    return Traces()


@pytest.fixture
def skipped_waits() -> Iterator[None]:
    with test_mode():
        yield


async def fail() -> None:
    raise Boom


async def succeed() -> str:
    return "ok"


async def test_breaker_opening_and_refusal_are_events_of_the_current_span(traces: Traces) -> None:
    breaker = CircuitBreaker(
        "db", CircuitBreakerConfig(failure_threshold=2, timeout=30.0), clock=ManualClock()
    )
    traces.telemetry.watch_breaker(breaker)
    with traces.tracer.start_as_current_span("request"):
        for _ in range(2):
            with pytest.raises(Boom):
                await breaker.call(fail)
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)
    assert traces.events() == [
        (
            "rustok.resilience.state_change",
            {
                "rustok.resilience.strategy": "breaker",
                "rustok.resilience.name": "db",
                "rustok.resilience.state": "open",
                "rustok.resilience.previous_state": "closed",
            },
        ),
        (
            "rustok.resilience.rejected",
            {
                "rustok.resilience.strategy": "breaker",
                "rustok.resilience.name": "db",
                "rustok.resilience.reason": "open",
                "rustok.resilience.retry_after": 30.0,
            },
        ),
    ]


async def test_breaker_calls_are_counted_by_outcome(traces: Traces) -> None:
    breaker = CircuitBreaker("db", CircuitBreakerConfig(failure_threshold=1), clock=ManualClock())
    traces.telemetry.watch_breaker(breaker)
    assert await breaker.call(succeed) == "ok"
    with pytest.raises(Boom):
        await breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    calls = traces.points("rustok.resilience.calls")

    def at(outcome: str) -> float:
        return calls[
            _key(
                {
                    "rustok.resilience.strategy": "breaker",
                    "rustok.resilience.name": "db",
                    "rustok.resilience.outcome": outcome,
                }
            )
        ]

    assert (at("success"), at("failure"), at("rejected")) == (1, 1, 1)


def _breaker_calls(traces: Traces, name: str) -> dict[str, float]:
    """The ``rustok.resilience.calls`` points of the breaker ``name``, by outcome."""
    found: dict[str, float] = {}
    for key, value in traces.points("rustok.resilience.calls").items():
        attributes = dict(key)
        of = (attributes["rustok.resilience.strategy"], attributes["rustok.resilience.name"])
        if of == ("breaker", name):
            found[str(attributes["rustok.resilience.outcome"])] = value
    return found


async def test_breaker_calls_are_counted_from_the_watch_on(traces: Traces) -> None:
    breaker = CircuitBreaker("db", clock=ManualClock())
    await breaker.call(succeed)
    traces.telemetry.watch_breaker(breaker)
    assert _breaker_calls(traces, "db") == {}
    await breaker.call(succeed)
    assert _breaker_calls(traces, "db") == {"success": 1}


async def test_breaker_calls_keep_counting_across_a_reset(traces: Traces) -> None:
    breaker = CircuitBreaker("db", clock=ManualClock())
    traces.telemetry.watch_breaker(breaker)
    await breaker.call(succeed)
    with pytest.raises(Boom):
        await breaker.call(fail)
    breaker.reset()
    await breaker.call(succeed)
    assert breaker.stats().total_successes == 1
    assert _breaker_calls(traces, "db") == {"success": 2, "failure": 1}


async def test_a_breaker_gone_keeps_the_calls_counted_until_then(traces: Traces) -> None:
    breaker = CircuitBreaker("db", clock=ManualClock())
    traces.telemetry.watch_breaker(breaker)
    await breaker.call(succeed)
    assert _breaker_calls(traces, "db") == {"success": 1}
    del breaker
    gc.collect()
    replaced = CircuitBreaker("db", clock=ManualClock())  # a registry reload rebuilds it so
    traces.telemetry.watch_breaker(replaced)
    await replaced.call(succeed)
    assert _breaker_calls(traces, "db") == {"success": 2}


async def test_a_breaker_given_the_listener_itself_is_counted_by_its_events(
    traces: Traces,
) -> None:
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(failure_threshold=1),
        clock=ManualClock(),
        event_listeners=[traces.telemetry.listener()],
    )
    with pytest.raises(Boom):
        await breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert _breaker_calls(traces, "db") == {"failure": 1, "rejected": 1}


def test_breaker_state_gauge_follows_the_breaker(traces: Traces) -> None:
    breaker = CircuitBreaker("db", clock=ManualClock())
    traces.telemetry.watch_breaker(breaker)
    gauge = "rustok.resilience.breaker.state"
    closed = _key({"rustok.resilience.name": "db", "rustok.resilience.state": "closed"})
    assert traces.points(gauge) == {closed: 0}
    breaker.force_open()
    forced = _key({"rustok.resilience.name": "db", "rustok.resilience.state": "forced_open"})
    assert traces.points(gauge) == {forced: 4}


def test_no_event_without_a_recording_span(traces: Traces) -> None:
    breaker = CircuitBreaker("db", clock=ManualClock())
    traces.telemetry.watch_breaker(breaker)
    breaker.open()  # no span is current: nothing to add to, nothing raised
    with traces.tracer.start_as_current_span("later"):
        pass
    assert traces.events() == []


async def test_each_retry_is_an_event_with_its_attempt_number(
    traces: Traces, skipped_waits: None
) -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise Boom
        return "ok"

    retry = RetryPolicy(
        max_attempts=3,
        backoff=Fixed(0.5),
        name="jwks",
        on_retry=traces.telemetry.retry_hook("jwks"),
        clock=ManualClock(),
    )
    with traces.tracer.start_as_current_span("request"):
        assert await retry.execute(flaky) == "ok"
    assert [
        (name, attributes["rustok.resilience.attempt"]) for name, attributes in traces.events()
    ] == [
        ("rustok.resilience.retry", 1),
        ("rustok.resilience.retry", 2),
    ]
    _, first = traces.events()[0]
    assert first["rustok.resilience.name"] == "jwks"
    assert first["rustok.resilience.delay"] == 0.5
    assert first["rustok.resilience.error_type"] == "Boom"
    assert traces.points("rustok.resilience.retries") == {
        _key({"rustok.resilience.name": "jwks"}): 2
    }


async def test_an_exhausted_budget_and_a_fallback_are_events(
    traces: Traces, skipped_waits: None
) -> None:
    listener = traces.telemetry.listener()
    retry = RetryPolicy(
        max_attempts=5,
        backoff=Fixed(1.0),
        budget=1.5,
        name="search",
        listeners=[listener],
        clock=ManualClock(),
    )
    empty: Fallback[list[str]] = Fallback(lambda _error: [], name="empty", listeners=[listener])
    policy = ResiliencePolicy(retry=retry, fallback=empty)
    with traces.tracer.start_as_current_span("request"):
        assert await policy.execute(fail) == []
    names = [name for name, _ in traces.events()]
    assert names == [
        "rustok.resilience.retry",
        "rustok.resilience.budget_exhausted",
        "rustok.resilience.fallback",
    ]
    assert traces.events()[1][1] == {
        "rustok.resilience.strategy": "retry",
        "rustok.resilience.name": "search",
        "rustok.resilience.budget": "time",
        "rustok.resilience.attempt": 2,
    }
    assert traces.events()[2][1]["rustok.resilience.error_type"] == "Boom"


async def test_bulkhead_and_limiter_refusals_are_events(traces: Traces) -> None:
    bulkhead = Bulkhead("pool", max_concurrent=1)
    traces.telemetry.watch_bulkhead(bulkhead)
    limiter = RateLimiter(
        "api",
        rate=1.0,
        burst=1,
        clock=ManualClock(),
        listeners=[traces.telemetry.limiter_listener()],
    )
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    with traces.tracer.start_as_current_span("request"):
        holder = asyncio.create_task(bulkhead.call(hold))
        await asyncio.sleep(0)  # let it take the slot
        with pytest.raises(BulkheadFullError):
            await bulkhead.call(succeed)
        gate.set()
        await holder
        await limiter.acquire("tenant-a")
        with pytest.raises(RateLimitedError):
            await limiter.acquire("tenant-a")
    rejected = [a for name, a in traces.events() if name == "rustok.resilience.rejected"]
    assert [(a["rustok.resilience.strategy"], a["rustok.resilience.reason"]) for a in rejected] == [
        ("bulkhead", "full"),
        ("rate_limiter", "rate"),
    ]
    assert rejected[1]["rustok.resilience.key"] == "tenant-a"
    calls = traces.points("rustok.resilience.calls")
    assert (
        calls[
            _key(
                {
                    "rustok.resilience.strategy": "bulkhead",
                    "rustok.resilience.name": "pool",
                    "rustok.resilience.outcome": "success",
                }
            )
        ]
        == 1
    )


async def test_a_hedge_after_a_failure_is_an_event_with_its_reason(traces: Traces) -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait_forever(_seconds: float) -> None:
        await never

    hedge = Hedge("search", delay=1.0, sleep=wait_forever)
    traces.telemetry.watch_hedge(hedge)
    calls = 0

    async def first_fails() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Boom
        return "hedged"

    with traces.tracer.start_as_current_span("request"):
        assert await hedge.execute(first_fails) == "hedged"
    assert [
        (name, a["rustok.resilience.attempt"], a.get("rustok.resilience.reason"),
         a.get("rustok.resilience.outcome"))
        for name, a in traces.events()
    ] == [
        ("rustok.resilience.hedge_attempt", 0, None, "failure"),
        ("rustok.resilience.hedge", 1, "failure", None),
        ("rustok.resilience.hedge_attempt", 1, None, "success"),
    ]  # fmt: skip
    assert traces.points("rustok.resilience.hedged_attempts") == {
        _key({"rustok.resilience.name": "search", "rustok.resilience.reason": "failure"}): 1
    }


async def test_a_chaos_injection_is_an_event_of_the_call_it_broke(traces: Traces) -> None:
    chaos = Chaos.fault("drill", Boom("injected"), rate=1.0, seed=1)
    traces.telemetry.watch_chaos(chaos)
    with traces.tracer.start_as_current_span("request"), pytest.raises(Boom):
        await chaos.call(succeed)
    assert traces.events() == [
        (
            "rustok.resilience.chaos",
            {
                "rustok.resilience.strategy": "chaos",
                "rustok.resilience.name": "drill",
                "rustok.resilience.kind": "fault",
            },
        )
    ]
    assert traces.points("rustok.resilience.chaos_injections") == {
        _key({"rustok.resilience.name": "drill", "rustok.resilience.kind": "fault"}): 1
    }


def test_every_event_name_is_listed() -> None:
    assert all(name.startswith("rustok.resilience.") for name in EVENT_NAMES)
    assert len(set(EVENT_NAMES)) == len(EVENT_NAMES) == 9


def test_works_on_the_global_no_op_provider() -> None:
    telemetry = ResilienceTelemetry()  # no SDK configured: the API's no-op meter
    breaker = CircuitBreaker("db", clock=ManualClock())
    telemetry.watch_breaker(breaker)
    breaker.open()
    assert breaker.stats().state_transitions == 1


async def test_a_policy_registry_reports_the_strategies_it_builds(
    traces: Traces, skipped_waits: None
) -> None:
    registry = PolicyRegistry(
        {"jwks": {"retry": {"max_attempts": 2, "backoff": {"fixed": {"delay": 0.1}}}}},
        clock=ManualClock(),
        watchers=[traces.telemetry],
    )
    with traces.tracer.start_as_current_span("request"), pytest.raises(Boom):
        await registry.get("jwks").execute(fail)
    assert [(name, a["rustok.resilience.name"]) for name, a in traces.events()] == [
        ("rustok.resilience.retry", "jwks")
    ]


def test_the_core_imports_without_opentelemetry() -> None:
    script = (
        "import sys, rustok_core.resilience, rustok_core.testing\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
