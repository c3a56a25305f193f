"""The Prometheus collector sees what the predicates decide: a result judged failed is a
breaker ``failure`` and, retried, a retry attempt; an error chosen by ``excluded_if`` is
``excluded``. Read back with prometheus_client's own text parser, on a clock moved by hand."""

from __future__ import annotations

import pytest
from http_answers import HTTPStatusError, Response, client_error, server_error
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    Fixed,
    ResiliencePolicy,
    RetryPolicy,
)
from rustok_core.resilience.prometheus import ResilienceMetrics
from rustok_core.testing import ManualClock, test_mode


def samples(metrics: ResilienceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def calls(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return found[("rustok_circuit_breaker_calls_total", (("breaker", "api"), ("outcome", outcome)))]


async def test_judged_failures_and_predicate_exclusions_reach_the_collector() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    breaker = CircuitBreaker(
        "api",
        CircuitBreakerConfig(failure_threshold=2, excluded_if=client_error),
        clock=ManualClock(),
    )
    metrics.watch_breaker(breaker)
    api = breaker.judging(server_error)

    async def answer(status: int) -> Response:
        return Response(status)

    async def raise_status(status: int) -> Response:
        raise HTTPStatusError(status)

    await api.call(answer, 200)
    await api.call(answer, 503)
    with pytest.raises(HTTPStatusError):
        await api.call(raise_status, 404)
    await api.call(answer, 502)
    found = samples(metrics)
    assert (calls(found, "success"), calls(found, "failure"), calls(found, "excluded")) == (
        1,
        2,
        1,
    )
    assert found[("rustok_circuit_breaker_state", (("breaker", "api"),))] == 1  # open


def test_retried_results_are_retry_attempts_and_failures_of_the_breaker_each() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    breaker = CircuitBreaker("api", CircuitBreakerConfig(failure_threshold=10), clock=ManualClock())
    metrics.watch_breaker(breaker)
    retry = RetryPolicy(
        max_attempts=3, backoff=Fixed(0.1), name="api", on_retry=metrics.retry_hook("api")
    )
    statuses = [503, 503, 200]

    def flaky() -> Response:
        return Response(statuses.pop(0))

    policy = ResiliencePolicy(retry=retry, breaker=breaker)
    with test_mode():
        assert policy.judging(server_error).execute_sync(flaky) == Response(200)
    found = samples(metrics)
    assert found[("rustok_retry_attempts_total", (("policy", "api"),))] == 2
    assert (calls(found, "failure"), calls(found, "success")) == (2, 1)
