"""The routes' security: `require` a scope, and the `CurrentPrincipal` dependency.

``dependencies=[require(Scope.CONTENT_READ)]`` on a route refuses an anonymous request
(401 with ``WWW-Authenticate: Bearer``), a credential without the scope (403 naming it)
and a tenant over its rate limit (429 with ``Retry-After`` and the ``RateLimit`` headers),
and declares the bearer scheme with the scope in the OpenAPI document.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import Depends, Request, Security
from fastapi.params import Security as SecurityParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from rustok_server.auth.principal import Principal
from rustok_server.errors import CredentialRequiredError, ScopeRequiredError

__all__ = ["BEARER_SCHEME", "Actor", "CurrentPrincipal", "get_actor", "get_principal", "require"]

BEARER_SCHEME: Final = "bearer"
"""The name of the security scheme in the OpenAPI document."""

_bearer = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    bearerFormat="rsk_<id>_<secret> API key, or a JWT of the configured issuer",
    description="An API key (`rsk_<id>_<secret>`) or, when configured, a JWT.",
    auto_error=False,
)


async def _authorize(
    request: Request,
    security_scopes: SecurityScopes,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise CredentialRequiredError()
    wanted = tuple(security_scopes.scopes)
    if wanted and not principal.has_any(wanted):
        raise ScopeRequiredError(wanted)
    tenant = request.scope["state"].get("tenant")
    tenant_id: uuid.UUID | None = getattr(tenant, "id", None)
    limits = request.app.state.context.auth.rate_limits
    limits.admit(tenant_id, str(tenant_id) if tenant_id is not None else principal.actor)
    return principal


def require(*scopes: str) -> SecurityParam:
    """A route dependency admitting credentials that hold any one of ``scopes``.

    Example:
        >>> dependency = require("content:read")
        >>> dependency.scopes
        ['content:read']
    """
    dependency: SecurityParam = Security(_authorize, scopes=list(scopes))
    return dependency


async def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified principal of this request.

    Raises:
        CredentialRequiredError: the request carries no credential (401).
    """
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise CredentialRequiredError()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""Annotate a route parameter with this to receive the principal."""


async def get_actor(request: Request) -> str | None:
    """FastAPI dependency: the actor of this request's changes (key id or ``jwt:<sub>``)."""
    principal = request.scope.get("state", {}).get("principal")
    return principal.actor if isinstance(principal, Principal) else None


Actor = Annotated[str | None, Depends(get_actor)]
"""Annotate a route parameter with this to receive the actor of its history rows."""
