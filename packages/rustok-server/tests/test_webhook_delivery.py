"""The deliverer sends the outbox's events to a real receiver on loopback, on SQLite and on
PostgreSQL: signed so that the ``standardwebhooks`` library verifies them, through a breaker
per endpoint, exactly once per claim across processes, never to a private address unless
allowed, never following a redirect, keeping a bounded, secret-free excerpt; an endpoint
failing for days is disabled, and old events are purged. Passes run with ``run_once`` on a
manual clock: no test waits for the background loop."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import ssl
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import (
    ApiKeys,
    ServerFactory,
    WallClock,
    clean_env,
    create_node,
    unit_of_work,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select, update
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rustok_content import CreateNodeInput, NodeKind, NodeService
from rustok_core.resilience import CircuitState
from rustok_core.testing import ManualClock
from rustok_server import Settings, Tenant, create_app
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database
from rustok_server.observability import tracing
from rustok_server.observability.metrics import ServerMetrics
from rustok_server.testing import LiveServer
from rustok_server.webhooks.delivery import EXCERPT_BYTES, Deliverer, RetrySchedule
from rustok_server.webhooks.safety import (
    Resolver,
    UnsafeDestinationError,
    address_refusal,
    check_url,
    redact,
    resolve_destination,
)
from rustok_server.webhooks.tables import (
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
    WebhookSubscriptionRow,
)

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


# -- a receiver on loopback ------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    client_port: int = 0


@dataclass
class Receiver:
    """A Starlette app under uvicorn on 127.0.0.1 that records every request and
    answers each path with the status and body the test sets (200 ``ok`` by default;
    a 3xx carries ``Location: /ok``)."""

    url: str = ""
    statuses: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most_in_flight: int = 0

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            status = self.statuses.get(path, 200)
            with self.lock:
                port = request.client.port if request.client is not None else 0
                self.requests.append(Received(path, dict(request.headers), body, status, port))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
            finally:
                with self.lock:
                    self.in_flight -= 1
            headers = {"location": "/ok"} if 300 <= status < 400 else {}
            return Response(self.bodies.get(path, "ok"), status_code=status, headers=headers)

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with LiveServer(receiver.app()) as server:
        receiver.url = server.url
        yield receiver


# -- endpoints, events, deliverers -----------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def add_endpoint(
    database: Database,
    tenant: Tenant,
    url: str,
    *,
    secret: str | None = None,
    previous: str | None = None,
    previous_until: datetime | None = None,
    enabled: bool = True,
) -> WebhookEndpointRow:
    """An endpoint of ``tenant`` that wants every event, written in the tables."""
    now = datetime.now().astimezone()
    row = WebhookEndpointRow(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        url=url,
        description="",
        enabled=enabled,
        disabled_reason=None if enabled else "switched off by the tenant",
        secret=secret or new_secret(),
        previous_secret=previous,
        previous_secret_until=previous_until,
        failing_since=None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    async with database.writing() as session:
        session.add(row)
        await session.flush()
        session.add(WebhookSubscriptionRow(endpoint_id=row.id, event_type="*", tenant_id=tenant.id))
        await session.commit()
    return row


async def publish_nodes(database: Database, tenant: Tenant, count: int) -> None:
    """``count`` nodes created, each in its own committed change (one event each)."""
    for _ in range(count):
        async with unit_of_work(database) as unit:
            service = NodeService(SqlNodeRepository(unit))
            slug = f"post-{uuid.uuid4().hex[:12]}"
            await service.create(
                tenant.id, CreateNodeInput(kind=NodeKind.POST, title="Hi", slug=slug)
            )
            await unit.commit()


async def deliveries(database: Database) -> list[WebhookDeliveryRow]:
    async with database.reading() as session:
        return list((await session.execute(select(WebhookDeliveryRow))).scalars())


async def event_ids(database: Database) -> set[str]:
    async with database.reading() as session:
        return {str(i) for i in (await session.execute(select(WebhookEventRow.id))).scalars()}


async def endpoint(database: Database, endpoint_id: uuid.UUID) -> WebhookEndpointRow:
    async with database.reading() as session:
        row = await session.get(WebhookEndpointRow, endpoint_id)
    assert row is not None
    return row


Factory = Callable[..., Deliverer]


@pytest.fixture
async def make_deliverer(
    database_url: str, clock: ManualClock, wall_clock: WallClock
) -> AsyncIterator[Factory]:
    """Deliverers on the test database (each with its own engines, as a process has),
    on the test's manual clock; settings as keywords (http and loopback allowed)."""
    made: list[Deliverer] = []

    def make(
        *,
        resolver: Resolver | None = None,
        tracer_provider: TracerProvider | None = None,
        tls_context: ssl.SSLContext | None = None,
        **overrides: object,
    ) -> Deliverer:
        options: dict[str, object] = {
            "database_url": database_url,
            "webhook_allow_http": True,
            "webhook_allow_private_addresses": True,
            "webhook_attempt_timeout": 5.0,
            "webhook_claim_lease": 30.0,
        }
        options.update(overrides)
        extra: dict[str, Any] = {} if resolver is None else {"resolver": resolver}
        deliverer = Deliverer(
            Database(database_url),
            Settings.model_validate(options),
            metrics=ServerMetrics(),
            clock=clock,
            wall_clock=wall_clock,
            tracer_provider=tracer_provider,
            tls_context=tls_context,
            **extra,
        )
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        await deliverer.stop()
        await deliverer.database.dispose()


