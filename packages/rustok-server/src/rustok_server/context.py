"""What one running server holds: settings, database, breaker, tenant cache, resolver,
authentication."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from rustok_core.resilience import CircuitBreaker
from rustok_core.tenancy import TenantIdentifier
from rustok_server.auth.service import Authentication
from rustok_server.db import Database
from rustok_server.settings import Settings
from rustok_server.tenancy.repository import Tenant, TenantDirectory
from rustok_server.tenancy.resolution import TenantResolver
from rustok_server.tenancy.tenant_cache import TenantCache

__all__ = ["ServerContext", "get_context"]


@dataclass(frozen=True, slots=True)
class ServerContext:
    """The parts of one server, built by `create_app` and kept in ``app.state.context``.

    Attributes:
        settings: the settings the server was built from.
        database: the database engine and session factory.
        breaker: the ``database`` circuit breaker every statement goes through.
        tenant_cache: the tenant cache.
        tenants: tenant administration that keeps the cache in step.
        resolver: finds the tenant of a request.
        auth: key and token verification, rate limits, the change watcher.
    """

    settings: Settings
    database: Database
    breaker: CircuitBreaker
    tenant_cache: TenantCache[TenantIdentifier, Tenant]
    tenants: TenantDirectory
    resolver: TenantResolver
    auth: Authentication


async def get_context(request: Request) -> ServerContext:
    """FastAPI dependency: the context of the server handling ``request``."""
    context: ServerContext = request.app.state.context
    return context
