"""The content API end to end, over HTTP against uvicorn, on SQLite and on PostgreSQL:
every route, every legal and illegal transition, the archive rule, validation errors,
versions as entity tags, history, and cursor pagination while rows are inserted."""

from __future__ import annotations

import uuid

import httpx
import pytest
from api_fixtures import (
    NODE_PATHS,
    NODES,
    ApiKeys,
    Json,
    ServerFactory,
    assert_problem,
    create_node,
    node_in,
    ok,
    pointers,
)

from rustok_server import Tenant


async def test_create_returns_a_draft_with_location_and_etag(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        body = {"kind": "page", "title": "  About us ", "slug": "about-us"}
        response = await client.post(NODES, json=body)
        node = await ok(response, 201)
        again = await ok(await client.get(response.headers["location"]))
    assert response.headers["location"] == f"{NODES}/{node['id']}"
    assert response.headers["etag"] == '"1"'
    assert node["state"] == "draft"
    assert node["state_data"] == {}
    assert node["version"] == 1
    assert node["title"] == "About us"
    assert node["kind"] == "page"
    assert node["tenant_id"] == str(tenants["acme"].id)
    assert again == node


async def test_get_unknown_node_is_404(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.get(f"{NODES}/{uuid.uuid4()}")
    assert_problem(response, 404, "NODE_NOT_FOUND")


async def test_malformed_node_id_is_400_naming_the_path_parameter(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.get(f"{NODES}/not-a-uuid")
    problem = assert_problem(response, 400)
    assert pointers(problem) == ["/path/node_id"]


async def test_create_with_bad_fields_lists_one_error_per_field(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    body = {"kind": "poem", "title": "", "slug": "Not A Slug", "author_id": "x", "extra": 1}
    async with api_keys.client(server, "acme") as client:
        response = await client.post(NODES, json=body)
        listed = await ok(await client.get(NODES))
    problem = assert_problem(response, 400, "VALIDATION")
    assert sorted(pointers(problem)) == ["/author_id", "/extra", "/kind", "/slug", "/title"]
    assert listed["items"] == []


async def test_missing_and_non_json_bodies_are_400(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        missing = await client.post(NODES, json={"kind": "post"})
        garbage = await client.post(
            NODES, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert sorted(pointers(assert_problem(missing, 400))) == ["/slug", "/title"]
    assert len(assert_problem(garbage, 400)["errors"]) == 1


async def test_duplicate_slug_is_409_within_a_tenant_only(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as acme, api_keys.client(server, "globex") as globex:
        await create_node(acme, slug="hello")
        duplicate = await acme.post(NODES, json={"kind": "post", "title": "x", "slug": "hello"})
        other_tenant = await create_node(globex, slug="hello")
    assert_problem(duplicate, 409, "DUPLICATE_SLUG")
    assert other_tenant["slug"] == "hello"


async def test_lifecycle_and_history_in_order(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client, slug="lifecycle", title="First")
        url = f"{NODES}/{node['id']}"
        edited = await ok(await client.patch(url, json={"title": "Second"}))
        published = await ok(await client.post(f"{url}/publish"))
        live_edit = await ok(await client.patch(url, json={"slug": "lifecycle-2"}))
        archived = await ok(await client.post(f"{url}/archive", json={"reason": " stale "}))
        restored = await ok(await client.post(f"{url}/restore"))
        history = await ok(await client.get(f"{url}/history"))
    assert (edited["state"], edited["title"], edited["version"]) == ("draft", "Second", 2)
    assert published["state"] == "published"
    assert set(published["state_data"]) == {"published_at"}
    assert (live_edit["state"], live_edit["slug"]) == ("published", "lifecycle-2")
    assert live_edit["state_data"] == published["state_data"]
    assert archived["state"] == "archived"
    assert archived["state_data"]["reason"] == "stale"
    assert (restored["state"], restored["state_data"], restored["version"]) == ("draft", {}, 6)
    steps = [(r["trigger"], r["from_state"], r["to_state"], r["version"]) for r in history["items"]]
    assert steps == [
        ("update", "draft", "draft", 2),
        ("publish", "draft", "published", 3),
        ("update", "published", "published", 4),
        ("archive", "published", "archived", 5),
        ("restore", "archived", "draft", 6),
    ]
    records = history["items"]
    assert records[0]["data"] == {"fields": ["title"]}
    assert records[3]["data"] == {"reason": "stale"}
    assert all(r["entity_type"] == "ContentNode" and r["entity_id"] == node["id"] for r in records)
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)


ILLEGAL: list[tuple[str, str, list[str]]] = [
    ("draft", "archive", ["publish", "update"]),
    ("draft", "restore", ["publish", "update"]),
    ("published", "publish", ["archive", "update"]),
    ("published", "restore", ["archive", "update"]),
    ("archived", "publish", ["restore"]),
    ("archived", "archive", ["restore"]),
    ("archived", "update", ["restore"]),
]


async def test_every_illegal_transition_is_409_naming_state_and_allowed_actions(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        for state, action, allowed in ILLEGAL:
            node = await node_in(client, state)
            url = f"{NODES}/{node['id']}"
            if action == "update":
                response = await client.patch(url, json={"title": "nope"})
            else:
                body = {"reason": "why"} if action == "archive" else None
                response = await client.post(f"{url}/{action}", json=body)
            problem = assert_problem(response, 409, "INVALID_TRANSITION")
            assert problem["state"] == state
            assert problem["action"] == action
            assert problem["allowed_actions"] == allowed
            assert state in problem["detail"]
            for name in allowed:
                assert name in problem["detail"]
            after = await ok(await client.get(url))
            assert after == node, f"{action} from {state} changed the node"
            history = await ok(await client.get(f"{url}/history"))
            assert len(history["items"]) == len(NODE_PATHS[state])


async def test_archiving_with_a_blank_reason_breaks_the_rule_422(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await node_in(client, "published")
        url = f"{NODES}/{node['id']}"
        response = await client.post(f"{url}/archive", json={"reason": "   "})
        missing = await client.post(f"{url}/archive", json={})
        after = await ok(await client.get(url))
    problem = assert_problem(response, 422, "GUARD_FAILED")
    assert "reason" in problem["detail"]
    assert pointers(assert_problem(missing, 400)) == ["/reason"]
    assert after == node


async def test_update_validates_fields(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client)
        response = await client.patch(
            f"{NODES}/{node['id']}", json={"title": "", "slug": "Bad Slug", "state": "published"}
        )
    problem = assert_problem(response, 400)
    assert sorted(pointers(problem)) == ["/slug", "/state", "/title"]


async def test_update_to_a_slug_in_use_is_409(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        await create_node(client, slug="taken")
        node = await create_node(client, slug="free")
        response = await client.patch(f"{NODES}/{node['id']}", json={"slug": "taken"})
        after = await ok(await client.get(f"{NODES}/{node['id']}"))
    assert_problem(response, 409, "DUPLICATE_SLUG")
    assert after["slug"] == "free"


async def test_if_match_applies_a_change_only_to_the_version_named(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client)
        url = f"{NODES}/{node['id']}"
        first = await client.patch(url, json={"title": "One"}, headers={"If-Match": '"1"'})
        stale = await client.patch(url, json={"title": "Two"}, headers={"If-Match": '"1"'})
        weak = await client.post(f"{url}/publish", headers={"If-Match": 'W/"2"'})
        malformed = await client.post(f"{url}/publish", headers={"If-Match": "two"})
        listed = await client.post(f"{url}/publish", headers={"If-Match": '"7", "2"'})
        star = await client.patch(url, json={"title": "Three"}, headers={"If-Match": "*"})
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    problem = assert_problem(stale, 412, "PRECONDITION_FAILED")
    assert "version 2" in problem["detail"]
    assert_problem(weak, 412, "PRECONDITION_FAILED")
    assert pointers(assert_problem(malformed, 400, "INVALID_IF_MATCH")) == ["/header/If-Match"]
    assert (await ok(listed))["state"] == "published"
    assert (await ok(star))["title"] == "Three"
    assert star.headers["etag"] == '"4"'


async def test_list_filters_by_state_and_kind(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        draft = await node_in(client, "draft")
        published = await node_in(client, "published")
        archived = await node_in(client, "archived")
        page = await create_node(client, kind="page")
        by_state = {
            state: await ok(await client.get(NODES, params={"state": state}))
            for state in ("draft", "published", "archived")
        }
        pages = await ok(await client.get(NODES, params={"kind": "page"}))
        drafts_of_kind = await ok(
            await client.get(NODES, params={"kind": "article", "state": "draft"})
        )
        everything = await ok(await client.get(NODES))
    assert [n["id"] for n in by_state["draft"]["items"]] == [draft["id"], page["id"]]
    assert [n["id"] for n in by_state["published"]["items"]] == [published["id"]]
    assert by_state["archived"]["items"] == [archived]
    assert [n["id"] for n in pages["items"]] == [page["id"]]
    assert [n["id"] for n in drafts_of_kind["items"]] == [draft["id"]]
    assert len(everything["items"]) == 4
    assert everything["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"state": "deleted"}, "/query/state"),
        ({"kind": "poem"}, "/query/kind"),
        ({"limit": "0"}, "/query/limit"),
        ({"limit": "101"}, "/query/limit"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "/query/cursor"),
    ],
)
async def test_bad_list_parameters_are_400(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    params: dict[str, str],
    pointer: str,
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.get(NODES, params=params)
    assert pointers(assert_problem(response, 400)) == [pointer]


async def _all_pages(
    client: httpx.AsyncClient, limit: int, between: int = 0
) -> tuple[list[Json], int]:
    """Every page of the list; creates ``between`` nodes after each page is read."""
    seen: list[Json] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = await ok(await client.get(NODES, params=params))
        pages += 1
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        for _ in range(between):
            await create_node(client)
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages


async def test_pages_have_no_duplicates_or_gaps_while_rows_are_inserted(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        before = [await create_node(client) for _ in range(13)]
        seen, pages = await _all_pages(client, limit=4, between=2)
        after, _ = await _all_pages(client, limit=100)
    ids = [node["id"] for node in seen]
    assert len(ids) == len(set(ids)), "a node was listed twice"
    assert {n["id"] for n in before} <= set(ids), "a node that existed was skipped"
    assert ids == [node["id"] for node in after][: len(ids)], "pages are not in a stable order"
    assert pages > 13 // 4
    keys = [(node["created_at"], node["id"]) for node in after]
    assert keys == sorted(keys)


async def test_history_of_unknown_node_is_404(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        response = await client.get(f"{NODES}/{uuid.uuid4()}/history")
    assert_problem(response, 404, "NODE_NOT_FOUND")