def counted(deliverer: Deliverer, outcome: str) -> float:
    assert deliverer.metrics is not None
    value = deliverer.metrics.registry.get_sample_value(
        "rustok_webhook_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


# The events are stamped with the real time; the manual wall clock started a moment before.
DUE = 60.0


# -- signatures ------------------------------------------------------------------------


async def test_deliveries_are_signed_so_that_standardwebhooks_verifies_them(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    secret = new_secret()
    hook = await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok", secret=secret)
    await publish_nodes(database, tenants["acme"], 3)
    deliverer = make_deliverer()
    clock.advance(DUE)

    assert await deliverer.run_once() == 3

    got = receiver.at("/ok")
    assert len(got) == 3
    for request in got:
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "node.created"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("RusTok-Webhooks/")
        assert TRACEPARENT.match(request.headers["traceparent"])
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(request.body, request.headers)
    assert {r.headers["webhook-id"] for r in got} == await event_ids(database)
    rows = await deliveries(database)
    assert {(r.status, r.attempts, r.last_status_code) for r in rows} == {("delivered", 1, 200)}
    assert all(r.delivered_at is not None and r.claimed_until is None for r in rows)
    assert counted(deliverer, "delivered") == 3
    assert deliverer.metrics is not None
    registry = deliverer.metrics.registry
    assert registry.get_sample_value("rustok_webhook_queue_depth") == 0
    assert registry.get_sample_value("rustok_webhook_oldest_pending_age_seconds") == 0
    assert (await endpoint(database, hook.id)).failing_since is None


async def test_the_previous_secret_signs_too_during_its_grace_time_only(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
    wall_clock: WallClock,
) -> None:
    new, old, expired = new_secret(), new_secret(), new_secret()
    later = wall_clock() + timedelta(hours=1)
    await add_endpoint(
        database, tenants["acme"], f"{receiver.url}/rotating", secret=new, previous=old,
        previous_until=later,
    )  # fmt: skip
    await add_endpoint(
        database, tenants["acme"], f"{receiver.url}/rotated", secret=new, previous=expired,
        previous_until=wall_clock() - timedelta(seconds=1),
    )  # fmt: skip
    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer().run_once()

    (rotating,) = receiver.at("/rotating")
    (rotated,) = receiver.at("/rotated")
    assert len(rotating.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(rotating.body, rotating.headers)
    Webhook(new).verify(rotated.body, rotated.headers)
    assert rotated.headers["webhook-signature"].count("v1,") == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(expired).verify(rotated.body, rotated.headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_with_tracing_on_the_traceparent_is_the_delivery_client_span(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("tests"))  # tracing on
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer(tracer_provider=provider).run_once()

    (request,) = receiver.at("/ok")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "POST webhook"]
    assert span.context is not None
    assert span.kind.name == "CLIENT"
    ids = f"{span.context.trace_id:032x}-{span.context.span_id:016x}"
    assert request.headers["traceparent"].startswith(f"00-{ids}-")
    assert int(request.headers["traceparent"][-2:], 16) & 1  # sampled
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["rustok.webhook.event_type"] == "node.created"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_delivery_continues_the_trace_of_the_change_that_wrote_its_event(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    monkeypatch.setattr(tracing, "_tracer", tracer)  # tracing on, as instrument() does
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    with tracer.start_as_current_span("POST /api/content/nodes") as request_span:
        await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer().run_once()  # no provider given: the server's own tracer

    (request,) = receiver.at("/ok")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "POST webhook"]
    assert span.parent is not None
    assert span.parent.span_id == request_span.get_span_context().span_id
    trace_id = f"{request_span.get_span_context().trace_id:032x}"
    assert span.context is not None
    sent = request.headers["traceparent"]
    assert sent.startswith(f"00-{trace_id}-{span.context.span_id:016x}-")
    assert int(sent[-2:], 16) & 1  # sampled


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_background_loop_delivers_soon_after_start(
    database_url: str, database: Database, tenants: dict[str, Tenant], receiver: Receiver
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 2)
    settings = Settings(
        database_url=database_url,
        webhook_allow_http=True,
        webhook_allow_private_addresses=True,
        webhook_poll_interval=0.05,
    )
    deliverer = Deliverer(Database(database_url), settings)
    deliverer.start()
    try:
        for _ in range(200):  # at most 10 s
            if len(receiver.at("/ok")) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await deliverer.stop()
        await deliverer.database.dispose()
    assert len(receiver.at("/ok")) == 2
    assert {r.status for r in await deliveries(database)} == {"delivered"}


async def test_a_change_over_http_is_delivered_by_the_servers_own_deliverer(
    database: Database,
    tenants: dict[str, Tenant],
    api_keys: ApiKeys,
    receiver: Receiver,
    start_server: ServerFactory,
    clock: ManualClock,
) -> None:
    secret = new_secret()
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok", secret=secret)
    server = start_server(
        webhook_allow_http=True, webhook_allow_private_addresses=True, webhook_poll_interval=0.05
    )
    async with api_keys.client(server, "acme") as acme:
        node = await create_node(acme)
    clock.advance(DUE)  # the server's clock: the event is due
    for _ in range(200):  # at most 10 s
        if receiver.at("/ok"):
            break
        await asyncio.sleep(0.05)

    (request,) = receiver.at("/ok")
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "node.created"
    assert payload["data"]["entity"]["id"] == node["id"]


def test_the_app_delivers_with_its_metrics_and_clocks_unless_turned_off() -> None:
    clock = ManualClock()
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"), clock=clock)
    deliverer = app.state.deliverer
    assert isinstance(deliverer, Deliverer)
    assert deliverer.metrics is app.state.metrics
    assert deliverer.clock is clock
    off = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", webhooks=False))
    assert off.state.deliverer is None


# -- breaker, retries, backlog ---------------------------------------------------------


async def test_a_receiver_down_for_a_while_gets_every_event_once_back_its_breaker_open_meanwhile(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    events, rounds = 12, 8
    down = await add_endpoint(database, tenants["acme"], f"{receiver.url}/down")
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/up")
    await publish_nodes(database, tenants["acme"], events)
    receiver.statuses["/down"] = 503
    deliverer = make_deliverer(
        webhook_retry_base=1.0, webhook_retry_max_delay=4.0, webhook_max_attempts=100
    )
    clock.advance(DUE)

    await deliverer.run_once()
    assert len(receiver.at("/up")) == events  # the other endpoint is not held up
    assert deliverer.breakers.get(str(down.id)).state is CircuitState.OPEN
    assert deliverer.metrics is not None
    registry = deliverer.metrics.registry
    assert registry.get_sample_value("rustok_webhook_queue_depth") == events
    assert (registry.get_sample_value("rustok_webhook_oldest_pending_age_seconds") or 0) > 0
    assert registry.get_sample_value("rustok_webhook_open_breakers") == 1
    for _ in range(rounds):  # still down: each round lets one trial through
        clock.advance(6.0)
        await deliverer.run_once()
    attempts_while_down = len(receiver.at("/down"))
    receiver.statuses["/down"] = 200
    for _ in range(4):
        clock.advance(6.0)
        await deliverer.run_once()

    # Without a breaker every due delivery would be tried every round: events * (rounds + 1).
    assert attempts_while_down <= 5 + deliverer.settings.webhook_concurrency + rounds
    delivered = [r.headers["webhook-id"] for r in receiver.at("/down") if r.status == 200]
    assert sorted(delivered) == sorted(set(delivered))  # each once
    assert set(delivered) == await event_ids(database)
    assert len(receiver.at("/up")) == events  # and never again
    assert deliverer.breakers.get(str(down.id)).state is CircuitState.CLOSED
    assert registry.get_sample_value("rustok_webhook_open_breakers") == 0
    assert counted(deliverer, "postponed") > 0
    assert counted(deliverer, "retried") == attempts_while_down
    assert counted(deliverer, "delivered") == 2 * events
    assert (await endpoint(database, down.id)).failing_since is None


async def test_a_delivery_out_of_attempts_fails_with_one_warning_without_its_secret(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = new_secret()
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/refuses", secret=secret)
    receiver.statuses["/refuses"] = 400
    await publish_nodes(database, tenants["acme"], 1)
    deliverer = make_deliverer(webhook_max_attempts=2, webhook_retry_base=1.0)
    clock.advance(DUE)

    with caplog.at_level(logging.WARNING, logger="rustok.webhooks"):
        await deliverer.run_once()
        (row,) = await deliveries(database)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "answered 400")
        assert row.next_attempt_at > row.last_attempt_at  # type: ignore[operator]
        clock.advance(DUE)
        await deliverer.run_once()

    (row,) = await deliveries(database)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 2, 400)
    warnings = [r for r in caplog.records if r.name == "rustok.webhooks"]
    assert len(warnings) == 1
    assert "failed for good after 2 attempts" in warnings[0].getMessage()
    assert getattr(warnings[0], "delivery_id", None) == str(row.id)
    assert secret not in repr(warnings[0].__dict__)
    assert counted(deliverer, "failed") == 1


async def test_an_endpoint_gets_at_most_its_concurrency_of_attempts_at_once(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 8)
    receiver.delay = 0.05
    clock.advance(DUE)

    assert await make_deliverer(webhook_concurrency=2).run_once() == 8

    assert len(receiver.at("/ok")) == 8
    assert 1 <= receiver.most_in_flight <= 2


async def test_an_attempt_past_its_timeout_fails_and_counts_against_the_breaker(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    hook = await add_endpoint(database, tenants["acme"], f"{receiver.url}/slow")
    await publish_nodes(database, tenants["acme"], 1)
    receiver.delay = 2.0
    deliverer = make_deliverer(webhook_attempt_timeout=0.2)
    clock.advance(DUE)

    await deliverer.run_once()

    (row,) = await deliveries(database)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "no answer within 0.2 s")
    assert row.last_status_code is None
    assert deliverer.breakers.get(str(hook.id)).stats().total_failures == 1


async def test_a_retry_waits_while_the_retry_budget_is_spent_without_an_attempt(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/flaky")
    await publish_nodes(database, tenants["acme"], 1)
    receiver.statuses["/flaky"] = 500
    deliverer = make_deliverer(webhook_retry_base=1.0, webhook_batch_size=10)
    clock.advance(DUE)
    await deliverer.run_once()  # a first attempt is never held back
    for _ in range(10):  # other deliveries failed meanwhile: the budget is spent
        deliverer.retry_budget.record_failure()
    receiver.statuses["/flaky"] = 200
    clock.advance(DUE)

    await deliverer.run_once()

    (row,) = await deliveries(database)
    assert (row.status, row.attempts) == ("pending", 1)
    assert len(receiver.at("/flaky")) == 1
    assert counted(deliverer, "postponed") == 1
    for _ in range(60):  # quiet passes give the budget back, a success's worth each
        await deliverer.run_once()
    clock.advance(DUE)
    await deliverer.run_once()
    (row,) = await deliveries(database)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_the_retry_schedule_doubles_with_jitter_up_to_its_cap() -> None:
    schedule = RetrySchedule(base=30.0, cap=21_600.0)
    for attempts in range(1, 12):
        nominal = min(21_600.0, 30.0 * 2 ** (attempts - 1))
        assert nominal / 2 <= schedule.delay(attempts) <= nominal
    assert len({schedule.delay(3) for _ in range(20)}) > 1


async def test_an_endpoint_failing_for_days_is_disabled_with_a_reason(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    hook = await add_endpoint(database, tenants["acme"], f"{receiver.url}/gone")
    receiver.statuses["/gone"] = 502
    await publish_nodes(database, tenants["acme"], 2)
    deliverer = make_deliverer(
        webhook_max_attempts=100, webhook_retry_base=1.0, webhook_retry_max_delay=60.0,
        webhook_disable_after=3 * 86_400.0,
    )  # fmt: skip
    clock.advance(DUE)
    await deliverer.run_once()
    assert (await endpoint(database, hook.id)).failing_since is not None
    clock.advance(86_400.0)
    await deliverer.run_once()
    assert (await endpoint(database, hook.id)).enabled  # a day: not yet

    clock.advance(3 * 86_400.0)
    await deliverer.run_once()

    disabled = await endpoint(database, hook.id)
    assert not disabled.enabled
    assert disabled.disabled_reason is not None
    assert "no delivery succeeded since" in disabled.disabled_reason
    assert "answered 502" in disabled.disabled_reason
    assert disabled.version == 2
    assert {r.status for r in await deliveries(database)} == {"failed"}
    seen = len(receiver.at("/gone"))
    await publish_nodes(database, tenants["acme"], 1)  # a disabled endpoint gets no delivery
    clock.advance(DUE)
    await deliverer.run_once()
    assert len(receiver.at("/gone")) == seen


async def test_a_disabled_endpoints_pending_delivery_fails_without_a_request(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    hook = await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 1)
    async with database.writing() as session:
        await session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == hook.id)
            .values(enabled=False, disabled_reason="paused")
        )
        await session.commit()
    clock.advance(DUE)

    await make_deliverer().run_once()

    (row,) = await deliveries(database)
    assert (row.status, row.attempts, row.last_error) == ("failed", 0, "endpoint disabled: paused")
    assert receiver.requests == []


# -- the outbox --------------------------------------------------------------------------


async def test_a_rolled_back_change_emits_nothing(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    async with unit_of_work(database) as unit:
        service = NodeService(SqlNodeRepository(unit))
        await service.create(
            tenants["acme"].id, CreateNodeInput(kind=NodeKind.POST, title="Hi", slug="hi")
        )
        await unit.rollback()
    clock.advance(DUE)

    assert await make_deliverer().run_once() == 0
    assert receiver.requests == []
    assert await event_ids(database) == set()


async def test_two_deliverers_on_one_database_never_deliver_one_delivery_twice(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 30)
    receiver.delay = 0.005
    first, second = make_deliverer(webhook_batch_size=4), make_deliverer(webhook_batch_size=4)
    clock.advance(DUE)

    claimed: list[int] = []
    while True:
        counts = await asyncio.gather(first.run_once(), second.run_once())
        claimed.extend(counts)
        if not any(counts):
            break

    ids = [r.headers["webhook-id"] for r in receiver.at("/ok")]
    assert len(ids) == 30
    assert set(ids) == await event_ids(database)
    assert counted(first, "delivered") > 0
    assert counted(second, "delivered") > 0
    assert {r.status for r in await deliveries(database)} == {"delivered"}


async def test_a_claim_of_a_process_that_died_expires_and_another_delivers(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
    wall_clock: WallClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 2)
    clock.advance(DUE)
    dead = make_deliverer()
    claimed = await dead.queue.claim(wall_clock(), 30.0, 10)  # then killed: no outcome
    assert len(claimed) == 2
    survivor = make_deliverer()

    assert await survivor.run_once() == 0  # claimed: not due for anyone else
    clock.advance(31.0)
    assert await survivor.run_once() == 2
    assert len(receiver.at("/ok")) == 2


# How the live tests run the server: delivering to the loopback receiver, a short claim.
_LIVE_SETTINGS = {
    "RUSTOK_WEBHOOK_ALLOW_HTTP": "true",
    "RUSTOK_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    "RUSTOK_WEBHOOK_ATTEMPT_TIMEOUT": "1",
    "RUSTOK_WEBHOOK_CLAIM_LEASE": "3",
    "RUSTOK_WEBHOOK_POLL_INTERVAL": "0.1",
    "RUSTOK_WEBHOOK_BATCH_SIZE": "5",
    "RUSTOK_RATE_LIMIT_PER_SECOND": "0",
}


async def _lines_until(stream: asyncio.StreamReader, text: str, count: int, log: list[str]) -> None:
    """Read ``stream`` into ``log`` until ``text`` was seen ``count`` times."""
    seen = 0
    while seen < count:
        line = (await stream.readline()).decode(errors="replace")
        assert line, "".join(log)
        log.append(line)
        seen += text in line


async def _keep_reading(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux)."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


async def _until(check: Callable[[], Any], seconds: float) -> None:
    """Poll ``check`` (awaited when it returns an awaitable) until it is true, bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result or loop.time() > deadline:
            return
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
async def test_kill_9_of_one_of_two_workers_under_load_loses_no_event(
    database_url: str,
    database: Database,
    tenants: dict[str, Tenant],
    api_keys: ApiKeys,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """`rustok-server serve --workers 2`, orders created over HTTP by clients while each
    worker delivers; one worker gets SIGKILL with deliveries in flight. Every order whose
    creation was acknowledged has its event received, every event of the outbox too."""
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    receiver.delay = 0.2  # each delivery is in flight a while
    env = clean_env(RUSTOK_DATABASE_URL=database_url, **_LIVE_SETTINGS)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "rustok_server", "serve", "--port", "0", "--workers", "2"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    log: list[str] = []
    created: set[str] = set()
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = banner.split(" listening on ")[1].split(",")[0].strip()
        await asyncio.wait_for(
            _lines_until(process.stderr, "Application startup complete", 2, log), 60
        )
        reading = asyncio.gather(
            _keep_reading(process.stdout, log), _keep_reading(process.stderr, log)
        )
        stop = asyncio.Event()

        async def client(http: httpx.AsyncClient) -> None:
            body = {"customer_id": str(uuid.uuid4()), "amount": "9.99", "currency": "EUR"}
            while not stop.is_set():
                try:
                    answer = await http.post("/api/commerce/orders", json=body)
                except httpx.TransportError:
                    continue  # the killed worker's connection
                if answer.status_code == 201:
                    created.add(answer.json()["id"])

        headers = {"X-Tenant-ID": "acme", **api_keys.auth("acme")}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            clients = [asyncio.create_task(client(http)) for _ in range(4)]
            await _until(lambda: len(receiver.requests) >= 5 and len(created) >= 20, 60)
            workers = _children(process.pid)
            victim = max(workers)  # a worker, never the supervisor itself
            os.kill(victim, signal.SIGKILL)  # deliveries and requests in flight
            before = len(created)
            await _until(lambda: len(created) >= before + 20, 60)  # the survivor serves
            stop.set()
            await asyncio.gather(*clients)

        async def all_delivered() -> bool:
            return {r.status for r in await deliveries(database)} == {"delivered"}

        await _until(all_delivered, 60)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    await reading

    assert await all_delivered(), "".join(log[-20:])
    received = {r.headers["webhook-id"] for r in receiver.at("/ok")}
    assert received == await event_ids(database)  # at least once each
    orders = {
        json.loads(r.body)["data"]["entity"]["id"]
        for r in receiver.at("/ok")
        if json.loads(r.body)["type"] == "order.created"
    }
    assert created <= orders, f"acknowledged, never delivered: {created - orders}"
    assert len(created) >= 40


@pytest.mark.slow
async def test_the_deliver_command_delivers_beside_servers_that_do_not(
    database_url: str,
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """`rustok-server deliver` delivers what a server with RUSTOK_WEBHOOKS=false wrote,
    and stops cleanly on SIGTERM."""
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 3)  # written, as a server would
    env = clean_env(RUSTOK_DATABASE_URL=database_url, **_LIVE_SETTINGS)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "rustok_server", "deliver"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert "delivering webhooks from" in banner
        await _until(lambda: len(receiver.at("/ok")) >= 3, 60)
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert {r.headers["webhook-id"] for r in receiver.at("/ok")} == await event_ids(database)


async def test_old_events_are_purged_once_their_deliveries_ended(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/ok")
    await publish_nodes(database, tenants["acme"], 3)
    deliverer = make_deliverer(webhook_retention=86_400.0)
    clock.advance(DUE)
    await deliverer.run_once()
    stuck = await add_endpoint(database, tenants["acme"], f"{receiver.url}/down")
    receiver.statuses["/down"] = 503
    await publish_nodes(database, tenants["acme"], 1)  # pending for its second endpoint
    clock.advance(DUE)
    await deliverer.run_once()
    assert await deliverer.purge() == 0  # nothing is a day old

    clock.advance(2 * 86_400.0)
    purged = await deliverer.purge()

    assert purged == 3
    remaining = await deliveries(database)
    assert {r.endpoint_id for r in remaining if r.status == "pending"} == {stuck.id}
    async with database.reading() as session:
        count = (await session.execute(select(func.count()).select_from(WebhookEventRow))).scalar()
    assert count == 1


# -- outbound safety ---------------------------------------------------------------------


async def test_a_host_resolving_to_a_loopback_address_is_refused_and_no_request_leaves(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    await add_endpoint(database, tenants["acme"], f"http://localhost:{port}/ok")

    async def private_and_public(host: str, port: int) -> Sequence[str]:
        return ["93.184.215.14", "10.0.0.7"]

    await add_endpoint(database, tenants["acme"], f"http://hooks.example:{port}/ok")
    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)
    # The system resolver for localhost; the other host resolves to a public and a
    # private address: one refused address is enough.
    names = {"hooks.example": private_and_public}

    async def resolver(host: str, port: int) -> Sequence[str]:
        if host in names:
            return await names[host](host, port)
        loop = asyncio.get_running_loop()
        return [str(info[4][0]) for info in await loop.getaddrinfo(host, port)]

    deliverer = make_deliverer(webhook_allow_private_addresses=False, resolver=resolver)

    await deliverer.run_once()

    assert receiver.requests == []
    errors = sorted(str(r.last_error) for r in await deliveries(database))
    assert re.match(r"hooks\.example resolves to 10\.0\.0\.7, a private address", errors[0])
    assert errors[1] == "it names localhost, a loopback address"
    assert {(r.status, r.attempts) for r in await deliveries(database)} == {("pending", 1)}


async def test_the_checked_address_is_connected_to_with_the_urls_host_name(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    await add_endpoint(database, tenants["acme"], f"http://receiver.test:{port}/ok")
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer(resolver=resolver).run_once()

    (request,) = receiver.at("/ok")
    assert request.headers["host"] == f"receiver.test:{port}"
    assert lookups == ["receiver.test"]  # once: the request went to the checked address


async def test_a_kept_alive_connection_carries_only_its_own_host_names_deliveries(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    await add_endpoint(database, tenants["acme"], f"http://one.test:{port}/ok")
    await add_endpoint(database, tenants["acme"], f"http://two.test:{port}/ok")
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    await publish_nodes(database, tenants["acme"], 6)
    clock.advance(DUE)

    await make_deliverer(resolver=resolver, webhook_concurrency=1).run_once()

    by_host: dict[str, set[int]] = {}
    for request in receiver.at("/ok"):
        by_host.setdefault(request.headers["host"], set()).add(request.client_port)
    assert sorted(by_host) == [f"one.test:{port}", f"two.test:{port}"]
    assert not by_host[f"one.test:{port}"] & by_host[f"two.test:{port}"]
    # A host name is looked up for each connection made to it, not for each request.
    assert sorted(set(lookups)) == ["one.test", "two.test"]
    assert len(lookups) == sum(len(ports) for ports in by_host.values()) < 12


async def test_a_host_that_does_not_resolve_is_a_failed_attempt_of_its_endpoint(
    database: Database,
    tenants: dict[str, Tenant],
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    hook = await add_endpoint(database, tenants["acme"], "https://nowhere.invalid/in")
    await publish_nodes(database, tenants["acme"], 1)
    deliverer = make_deliverer()
    clock.advance(DUE)

    await deliverer.run_once()

    (row,) = await deliveries(database)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert str(row.last_error).startswith("gaierror: ")
    assert deliverer.breakers.get(str(hook.id)).stats().total_failures == 1


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        # Key identifiers: Python 3.13's default context verifies strictly (X509_STRICT).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class TlsReceiver:
    """An HTTPS receiver on 127.0.0.1 with a certificate for ``receiver.test`` from a test
    authority: records the server name each client asked for (SNI) and each request."""

    port: int
    client_context: ssl.SSLContext
    server_names: list[str | None]
    requests: list[bytes]


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[TlsReceiver]:
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("Test Authority", ca_key, None, ca_key)
    leaf = _certificate("receiver.test", leaf_key, ca, ca_key)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    names: list[str | None] = []
    requests: list[bytes] = []

    def on_server_name(_socket: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    server_context.sni_callback = on_server_name

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            body = await reader.readexactly(int(length.group(1)) if length else 0)
            requests.append(head + body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # a client that refused our certificate
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    try:
        yield TlsReceiver(port, client_context, names, requests)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_https_goes_to_the_checked_address_verifying_the_urls_host_name(
    database: Database,
    tenants: dict[str, Tenant],
    tls_receiver: TlsReceiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    port = tls_receiver.port
    await add_endpoint(database, tenants["acme"], f"https://receiver.test:{port}/in")
    # Its address is the receiver's, but the certificate names receiver.test only.
    impostor = await add_endpoint(database, tenants["acme"], f"https://other.test:{port}/in")

    async def resolver(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer(resolver=resolver, tls_context=tls_receiver.client_context).run_once()

    (request,) = tls_receiver.requests
    assert f"host: receiver.test:{port}".encode() in request.lower()
    assert sorted(n or "" for n in tls_receiver.server_names) == ["other.test", "receiver.test"]
    rows = {r.endpoint_id: r for r in await deliveries(database)}
    refused = rows.pop(impostor.id)
    assert (refused.status, refused.last_status_code) == ("pending", None)
    assert "certificate" in str(refused.last_error).lower()
    ((_, delivered),) = rows.items()
    assert (delivered.status, delivered.last_status_code) == ("delivered", 200)


async def test_a_redirect_is_not_followed(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/moved")
    receiver.statuses["/moved"] = 307
    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer().run_once()

    assert [r.path for r in receiver.requests] == ["/moved"]
    (row,) = await deliveries(database)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 307)
    assert row.last_error == "answered 307: a redirect to /ok, not followed"


async def test_the_stored_excerpt_is_bounded_and_holds_no_secret(
    database: Database,
    tenants: dict[str, Tenant],
    receiver: Receiver,
    make_deliverer: Factory,
    clock: ManualClock,
) -> None:
    secret, previous = new_secret(), new_secret()
    bare = secret.removeprefix("whsec_")
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/echo", secret=secret,
                       previous=previous, previous_until=datetime.now().astimezone())  # fmt: skip
    await add_endpoint(database, tenants["acme"], f"{receiver.url}/edge", secret=secret)
    receiver.bodies["/echo"] = f"you sent {secret} and {bare} and {previous} " + "x" * 100_000
    receiver.bodies["/edge"] = "y" * (EXCERPT_BYTES - 10) + secret  # across the bound
    await publish_nodes(database, tenants["acme"], 1)
    clock.advance(DUE)

    await make_deliverer().run_once()

    excerpts = [r.response_excerpt or "" for r in await deliveries(database)]
    assert len(excerpts) == 2
    for excerpt in excerpts:
        assert len(excerpt) <= EXCERPT_BYTES
        assert "whsec_" not in excerpt
        assert bare[:12] not in excerpt
        assert previous.removeprefix("whsec_")[:12] not in excerpt
    assert any(e.startswith("you sent [redacted] and [redacted] and [redacted]") for e in excerpts)


def test_a_url_is_checked_before_it_is_stored() -> None:
    strict = {"allow_http": False, "allow_private": False}
    assert check_url("https://hooks.example.com/in?x=1", **strict) is None
    assert check_url("http://hooks.example.com/in", **strict) == "it must use https"
    assert check_url("ftp://hooks.example.com/in", allow_http=True, allow_private=False) == (
        "it must use http or https"
    )
    assert check_url("https://user:pw@hooks.example.com/", **strict) == (
        "it must not hold a user name or password"
    )
    assert check_url("https:///in", **strict) == "it has no host"
    assert check_url("https://localhost/in", **strict) == "it names localhost, a loopback address"
    assert check_url("https://169.254.169.254/", **strict) == (
        "it names 169.254.169.254, a cloud metadata address"
    )
    mapped = ipaddress.ip_address("::ffff:10.0.0.1")  # written as each Python writes it
    assert check_url("https://[::ffff:10.0.0.1]/", **strict) == (
        f"it names {mapped}, a private address"
    )
    assert check_url("https://100.64.0.1/", **strict) == (
        "it names 100.64.0.1, a shared (CGNAT) address"
    )
    assert check_url("https://[fd00:ec2::254]/", **strict) == (
        "it names fd00:ec2::254, a cloud metadata address"
    )
    assert check_url("http://127.0.0.1:8000/", allow_http=True, allow_private=True) is None
    assert check_url("https://h.example/" + "a" * 2048, **strict) == (
        "it is longer than 2048 characters"
    )


def test_every_kind_of_address_that_is_not_public_is_refused() -> None:
    import ipaddress

    refused = {
        "127.0.0.1": "a loopback address",
        "::1": "a loopback address",
        "0.0.0.0": "an unspecified address",
        "169.254.1.1": "a link-local address",
        "fe80::1": "a link-local address",
        "224.0.0.1": "a multicast address",
        "10.1.2.3": "a private address",
        "172.16.0.1": "a private address",
        "192.168.1.1": "a private address",
        "fc00::1": "a private address",
        "100.100.100.200": "a cloud metadata address",
        "64:ff9b::7f00:1": "a loopback address",
        "240.0.0.1": "a private address",
    }
    for text, why in refused.items():
        assert address_refusal(ipaddress.ip_address(text)) == why, text
    assert address_refusal(ipaddress.ip_address("93.184.215.14")) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::1111")) is None


async def test_a_destination_names_its_host_for_tls_and_the_host_header() -> None:
    async def public(host: str, port: int) -> Sequence[str]:
        return ["93.184.215.14"]

    destination = await resolve_destination(
        "https://hooks.example.com/in?a=1", allow_http=False, allow_private=False,
        resolver=public,
    )  # fmt: skip
    assert destination.url == "https://93.184.215.14/in?a=1"
    assert (destination.host_header, destination.server_name) == ("hooks.example.com",) * 2
    with pytest.raises(UnsafeDestinationError, match="must use https"):
        await resolve_destination(
            "http://hooks.example.com/", allow_http=False, allow_private=False, resolver=public
        )
    assert redact("a whsec_abcdefgh b", ["whsec_abcdefgh"]) == "a [redacted] b"
