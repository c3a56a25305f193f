"""Authentication and authorization over real HTTP, on SQLite and PostgreSQL: every
operation of the OpenAPI document refuses what it must, the admin API, revocation and
tenant disabling within a second, and per-tenant rate limits."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from api_fixtures import CREATED_KEYS, KEYS, ServerFactory, assert_problem, auth

from rustok_core.testing import ManualClock
from rustok_server import Tenant
from rustok_server.auth import TENANT_SCOPES
from rustok_server.cli import main

Json = dict[str, Any]


def _operations(document: Json) -> list[tuple[str, str, list[str]]]:
    """Every secured operation: method, path, the scopes it accepts."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for requirement in operation.get("security", []):
                found.append((method.upper(), path, list(requirement["bearer"])))
    return found


def _url(path: str) -> str:
    return re.sub(
        r"\{(\w+)\}",
        lambda m: (
            "acme"
            if m[1] == "slug"
            else "0123456789abcdef"
            if m[1] == "key_id"
            else str(uuid.uuid4())
        ),
        path,
    )


def _strip(problem: Json) -> Json:
    return {k: v for k, v in problem.items() if k not in ("instance", "trace_id")}


async def test_every_api_operation_is_secured_and_refuses_what_it_must(
    start_server: ServerFactory, tenants: dict[str, Tenant], clock: ManualClock
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        api_operations = [
            (method.upper(), path)
            for path, operations in document["paths"].items()
            if path.startswith("/api/")
            for method in operations
        ]
        secured = _operations(document)
        assert {(m, p) for m, p, _ in secured} == set(api_operations)  # nothing left open
        admin = await client.post(
            "/api/admin/tenants/acme/keys", json={"scopes": ["content:read"]}, headers=auth("admin")
        )
        narrow = admin.json()["key"]  # holds content:read only
        for method, path, scopes in secured:
            url = _url(path)
            body: Json | None = {} if method in ("POST", "PATCH") else None
            anonymous = await client.request(method, url, json=body)
            problem = assert_problem(anonymous, 401, "CREDENTIAL_REQUIRED")
            assert anonymous.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert "WWW-Authenticate" in str(document["paths"][path]) or problem
            if "admin" in scopes:
                wrong = KEYS["acme"]
            elif "content:read" in scopes and len(scopes) == 1:
                wrong = KEYS["admin"]
            else:
                wrong = KEYS["admin"] if len(scopes) > 1 else narrow
            refused = await client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {wrong}"}
            )
            forbidden = assert_problem(refused, 403, "SCOPE_REQUIRED")
            assert " or ".join(scopes) in forbidden["detail"], (method, path)
            declared = document["paths"][path][method.lower()]["responses"]
            assert {"401", "403", "429"} <= set(declared), (method, path)
            if "admin" in scopes:
                continue
            other = await client.request(
                method, url, json=body, headers={"X-Tenant-ID": "globex", **auth("acme")}
            )
            missing = await client.request(
                method, url, json=body, headers={"X-Tenant-ID": "nobody", **auth("acme")}
            )
            assert _strip(assert_problem(other, 403)) == _strip(assert_problem(missing, 403))
            right = await client.request(method, url, json=body, headers=auth("acme"))
            assert right.status_code not in (401, 403, 429), (method, path, right.text)
            if "{" not in path and method == "GET":
                assert right.status_code == 200, (method, path, right.text)
        # A revoked key stops within a second; an expired one at once.
        revoked = await client.delete(
            f"/api/admin/tenants/acme/keys/{admin.json()['id']}", headers=auth("admin")
        )
        assert revoked.status_code == 200
        clock.advance(1.0)
        gone = await client.get("/api/content/nodes", headers={"Authorization": f"Bearer {narrow}"})
        assert_problem(gone, 401, "INVALID_CREDENTIAL")


