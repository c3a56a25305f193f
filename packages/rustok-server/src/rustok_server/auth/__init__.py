"""Authentication and authorization: API keys, admin keys, JWT bearer tokens, scopes,
per-tenant rate limits and the admin API.

    from rustok_server.auth import KeyDirectory, Scope, require
"""

from rustok_server.auth.guard import BEARER_SCHEME, CurrentPrincipal, get_actor, require
from rustok_server.auth.keys import ApiKey, KeyDirectory, RateLimit, hash_secret, parse_key
from rustok_server.auth.middleware import AuthMiddleware
from rustok_server.auth.principal import Principal
from rustok_server.auth.rate_limits import TenantRateLimits
from rustok_server.auth.scopes import ADMIN, TENANT_SCOPES, Scope
from rustok_server.auth.service import Authentication
from rustok_server.auth.tokens import JwtConfig, JwtVerifier
from rustok_server.auth.verification import KeyVerifier
from rustok_server.db.changes import ChangeFeed, ChangeWatcher, DatabaseChangeFeed

__all__ = [
    "ADMIN",
    "BEARER_SCHEME",
    "TENANT_SCOPES",
    "ApiKey",
    "AuthMiddleware",
    "Authentication",
    "ChangeFeed",
    "ChangeWatcher",
    "CurrentPrincipal",
    "DatabaseChangeFeed",
    "JwtConfig",
    "JwtVerifier",
    "KeyDirectory",
    "KeyVerifier",
    "Principal",
    "RateLimit",
    "Scope",
    "TenantRateLimits",
    "get_actor",
    "hash_secret",
    "parse_key",
    "require",
]
