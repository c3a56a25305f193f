"""OpenTelemetry traces (the ``rustok-server[otel]`` extra), off unless ``RUSTOK_TRACING``.

When on, `instrument` sets up the OpenTelemetry SDK from the standard ``OTEL_*`` variables
(service name, OTLP endpoint, sampler, ...), instruments FastAPI (an incoming W3C
``traceparent`` is honoured) and SQLAlchemy, and the server adds its own spans and events:
a span per tenant load through the ``database`` breaker (`breaker_span`), a client span per
statement the routes run on the driver, past SQLAlchemy (`statement_span`), and a
``transition`` event per state transition. The request id of logs and problems is then the trace id.

When off, nothing of OpenTelemetry is imported and each hook is one check of a module flag.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Final

from rustok_core.state_machine import TransitionRecord

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "TracingUnavailableError",
    "breaker_span",
    "current_trace_id",
    "current_traceparent",
    "instrument",
    "record_transition",
    "server_tracer",
    "statement_span",
    "tracing_enabled",
]

_tracer: Tracer | None = None
_NO_SPAN: Final = nullcontext()


class TracingUnavailableError(RuntimeError):
    """Tracing was asked for, but the ``rustok-server[otel]`` extra is not installed."""


def server_tracer() -> Tracer | None:
    """The tracer `instrument` made (on its provider), or ``None`` while tracing is off."""
    return _tracer


def tracing_enabled() -> bool:
    """Whether `instrument` has turned tracing on in this process."""
    return _tracer is not None


def instrument(
    app: FastAPI, engine: AsyncEngine, *, provider: TracerProvider | None = None
) -> None:
    """Trace ``app`` and its database ``engine``.

    Args:
        app: the FastAPI app.
        engine: its database engine.
        provider: the tracer provider; by default one configured from ``OTEL_*`` variables
            that exports with OTLP in batches (tests pass one with an in-memory exporter).

    Raises:
        TracingUnavailableError: the OpenTelemetry packages are not installed.
    """
    global _tracer
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as exc:
        raise TracingUnavailableError(
            "RUSTOK_TRACING needs the OpenTelemetry packages: pip install 'rustok-server[otel]'"
        ) from exc
    if provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
        provider = TracerProvider(resource=Resource.create({"service.name": "rustok-server"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # No span per ASGI send and receive: they double the spans of a request, say nothing an
    # operator reads, and cost about a tenth of a read even when the sampler drops them.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, exclude_spans=["receive", "send"]
    )
    # The instrumentation declares SQLAlchemy < 2.1; its engine event hooks work on 2.1 too.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    _tracer = provider.get_tracer("rustok_server")


def current_trace_id() -> str | None:
    """The id of the trace being recorded in this task (32 hex digits), if tracing is on."""
    traceparent = current_traceparent()
    return None if traceparent is None else traceparent[3:35]  # "00-<trace id>-..."


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span being recorded in this task, if tracing is on:
    what a later piece of work (a webhook delivery) continues the trace from."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextmanager
def breaker_span(name: str, state: str) -> Iterator[Mapping[str, object] | None]:
    """A span around one call through the breaker ``name``, with its state and outcome."""
    if _tracer is None:
        yield None
        return
    attributes = {"rustok.breaker.name": name, "rustok.breaker.state": state}
    with _tracer.start_as_current_span(f"breaker {name}", attributes=attributes) as span:
        try:
            yield attributes
        except BaseException as exc:
            span.set_attribute("rustok.breaker.outcome", type(exc).__name__)
            raise
        span.set_attribute("rustok.breaker.outcome", "success")


def statement_span(system: str, sql: str) -> AbstractContextManager[object]:
    """A client span around one statement run on the driver, as SQLAlchemy's
    instrumentation makes one for its own: named by the statement's first word, with
    ``db.system`` (``sqlite``, ``postgresql``) and ``db.statement``, the SQL text with its
    placeholders (the values are never recorded). When tracing is off, a shared no-op.
    """
    if _tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import SpanKind

    return _tracer.start_as_current_span(
        sql.split(None, 1)[0].upper(),
        kind=SpanKind.CLIENT,
        attributes={"db.system": system, "db.statement": sql},
    )


def record_transition(record: TransitionRecord) -> None:
    """Add a ``transition`` event to the current span (entity, trigger, from, to)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(
        "transition",
        {
            "rustok.entity": record.entity_type,
            "rustok.trigger": record.trigger,
            "rustok.from": record.from_state,
            "rustok.to": record.to_state,
        },
    )
