"""The routes' security: `require` a scope, and the `CurrentPrincipal` dependency.

``dependencies=[require(Scope.CONTENT_READ)]`` on a route refuses an anonymous request
(401 with ``WWW-Authenticate: Bearer``), a credential without the scope (403 naming it)
and a tenant over its rate limit (429 with ``Retry-After`` and the ``RateLimit`` headers),
and declares the bearer scheme with the scope in the OpenAPI document.

The checks (`authorize`) run once the route is known and before its body is read: FastAPI
reads and parses a body before it solves the dependencies, so `AuthMiddleware` runs them
when the route first asks for its body (`route_requirements` names what the route
requires), and the dependency then finds the token taken; a route without a body runs them
in the dependency. Either way the same requests are refused, in the same order (401, 403,
then 429), the tenant's token is taken once per request, and a refused request's body is
never read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from rustok_server.auth.principal import Principal
from rustok_server.errors import CredentialRequiredError, ScopeRequiredError
from rustok_server.request_state import RequestState, request_state

if TYPE_CHECKING:
    from rustok_server.auth.rate_limits import TenantRateLimits

__all__ = [
    "BEARER_SCHEME",
    "Actor",
    "CurrentPrincipal",
    "authorize",
    "get_actor",
    "get_principal",
    "require",
    "required_scopes",
    "route_requirements",
]

BEARER_SCHEME: Final = "bearer"
"""The name of the security scheme in the OpenAPI document."""


def authorize(state: RequestState, scopes: tuple[str, ...], limits: TenantRateLimits) -> Principal:
    """The request's principal, if it holds one of ``scopes`` (any principal for none) and
    its tenant (or admin key) is under its rate limit; the limit's token is taken once per
    request, however often this runs.

    Args:
        state: the request state (``principal`` and ``tenant`` set by the middleware).
        scopes: the scopes any one of which the route accepts.
        limits: the server's rate limits.

    Raises:
        CredentialRequiredError: no credential (401).
        AuthFailureLimitError: the credential was not verified: its client address used
            up its failed authentications (429).
        ScopeRequiredError: none of ``scopes`` (403).
        RateLimitExceededError: the tenant's bucket is empty (429).
    """
    principal = _principal(state)
    if scopes and not principal.has_any(scopes):
        raise ScopeRequiredError(scopes)
    if not state.get("rate_limit_admitted"):
        tenant = state.get("tenant")
        tenant_id = None if tenant is None else tenant.id
        limits.admit(tenant_id, str(tenant_id) if tenant_id is not None else principal.actor)
        state["rate_limit_admitted"] = True
    return principal


class _Authorize:
    """The dependency `require` returns: one plain callable, no sub-dependencies.

    FastAPI's own ``Security(..., scopes=)`` with an ``HTTPBearer`` sub-dependency
    would document the scheme by itself, but resolving the two extra dependencies
    costs about 15% of a tenant-resolved read (measured in process: 260 us to
    221 us per ``GET /api/content/nodes/{id}``); the middleware has verified the
    credential already. `rustok_server.auth.openapi.document_security` declares the
    scheme and the scopes from `required_scopes` instead.
    """

    __slots__ = ("scopes",)

    def __init__(self, scopes: tuple[str, ...]) -> None:
        self.scopes = scopes

    async def __call__(self, request: Request) -> Principal:
        state = request_state(request)
        return authorize(state, self.scopes, request.app.state.context.auth.rate_limits)


def require(*scopes: str) -> DependsParam:
    """A route dependency admitting credentials that hold any one of ``scopes``.

    Examples:
        >>> dependency = require("content:read")
        >>> dependency.dependency.scopes
        ('content:read',)
    """
    dependency: DependsParam = Depends(_Authorize(scopes))
    return dependency


def required_scopes(route: APIRoute) -> tuple[str, ...] | None:
    """The scopes ``route`` requires through `require`, or ``None`` if it is not secured."""

    def walk(dependant: Dependant) -> tuple[str, ...] | None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, _Authorize):
                return sub.call.scopes
            found = walk(sub)
            if found is not None:
                return found
        return None

    return walk(route.dependant)


def route_requirements(route: object) -> tuple[tuple[str, ...], ...]:
    """The scopes of every `require` of ``route`` (any route object; none for a route that
    is not a FastAPI route or not secured), in the order FastAPI solves them."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return ()
    found: list[tuple[str, ...]] = []

    def walk(dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, _Authorize):
                found.append(sub.call.scopes)
            else:
                walk(sub)

    walk(dependant)
    return tuple(found)


async def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified principal of this request.

    Raises:
        CredentialRequiredError: the request carries no credential (401).
        AuthFailureLimitError: its credential was not verified: its client address used
            up its failed authentications (429).
    """
    return _principal(request_state(request))


def _principal(state: RequestState) -> Principal:
    """The principal of a request; or the 429 of a credential that was not verified (its
    client address used up its failed authentications) on a path where the middleware let
    it pass anonymous; or a 401."""
    principal = state.get("principal")
    if principal is None:
        refused = state.get("refused_credential")
        if refused is not None:
            raise refused
        raise CredentialRequiredError()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""Annotate a route parameter with this to receive the principal."""


async def get_actor(request: Request) -> str | None:
    """FastAPI dependency: the actor of this request's changes (key id or ``jwt:<sub>``)."""
    principal = request_state(request).get("principal")
    return None if principal is None else principal.actor


Actor = Annotated[str | None, Depends(get_actor)]
"""Annotate a route parameter with this to receive the actor of its history rows."""
