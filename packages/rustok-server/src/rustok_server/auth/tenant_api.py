"""``GET /api/tenant``: the tenant a request resolved to (a tenant-resolved read)."""

from __future__ import annotations

import uuid
from typing import Final

from fastapi import APIRouter
from pydantic import BaseModel

from rustok_server.auth.guard import require
from rustok_server.auth.scopes import TENANT_SCOPES
from rustok_server.http.problems import problem_responses
from rustok_server.tenancy.resolution import CurrentTenant

__all__ = ["TenantOut", "router"]

router: Final[APIRouter] = APIRouter(prefix="/api", tags=["tenant"])
"""``GET /api/tenant``."""


class TenantOut(BaseModel):
    """What a client may see of its own tenant."""

    id: uuid.UUID
    slug: str
    name: str
    domain: str | None


@router.get(
    "/tenant",
    dependencies=[require(*TENANT_SCOPES)],
    summary="The tenant of this request",
    responses=problem_responses(400, 404, 503),
)
async def current_tenant(tenant: CurrentTenant) -> TenantOut:
    """The tenant of the request's credential (any tenant scope will do)."""
    return TenantOut(id=tenant.id, slug=tenant.slug, name=tenant.name, domain=tenant.domain)
