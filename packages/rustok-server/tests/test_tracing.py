"""Traces with the real OpenTelemetry SDK and its in-memory exporter: an incoming
`traceparent` is honoured, the breaker call is a span under the server span, so is each
statement run on the driver, a transition is an event, and a problem's `trace_id` is the
trace's id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_fixtures import ORDERS, ApiKeys, ServerFactory, assert_problem, create_order
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rustok_server import Tenant

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def _in_trace(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = exporter.get_finished_spans()
    return [
        s for s in spans if s.context is not None and format(s.context.trace_id, "032x") == TRACE_ID
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_traced_request_has_breaker_span_transition_event_and_trace_id_problems(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    exporter: InMemorySpanExporter,
    api_keys: ApiKeys,
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = start_server(tracing=True, tracer_provider=provider)
    headers = {"traceparent": TRACEPARENT}
    async with api_keys.client(server, "acme") as acme, api_keys.client(server, "globex") as globex:
        order = await create_order(acme)  # untraced: loads acme and its key
        exporter.clear()
        # globex and its key are not cached yet: their loads go through the breaker.
        response = await globex.post(f"{ORDERS}/{order['id']}/confirm", headers=headers)
        problem = assert_problem(response, 404)  # acme's order is not globex's
        assert problem["trace_id"] == TRACE_ID
        assert response.headers["x-request-id"] == TRACE_ID
        confirmed = await acme.post(f"{ORDERS}/{order['id']}/confirm", headers=headers)
        assert confirmed.status_code == 200
    spans = _in_trace(exporter)
    servers = [s for s in spans if s.kind.name == "SERVER"]
    assert len(servers) == 2
    breaker = [s for s in spans if s.name == "breaker database"]
    assert breaker  # globex's key and globex itself were loaded through it
    server_ids = {s.context.span_id for s in servers if s.context}
    for span in breaker:
        assert span.attributes is not None
        assert span.attributes["rustok.breaker.state"] == "closed"
        assert span.attributes["rustok.breaker.outcome"] == "success"
        # A child of the server span of the request that needed the load.
        assert span.parent is not None
        assert span.parent.span_id in server_ids
    assert any(s.kind.name == "CLIENT" and s.name.startswith("SELECT") for s in spans)
    # The confirm's statements run on the driver, past SQLAlchemy: spans of their own,
    # under the request's span, with the SQL text and never its values.
    driver = [s for s in spans if s.attributes and s.attributes.get("db.system") == "sqlite"]
    updates = [s for s in driver if s.name == "UPDATE"]
    assert updates, [s.name for s in spans]
    for span in updates:
        assert span.kind.name == "CLIENT"
        assert span.parent is not None
        assert span.parent.span_id in server_ids
        assert span.attributes is not None
        statement = str(span.attributes["db.statement"])
        assert statement.startswith("UPDATE orders SET ")
        assert order["id"] not in statement  # a placeholder, not the value
    events = [e for s in spans for e in s.events if e.name == "transition"]
    assert len(events) == 1
    assert events[0].attributes is not None
    assert dict(events[0].attributes) == {
        "rustok.entity": "Order",
        "rustok.trigger": "confirm",
        "rustok.from": "pending",
        "rustok.to": "confirmed",
    }
