"""Hostile input, made by hand: every case is a 4xx problem with a specific code, the same
on SQLite and PostgreSQL; nothing a client sends reaches a 500. A stored row that fails
the entity's run-time check is the server's fault: a redacted 500 whose log names the row."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_fixtures import (
    NODES,
    ORDERS,
    ApiKeys,
    ServerFactory,
    assert_problem,
    create_node,
    create_order,
    pointers,
)
from sqlalchemy import update

from rustok_server import Tenant
from rustok_server.content.tables import ContentNodeRow
from rustok_server.testing import LiveServer

Json = dict[str, Any]
ORDER = {"customer_id": str(uuid.UUID(int=7)), "currency": "EUR"}


def _cursor(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HEX = uuid.UUID(int=5).hex
FORGED_CURSORS = {
    "a number for the id": _cursor(["2026-01-01T00:00:00+00:00", 5]),
    "a list for the id": _cursor(["2026-01-01T00:00:00+00:00", []]),
    "year 1 at +14:00": _cursor(["0001-01-01T00:00:00+14:00", HEX]),
    "year 9999 at -14:00": _cursor(["9999-12-31T23:59:59-14:00", HEX]),
    "no offset": _cursor(["2026-01-01T00:00:00", HEX]),
    "not a time": _cursor(["yesterday", HEX]),
    "upper-case id": _cursor(["2026-01-01T00:00:00+00:00", uuid.UUID(int=0xABC).hex.upper()]),
    "three members": _cursor(["2026-01-01T00:00:00+00:00", HEX, 1]),
    "an object": _cursor({"at": "2026-01-01T00:00:00+00:00", "id": HEX}),
    "null": _cursor(None),
    "not JSON": base64.urlsafe_b64encode(b"\xff\xfe not json").decode().rstrip("="),
    "not base64": "!!!",
    "padded": _cursor(["2026-01-01T00:00:00+00:00", HEX]) + "==",
    "too long": "A" * 201,
    "empty": "",
}


@pytest.mark.parametrize("path", [NODES, ORDERS])
async def test_a_forged_cursor_is_a_400_invalid_cursor(
    start_server: ServerFactory, tenants: dict[str, Tenant], path: str, api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        for name, cursor in FORGED_CURSORS.items():
            response = await client.get(path, params={"cursor": cursor})
            problem = assert_problem(response, 400, "INVALID_CURSOR")
            assert pointers(problem) == ["/query/cursor"], name


async def test_a_nul_in_a_title_is_a_400_naming_the_title(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        node = await create_node(client)
        created = await client.post(
            NODES, json={"kind": "article", "title": "a\u0000b", "slug": "nul"}
        )
        patched = await client.patch(f"{NODES}/{node['id']}", json={"title": "x\u0000"})
        escaped = await client.patch(f"{NODES}/{node['id']}", json={"title": "x\u001b[31m"})
        archived = await client.post(f"{NODES}/{node['id']}/archive", json={"reason": "\u0000"})
        surrogate = await client.post(
            NODES,
            content=b'{"kind":"article","title":"a\\ud800","slug":"lone"}',
            headers={"content-type": "application/json"},
        )
    for response in (created, patched, escaped, surrogate):
        assert pointers(assert_problem(response, 400, "VALIDATION")) == ["/title"]
    assert pointers(assert_problem(archived, 400, "VALIDATION")) == ["/reason"]


@pytest.mark.parametrize(
    "amount",
    ["1E+37", "\u0661\u0662\u0663", "1_000", " 5 ", "+5", "9" * 19, "1.00000", "Infinity", ""],
)
async def test_an_amount_that_is_not_plain_decimal_text_is_a_400_naming_it(
    start_server: ServerFactory, tenants: dict[str, Tenant], amount: str, api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        response = await client.post(ORDERS, json={**ORDER, "amount": amount})
    assert pointers(assert_problem(response, 400, "VALIDATION")) == ["/amount"]


async def test_the_largest_amount_is_stored_exactly_on_every_database(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        order = await create_order(client, amount="9" * 18 + ".99", currency="EUR")
        again = (await client.get(f"{ORDERS}/{order['id']}")).json()
        negative = await client.post(ORDERS, json={**ORDER, "amount": "-5"})
    assert again["total"] == {"amount": "9" * 18 + ".99", "currency": "EUR"}
    assert_problem(negative, 422)


async def test_a_body_over_the_limit_is_a_413(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(max_body_bytes=1000), "acme") as client:
        declared = await client.post(
            NODES, content=b"{" + b" " * 2000 + b"}", headers={"content-type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 200

        streamed = await client.post(
            NODES, content=chunks(), headers={"content-type": "application/json"}
        )
        small = await client.post(NODES, json={"kind": "page", "title": "T", "slug": "small"})
    assert "content-length" not in streamed.request.headers  # sent chunked
    for response in (declared, streamed):
        problem = assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        assert problem["type"] == "/problems/payload-too-large"
    assert small.status_code == 201


async def test_the_default_limit_is_one_mebibyte(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    padding = " " * (1024 * 1024)
    async with api_keys.client(start_server(), "acme") as client:
        response = await client.post(
            NODES,
            content=f'{{"kind":"page","title":"T","slug":"big"}}{padding}'.encode(),
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_repeated_tenant_header_is_a_400(
    start_server: ServerFactory, tenants: dict[str, Tenant]
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        twice = await client.get(
            NODES, headers=[("X-Tenant-ID", "globex"), ("X-Tenant-ID", "acme")]
        )
        same = await client.get(NODES, headers=[("X-Tenant-ID", "acme"), ("X-Tenant-ID", "acme")])
    for response in (twice, same):
        problem = assert_problem(response, 400, "REPEATED_HEADER")
        assert pointers(problem) == ["/header/X-Tenant-ID"]


MALFORMED_BODIES = {
    "not JSON": b"{bad",
    "empty": b"",
    "a list": b"[]",
    "a number": b"5",
    "UTF-16 with a BOM": json.dumps({"kind": "page", "title": "T", "slug": "u"}).encode("utf-16"),
    "UTF-16 without a BOM": json.dumps({"kind": "page", "title": "T", "slug": "u"}).encode(
        "utf-16-le"
    ),
    "UTF-32": json.dumps({"kind": "page", "title": "T", "slug": "u"}).encode("utf-32"),
    "Latin-1": '{"kind":"page","title":"caf\u00e9","slug":"u"}'.encode("latin-1"),
    "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
    "a deep field": b'{"kind":"page","slug":"u","title":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


async def test_a_malformed_body_is_a_400_malformed_body(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        for name, body in MALFORMED_BODIES.items():
            response = await client.post(
                NODES, content=body, headers={"content-type": "application/json"}
            )
            problem = assert_problem(response, 400, "MALFORMED_BODY")
            assert problem["type"] == "/problems/validation", name
            assert pointers(problem) == [""], name


async def test_a_body_that_is_not_json_is_a_400_malformed_body(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        response = await client.post(
            NODES, content=b"kind=page", headers={"content-type": "text/plain"}
        )
    assert_problem(response, 400, "MALFORMED_BODY")


async def test_bad_headers_and_identifiers_are_400s_with_their_codes(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client)
        publish = f"{NODES}/{node['id']}/publish"
        cases = {
            "INVALID_IF_MATCH": await client.post(publish, headers={"If-Match": "three"}),
            "INVALID_IF_MATCH ": await client.post(publish, headers={"If-Match": '"3'}),
            "INVALID_IDEMPOTENCY_KEY": await client.post(
                ORDERS, json={**ORDER, "amount": "1"}, headers={"Idempotency-Key": "k" * 256}
            ),
            "INVALID_IDEMPOTENCY_KEY ": await client.post(
                ORDERS, json={**ORDER, "amount": "1"}, headers={"Idempotency-Key": "a key"}
            ),
            "VALIDATION": await client.get(f"{NODES}/not-a-uuid"),
            "VALIDATION ": await client.get(f"{ORDERS}/{'0' * 33}"),
        }
    async with httpx.AsyncClient(base_url=server.url, headers=api_keys.auth("acme")) as keyed:
        cases["INVALID_TENANT_IDENTIFIER"] = await keyed.get(
            NODES, headers={"X-Tenant-ID": "a" * 10_000}
        )
        long_id = await keyed.get(
            NODES, headers={"X-Tenant-ID": "acme", "X-Request-ID": "r" * 10_000}
        )
    for code, response in cases.items():
        assert_problem(response, 400, code.strip())
    assert long_id.status_code == 200
    assert long_id.headers["x-request-id"] != "r" * 10_000  # a fresh id instead


async def test_a_405_allows_every_method_of_the_path(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    async with api_keys.client(start_server(), "acme") as client:
        response = await client.delete(NODES)
        single = await client.put(f"{ORDERS}/{uuid.uuid4()}/confirm")
    problem = assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert problem["type"] == "/problems/method-not-allowed"
    assert response.headers["allow"] == "GET, POST"
    assert single.headers["allow"] == "POST"


async def _corrupt(server: LiveServer, node_id: str) -> None:
    """Store a node as published without its publication time, behind the API's back."""
    database = server.app.state.database  # type: ignore[attr-defined]
    statement = (
        update(ContentNodeRow)
        .where(ContentNodeRow.id == uuid.UUID(node_id))
        .values(state="published", state_data={})
    )

    async def run() -> None:
        async with database.engine.begin() as connection:
            await connection.execute(statement)

    await server.call(run)


async def test_a_stored_row_that_fails_its_check_is_a_redacted_500_naming_the_row_in_the_log(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    caplog: pytest.LogCaptureFixture,
    api_keys: ApiKeys,
) -> None:
    server = start_server()
    async with api_keys.client(server, "acme") as client:
        node = await create_node(client)
        await _corrupt(server, node["id"])
        with caplog.at_level(logging.ERROR, logger="rustok.server"):
            one = await client.get(f"{NODES}/{node['id']}")
            listing = await client.get(NODES)
    for response in (one, listing):
        problem = assert_problem(response, 500, "STORED_RECORD_INVALID")
        assert "published" not in response.text
    assert node["id"] not in listing.text
    logged = [r.getMessage() for r in caplog.records if r.name == "rustok.server"]
    assert len([m for m in logged if node["id"] in m]) == 2, logged
    assert problem["type"] == "/problems/internal"
