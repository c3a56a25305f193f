"""The deliverer: sends the due deliveries of the outbox, signed, through rustok-core's
breaker, retry schedule, retry budget, bulkhead and timeout.

Each process that delivers (``RUSTOK_WEBHOOKS``, on by default) runs one `Deliverer` in the
background. Every ``RUSTOK_WEBHOOK_POLL_INTERVAL`` seconds (and at once after start) it
claims the due deliveries, fleet-wide exactly once (`rustok_server.webhooks.queue`), up to
``RUSTOK_WEBHOOK_BATCH_SIZE`` in flight, and attempts each in a task of its own:

1. the endpoint disabled or deleted meanwhile: the delivery fails, with that reason;
2. the endpoint's `CircuitBreaker` (one per endpoint, from a bounded `BreakerRegistry`)
   open: the delivery is postponed until the breaker lets a trial through, without an
   attempt. Its failures are the attempts that raised (a timeout, a refused connection,
   an unknown host) and the answers 5xx, 408 and 429 (``judging``): a dead endpoint is
   not hammered and does not hold up the others;
3. a retry (not the first attempt) while the process's `RetryBudget` is spent, the
   breaker closed: postponed, not counted as an attempt;
4. the endpoint's `Bulkhead` (``RUSTOK_WEBHOOK_CONCURRENCY`` attempts at once) full for
   longer than the claim allows: postponed;
5. the attempt, within ``RUSTOK_WEBHOOK_ATTEMPT_TIMEOUT`` (`with_timeout`): the URL checked
   (`rustok_server.webhooks.safety`), a ``POST`` of the event's body, signed
   (`rustok_server.webhooks.signing`), with aiohttp: a new connection goes to an address
   of the URL's host that was resolved and checked for it (every address the host
   resolves to checked), a connection kept alive carries the next deliveries to the same
   host name for at most 2 s idle; redirects not followed, at most `EXCERPT_BYTES` of the
   answer read.

A 2xx delivers it (and clears the endpoint's ``failing_since``). Anything else is a failed
attempt: due again after an exponential wait with jitter (`RetrySchedule`), or failed for
good after ``RUSTOK_WEBHOOK_MAX_ATTEMPTS`` (one WARNING log line). An endpoint that has
failed without a success for ``RUSTOK_WEBHOOK_DISABLE_AFTER`` seconds is disabled with a
reason its tenant reads, and its pending deliveries fail.

`Deliverer.run_once` runs one pass to its end: tests call it with a manual clock instead of
waiting for the background loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver

from rustok_core.resilience import (
    BreakerRegistry,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Exponential,
    OperationTimeoutError,
    RetryBudget,
    with_timeout,
)
from rustok_server.background import BackgroundTask
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.errors import DatabaseTimeoutError, DatabaseUnavailableError
from rustok_server.observability import tracing
from rustok_server.settings import Settings
from rustok_server.webhooks.queue import Attempted, Claimed, DeliveryQueue, EndpointState
from rustok_server.webhooks.safety import (
    Resolver,
    UnsafeDestinationError,
    check_url,
    redact,
    resolve_checked,
    system_resolver,
)
from rustok_server.webhooks.signing import delivery_headers, fresh_traceparent

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult  # typing only: aiohttp 3.9 may lack it
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from rustok_server.observability.metrics import ServerMetrics

__all__ = [
    "BREAKER_CAPACITY",
    "BREAKER_FAILURES",
    "EXCERPT_BYTES",
    "Answer",
    "Deliverer",
    "RetrySchedule",
    "endpoint_failed",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.webhooks")

EXCERPT_BYTES: Final = 1024
"""Most bytes of a receiver's answer read and kept (as ``response_excerpt``)."""
BREAKER_CAPACITY: Final = 10_000
"""Most endpoint breakers one process keeps (closed ones are retired first)."""
BREAKER_FAILURES: Final = 5
"""Consecutive failed attempts to one endpoint that open its breaker."""
_FAILED_ANSWERS: Final = frozenset({408, 429})
_GAUGE_INTERVAL: Final = 10.0  # seconds between two counts of the backlog
_PURGE_INTERVAL: Final = 3600.0  # seconds between two purges
# Read past the excerpt's end: a secret that starts inside it is then whole, and redacted.
_READ_BEYOND: Final = 256
# Seconds a connection is kept idle: dropped before a receiver's own idle timeout (often
# 5 s) drops it.
_KEEPALIVE: Final = 2.0


