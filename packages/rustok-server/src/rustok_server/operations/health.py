"""Health endpoints: ``/health/live`` (the process answers) and ``/health/ready``
(the database answers through the ``database`` breaker; ``degraded`` while the
configured Redis does not answer).

Health checks resolve no tenant: whatever an anonymous or tenant request names, the answer
is the same, and nothing is looked up for it. Only an admin key's readiness check reads
the tenant header, to show the tenant it resolves to."""

from __future__ import annotations

from dataclasses import asdict
from typing import Final, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue
from starlette.responses import Response

from rustok_core.error import ErrorKind, ProblemDetails
from rustok_core.resilience import CircuitBreaker
from rustok_server.auth.scopes import ADMIN
from rustok_server.context import ServerContext
from rustok_server.errors import DatabaseUnavailableError, RepeatedHeaderError
from rustok_server.http.problems import (
    REQUEST_ID_HEADER,
    problem_response,
    problem_responses,
    request_id,
)
from rustok_server.request_state import request_state
from rustok_server.scaleout import RedisLink
from rustok_server.tenancy.repository import Tenant
from rustok_server.tenancy.resolution import TenantResolver

__all__ = ["READY_PATH", "Liveness", "Readiness", "router"]

router: Final[APIRouter] = APIRouter(prefix="/health", tags=["health"])
"""``/health/live`` and ``/health/ready``."""

READY_PATH: Final = "/health/ready"
"""The readiness check: the one health path that reads the tenant header (admin keys only)."""


class Readiness(BaseModel):
    """What ``/health/ready`` answers when the database answers (the 503 problem carries
    the same checks as extension members).

    ``degraded`` still serves every request: only what the processes share through Redis
    is missing (each goes on with its own breakers and rate limits, and changes arrive
    through the database's change counter).
    """

    status: Literal["ready", "degraded"]
    reasons: list[str] | None = Field(
        default=None,
        description="why the server is degraded, e.g. `redis unreachable` (only then)",
    )
    redis: dict[str, JsonValue] | None = Field(
        default=None,
        description="status, the deployment's namespace, and while unreachable the reason "
        "and seconds since (with RUSTOK_REDIS_URL; admin keys only)",
    )
    database: dict[str, JsonValue] | None = Field(
        default=None, description="status, dialect (admin keys only)"
    )
    breakers: dict[str, dict[str, JsonValue]] | None = Field(
        default=None,
        description="per breaker: state, failure_count, retry_after, shared (on Redis) "
        "(admin keys only)",
    )
    tenant_cache: dict[str, JsonValue] | None = Field(
        default=None, description="the tenant cache's statistics (admin keys only)"
    )
    tenant: dict[str, str] | None = Field(
        default=None,
        description="id and slug of the tenant the tenant header names (admin keys only; "
        "the header is ignored for anyone else)",
    )


class Liveness(BaseModel):
    """What ``/health/live`` answers."""

    status: Literal["ok"]


@router.get("/live", summary="The process is up", response_model=Liveness)
async def live() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="The server can serve tenants",
    responses={
        200: {
            "model": Readiness,
            "description": "Ready, or degraded (still serving; `reasons` says what is "
            "missing, e.g. Redis).",
        },
        **problem_responses(503),
    },
)
async def ready(request: Request) -> Response:
    """Ping the database through the breaker; report breaker states and cache stats.

    ``degraded`` (200, with ``reasons``) while the configured Redis does not answer: what
    the last Redis calls and pings found, never a wait on Redis here. Anyone gets the
    status (and reasons) alone; an admin key (``Authorization: Bearer``) gets the checks
    too, and with a tenant header the tenant it resolves to (404 for an unknown or
    disabled one). Anyone else's tenant header is ignored. 503 (a problem document,
    carrying the checks for an admin) when the database does not answer.
    """
    context: ServerContext = request.app.state.context
    principal = request_state(request).get("principal")
    admin = principal is not None and ADMIN.value in principal.scopes
    # Resolved before the checks are taken, so that the cache statistics count it.
    tenant = await _named_tenant(request, context.resolver) if admin else None
    database_check: dict[str, object]
    try:
        await context.database.ping()  # through the breaker, within the read deadline
        database_check = {"status": "ok", "dialect": context.database.dialect}
    except DatabaseUnavailableError as exc:
        database_check = {
            "status": "unavailable",
            "reason": "circuit breaker open" if exc.breaker_open else "unreachable",
            "retry_after": exc.retry_after,
        }
    except Exception as exc:  # any driver error or timeout: not ready, never a 500
        database_check = {"status": "unavailable", "reason": type(exc).__name__}
    link = context.auth.redis
    reasons = [] if link is None or link.health.available else ["redis unreachable"]
    breakers = [context.breaker]
    if context.auth.tokens is not None:
        breakers.append(context.auth.tokens.breaker)
    checks: dict[str, object] = {
        "database": database_check,
        "breakers": {breaker.name: _breaker_check(breaker, link) for breaker in breakers},
        "tenant_cache": asdict(context.tenant_cache.stats()),
    }
    if link is not None:
        checks["redis"] = {**link.health.check(), "namespace": link.namespace}
    if not admin:
        checks = {}
    if tenant is not None:
        checks["tenant"] = {"id": str(tenant.id), "slug": tenant.slug}
    rid = request_id(request)
    if database_check["status"] == "ok":
        status: dict[str, object] = (
            {"status": "degraded", "reasons": reasons} if reasons else {"status": "ready"}
        )
        return JSONResponse({**status, **checks}, headers={REQUEST_ID_HEADER: rid})
    problem = ProblemDetails.for_kind(
        ErrorKind.EXTERNAL_SERVICE,
        "The database does not answer; the server cannot serve tenants it has not cached.",
        instance=request.url.path,
        trace_id=rid or None,
        code="NOT_READY",
    )
    extra = {"reasons": reasons, **checks} if reasons else checks
    document = ProblemDetails.model_validate({**problem.to_dict(), **extra}).with_retry_after(
        max(context.breaker.retry_after, 1.0)
    )
    return problem_response(document, headers={REQUEST_ID_HEADER: rid})


async def _named_tenant(request: Request, resolver: TenantResolver) -> Tenant | None:
    """The tenant the tenant header names (only the header: not the host, nor a default),
    also put in the request state for the access log; ``None`` without the header.

    Raises:
        RepeatedHeaderError: the header was sent more than once (400).
        InvalidTenantIdentifierError: a malformed identifier (400).
        TenantNotFoundError: an unknown or disabled tenant (404).
        TenantStoreUnavailableError: the store is failing and nothing is cached (503).
    """
    values = [value for name, value in request.scope["headers"] if name == resolver.header_key]
    if len(values) > 1:
        raise RepeatedHeaderError(resolver.header)
    tenant = await resolver.resolve(values[0] if values else None, None, required=False)
    request_state(request)["tenant"] = tenant
    return tenant


def _breaker_check(breaker: CircuitBreaker, link: RedisLink | None) -> dict[str, object]:
    stats = breaker.stats()
    return {
        "state": stats.state.value,
        "failure_count": stats.failure_count,
        "retry_after": breaker.retry_after,
        "shared": link is not None,
    }
