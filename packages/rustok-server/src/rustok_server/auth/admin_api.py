"""The admin API, ``/api/admin/tenants``: tenants, their keys and their rate limits.

Every route needs an admin key (scope ``admin``). A change takes effect on this server
at once (its tenant and key caches are dropped); other processes see it within a second
(the change counter).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Final

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.text import TEXT_PATTERN, check_holdable
from rustok_server.auth.guard import require
from rustok_server.auth.keys import RateLimit, write_rate_limit
from rustok_server.auth.scopes import ADMIN, Scope
from rustok_server.auth.service import Authentication
from rustok_server.auth.tenant_api import TenantOut
from rustok_server.context import ServerContext, get_context
from rustok_server.http.problems import problem_responses
from rustok_server.tenancy.repository import UNSET, Tenant

__all__ = ["router"]

router: Final[APIRouter] = APIRouter(
    prefix="/api/admin/tenants",
    tags=["admin"],
    dependencies=[require(ADMIN)],
    responses=problem_responses(401, 403, 429),
)
"""The routes of the admin API (``/api/admin/tenants``)."""
Context = Annotated[ServerContext, Depends(get_context)]
_Input = ConfigDict(extra="forbid")
# Names: free text every database and log line can hold (no NUL, no control characters).
_TEXT = {"pattern": TEXT_PATTERN}
_Name = Annotated[
    str, Field(max_length=200, json_schema_extra=_TEXT), AfterValidator(check_holdable)
]
_RequiredName = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra=_TEXT),
    AfterValidator(check_holdable),
]


class RateLimitIn(BaseModel):
    """A tenant's own rate limit (``0`` turns it off)."""

    model_config = _Input
    per_second: float = Field(ge=0)
    burst: int = Field(ge=0)


class TenantIn(BaseModel):
    """A new tenant."""

    model_config = _Input
    slug: str = Field(min_length=1, max_length=63)
    name: _RequiredName
    domain: str | None = Field(default=None, max_length=253)


class TenantPatch(BaseModel):
    """What to change of a tenant; absent fields stay. ``domain: null`` removes it;
    ``rate_limit: null`` returns it to the server's default."""

    model_config = _Input
    name: _RequiredName | None = None
    domain: str | None = Field(default=None, max_length=253)
    rate_limit: RateLimitIn | None = None


class TenantAdminOut(TenantOut):
    """A tenant as the platform sees it."""

    active: bool
    created_at: datetime
    updated_at: datetime
    rate_limit: RateLimitIn | None = Field(description="its own limit; null: the default")


class KeyIn(BaseModel):
    """A new key of a tenant."""

    model_config = _Input
    scopes: list[Scope] = Field(min_length=1)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    name: _Name = ""


class KeyOut(BaseModel):
    """A key, never its secret (read from an `ApiKey`'s attributes)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(from_attributes=True)
    id: str
    tenant_id: uuid.UUID | None
    scopes: list[str]
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewKeyOut(KeyOut):
    """A new key: ``key`` is shown this once and never again."""

    key: str


def _tenant_out(tenant: Tenant, auth: Authentication) -> TenantAdminOut:
    limit = auth.rate_limits.override(tenant.id)
    return TenantAdminOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        domain=tenant.domain,
        active=tenant.active,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        rate_limit=None
        if limit is None
        else RateLimitIn(per_second=limit.per_second, burst=limit.burst),
    )


@router.get("", summary="List tenants")
async def list_tenants(context: Context) -> list[TenantAdminOut]:
    """Every tenant, by slug."""
    tenants = await context.tenants.list(limit=10_000)
    return [_tenant_out(tenant, context.auth) for tenant in tenants]


@router.post("", status_code=201, summary="Create a tenant", responses=problem_responses(400, 409))
async def create_tenant(body: TenantIn, context: Context) -> TenantAdminOut:
    """A new, active tenant. A slug or domain already taken is a 409."""
    tenant = await context.tenants.create(body.slug, body.name, domain=body.domain)
    return _tenant_out(tenant, context.auth)


@router.get("/{slug}", summary="Show a tenant", responses=problem_responses(404))
async def show_tenant(slug: str, context: Context) -> TenantAdminOut:
    """One tenant, active or not."""
    return _tenant_out(await context.tenants.get(slug), context.auth)


@router.patch("/{slug}", summary="Change a tenant", responses=problem_responses(400, 404, 409))
async def update_tenant(slug: str, body: TenantPatch, context: Context) -> TenantAdminOut:
    """Rename it, change its domain, or set its own rate limit."""
    fields = body.model_fields_set
    domain = body.domain if "domain" in fields else UNSET
    also: Callable[[AsyncSession, Tenant], Awaitable[None]] | None = None
    if "rate_limit" in fields:
        limit = None if body.rate_limit is None else RateLimit(**body.rate_limit.model_dump())

        async def write_limit(session: AsyncSession, tenant: Tenant) -> None:
            await write_rate_limit(session, tenant.id, limit)

        also = write_limit

    # One transaction: the tenant, its limit and the change counter commit together.
    tenant = await context.tenants.update(slug, name=body.name, domain=domain, also=also)
    if also is not None:
        await context.auth.reload()  # this process applies the new limit at once
    return _tenant_out(tenant, context.auth)


@router.post("/{slug}/disable", summary="Disable a tenant", responses=problem_responses(404))
async def disable_tenant(slug: str, context: Context) -> TenantAdminOut:
    """Its keys and tokens stop working at once (other processes: within a second)."""
    tenant = await context.tenants.set_active(slug, False)
    return _tenant_out(tenant, context.auth)


@router.post("/{slug}/enable", summary="Enable a tenant", responses=problem_responses(404))
async def enable_tenant(slug: str, context: Context) -> TenantAdminOut:
    """Serve a disabled tenant again."""
    tenant = await context.tenants.set_active(slug, True)
    return _tenant_out(tenant, context.auth)


@router.get("/{slug}/keys", summary="List a tenant's keys", responses=problem_responses(404))
async def list_keys(slug: str, context: Context) -> list[KeyOut]:
    """Its keys, oldest first: ids, scopes, expiry and last use, never secrets."""
    return [KeyOut.model_validate(key) for key in await context.auth.keys.list(slug)]


@router.post(
    "/{slug}/keys",
    status_code=201,
    summary="Create a key for a tenant",
    responses=problem_responses(400, 404),
)
async def create_key(slug: str, body: KeyIn, context: Context) -> NewKeyOut:
    """A new key; ``key`` is its full text, shown in this response only."""
    expires = None if body.expires_in_days is None else timedelta(days=body.expires_in_days)
    key, token = await context.auth.keys.create(
        slug, [scope.value for scope in body.scopes], expires_in=expires, name=body.name
    )
    return NewKeyOut(**KeyOut.model_validate(key).model_dump(), key=token)


@router.delete("/{slug}/keys/{key_id}", summary="Revoke a key", responses=problem_responses(404))
async def revoke_key(slug: str, key_id: str, context: Context) -> KeyOut:
    """The key stops working at once (other processes: within a second); answers the
    revoked key. Revoking it again changes nothing."""
    tenant = await context.tenants.get(slug)
    key = await context.auth.keys.revoke(key_id, tenant_id=tenant.id)
    context.auth.verifier.forget(key_id)
    return KeyOut.model_validate(key)
