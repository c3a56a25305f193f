"""The server's Prometheus metrics, with ``prometheus_client``.

`ServerMetrics` holds every metric the server exposes, under the names operators query
(docs/OBSERVABILITY.md). Each app has its own registry, so several apps in one process (tests)
never clash. Under ``serve --workers N`` the values live in prometheus_client's multiprocess
files (``PROMETHEUS_MULTIPROC_DIR``, set and emptied by ``serve`` before the workers start),
and `exposition` adds up every worker's figures.

Label sets are bounded: routes are templates (``/api/content/nodes/{node_id}``), never raw
paths; no ids and no tenants as labels.

Examples:
    >>> metrics = ServerMetrics()
    >>> metrics.http_requests.labels("GET", "/health/live", "200").inc()
    >>> b"rustok_http_requests_total" in exposition(metrics)[0]
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from rustok_core.resilience.prometheus import ResilienceMetrics
from rustok_core.state_machine import TransitionRecord
from rustok_server.observability.multiprocess import (
    MULTIPROCESS_ENV,
    multiprocess_enabled,
    prepare_multiprocess_dir,
)
from rustok_server.observability.tracing import record_transition

if TYPE_CHECKING:
    from rustok_server.scaleout import RedisHealth
    from rustok_server.tenancy.tenant_cache import LookupResult

# Every answer of the tenant cache, each exported from the start (zero until counted). Named
# here rather than read from the cache's type at run time, so that observability does not
# import tenancy, which reports through it; a test holds the two equal.
CACHE_RESULTS: Final[tuple[LookupResult, ...]] = ("hit", "negative_hit", "miss", "stale")
WEBHOOK_OUTCOMES: Final = ("delivered", "retried", "failed", "postponed")
"""The outcomes of ``rustok_webhook_deliveries_total``: the receiver took it (2xx); an attempt
failed and another is scheduled; the delivery failed for good (out of attempts, or its
endpoint disabled or deleted); no attempt was made now (the endpoint's breaker is open, its
bulkhead full, or the retry budget spent) and it is due again later."""

__all__ = [
    "MULTIPROCESS_ENV",
    "WEBHOOK_OUTCOMES",
    "ServerMetrics",
    "exposition",
    "multiprocess_enabled",
    "prepare_multiprocess_dir",
]


# Seconds; a request on this server takes from about 100 us (cache hit) to a query timeout.
_DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class ServerMetrics:
    """Every metric of one app.

    Attributes:
        http_requests: ``rustok_http_requests_total{method,route,status}``.
        http_duration: ``rustok_http_request_duration_seconds{method,route}``.
        resilience: the breakers', retries' and rate limiters' metrics (rustok-core's
            `ResilienceMetrics`, in the same registry).
        transitions: ``rustok_state_transitions_total{entity,trigger}``.
        tenant_cache: ``rustok_tenant_cache_requests_total{result}`` (hit, negative_hit,
            miss, stale).
        redis_up: ``rustok_redis_up`` (1 while Redis answers, 0 while it does not), once
            `watch_redis` was called: a server without Redis does not export it.
        webhook_deliveries: ``rustok_webhook_deliveries_total{outcome}`` (`WEBHOOK_OUTCOMES`).
        webhook_queue_depth: ``rustok_webhook_queue_depth``, the pending deliveries of every
            tenant, as the deliverer last counted them.
        webhook_oldest_pending: ``rustok_webhook_oldest_pending_age_seconds``, the age of
            the oldest pending delivery (0 when none is pending).
        webhook_open_breakers: ``rustok_webhook_open_breakers``, the endpoints whose breaker
            is not closed (open or probing), in every delivering process together; one
            figure, not one series per endpoint.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: CollectorRegistry = (
            registry if registry is not None else CollectorRegistry(auto_describe=True)
        )
        r = self.registry
        self.resilience: ResilienceMetrics = ResilienceMetrics(r)
        self.http_requests: Counter = Counter(
            "rustok_http_requests", "HTTP requests answered.", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self.http_duration: Histogram = Histogram(
            "rustok_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.transitions: Counter = Counter(
            "rustok_state_transitions", "State machine transitions applied.",
            ["entity", "trigger"], registry=r,
        )  # fmt: skip
        self.tenant_cache: Counter = Counter(
            "rustok_tenant_cache_requests", "Tenant cache look-ups, by result.", ["result"],
            registry=r,
        )  # fmt: skip
        self._cache_results = {result: self.tenant_cache.labels(result) for result in CACHE_RESULTS}
        self.webhook_deliveries: Counter = Counter(
            "rustok_webhook_deliveries", "Webhook delivery attempts and decisions, by outcome.",
            ["outcome"], registry=r,
        )  # fmt: skip
        self._webhook_outcomes = {
            outcome: self.webhook_deliveries.labels(outcome) for outcome in WEBHOOK_OUTCOMES
        }
        # The backlog is the database's, the same figure from every worker that delivers:
        # under --workers the highest of the live workers' values (one that does not deliver
        # shows 0).
        self.webhook_queue_depth: Gauge = Gauge(
            "rustok_webhook_queue_depth", "Pending webhook deliveries, all tenants.",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.webhook_oldest_pending: Gauge = Gauge(
            "rustok_webhook_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery (0 when none is pending).",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        # Each process has its own breakers: the workers' figures add up.
        self.webhook_open_breakers: Gauge = Gauge(
            "rustok_webhook_open_breakers",
            "Webhook endpoints whose breaker is open or half-open, in every process.",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self._transitions: dict[tuple[str, str], Counter] = {}
        self.redis_up: Gauge | None = None

    def watch_redis(self, health: RedisHealth) -> None:
        """Keep ``rustok_redis_up`` at what ``health`` knows of Redis: 1 while the last
        call or ping reached it, 0 from the one that did not until one does again."""
        if self.redis_up is None:
            # Made here, not with the others: in multiprocess mode a gauge without labels
            # writes its 0 to the workers' files when it is made, which would read as
            # "Redis down" on a server without Redis.
            self.redis_up = Gauge(
                "rustok_redis_up",
                "Whether this process reaches the deployment's Redis: 1 yes, 0 no.",
                # Under --workers: one sample without a pid label, as with one process,
                # and the least of the workers' values, so that one worker cut off from
                # Redis shows as 0 ("max" would hide it behind the others, "liveall"
                # gives one series per pid). "live": a worker's figure is dropped when
                # it is marked dead (multiprocess.mark_process_dead).
                multiprocess_mode="livemin",
                registry=self.registry,
            )
        gauge = self.redis_up
        gauge.set(1 if health.available else 0)
        health.add_listener(lambda available: gauge.set(1 if available else 0))

    def watch_machine(self, entity: str, triggers: Iterable[str]) -> None:
        """Export ``rustok_state_transitions_total`` of ``entity`` at 0 for every trigger,
        before the first transition (a counter that appears late hides a rate)."""
        for trigger in triggers:
            self._transition_counter(entity, trigger)

    def count_transition(self, record: TransitionRecord) -> None:
        """Count one applied transition, and add it to the current trace when tracing is
        on (the services' ``on_transition`` hook)."""
        self._transition_counter(record.entity_type, record.trigger).inc()
        record_transition(record)

    def _transition_counter(self, entity: str, trigger: str) -> Counter:
        counter = self._transitions.get((entity, trigger))
        if counter is None:
            counter = self._transitions[(entity, trigger)] = self.transitions.labels(
                entity, trigger
            )
        return counter

    def count_webhook_delivery(self, outcome: str) -> None:
        """Count one delivery outcome (one of `WEBHOOK_OUTCOMES`)."""
        self._webhook_outcomes[outcome].inc()

    def set_webhook_backlog(self, depth: int, oldest_age: float, open_breakers: int = 0) -> None:
        """Set the webhook gauges: pending deliveries, the oldest one's age, and the
        endpoints of this process whose breaker is not closed."""
        self.webhook_queue_depth.set(depth)
        self.webhook_oldest_pending.set(max(0.0, oldest_age))
        self.webhook_open_breakers.set(open_breakers)

    def count_cache_result(self, result: LookupResult) -> None:
        """Count one tenant cache read (the cache's ``on_result`` hook)."""
        self._cache_results[result].inc()


def exposition(metrics: ServerMetrics) -> tuple[bytes, str]:
    """The text format and its content type: every worker's figures under ``--workers``,
    else this app's registry."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
