"""End to end, over HTTP against uvicorn, on SQLite and on PostgreSQL: which tenant a
request resolves to, and the problems for every way it can fail."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from rustok_server import ServerContext, Tenant
from rustok_server.testing import LiveServer, QueryCounter

ServerFactory = Callable[..., LiveServer]
RFC9457_MEMBERS = ("type", "title", "status", "detail", "instance")


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, object]:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    for member in RFC9457_MEMBERS:
        assert member in body, f"{member} missing from {body}"
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["trace_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code
    text = response.text
    for leak in ("Traceback", "SELECT", "sqlalchemy", "asyncpg", 'File "'):
        assert leak not in text
    return body


def context_of(server: LiveServer) -> ServerContext:
    context: ServerContext = server.app.state.context  # type: ignore[attr-defined]  # FastAPI app
    return context


async def get_tenant_slug(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/api/tenant", headers=headers)
    assert response.status_code == 200, response.text
    slug = response.json()["slug"]
    assert isinstance(slug, str)
    return slug


async def test_header_slug_resolves_tenant(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"X-Tenant-ID": "acme"})
    assert response.status_code == 200
    assert response.json() == {
        "id": str(tenants["acme"].id),
        "slug": "acme",
        "name": "Acme Corporation",
        "domain": "shop.acme.example",
    }


async def test_header_uuid_resolves_tenant_in_any_case(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        upper = str(tenants["globex"].id).upper()
        assert await get_tenant_slug(client, **{"X-Tenant-ID": upper}) == "globex"


async def test_host_resolves_own_domain_and_subdomain_of_base_domain(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(base_domain="rustok.example")
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await get_tenant_slug(client, Host="shop.acme.example") == "acme"
        assert await get_tenant_slug(client, Host="Globex.Rustok.Example:8080") == "globex"


async def test_default_tenant_answers_when_nothing_else_names_one(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(default_tenant="globex")
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await get_tenant_slug(client) == "globex"  # Host is 127.0.0.1: no tenant
        assert await get_tenant_slug(client, Host="unknown.example") == "globex"
        assert await get_tenant_slug(client, **{"X-Tenant-ID": "acme"}) == "acme"


async def test_header_only_resolution_ignores_host(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(tenant_resolution="header")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"Host": "shop.acme.example"})
    assert_problem(response, 400, "TENANT_REQUIRED")


async def test_unknown_host_is_404(start_server: ServerFactory, tenants: dict[str, Tenant]) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"Host": "nobody.example"})
    assert_problem(response, 404, "TENANT_NOT_FOUND")


@pytest.mark.parametrize(
    "identifier", ["nobody", "00000000-0000-4000-8000-000000000000", "initech"]
)
async def test_unknown_or_disabled_tenant_is_404(
    start_server: ServerFactory, tenants: dict[str, Tenant], identifier: str
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"X-Tenant-ID": identifier})
        again = await client.get("/api/tenant", headers={"X-Tenant-ID": identifier})
    assert_problem(response, 404, "TENANT_NOT_FOUND")
    assert_problem(again, 404, "TENANT_NOT_FOUND")
    assert context_of(server).tenant_cache.stats().loads == 1  # the answer was cached


MALFORMED: dict[str, bytes] = {
    "over-long": b"a" * 64,
    "reserved": b"admin",
    "path traversal": b"../etc/passwd",
    "percent-encoded NUL": b"%00",
    "cyrillic look-alike": "\u0430cme".encode(),
    "fullwidth look-alike": "\uff41\uff43\uff4d\uff45".encode(),
    "10 KB": b"a" * 10 * 1024,
    "empty": b"",
    "spaces inside": b"ac me",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_identifier_is_400_without_any_query(
    start_server: ServerFactory, tenants: dict[str, Tenant], raw: bytes
) -> None:
    server = start_server()
    counter = QueryCounter(context_of(server).database)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers=[(b"X-Tenant-ID", raw)])
    body = assert_problem(response, 400, "INVALID_TENANT_IDENTIFIER")
    assert "aaaaaaaaaa" * 20 not in str(body)  # the raw value is not echoed in full
    assert counter.count == 0
    assert context_of(server).tenant_cache.stats().misses == 0


async def test_malformed_host_is_400_without_any_query(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    counter = QueryCounter(context_of(server).database)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"Host": "bad_host..example"})
    assert_problem(response, 400, "INVALID_TENANT_IDENTIFIER")
    assert counter.count == 0


async def test_cache_hit_runs_no_query(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    counter = QueryCounter(context_of(server).database)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await get_tenant_slug(client, **{"X-Tenant-ID": "acme"})
        after_load = counter.count
        for _ in range(5):
            await get_tenant_slug(client, **{"X-Tenant-ID": "acme"})
    assert after_load >= 1
    assert counter.count == after_load


async def test_disabling_a_tenant_invalidates_its_cached_entries(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(base_domain="rustok.example")
    context = context_of(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await get_tenant_slug(client, **{"X-Tenant-ID": "acme"}) == "acme"
        assert await get_tenant_slug(client, Host="shop.acme.example") == "acme"
        await server.call(lambda: context.tenants.set_active("acme", False))
        by_header = await client.get("/api/tenant", headers={"X-Tenant-ID": "acme"})
        by_host = await client.get("/api/tenant", headers={"Host": "shop.acme.example"})
        assert_problem(by_header, 404, "TENANT_NOT_FOUND")
        assert_problem(by_host, 404, "TENANT_NOT_FOUND")
        await server.call(lambda: context.tenants.set_active("acme", True))
        assert await get_tenant_slug(client, **{"X-Tenant-ID": "acme"}) == "acme"


async def test_creating_a_tenant_replaces_a_cached_not_found(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    context = context_of(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        missing = await client.get("/api/tenant", headers={"X-Tenant-ID": "umbrella"})
        assert_problem(missing, 404)
        await server.call(lambda: context.tenants.create("umbrella", "Umbrella"))
        assert await get_tenant_slug(client, **{"X-Tenant-ID": "umbrella"}) == "umbrella"
