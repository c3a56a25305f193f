"""Which tenant a request is for: from the tenant header, the host name or a default.

Under ``/api`` the credential decides the tenant (`TenantResolver.resolve_for`): the
tenant header, or a ``<slug>.<base domain>`` host, may name it too and must then agree (a
403 otherwise, the same whether the named tenant exists or not); an anonymous or admin
request resolves no tenant (its route answers 401 or serves the platform). Nothing else
is resolved: no anonymous request makes the server look a tenant up, so no answer tells a
tenant that exists from one that does not. (An admin's readiness check may name a tenant
in the header: `rustok_server.operations.health` resolves it with `TenantResolver.resolve`.)

Identifiers are validated with `rustok_core.tenancy` before anything is looked
up, so a malformed one costs no query. Lookups go through the tenant cache,
whose loads go through the database breaker within the read deadline
(`rustok_server.db.guard`). The middleware is pure ASGI: a cache hit costs a dictionary lookup and
no await on anything slow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Final

from fastapi import Depends
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from rustok_core.resilience import CircuitBreaker
from rustok_core.tenancy import (
    IdentifierKind,
    InvalidTenantIdentifierError,
    RejectionReason,
    TenantIdentifier,
    parse_tenant_identifier,
    validate_host,
)
from rustok_server.errors import (
    RepeatedHeaderError,
    TenantMismatchError,
    TenantNotFoundError,
    TenantRequiredError,
    TenantStoreUnavailableError,
)
from rustok_server.observability.tracing import breaker_span
from rustok_server.request_state import request_state
from rustok_server.settings import ResolutionSource
from rustok_server.tenancy.repository import Tenant
from rustok_server.tenancy.tenant_cache import TenantCache

__all__ = [
    "API_PREFIX",
    "EXEMPT_PATHS",
    "EXEMPT_PREFIXES",
    "CurrentTenant",
    "TenantMiddleware",
    "TenantResolver",
    "get_tenant",
    "guarded_loader",
]

EXEMPT_PATHS: Final = ("/openapi.json", "/docs", "/redoc", "/metrics")
"""Paths that need no tenant (the API's documentation, the admins' metrics)."""
EXEMPT_PREFIXES: Final = ("/problems/", "/api/admin/", "/health/", "/docs/")
"""Paths under these prefixes need no tenant either: the problem type pages, the admin
API, whose key belongs to no tenant and names the tenants it acts on in the path, the
health checks, and the documentation's assets."""
API_PREFIX: Final = "/api/"
"""Paths under this prefix are served for the tenant of their credential."""

# Longer than any valid identifier or host name: refused before decoding.
_MAX_RAW_IDENTIFIER: Final = 512
# Most distinct valid header values remembered as parsed (then the memo starts over).
_PARSED_CAPACITY: Final = 10_000


def guarded_loader(
    find: Callable[[TenantIdentifier], Awaitable[Tenant | None]],
    breaker: CircuitBreaker,
) -> Callable[[TenantIdentifier], Awaitable[Tenant | None]]:
    """A tenant query as `TenantCache` loads it: with tracing on, each load is a span
    with the database breaker's name, state and outcome (the database runs the query
    through that breaker, within the read deadline).

    A "not found" is a ``None`` result, so it never counts as a failure.
    """

    async def load(identifier: TenantIdentifier) -> Tenant | None:
        with breaker_span(breaker.name, breaker.state.value):
            return await find(identifier)

    return load