async def test_admin_api_manages_tenants_and_keys_and_changes_apply_at_once(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    admin = auth("admin")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post(
            "/api/admin/tenants", json={"slug": "umbrella", "name": "Umbrella"}, headers=admin
        )
        assert created.status_code == 201, created.text
        listed = await client.get("/api/admin/tenants", headers=admin)
        assert "umbrella" in [t["slug"] for t in listed.json()]
        key = await client.post(
            "/api/admin/tenants/umbrella/keys",
            json={"scopes": list(TENANT_SCOPES), "expires_in_days": 30},
            headers=admin,
        )
        assert key.status_code == 201, key.text
        token = key.json()["key"]
        CREATED_KEYS.append(token)
        mine = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/tenant", headers=mine)).json()["slug"] == "umbrella"
        keys = await client.get("/api/admin/tenants/umbrella/keys", headers=admin)
        assert [k["id"] for k in keys.json()] == [key.json()["id"]]
        assert token not in keys.text
        renamed = await client.patch(
            "/api/admin/tenants/umbrella", json={"name": "Umbrella Corp"}, headers=admin
        )
        assert renamed.json()["name"] == "Umbrella Corp"
        assert (await client.get("/api/tenant", headers=mine)).json()["name"] == "Umbrella Corp"
        disabled = await client.post("/api/admin/tenants/umbrella/disable", headers=admin)
        assert disabled.json()["active"] is False
        assert_problem(await client.get("/api/tenant", headers=mine), 404, "TENANT_NOT_FOUND")
        await client.post("/api/admin/tenants/umbrella/enable", headers=admin)
        assert (await client.get("/api/tenant", headers=mine)).status_code == 200
        revoked = await client.delete(
            f"/api/admin/tenants/umbrella/keys/{key.json()['id']}", headers=admin
        )
        assert revoked.json()["revoked_at"] is not None
        assert_problem(await client.get("/api/tenant", headers=mine), 401, "INVALID_CREDENTIAL")


async def test_a_cli_change_on_the_same_database_is_seen_within_a_second(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    clock: ManualClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUSTOK_DATABASE_URL", database_url)  # main() sets it; undone after
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.get("/api/tenant", headers=auth("acme"))).status_code == 200
        assert (await client.get("/api/tenant", headers=auth("globex"))).status_code == 200
        key_id = KEYS["globex"].split("_")[1]
        cli = ["--database-url", database_url]
        assert await asyncio.to_thread(main, [*cli, "tenants", "disable", "acme"]) == 0
        assert await asyncio.to_thread(main, [*cli, "keys", "revoke", key_id]) == 0
        clock.advance(1.0)
        assert_problem(await client.get("/api/tenant", headers=auth("acme")), 404)
        assert_problem(await client.get("/api/tenant", headers=auth("globex")), 401)


async def test_a_burst_over_the_limit_draws_429s_and_other_tenants_are_unaffected(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(rate_limit_per_second=5, rate_limit_burst=10)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        answers = [await client.get("/api/tenant", headers=auth("acme")) for _ in range(60)]
        other = await client.get("/api/tenant", headers=auth("globex"))
    assert [r.status_code for r in answers[:10]] == [200] * 10
    refused = answers[10:]
    for response in refused:
        assert_problem(response, 429, "RATE_LIMITED")
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-limit"] == "10"
        assert response.headers["ratelimit-remaining"] == "0"
        assert int(response.headers["ratelimit-reset"]) >= 1
    assert len(refused) == 50
    assert other.status_code == 200


async def test_a_tenant_s_own_limit_set_through_the_admin_api_applies(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()  # limits off by default in these tests
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        patched = await client.patch(
            "/api/admin/tenants/acme",
            json={"rate_limit": {"per_second": 1, "burst": 2}},
            headers=auth("admin"),
        )
        assert patched.json()["rate_limit"] == {"per_second": 1.0, "burst": 2}
        codes = [
            (await client.get("/api/tenant", headers=auth("acme"))).status_code for _ in range(4)
        ]
        other = await client.get("/api/tenant", headers=auth("globex"))
    assert codes == [200, 200, 429, 429]
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/openapi.json"])
async def test_public_paths_need_no_credential(
    start_server: ServerFactory, tenants: dict[str, Tenant], path: str
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(path, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200


async def test_a_refused_key_is_logged_by_its_id_never_its_secret(
    start_server: ServerFactory, tenants: dict[str, Tenant], no_key_in_any_log: list[str]
) -> None:
    server = start_server()
    key = KEYS["acme"]
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    async with httpx.AsyncClient(base_url=server.url) as client:
        refused = await client.get("/api/tenant", headers={"Authorization": f"Bearer {wrong}"})
        served = await client.get("/api/tenant", headers=auth("acme"))
    assert_problem(refused, 401, "INVALID_CREDENTIAL")
    assert served.status_code == 200
    for secret in (key.split("_", 2)[2], wrong.split("_", 2)[2]):
        assert not [line for line in no_key_in_any_log if secret in line]
        assert secret not in refused.text
