"""End to end: every error is an RFC 9457 problem carrying the request id; health and
OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import httpx
from api_fixtures import ApiKeys
from fastapi import FastAPI

from rustok_core.error import ErrorKind, RichError
from rustok_server import CurrentTenant, Tenant
from rustok_server.testing import LiveServer

ServerFactory = Callable[..., LiveServer]


def acme(api_keys: ApiKeys) -> dict[str, str]:
    """acme's tenant header and key."""
    return {"X-Tenant-ID": "acme", **api_keys.auth("acme")}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    for member in ("type", "title", "status", "detail", "instance"):
        assert member in body
    assert body["status"] == status
    assert body["trace_id"] == response.headers["x-request-id"]
    return body


def with_test_routes(server: LiveServer) -> LiveServer:
    app = cast(FastAPI, server.app)

    @app.get("/api/boom")
    async def boom(tenant: CurrentTenant) -> None:
        raise RuntimeError(f"secret internal state of {tenant.slug}: password=hunter2")

    @app.get("/api/conflict")
    async def conflict(tenant: CurrentTenant) -> None:
        raise RichError(ErrorKind.CONFLICT, "version 3 != 4", user_message="Stale version.")

    @app.get("/api/items")
    async def items(tenant: CurrentTenant, limit: int) -> dict[str, int]:
        return {"limit": limit}

    return server


async def test_client_request_id_is_echoed_and_used_as_trace_id(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        ok = await client.get("/api/tenant", headers={**acme(api_keys), "X-Request-ID": "req-42"})
        failed = await client.get(
            "/api/tenant",
            headers={"X-Tenant-ID": "nobody", "X-Request-ID": "req-43"},  # no key
        )
    assert ok.headers["x-request-id"] == "req-42"
    assert failed.headers["x-request-id"] == "req-43"
    assert assert_problem(failed, 401)["trace_id"] == "req-43"


async def test_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        plain = await client.get("/api/tenant", headers=acme(api_keys))
        unsafe = await client.get(
            "/api/tenant", headers={**acme(api_keys), "X-Request-ID": "a b<script>"}
        )
        again = await client.get("/api/tenant", headers=acme(api_keys))
    generated = {
        plain.headers["x-request-id"],
        unsafe.headers["x-request-id"],
        again.headers["x-request-id"],
    }
    assert len(generated) == 3
    assert all(len(value) == 32 for value in generated)


async def test_unhandled_exception_is_500_problem_without_internals(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = with_test_routes(start_server())
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/boom", headers=acme(api_keys))
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["code"] == "INTERNAL"


async def test_rich_error_in_a_route_keeps_its_status_and_user_message(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = with_test_routes(start_server())
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/conflict", headers=acme(api_keys))
    body = assert_problem(response, 409)
    assert body["detail"] == "Stale version."
    assert "version 3" not in response.text


async def test_request_validation_error_is_400_with_field_pointer(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = with_test_routes(start_server())
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/items", params={"limit": "many"}, headers=acme(api_keys))
    body = assert_problem(response, 400)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors[0]["pointer"] == "/query/limit"


async def test_unknown_route_and_wrong_method_are_problems(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        missing = await client.get("/api/nothing-here", headers=acme(api_keys))
        wrong = await client.delete("/api/tenant", headers=acme(api_keys))
    assert_problem(missing, 404)
    assert_problem(wrong, 405)
    assert wrong.headers["allow"] == "GET"


async def test_health_live_needs_no_tenant(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(tenant_resolution="header")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_ready_reports_database_breaker_cache_and_tenant(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        anonymous = await client.get("/health/ready")
        terse = await client.get("/health/ready", headers=acme(api_keys))
        admin = {"X-Tenant-ID": "acme", **api_keys.auth("admin")}
        response = await client.get("/health/ready", headers=admin)
        ignored = await client.get("/health/ready", headers={"X-Tenant-ID": "nobody"})
        unknown = await client.get(
            "/health/ready", headers={"X-Tenant-ID": "nobody", **api_keys.auth("admin")}
        )
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ready"}
    assert terse.json() == {"status": "ready"}  # details for admin keys only
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"]["status"] == "ok"
    assert body["breakers"]["database"]["state"] == "closed"
    assert body["tenant_cache"]["loads"] == 1
    assert body["tenant"] == {"id": str(tenants["acme"].id), "slug": "acme"}
    assert ignored.json() == {"status": "ready"}  # only an admin's header is read
    assert assert_problem(unknown, 404)["code"] == "TENANT_NOT_FOUND"


async def test_openapi_documents_problem_responses(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {"type", "title", "status", "detail", "instance"} <= set(
        schemas["ProblemDetails"]["properties"]
    )
    not_found = document["paths"]["/api/tenant"]["get"]["responses"]["404"]
    assert not_found["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetails"
    }
    assert "503" in document["paths"]["/health/ready"]["get"]["responses"]