class TenantResolver:
    """Finds the tenant of a request from its raw header values.

    Args:
        cache: the tenant cache (its loader queries the database).
        breaker: the breaker the cache's loads go through (for ``Retry-After``).
        sources: the sources to try, in order.
        header: the tenant header's name.
        base_domain: hosts ``<slug>.<base_domain>`` resolve by slug.
        default_tenant: UUID or slug used when no other source names a tenant.

    Raises:
        InvalidTenantIdentifierError: ``default_tenant`` or ``base_domain`` is malformed.
    """

    def __init__(
        self,
        cache: TenantCache[TenantIdentifier, Tenant],
        breaker: CircuitBreaker,
        *,
        sources: Iterable[ResolutionSource],
        header: str = "X-Tenant-ID",
        base_domain: str | None = None,
        default_tenant: str | None = None,
    ) -> None:
        self.cache = cache
        self.breaker = breaker
        self.sources: tuple[ResolutionSource, ...] = tuple(sources)
        self.header = header
        self.header_key: bytes = header.lower().encode("latin-1")
        self._use_header = ResolutionSource.HEADER in self.sources
        self._use_host = ResolutionSource.HOST in self.sources
        self.base_suffix: str | None = "." + validate_host(base_domain) if base_domain else None
        self.default: TenantIdentifier | None = (
            parse_tenant_identifier(default_tenant) if default_tenant else None
        )
        # Valid header values already parsed: parsing is pure, and costs more than a hit.
        self._parsed: dict[bytes, TenantIdentifier] = {}

    async def resolve(
        self, header: bytes | None, host: bytes | None, *, required: bool = True
    ) -> Tenant | None:
        """The tenant named by the raw tenant header or Host header, or the default.

        The tenant header, when sent, decides alone. A host that names no tenant
        falls through to the next source.

        Args:
            header: raw value of the tenant header, if sent.
            host: raw value of the Host header, if sent.
            required: when false, only the tenant header is consulted and ``None``
                is returned without it (an admin's readiness check).

        Raises:
            InvalidTenantIdentifierError: a malformed identifier (400; nothing looked up).
            TenantNotFoundError: unknown or disabled tenant (404).
            TenantRequiredError: nothing names a tenant (400).
            TenantStoreUnavailableError: the store is failing and no stale entry exists (503).
        """
        if header is not None and self._use_header:
            identifier = self._parse_header(header)
            return self._active(await self._lookup(identifier), identifier)
        if not required:
            return None
        for source in self.sources:
            if source is ResolutionSource.HOST:
                if host is None:
                    continue
                by_host = self._host_identifier(_decode(host, IdentifierKind.HOST))
                if by_host is None:
                    continue
                tenant = await self._lookup(by_host)
                if tenant is not None:
                    return self._active(tenant, by_host)
            elif source is ResolutionSource.DEFAULT and self.default is not None:
                return self._active(await self._lookup(self.default), self.default)
        if self._use_host and host is not None:
            by_host = self._host_identifier(_decode(host, IdentifierKind.HOST))
            if by_host is not None:
                raise TenantNotFoundError(by_host.value)
        raise TenantRequiredError(self.header)

    async def resolve_for(
        self, credential: TenantIdentifier, header: bytes | None, host: bytes | None
    ) -> Tenant:
        """The tenant of a credential, checked against what the request names.

        The tenant header, or a host ``<slug>.<base domain>``, may name the tenant too;
        naming another one is a 403 whether that tenant exists or not. A host that is
        not a subdomain of the base domain is not compared: any name may point here.

        Raises:
            InvalidTenantIdentifierError: a malformed tenant header (400).
            TenantMismatchError: the header or host names another tenant (403).
            TenantNotFoundError: the credential's tenant is gone or disabled (404).
            TenantStoreUnavailableError: the store is failing and nothing is cached (503).
        """
        named: TenantIdentifier | None = None
        if header is not None and self._use_header:
            named = self._parse_header(header)  # a malformed one costs no lookup
        elif host is not None and self._use_host and self.base_suffix is not None:
            by_host = self._host_identifier(_decode(host, IdentifierKind.HOST))
            if by_host is not None and by_host.kind is IdentifierKind.SLUG:
                named = by_host
        tenant = self._active(await self._lookup(credential), credential)
        if named is not None and named not in tenant.identifiers():
            raise TenantMismatchError()
        return tenant

    def _parse_header(self, header: bytes) -> TenantIdentifier:
        identifier = self._parsed.get(header)
        if identifier is None:
            identifier = parse_tenant_identifier(_decode(header, IdentifierKind.SLUG))
            if len(self._parsed) >= _PARSED_CAPACITY:
                self._parsed.clear()
            self._parsed[header] = identifier
        return identifier

    def _host_identifier(self, raw: str) -> TenantIdentifier | None:
        if raw.startswith("["):
            return None  # an IPv6 literal names no tenant
        host = validate_host(raw)
        if host[-1:].isdigit() and _is_ipv4(host):
            return None  # neither does an IPv4 address
        suffix = self.base_suffix
        if suffix is not None and host.endswith(suffix):
            label = host[: -len(suffix)]
            if "." not in label:
                return TenantIdentifier(IdentifierKind.SLUG, label)
        return TenantIdentifier(IdentifierKind.HOST, host)

    async def _lookup(self, identifier: TenantIdentifier) -> Tenant | None:
        found, tenant = self.cache.get_fresh(identifier)
        if found:
            return tenant
        try:
            return await self.cache.get(identifier)
        except Exception as exc:
            retry_after = max(
                float(getattr(exc, "retry_after", 0.0)), self.breaker.retry_after, 1.0
            )
            raise TenantStoreUnavailableError(identifier.value, retry_after) from exc

    @staticmethod
    def _active(tenant: Tenant | None, identifier: TenantIdentifier) -> Tenant:
        if tenant is None or not tenant.active:
            raise TenantNotFoundError(identifier.value)
        return tenant