def endpoint_failed(answer: Answer) -> bool:
    """Whether an answer counts against its endpoint's breaker: 5xx, 408 and 429 (an
    endpoint down, overloaded or throttling us). Other answers are the endpoint's own
    word (a 4xx, a redirect) and say it is up."""
    return answer.status_code >= 500 or answer.status_code in _FAILED_ANSWERS


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered one attempt."""

    status_code: int
    excerpt: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """The wait after each failed attempt: ``base`` doubling up to ``cap``, with jitter.

    Half of each wait is fixed, half is drawn by rustok-core's full jitter (`Exponential`,
    "equal jitter"): retries of many deliveries spread out, yet none comes at once.

    Examples:
        >>> schedule = RetrySchedule(base=30.0, cap=21_600.0)
        >>> 15.0 <= schedule.delay(1) <= 30.0
        True
        >>> 10_800.0 <= schedule.delay(20) <= 21_600.0
        True
    """

    base: float
    cap: float

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts (from 1)."""
        fixed = Exponential(base=self.base / 2, cap=self.cap / 2, jitter=False)
        drawn = Exponential(base=self.base / 2, cap=self.cap / 2, jitter=True)
        return fixed.delay_after(attempts) + drawn.delay_after(attempts)


class Deliverer:
    """Delivers the due webhook deliveries in the background of one process.

    Args:
        database: the database of the outbox.
        settings: the ``webhook_*`` settings.
        metrics: where to count outcomes and the backlog, if anywhere.
        clock: monotonic seconds of the breakers; tests pass a ``ManualClock``.
        wall_clock: the current time (timezone-aware): what is due, the claims, the
            signatures' timestamps; tests pass one that moves with ``clock``.
        tracer_provider: with tracing on, the OpenTelemetry provider of the delivery
            spans (by default the one `rustok_server.observability.tracing.instrument`
            made).
        resolver: resolves an endpoint's host (the system's resolver by default).
        tls_context: the TLS settings of the deliveries, such as the certificate
            authorities trusted (by default the ``certifi`` bundle's).

    Examples:
        >>> deliverer = Deliverer(
        ...     Database("sqlite+aiosqlite:///:memory:"),
        ...     Settings(database_url="sqlite+aiosqlite:///:memory:"),
        ... )
        >>> deliverer.schedule.base
        30.0
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        metrics: ServerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
        tracer_provider: TracerProvider | None = None,
        resolver: Resolver = system_resolver,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.database: Database = database
        self.settings: Settings = settings
        self.queue: DeliveryQueue = DeliveryQueue(database)
        self.metrics: ServerMetrics | None = metrics
        self.clock: Callable[[], float] = clock
        self.wall_clock: Callable[[], datetime] = wall_clock
        self.resolver: Resolver = resolver
        self.schedule: RetrySchedule = RetrySchedule(
            settings.webhook_retry_base, settings.webhook_retry_max_delay
        )
        self.breaker_config: CircuitBreakerConfig = CircuitBreakerConfig(
            failure_threshold=BREAKER_FAILURES,
            success_threshold=1,
            timeout=settings.webhook_retry_base,
            max_timeout=max(settings.webhook_retry_base, settings.webhook_retry_max_delay),
            half_open_max_requests=1,
            # Our own refusal of an address says nothing of the endpoint's health.
            excluded=(UnsafeDestinationError,),
        )
        self.breakers: BreakerRegistry = BreakerRegistry(
            self._new_breaker, max_breakers=BREAKER_CAPACITY
        )
        """One breaker per endpoint (keyed by its id)."""
        self.retry_budget: RetryBudget = RetryBudget(
            max_tokens=float(max(10, settings.webhook_batch_size)), token_ratio=0.1
        )
        """The retries of this process: spent by failed attempts, refilled by successes."""
        # A slot of an endpoint's bulkhead is waited for at most half of what the claim
        # leaves after an attempt: the outcome is written while the claim is still ours.
        self._slot_wait = (settings.webhook_claim_lease - settings.webhook_attempt_timeout) / 2
        self._bulkheads: dict[uuid.UUID, tuple[Bulkhead, int]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._half_free = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tracer_provider = tracer_provider
        self._tls_context = tls_context
        self._background = BackgroundTask(self._run)

    # -- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background (the first pass at once)."""
        self._background.start()

    async def stop(self) -> None:
        """Stop delivering; the attempts in flight are cancelled (their claims expire and
        they are delivered again, by this process or another)."""
        await self._background.stop()
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.queue.settle()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def run_once(self) -> int:
        """Claim the due deliveries, attempt each, and wait for them all; then count the
        backlog. The number of deliveries claimed."""
        tasks = await self._start_due()
        await asyncio.gather(*tasks)
        await self.refresh_backlog()
        return len(tasks)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_count = loop.time()
        next_purge = loop.time() + _PURGE_INTERVAL
        while True:
            full = False
            try:
                tasks = await self._start_due()
                full = len(tasks) > 0 and len(self._in_flight) >= self.settings.webhook_batch_size
                # More may be due: claim again as soon as half the batch is done.
                self._half_free.clear()
                if loop.time() >= next_count:
                    next_count = loop.time() + _GAUGE_INTERVAL
                    await self.refresh_backlog()
                if loop.time() >= next_purge:
                    next_purge = loop.time() + _PURGE_INTERVAL
                    await self.purge()
            except (DatabaseUnavailableError, DatabaseTimeoutError):
                logger.debug("webhook deliveries wait for the database", exc_info=True)
            except Exception:
                logger.warning("looking for due webhook deliveries failed", exc_info=True)
            if full:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.webhook_poll_interval):
                        await self._half_free.wait()
            else:
                await asyncio.sleep(self.settings.webhook_poll_interval)

    async def _start_due(self) -> list[asyncio.Task[None]]:
        if not self.retry_budget.allows_retry():
            # A spent budget refills with successes only: a quiet process gives it back a
            # success's worth each pass, so that retries resume within a minute or two.
            self.retry_budget.record_success()
        room = self.settings.webhook_batch_size - len(self._in_flight)
        now = self.wall_clock()
        if room < 1 or not await self.queue.any_due(now):
            return []
        claimed = await self.queue.claim(now, self.settings.webhook_claim_lease, room)
        tasks = []
        for delivery in claimed:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
            tasks.append(task)
        return tasks

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if len(self._in_flight) <= self.settings.webhook_batch_size // 2:
            self._half_free.set()

    async def refresh_backlog(self) -> None:
        """Count the pending deliveries, and the endpoint breakers that are not closed,
        into the webhook gauges."""
        if self.metrics is None:
            return
        backlog = await self.queue.backlog()
        age = 0.0
        if backlog.oldest is not None:
            age = (self.wall_clock() - backlog.oldest).total_seconds()
        not_closed = sum(b.state is not CircuitState.CLOSED for b in self.breakers.breakers())
        self.metrics.set_webhook_backlog(backlog.depth, age, not_closed)

    async def purge(self) -> int:
        """Delete the events older than ``webhook_retention`` whose deliveries have all
        ended as long ago, batch by batch; the number deleted."""
        before = self.wall_clock() - timedelta(seconds=self.settings.webhook_retention)
        total = 0
        while True:
            deleted = await self.queue.purge(before)
            total += deleted
            if deleted == 0:
                return total
            await asyncio.sleep(0)  # the requests waiting for the writer go first

    # -- one delivery ------------------------------------------------------------------

    def _new_breaker(self, endpoint_id: str) -> CircuitBreaker:
        return CircuitBreaker(f"webhook:{endpoint_id}", self.breaker_config, clock=self.clock)

    @contextlib.contextmanager
    def _bulkhead(self, endpoint_id: uuid.UUID) -> Iterator[Bulkhead]:
        """The endpoint's bulkhead, kept while an attempt of this process uses it."""
        held = self._bulkheads.get(endpoint_id)
        if held is None:
            name = f"webhook:{endpoint_id}"
            bulkhead = Bulkhead(name, self.settings.webhook_concurrency, self._slot_wait)
            held = (bulkhead, 0)
        self._bulkheads[endpoint_id] = (held[0], held[1] + 1)
        try:
            yield held[0]
        finally:
            bulkhead, users = self._bulkheads[endpoint_id]
            if users == 1:
                del self._bulkheads[endpoint_id]
            else:
                self._bulkheads[endpoint_id] = (bulkhead, users - 1)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count_webhook_delivery(outcome)

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            await self._decide(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The outcome could not be written (the database is away): the claim expires
            # and the delivery is attempted again.
            logger.warning("recording webhook delivery %s failed", claimed.id, exc_info=True)

    async def _decide(self, claimed: Claimed) -> None:
        endpoint = claimed.endpoint
        if endpoint is None or not endpoint.enabled:
            reason = "endpoint deleted" if endpoint is None else "endpoint disabled"
            if endpoint is not None and endpoint.disabled_reason:
                reason = f"{reason}: {endpoint.disabled_reason}"
            if await self.queue.skipped(claimed, reason):
                self._count("failed")
            return
        breaker = self.breakers.get(str(endpoint.id))
        if breaker.state is CircuitState.OPEN and breaker.retry_after > 0:
            await self._postpone(claimed, breaker.retry_after)
            return
        trial = breaker.state is not CircuitState.CLOSED
        if claimed.attempts > 0 and not trial and not self.retry_budget.allows_retry():
            await self._postpone(claimed, self.settings.webhook_retry_base)
            return
        at = self.wall_clock()
        judged = breaker.judging(endpoint_failed)
        try:
            with self._bulkhead(endpoint.id) as bulkhead:
                answer = await bulkhead.call(judged.call, self._attempt, claimed, endpoint, at)
        except CircuitOpenError as refused:
            # Half-open, its one trial under way: due again once that trial has ended.
            wait = refused.retry_after or self.settings.webhook_attempt_timeout
            await self._postpone(claimed, wait)
            return
        except BulkheadFullError:
            await self._postpone(claimed, 0.0)
            return
        except UnsafeDestinationError as refused:
            await self._failed(claimed, endpoint, at, Attempted(None, refused.reason, None))
            return
        except Exception as error:  # a timeout, a refused connection, an unknown host, ...
            await self._failed(claimed, endpoint, at, Attempted(None, _describe(error), None))
            return
        excerpt = answer.excerpt
        if 200 <= answer.status_code < 300:
            self.retry_budget.record_success()
            attempt = Attempted(answer.status_code, None, excerpt)
            if await self.queue.delivered(claimed, at, attempt):
                self._count("delivered")
            return
        why = f"answered {answer.status_code}"
        if 300 <= answer.status_code < 400:
            where = "" if answer.location is None else f" to {answer.location[:300]}"
            why = f"answered {answer.status_code}: a redirect{where}, not followed"
        await self._failed(claimed, endpoint, at, Attempted(answer.status_code, why, excerpt))

    async def _postpone(self, claimed: Claimed, seconds: float) -> None:
        wait = max(seconds, self.settings.webhook_poll_interval)
        if await self.queue.postponed(claimed, self.wall_clock() + timedelta(seconds=wait)):
            self._count("postponed")

    async def _failed(
        self, claimed: Claimed, endpoint: EndpointState, at: datetime, attempt: Attempted
    ) -> None:
        self.retry_budget.record_failure()
        attempts = claimed.attempts + 1
        final = attempts >= self.settings.webhook_max_attempts
        retry_at = None if final else at + timedelta(seconds=self.schedule.delay(attempts))
        if not await self.queue.failed_attempt(claimed, at, attempt, retry_at):
            return
        if final:
            self._count("failed")
            logger.warning(
                "webhook delivery failed for good after %d attempts: %s",
                attempts,
                attempt.error,
                extra={
                    "delivery_id": str(claimed.id),
                    "event_id": str(claimed.event_id),
                    "event_type": claimed.event_type,
                    "endpoint_id": str(endpoint.id),
                    "tenant_id": str(claimed.tenant_id),
                    "attempts": attempts,
                    "status_code": attempt.status_code,
                },
            )
        else:
            self._count("retried")
        await self._disable_if_failing_long(endpoint, at, attempt)

    async def _disable_if_failing_long(
        self, endpoint: EndpointState, now: datetime, attempt: Attempted
    ) -> None:
        since = endpoint.failing_since
        limit = timedelta(seconds=self.settings.webhook_disable_after)
        if since is None or now - since < limit:
            return
        days = (now - since).total_seconds() / 86_400
        reason = (
            f"disabled automatically: no delivery succeeded since {since:%Y-%m-%d %H:%M} UTC"
            f" ({days:.1f} days); the last attempt: {attempt.error}"
        )
        if await self.queue.disable_if_failing(endpoint.id, now, now - limit, reason):
            logger.warning(
                "webhook endpoint %s disabled: %s",
                endpoint.id,
                reason,
                extra={"endpoint_id": str(endpoint.id)},
            )

    # -- one attempt -------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        """The deliveries' HTTP client. Its connector resolves through `_CheckedResolver`
        (a new connection goes only to checked addresses, nothing cached beyond it) and
        keeps connections alive per host name, port and TLS settings: a connection made as
        one host never carries another's request."""
        session = self._session
        if session is None or session.closed:
            settings = self.settings
            connector = aiohttp.TCPConnector(
                resolver=_CheckedResolver(
                    self.resolver, allow_private=settings.webhook_allow_private_addresses
                ),
                use_dns_cache=False,
                ssl=self._tls_context or _default_tls_context(),
                # Never more than the attempts in flight: none waits for a connection.
                limit=settings.webhook_batch_size,
                limit_per_host=0,
                keepalive_timeout=_KEEPALIVE,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                # No proxy from the environment: it would resolve the host itself.
                trust_env=False,
                auto_decompress=False,
                # A backstop: the attempt's own timeout (`with_timeout`) comes first.
                timeout=aiohttp.ClientTimeout(total=settings.webhook_attempt_timeout + 1.0),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return session

    async def _attempt(self, claimed: Claimed, endpoint: EndpointState, at: datetime) -> Answer:
        return await with_timeout(
            self.settings.webhook_attempt_timeout, self._send, claimed, endpoint, at
        )

    async def _send(self, claimed: Claimed, endpoint: EndpointState, at: datetime) -> Answer:
        url = endpoint.url
        refusal = check_url(
            url,
            allow_http=self.settings.webhook_allow_http,
            allow_private=self.settings.webhook_allow_private_addresses,
        )
        if refusal is not None:
            raise UnsafeDestinationError(refusal)
        with self._span(claimed, endpoint, _host_header(url)) as span:
            headers = delivery_headers(
                str(claimed.event_id),
                at,
                claimed.body,
                endpoint.signing_secrets(at),
                traceparent=span.traceparent,
            )
            read = bytearray()
            async with self._http().post(
                url, data=claimed.body.encode(), headers=headers, allow_redirects=False
            ) as response:
                while len(read) < EXCERPT_BYTES + _READ_BEYOND:
                    chunk = await response.content.read(EXCERPT_BYTES + _READ_BEYOND - len(read))
                    if not chunk:
                        break
                    read += chunk
                # An answer not read to its end closes its connection (never reused).
            span.answered(response.status)
        text = redact(bytes(read).decode("utf-8", "replace"), (endpoint.secret,))
        if endpoint.previous_secret:
            text = redact(text, (endpoint.previous_secret,))
        location = response.headers.get("location")
        return Answer(response.status, text[:EXCERPT_BYTES], location)

    @contextlib.contextmanager
    def _span(self, claimed: Claimed, endpoint: EndpointState, host: str) -> Iterator[_Span]:
        tracer = self._tracer()
        if tracer is None:  # the change's trace continues at the receiver, if it had one
            yield _Span(claimed.traceparent or fresh_traceparent())
            return
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # A child of the request that made the change, when it was traced.
        parent_context = (
            None
            if claimed.traceparent is None
            else TraceContextTextMapPropagator().extract({"traceparent": claimed.traceparent})
        )

        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "server.address": host,
            "rustok.webhook.event_type": claimed.event_type,
            "rustok.webhook.event_id": str(claimed.event_id),
            "rustok.webhook.endpoint_id": str(endpoint.id),
            "rustok.webhook.attempt": claimed.attempts + 1,
        }
        with tracer.start_as_current_span(
            "POST webhook", context=parent_context, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            parent = tracing.current_traceparent() or fresh_traceparent()  # this span's
            yield _Span(
                parent, lambda status: span.set_attribute("http.response.status_code", status)
            )

    def _tracer(self) -> Tracer | None:
        if not tracing.tracing_enabled():
            return None
        provider = self._tracer_provider
        if provider is not None:
            return provider.get_tracer("rustok_server.webhooks")
        return tracing.server_tracer()  # the provider instrument() made


class _Span:
    """The traceparent an attempt sends, and where its answer's status is recorded."""

    __slots__ = ("_on_status", "traceparent")

    def __init__(self, traceparent: str, on_status: Callable[[int], None] | None = None) -> None:
        self.traceparent = traceparent
        self._on_status = on_status

    def answered(self, status: int) -> None:
        if self._on_status is not None:
            self._on_status(status)


def _default_tls_context() -> ssl.SSLContext:
    # The authorities of the ``certifi`` bundle, the same wherever the server runs (a slim
    # container may have none of its own).
    return ssl.create_default_context(cafile=certifi.where())


class _CheckedResolver(AbstractResolver):
    """The deliveries' resolver: a host's addresses from ``resolver``, each checked
    (`resolve_checked`), for one connection (nothing cached)."""

    def __init__(self, resolver: Resolver, *, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve_checked(
            host, port, allow_private=self._allow_private, resolver=self._resolver
        )
        results: list[ResolveResult] = [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]
        return results

    async def close(self) -> None:
        pass


def _host_header(url: str) -> str:
    """The ``Host`` of a request to ``url``: its host, and its port unless the scheme's."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    scheme = parts.scheme.lower()
    if parts.port is None or parts.port == {"https": 443, "http": 80}.get(scheme):
        return shown
    return f"{shown}:{parts.port}"


def _describe(error: BaseException) -> str:
    """A failed attempt's error, for the tenant: its kind and message (a connection's
    error is the one under aiohttp's: the resolver's, the socket's, TLS's)."""
    if isinstance(error, OperationTimeoutError):
        return f"no answer within {error.seconds:g} s"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        error = error.certificate_error
    elif isinstance(error, aiohttp.ClientConnectorError):
        error = error.os_error
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
