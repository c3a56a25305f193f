"""RusTok server: the multi-tenant FastAPI service.

from rustok_server import create_app, Settings, CurrentTenant, get_session
"""

from rustok_server.__about__ import __version__
from rustok_server.app import create_app, create_app_from_env
from rustok_server.commerce.repository import SqlOrderRepository
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.context import ServerContext, get_context
from rustok_server.db import Database, get_session
from rustok_server.demo_data import seed_demo_data
from rustok_server.errors import (
    ApiKeyNotFoundError,
    CredentialRequiredError,
    IdempotencyKeyReusedError,
    InvalidCredentialError,
    InvalidCursorError,
    InvalidIdempotencyKeyError,
    MalformedIfMatchError,
    PreconditionFailedError,
    RateLimitExceededError,
    RepeatedHeaderError,
    ScopeRequiredError,
    ServerError,
    TenantConflictError,
    TenantMismatchError,
    TenantNotFoundError,
    TenantRequiredError,
    TenantStoreUnavailableError,
)
from rustok_server.http.problems import (
    ProblemMiddleware,
    install_problem_handlers,
    problem_responses,
)
from rustok_server.settings import ResolutionSource, Settings
from rustok_server.tenancy.repository import (
    Tenant,
    TenantDirectory,
    TenantRepository,
)
from rustok_server.tenancy.resolution import (
    CurrentTenant,
    TenantMiddleware,
    TenantResolver,
    get_tenant,
)
from rustok_server.tenancy.tenant_cache import TenantCache, TenantCacheConfig, TenantCacheStats

__all__ = [
    "ApiKeyNotFoundError",
    "CredentialRequiredError",
    "CurrentTenant",
    "Database",
    "IdempotencyKeyReusedError",
    "InvalidCredentialError",
    "InvalidCursorError",
    "InvalidIdempotencyKeyError",
    "MalformedIfMatchError",
    "PreconditionFailedError",
    "ProblemMiddleware",
    "RateLimitExceededError",
    "RepeatedHeaderError",
    "ResolutionSource",
    "ScopeRequiredError",
    "ServerContext",
    "ServerError",
    "Settings",
    "SqlNodeRepository",
    "SqlOrderRepository",
    "Tenant",
    "TenantCache",
    "TenantCacheConfig",
    "TenantCacheStats",
    "TenantConflictError",
    "TenantDirectory",
    "TenantMiddleware",
    "TenantMismatchError",
    "TenantNotFoundError",
    "TenantRepository",
    "TenantRequiredError",
    "TenantResolver",
    "TenantStoreUnavailableError",
    "__version__",
    "create_app",
    "create_app_from_env",
    "get_context",
    "get_session",
    "get_tenant",
    "install_problem_handlers",
    "problem_responses",
    "seed_demo_data",
]