def _decode(raw: bytes, kind: IdentifierKind) -> str:
    if len(raw) > _MAX_RAW_IDENTIFIER:
        # Refused before decoding or validating: a 10 KB header costs nothing more.
        shown = raw[:_MAX_RAW_IDENTIFIER].decode("latin-1")
        raise InvalidTenantIdentifierError(RejectionReason.TOO_LONG, kind, shown)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


class TenantMiddleware:
    """Pure ASGI middleware resolving the tenant of every ``/api`` request.

    The tenant is put in the request state (read it with `get_tenant`). Paths under
    ``/api`` are resolved for the request's credential (the ``principal`` that
    ``AuthMiddleware`` put in the state), or not at all without one: the route then
    answers 401, or a path that no route serves 404, whatever the request names. A
    repeated tenant header is a 400. Exempt paths (the admin API) and every path outside
    ``/api`` (health checks, documentation, problem pages, unknown paths) resolve no
    tenant and read no tenant header. Errors are raised as `RichError` for
    `ProblemMiddleware` to answer.

    Args:
        app: the inner application.
        resolver: the resolver.
        exempt: exact paths that need no tenant.
        exempt_prefixes: path prefixes that need no tenant.
    """

    def __init__(
        self,
        app: ASGIApp,
        resolver: TenantResolver,
        exempt: Iterable[str] = EXEMPT_PATHS,
        exempt_prefixes: tuple[str, ...] = EXEMPT_PREFIXES,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.exempt: frozenset[str] = frozenset(exempt)
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(API_PREFIX)
            or path in self.exempt
            or path.startswith(self.exempt_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        header_key = self.resolver.header_key
        header: bytes | None = None
        host: bytes | None = None
        for name, value in scope["headers"]:
            if name == header_key:
                if header is not None:  # which one would be meant? neither is guessed
                    raise RepeatedHeaderError(self.resolver.header)
                header = value
            elif name == b"host":
                host = value
        state = request_state(scope)
        tenant: Tenant | None = None
        principal = state.get("principal")
        credential = None if principal is None else principal.tenant
        if credential is not None:
            tenant = await self.resolver.resolve_for(credential, header, host)
        state["tenant"] = tenant
        await self.app(scope, receive, send)


async def get_tenant(request: Request) -> Tenant:
    """FastAPI dependency: the tenant of this request.

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread.

    Raises:
        TenantRequiredError: the route is not tenant-resolved, or no tenant was named.
    """
    tenant = request_state(request).get("tenant")
    if tenant is None:
        raise TenantRequiredError(request.app.state.context.resolver.header)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(get_tenant)]
"""Annotate a route parameter with this to receive the resolved tenant."""
