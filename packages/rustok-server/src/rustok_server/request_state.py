"""What the middleware learn of one request, kept in its ASGI scope (``scope["state"]``,
Starlette's ``request.state``): one typed view of it, `request_state`, for every reader
and writer, so that a key's name and type are checked rather than repeated as strings.

Who writes what, in the order of the middleware: `ProblemMiddleware` the request id and the
problem type base; `AuthMiddleware` the principal (or the refusal of an address over its
failed authentications); `TenantMiddleware` the tenant; the guard marks the request as
admitted by the tenant's rate limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import HTTPConnection
from starlette.types import Scope

if TYPE_CHECKING:
    from rustok_server.auth.principal import Principal
    from rustok_server.errors import RateLimitExceededError
    from rustok_server.tenancy.repository import Tenant

__all__ = ["RequestState", "request_state"]


class RequestState(TypedDict, total=False):
    """The state of one request; a key is absent until its middleware ran."""

    request_id: str
    """The id of the request (its trace id with tracing on), in logs and problems."""
    problem_type_base: str
    """The prefix of problem ``type`` URIs for this request."""
    principal: Principal | None
    """Who sent the request: ``None`` without a (valid) credential."""
    refused_credential: RateLimitExceededError
    """The credential was not verified: its client address used up its failures."""
    rate_limit_admitted: bool
    """The tenant's rate limit admitted the request (it is counted once)."""
    tenant: Tenant | None
    """The tenant the request resolved to, ``None`` where it names none."""


def request_state(request: Scope | HTTPConnection) -> RequestState:
    """The state of ``request`` (an ASGI scope or a Starlette request), made on first use."""
    scope = request.scope if isinstance(request, HTTPConnection) else request
    state = scope.get("state")
    if state is None:
        scope["state"] = state = {}
    return cast(RequestState, state)
