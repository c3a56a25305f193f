"""The server's Prometheus metrics, with ``prometheus_client``.

`ServerMetrics` holds every metric the server exposes, under the names operators query
(docs/OBSERVABILITY.md). Each app has its own registry, so several apps in one process (tests)
never clash. Under ``serve --workers N`` the values live in prometheus_client's multiprocess
files (``PROMETHEUS_MULTIPROC_DIR``, set and emptied by ``serve`` before the workers start),
and `exposition` adds up every worker's figures.

Label sets are bounded: routes are templates (``/api/content/nodes/{node_id}``), never raw
paths; no ids and no tenants as labels.

Example:
    >>> metrics = ServerMetrics()
    >>> metrics.http_requests.labels("GET", "/health/live", "200").inc()
    >>> b"rustok_http_requests_total" in exposition(metrics)[0]
    True
"""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from rustok_core.resilience import CircuitBreaker, StateChange
from rustok_server.observability.multiprocess import (
    MULTIPROCESS_ENV,
    multiprocess_enabled,
    prepare_multiprocess_dir,
)

__all__ = [
    "BREAKER_STATE_VALUES",
    "MULTIPROCESS_ENV",
    "ServerMetrics",
    "exposition",
    "multiprocess_enabled",
    "prepare_multiprocess_dir",
]

BREAKER_STATE_VALUES: Final = {"closed": 0, "open": 1, "half_open": 2}
"""What ``rustok_circuit_breaker_state`` holds for each state."""

# Seconds; a request on this server takes from about 100 us (cache hit) to a query timeout.
_DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class ServerMetrics:
    """Every metric of one app.

    Attributes:
        http_requests: ``rustok_http_requests_total{method,route,status}``.
        http_duration: ``rustok_http_request_duration_seconds{method,route}``.
        breaker_state: ``rustok_circuit_breaker_state{breaker}`` (`BREAKER_STATE_VALUES`).
        breaker_calls: ``rustok_circuit_breaker_calls_total{breaker,outcome}``.
        retry_attempts: ``rustok_retry_attempts_total{policy}``.
        transitions: ``rustok_state_transitions_total{entity,trigger}``.
        tenant_cache: ``rustok_tenant_cache_requests_total{result}`` (hit, negative_hit,
            miss, stale).
        rate_limited: ``rustok_rate_limited_total``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "rustok_http_requests", "HTTP requests answered.", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "rustok_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "rustok_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            ["breaker"], multiprocess_mode="livemostrecent", registry=r,
        )  # fmt: skip
        self.breaker_calls = Counter(
            "rustok_circuit_breaker_calls", "Calls through a circuit breaker, by outcome.",
            ["breaker", "outcome"], registry=r,
        )  # fmt: skip
        self.retry_attempts = Counter(
            "rustok_retry_attempts", "Retries (attempts after the first).", ["policy"],
            registry=r,
        )  # fmt: skip
        self.transitions = Counter(
            "rustok_state_transitions", "State machine transitions applied.",
            ["entity", "trigger"], registry=r,
        )  # fmt: skip
        self.tenant_cache = Counter(
            "rustok_tenant_cache_requests", "Tenant cache look-ups, by result.", ["result"],
            registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "rustok_rate_limited", "Requests refused by a rate limit.", registry=r
        )

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Keep ``rustok_circuit_breaker_state`` of ``breaker`` current (a state listener)."""
        gauge = self.breaker_state.labels(breaker.name)
        gauge.set(BREAKER_STATE_VALUES[breaker.state.name.lower()])

        def on_change(change: StateChange) -> None:
            gauge.set(BREAKER_STATE_VALUES[change.new.name.lower()])

        breaker.add_listener(on_change)


def exposition(metrics: ServerMetrics) -> tuple[bytes, str]:
    """The text format and its content type: every worker's figures under ``--workers``,
    else this app's registry."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
