"""The OpenAPI document declares what every route returns, every header it reads and every
problem it can answer; requests that provoke those problems get only declared statuses."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from api_fixtures import ApiKeys, ServerFactory, assert_problem

from rustok_server import Settings, Tenant, create_app

Json = dict[str, Any]
PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
METHODS = ("get", "post", "put", "patch", "delete")


def _document(**settings: Any) -> Json:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", **settings))
    document: Json = app.openapi()
    return document


def _operations(document: Json) -> list[tuple[str, str, Json]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _headers(operation: Json) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


def _declared(operation: Json) -> set[int]:
    return {int(status) for status in operation["responses"]}


def test_every_route_declares_the_json_it_returns() -> None:
    for method, path, operation in _operations(_document()):
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert len(success) == 1, (method, path)
        schema = operation["responses"][success[0]]["content"]["application/json"]["schema"]
        assert schema, f"{method} {path} declares no schema for {success[0]}"


def test_every_problem_is_declared_as_problem_json() -> None:
    document = _document()
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                method,
                path,
                status,
            )
            assert 500 in _declared(operation)
    assert "HTTPValidationError" not in str(document)


def test_every_route_declares_the_tenant_header_under_its_configured_name() -> None:
    for method, path, operation in _operations(_document(tenant_header="X-Org")):
        headers = _headers(operation)
        if path.startswith("/api/admin/"):  # the admin key and the path name the tenant
            assert not {"X-Org", "X-Tenant-ID"} & headers, (method, path)
            continue
        if path.startswith("/problems/") or path == "/health/live":  # no tenant needed
            assert headers == {"X-Request-ID"}
            continue
        assert {"X-Org", "X-Request-ID"} <= headers, (method, path)
        assert "X-Tenant-ID" not in headers
        assert {400, 404, 503} <= _declared(operation), (method, path)


def test_changes_declare_the_headers_they_read() -> None:
    document = _document()
    for method, path, operation in _operations(document):
        # Entity changes (the admin API's tenant changes take no If-Match).
        if method in ("post", "patch") and "{" in path and not path.startswith("/api/admin/"):
            assert "If-Match" in _headers(operation), (method, path)
            assert 412 in _declared(operation)
    create = document["paths"]["/api/commerce/orders"]["post"]
    pay = document["paths"]["/api/commerce/orders/{order_id}/pay"]["post"]
    assert "Idempotency-Key" in _headers(create) & _headers(pay)


def test_operation_ids_are_the_short_names_of_the_operations() -> None:
    ids = {(method, path): op["operationId"] for method, path, op in _operations(_document())}
    assert ids[("post", "/api/commerce/orders")] == "create_order"
    assert ids[("post", "/api/commerce/orders/{order_id}/pay")] == "pay_order"
    assert ids[("post", "/api/content/nodes/{node_id}/publish")] == "publish_node"
    assert ids[("get", "/api/content/nodes")] == "list_nodes"
    assert ids[("get", "/api/tenant")] == "get_tenant"
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in ids.values()), ids
    assert len(set(ids.values())) == len(ids)


def test_an_optional_body_is_the_model_and_not_required() -> None:
    operation = _document()["paths"]["/api/commerce/orders/{order_id}/confirm"]["post"]
    body = operation["requestBody"]
    assert not body.get("required", False)
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ConfirmOrderInput"}


def test_the_spec_refuses_what_the_server_refuses() -> None:
    document = _document()
    listing = document["paths"]["/api/commerce/orders"]["get"]
    (cursor,) = [p["schema"] for p in listing["parameters"] if p["name"] == "cursor"]
    assert cursor["pattern"] == "^[A-Za-z0-9_-]{1,200}$"
    assert cursor["maxLength"] == 200
    schemas = document["components"]["schemas"]
    assert schemas["CreateOrderInput"]["properties"]["amount"]["pattern"].startswith("^-?[0-9]")
    assert "pattern" in schemas["CreateNodeInput"]["properties"]["title"]
    pay = document["paths"]["/api/commerce/orders/{order_id}/pay"]["post"]
    header_schemas = {p["name"]: p["schema"] for p in pay["parameters"] if p["in"] == "header"}
    assert header_schemas["Idempotency-Key"]["pattern"] == "^[!-~]{1,255}$"
    assert "pattern" in header_schemas["If-Match"]


def test_every_operation_declares_400_413_and_500() -> None:
    for method, path, operation in _operations(_document()):
        assert {413, 500} <= _declared(operation), (method, path)
        # A 400 wherever something can be malformed: a parameter (a header included, the
        # tenant header first) or a body. Only the admin API's tenant list and the liveness
        # check take nothing.
        if (method, path) not in {("get", "/api/admin/tenants"), ("get", "/health/live")}:
            assert 400 in _declared(operation), (method, path)
        else:
            assert 400 not in _declared(operation)


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def test_the_problems_requests_provoke_are_the_declared_ones(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(tenant_header="X-Org")
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as client:
        document = (await client.get("/openapi.json")).json()
        for method, path, operation in _operations(document):
            declared = _declared(operation)
            body = b"{not json" if "requestBody" in operation else None
            tries = [
                ({"X-Org": "no-such-tenant"}, None),
                ({"X-Org": "../etc"}, None),
                ({"X-Org": "acme"}, body),
            ]
            for headers, content in tries:
                response = await client.request(
                    method, _url(path), headers=headers, content=content
                )
                if response.status_code >= 400:
                    assert response.status_code in declared, (method, path, response.text)
                    assert_problem(response, response.status_code)


@pytest.mark.parametrize("path", ["/api/nothing-here", "/nothing/at/all"])
async def test_an_unknown_path_without_a_tenant_is_a_404_problem(
    start_server: ServerFactory, tenants: dict[str, Tenant], path: str
) -> None:
    server = start_server(tenant_resolution="header")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(path)
        known = await client.get("/api/tenant")
    assert_problem(response, 404)
    assert_problem(known, 401, "CREDENTIAL_REQUIRED")


async def test_the_configured_tenant_header_is_the_one_read_and_named(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(tenant_header="X-Org", tenant_resolution="header")
    async with httpx.AsyncClient(base_url=server.url) as client:
        named = await client.get("/api/tenant", headers={"X-Org": "acme", **api_keys.auth("acme")})
        other = await client.get(
            "/api/tenant", headers={"X-Org": "globex", **api_keys.auth("acme")}
        )
        default_name = await client.get("/health/ready", headers={"X-Tenant-ID": "nobody"})
    assert named.json()["slug"] == "acme"
    assert_problem(other, 403, "TENANT_FORBIDDEN")
    assert default_name.status_code == 200  # X-Tenant-ID is not read: no tenant named
