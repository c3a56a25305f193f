"""End to end, over HTTP against uvicorn, on SQLite and on PostgreSQL: which tenant a
request resolves to (under /api the credential's; the header or host may name it too and
must then agree), and the problems for every way it can fail."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from api_fixtures import ApiKeys

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


async def get_tenant_slug(
    client: httpx.AsyncClient, api_keys: ApiKeys, key: str, **headers: str
) -> str:
    response = await client.get("/api/tenant", headers={**api_keys.auth(key), **headers})
    assert response.status_code == 200, response.text
    slug = response.json()["slug"]
    assert isinstance(slug, str)
    return slug


async def test_the_key_decides_the_tenant_and_the_header_may_name_it_too(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(
            "/api/tenant", headers={"X-Tenant-ID": "acme", **api_keys.auth("acme")}
        )
        assert await get_tenant_slug(client, api_keys, "acme") == "acme"
    assert response.status_code == 200
    assert response.json() == {
        "id": str(tenants["acme"].id),
        "slug": "acme",
        "name": "Acme Corporation",
        "domain": "shop.acme.example",
    }


async def test_header_uuid_names_the_tenant_in_any_case(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        upper = str(tenants["globex"].id).upper()
        assert (
            await get_tenant_slug(client, api_keys, "globex", **{"X-Tenant-ID": upper}) == "globex"
        )


async def test_a_host_under_the_base_domain_must_agree_and_other_hosts_name_nothing(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(base_domain="rustok.example")
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await get_tenant_slug(client, api_keys, "acme", Host="shop.acme.example") == "acme"
        assert (
            await get_tenant_slug(client, api_keys, "globex", Host="Globex.Rustok.Example:8080")
            == "globex"
        )
        assert await get_tenant_slug(client, api_keys, "acme", Host="unknown.example") == "acme"
        other = await client.get(
            "/api/tenant", headers={"Host": "globex.rustok.example", **api_keys.auth("acme")}
        )
        missing = await client.get(
            "/api/tenant", headers={"Host": "nobody.rustok.example", **api_keys.auth("acme")}
        )
    assert_problem(other, 403, "TENANT_FORBIDDEN")
    assert_problem(missing, 403, "TENANT_FORBIDDEN")


async def test_an_anonymous_api_request_is_401_with_a_bearer_challenge(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers={"X-Tenant-ID": "acme"})
    assert_problem(response, 401, "CREDENTIAL_REQUIRED")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "identifier", ["nobody", "00000000-0000-4000-8000-000000000000", "initech", "globex"]
)
async def test_naming_another_tenant_is_the_same_403_whether_it_exists_or_not(
    start_server: ServerFactory, tenants: dict[str, Tenant], identifier: str, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        headers = {"X-Tenant-ID": identifier, **api_keys.auth("acme")}
        response = await client.get("/api/tenant", headers=headers)
        again = await client.get("/api/tenant", headers=headers)
    first = assert_problem(response, 403, "TENANT_FORBIDDEN")
    assert_problem(again, 403, "TENANT_FORBIDDEN")
    assert first["detail"] == "This credential is not valid for the tenant the request names."
    assert context_of(server).tenant_cache.stats().loads == 1  # the key's tenant only


async def test_a_key_of_a_disabled_tenant_is_404(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers=api_keys.auth("initech"))
    assert_problem(response, 404, "TENANT_NOT_FOUND")


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


async def _warm(server: LiveServer, client: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    """One request with acme's key, and its last-used write finished."""
    await get_tenant_slug(client, api_keys, "acme")
    await server.call(context_of(server).auth.verifier.close)


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_identifier_is_400_without_any_query(
    start_server: ServerFactory, tenants: dict[str, Tenant], raw: bytes, api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        await _warm(server, client, api_keys)
        misses = context_of(server).tenant_cache.stats().misses
        counter = QueryCounter(context_of(server).database)
        response = await client.get(
            "/api/tenant",
            headers=[
                (b"X-Tenant-ID", raw),
                *((k.encode(), v.encode()) for k, v in api_keys.auth("acme").items()),
            ],
        )
    body = assert_problem(response, 400, "INVALID_TENANT_IDENTIFIER")
    assert "aaaaaaaaaa" * 20 not in str(body)  # the raw value is not echoed in full
    assert counter.count == 0
    assert context_of(server).tenant_cache.stats().misses == misses


async def test_malformed_host_is_400_without_any_query(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(base_domain="rustok.example")
    async with httpx.AsyncClient(base_url=server.url) as client:
        await _warm(server, client, api_keys)
        counter = QueryCounter(context_of(server).database)
        response = await client.get(
            "/api/tenant", headers={"Host": "bad_host..example", **api_keys.auth("acme")}
        )
    assert_problem(response, 400, "INVALID_TENANT_IDENTIFIER")
    assert counter.count == 0


async def test_cache_hit_runs_no_query(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        await _warm(server, client, api_keys)
        counter = QueryCounter(context_of(server).database)
        for _ in range(5):
            await get_tenant_slug(client, api_keys, "acme", **{"X-Tenant-ID": "acme"})
    assert counter.count == 0


async def test_disabling_a_tenant_invalidates_its_cached_entries(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    context = context_of(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await get_tenant_slug(client, api_keys, "acme", **{"X-Tenant-ID": "acme"}) == "acme"
        await server.call(lambda: context.tenants.set_active("acme", False))
        refused = await client.get("/api/tenant", headers=api_keys.auth("acme"))
        assert_problem(refused, 404, "TENANT_NOT_FOUND")
        await server.call(lambda: context.tenants.set_active("acme", True))
        assert await get_tenant_slug(client, api_keys, "acme") == "acme"


async def test_creating_a_tenant_replaces_a_cached_not_found(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    context = context_of(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        # An admin's readiness check is the one request outside /api that names a tenant.
        admin = {"X-Tenant-ID": "umbrella", **api_keys.auth("admin")}
        missing = await client.get("/health/ready", headers=admin)
        assert_problem(missing, 404)
        await server.call(lambda: context.tenants.create("umbrella", "Umbrella"))
        ready = await client.get("/health/ready", headers=admin)
        assert ready.json()["tenant"]["slug"] == "umbrella"
