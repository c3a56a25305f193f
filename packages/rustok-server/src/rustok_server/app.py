"""The FastAPI application factory."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from rustok_commerce import Order
from rustok_content import ContentNode
from rustok_core.resilience import CircuitState
from rustok_core.tenancy import TenantIdentifier
from rustok_server.__about__ import __version__
from rustok_server.auth import admin_api, tenant_api
from rustok_server.auth.keys import RateLimit
from rustok_server.auth.middleware import AuthMiddleware
from rustok_server.auth.openapi import document_security
from rustok_server.auth.service import Authentication
from rustok_server.auth.tokens import JwtConfig
from rustok_server.commerce import api as commerce_api
from rustok_server.content import api as content_api
from rustok_server.context import ServerContext
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.db.guard import (
    BREAKER_NAME,
    DatabaseGuard,
    DatabaseProber,
    database_breaker,
)
from rustok_server.http import problem_pages, problem_types
from rustok_server.http.api_docs import install_api_docs
from rustok_server.http.body_limits import BodyLimitMiddleware
from rustok_server.http.idempotency import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    IdempotencyPurger,
)
from rustok_server.http.openapi import document_app, operation_id
from rustok_server.http.problems import (
    REQUEST_ID_HEADER,
    ProblemMiddleware,
    install_problem_handlers,
)
from rustok_server.http.security_headers import SecurityHeadersMiddleware
from rustok_server.observability import tracing
from rustok_server.observability.metrics import ServerMetrics
from rustok_server.observability.middleware import ObservabilityMiddleware
from rustok_server.operations import health, metrics_route
from rustok_server.scaleout import RedisLink
from rustok_server.settings import Settings
from rustok_server.tenancy.repository import Tenant, TenantDirectory, find_tenant
from rustok_server.tenancy.resolution import (
    API_PREFIX,
    EXEMPT_PATHS,
    EXEMPT_PREFIXES,
    TenantMiddleware,
    TenantResolver,
    guarded_loader,
)
from rustok_server.tenancy.tenant_cache import TenantCache, TenantCacheConfig
from rustok_server.webhooks import api as webhooks_api
from rustok_server.webhooks.delivery import Deliverer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["create_app", "create_app_from_env"]


# Recent FastAPI traces, meters and logs every request itself once a global OpenTelemetry
# provider is set. The server instruments itself (observability/tracing.py), so that layer
# would record each request twice; it is switched off where FastAPI has it.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)

# What a browser app on an allowed origin (RUSTOK_CORS_ORIGINS) may send beyond the
# safelisted headers (the tenant header is added under its configured name), and which
# response headers its script may read beyond the safelisted ones.
_CORS_REQUEST_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "If-Match",
    IDEMPOTENCY_HEADER,
    REQUEST_ID_HEADER,
)
_CORS_EXPOSED_HEADERS: Final = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "WWW-Authenticate",
    REPLAYED_HEADER,
    REQUEST_ID_HEADER,
)


# The states of the database breaker in which the database counts as failing.
_FAILING: Final = frozenset({CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.FORCED_OPEN})


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = utcnow,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build the server: database and its breaker, tenant cache, middleware, routes.

    The database is not migrated here (``rustok-server serve`` and ``migrate`` do
    that). While the app runs, expired idempotency records are purged in the
    background; the engine is closed when the app shuts down. With
    ``settings.redis_url``, the breakers and the rate-limit buckets are shared with the
    other processes on Redis, and changes are announced and heard on its channel.

    Args:
        settings: the settings; read from ``RUSTOK_*`` environment variables if omitted.
        clock: monotonic seconds for the tenant cache and the breaker; tests pass a
            clock they move by hand.
        wall_clock: the current time (timezone-aware) of API key creation, expiry,
            revocation and last use; tests pass one that moves with ``clock``.
        tracer_provider: with ``settings.tracing``, the OpenTelemetry provider to use
            instead of one configured from ``OTEL_*`` variables.

    Examples:
        >>> app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
        >>> app.state.context.breaker.name
        'database'
    """
    settings = settings if settings is not None else Settings()
    redis = (
        None
        if settings.redis_url is None
        else RedisLink(
            settings.redis_url, timeout=settings.redis_timeout, namespace=settings.redis_namespace
        )
    )
    breaker = database_breaker(
        failure_threshold=settings.breaker_failure_threshold,
        success_threshold=settings.breaker_success_threshold,
        timeout=settings.breaker_timeout,
        max_timeout=settings.breaker_max_timeout,
        clock=clock,
        storage=None if redis is None else redis.breaker_storage(BREAKER_NAME),
    )
    database = Database(
        settings.database_url,
        echo=settings.database_echo,
        pool_size=settings.postgres_pool_size,
        guard=DatabaseGuard(
            breaker,
            read_timeout=settings.db_query_timeout,
            write_timeout=settings.db_write_timeout,
        ),
    )

    def database_failing() -> bool:
        # While the breaker is open or probing (or an operator isolated the database),
        # cached tenants and keys are served stale at once rather than waiting for a load
        # that started before it opened. Disabled or metrics-only, every call goes through.
        return breaker.state in _FAILING

    metrics = ServerMetrics()
    metrics.resilience.watch_breaker(breaker)
    if redis is not None:
        metrics.watch_redis(redis.health)
        metrics.resilience.watch_breaker(redis.health.breaker)
    metrics.watch_machine("ContentNode", ContentNode.state_machine.triggers)
    metrics.watch_machine("Order", Order.state_machine.triggers)
    cache: TenantCache[TenantIdentifier, Tenant] = TenantCache(
        guarded_loader(partial(find_tenant, database), breaker),
        TenantCacheConfig(
            ttl=settings.cache_ttl,
            idle=settings.cache_idle,
            capacity=settings.cache_capacity,
            negative_ttl=settings.cache_negative_ttl,
            stale_window=settings.cache_stale_window,
        ),
        clock=clock,
        degraded=database_failing,
        on_result=metrics.count_cache_result,
    )
    directory = TenantDirectory(database, cache)
    resolver = TenantResolver(
        cache,
        breaker,
        sources=settings.tenant_resolution,
        header=settings.tenant_header,
        base_domain=settings.base_domain,
        default_tenant=settings.default_tenant,
    )
    auth = Authentication(
        database,
        rate_limit=RateLimit(settings.rate_limit_per_second, settings.rate_limit_burst),
        jwt=_jwt_config(settings),
        clock=clock,
        wall_clock=wall_clock,
        redis=redis,
        stale_limit=settings.cache_stale_window,
        degraded=database_failing,
        on_retry=metrics.resilience.retry_hook("jwks"),
        failure_limit=RateLimit(settings.auth_failure_rate, settings.auth_failure_burst),
        key_negative_ttl=settings.key_negative_ttl,
        key_negative_capacity=settings.key_negative_capacity,
        on_tenant_change=cache.mark_all_stale,
        on_limited=metrics.resilience.rate_limited.inc,
    )
    if auth.tokens is not None:
        metrics.resilience.watch_breaker(auth.tokens.breaker)
    context = ServerContext(
        settings=settings,
        database=database,
        breaker=breaker,
        tenant_cache=cache,
        tenants=directory,
        resolver=resolver,
        auth=auth,
    )

    purger = IdempotencyPurger(database)
    prober = DatabaseProber(breaker, database.probe)
    deliverer = (
        Deliverer(
            database,
            settings,
            metrics=metrics,
            clock=clock,
            wall_clock=wall_clock,
            tracer_provider=tracer_provider,
        )
        if settings.webhooks
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await auth.start()
        purger.start()
        prober.start()
        if deliverer is not None:
            deliverer.start()
        try:
            yield
        finally:
            if deliverer is not None:
                await deliverer.stop()
            await prober.stop()
            await purger.stop()
            await auth.stop()
            await database.dispose()

    type_base = problem_types.problem_type_base(settings.problem_base_url)
    # Each feature's router, in the order of the documentation.
    routers = (
        health.router,
        tenant_api.router,
        content_api.router,
        commerce_api.router,
        webhooks_api.router,
        problem_pages.router,
        admin_api.router,
        metrics_route.router,
    )
    app = FastAPI(
        title="RusTok",
        version=__version__,
        summary="Multi-tenant content and commerce service.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Served from the server's own assets (install_api_docs), or not at all.
        docs_url=None,
        redoc_url=None,
        # A path with a trailing slash is a 404, never a redirect built from the Host.
        redirect_slashes=False,
        **_NO_NATIVE_TELEMETRY,
        middleware=[
            Middleware(ObservabilityMiddleware, metrics=metrics, access_log=settings.access_log),
            Middleware(SecurityHeadersMiddleware),
            # A preflight is answered here, before any credential or tenant is looked at;
            # the problems answered inside carry the CORS headers too.
            *_cors(settings, routers),
            Middleware(ProblemMiddleware, type_base=type_base),
            # An anonymous request is refused before its body is read.
            Middleware(AuthMiddleware, auth=auth),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                max_json_depth=settings.max_json_depth,
                max_json_keys=settings.max_json_keys,
            ),
            Middleware(TenantMiddleware, resolver=resolver),
        ],
    )
    app.state.problem_type_base = type_base
    app.state.context = context
    app.state.database = database
    app.state.metrics = metrics
    app.state.idempotency_purger = purger
    app.state.deliverer = deliverer
    if settings.tracing:
        tracing.instrument(app, database.engine, provider=tracer_provider)
    install_problem_handlers(app)
    for router in routers:
        app.include_router(router)
    if settings.api_docs:
        install_api_docs(app)

    def openapi() -> dict[str, Any]:  # FastAPI's own signature
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            app.openapi_schema = document_security(
                document_app(
                    document,
                    tenant_header=settings.tenant_header,
                    exempt=EXEMPT_PATHS,
                    exempt_prefixes=EXEMPT_PREFIXES,
                    admin_named=(health.READY_PATH,),
                ),
                [route for router in routers for route in router.routes],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app


def _cors(settings: Settings, routers: Iterable[APIRouter]) -> list[Middleware]:
    """Starlette's CORS middleware for ``settings.cors_origins``, or none without them (no
    ``Access-Control-*`` header at all).

    The allowed methods are those of the ``/api`` routes; no cookie is ever allowed (the
    credential is the ``Authorization`` header).
    """
    if not settings.cors_origins:
        return []
    methods = {
        method
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith(API_PREFIX)
        for method in route.methods or ()
    }
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=sorted(methods),
            allow_headers=(*_CORS_REQUEST_HEADERS, settings.tenant_header),
            expose_headers=_CORS_EXPOSED_HEADERS,
        )
    ]


def _jwt_config(settings: Settings) -> JwtConfig | None:
    if settings.jwt_issuer is None or settings.jwt_audience is None:
        return None
    return JwtConfig(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
        public_key=settings.jwt_public_key,
        algorithms=settings.jwt_algorithms,
        tenant_claim=settings.jwt_tenant_claim,
        scopes_claim=settings.jwt_scopes_claim,
        leeway=settings.jwt_leeway,
        fetch_timeout=settings.db_query_timeout,
    )


def create_app_from_env() -> FastAPI:
    """`create_app` with settings from the environment (for ``uvicorn --factory``)."""
    return create_app(Settings())
