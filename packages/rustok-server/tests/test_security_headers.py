"""Security headers on every response, over real HTTP: nosniff everywhere, no-store on the
API, and no server banner."""

from __future__ import annotations

import httpx
from api_fixtures import ApiKeys, ServerFactory

from rustok_server.tenancy.repository import Tenant


async def test_responses_carry_nosniff_and_api_responses_no_store(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        live = await client.get("/health/live")
        api = await client.get("/api/tenant", headers=api_keys.auth("acme"))
        problem = await client.get("/api/tenant")  # no credential: a 401 problem
    for response in (live, api, problem):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
    assert "cache-control" not in live.headers
    assert api.headers["cache-control"] == "no-store"
    assert problem.status_code == 401
    assert problem.headers["cache-control"] == "no-store"


async def test_a_repeated_tenant_header_is_a_400(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    headers = [("X-Tenant-ID", "acme"), ("X-Tenant-ID", "globex"), *api_keys.auth("acme").items()]
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "REPEATED_HEADER"
