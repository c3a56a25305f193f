"""Problem ``type`` URIs resolve: ``GET /problems/{name}`` answers every type the server
emits, as HTML for a browser and JSON otherwise; ``type`` is relative unless
``RUSTOK_PROBLEM_BASE_URL`` makes it absolute."""

from __future__ import annotations

import uuid
from urllib.parse import urljoin

import httpx
from api_fixtures import NODES, ORDERS, ApiKeys, ServerFactory, assert_problem, node_in

from rustok_server import Tenant
from rustok_server.http.problem_types import PROBLEM_TYPES


async def _provoke_every_problem(client: httpx.AsyncClient) -> list[httpx.Response]:
    """One request for each problem the API answers a client, as the suite meets them."""
    archived = await node_in(client, "archived")
    published = await node_in(client, "published")
    return [
        await client.post(NODES, content=b"{", headers={"content-type": "application/json"}),
        await client.get(f"{NODES}/{uuid.uuid4()}"),
        await client.post(f"{NODES}/{archived['id']}/publish"),
        await client.post(f"{NODES}/{published['id']}/publish", headers={"If-Match": '"99"'}),
        await client.post(f"{NODES}/{published['id']}/archive", json={"reason": " "}),
        await client.delete(NODES),
        await client.post(ORDERS, content=b" " * (2 * 1024 * 1024)),
        await client.get(ORDERS, params={"cursor": "x"}),
        await client.get("/problems/no-such-type"),
        await client.get("/no/such/path"),
    ]


async def test_the_type_of_every_problem_answers_200(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        problems = [assert_problem(r, r.status_code) for r in await _provoke_every_problem(client)]
        statuses = {problem["status"] for problem in problems}
        assert statuses == {400, 404, 405, 409, 412, 413, 422}
        for problem in problems:
            assert problem["type"].startswith("/problems/"), problem
            page = await client.get(urljoin(server.url + problem["instance"], problem["type"]))
            assert page.status_code == 200, problem
            explained = page.json()
            assert explained["type"] == problem["type"]
            # The page is about this problem: its status and title.
            assert (explained["status"], explained["title"]) == (
                problem["status"],
                problem["title"],
            ), problem


async def test_every_problem_type_has_a_json_and_an_html_page_without_a_tenant(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server(tenant_resolution="header")
    async with httpx.AsyncClient(base_url=server.url) as client:
        for name, problem_type in PROBLEM_TYPES.items():
            data = await client.get(f"/problems/{name}", headers={"Accept": "application/json"})
            page = await client.get(f"/problems/{name}", headers={"Accept": "text/html,*/*"})
            assert data.status_code == page.status_code == 200
            assert data.json() == {
                "type": f"/problems/{name}",
                "name": name,
                "title": problem_type.title,
                "status": problem_type.status,
                "meaning": problem_type.meaning,
                "action": problem_type.action,
            }
            assert page.headers["content-type"].startswith("text/html")
            assert f"<h1>{problem_type.title} ({problem_type.status})</h1>" in page.text


async def test_an_unknown_problem_type_is_a_404_problem(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    async with httpx.AsyncClient(base_url=start_server().url) as client:
        response = await client.get("/problems/teapot")
    assert_problem(response, 404, "PROBLEM_TYPE_NOT_FOUND")


async def test_the_base_url_setting_makes_types_absolute(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(problem_base_url="https://docs.example.com/problems")
    async with api_keys.client(server, "acme") as client:
        missing = await client.get(f"{ORDERS}/{uuid.uuid4()}")
        too_large = await client.post(ORDERS, content=b" " * (2 * 1024 * 1024))
        page = await client.get("/problems/not-found")
    assert assert_problem(missing, 404)["type"] == "https://docs.example.com/problems/not-found"
    large = assert_problem(too_large, 413)
    assert large["type"] == "https://docs.example.com/problems/payload-too-large"
    assert page.json()["type"] == "https://docs.example.com/problems/not-found"
