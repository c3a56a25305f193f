"""The README's quick tour, run against a live server on SQLite and on PostgreSQL: the
very commands of its ``bash`` block, checked against the output the README shows; and
the demo tenant's sample data that ``serve`` creates.

The commands run with the real ``curl`` when it is installed, and always also as the
same requests sent with httpx. The tour's ``jq -r`` filters (field paths and ``[]``) are
applied here, so the test needs no ``jq``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest
from api_fixtures import CREATED_KEYS, NODES, ORDERS, ApiKeys, ServerFactory, ok

from rustok_server import TenantDirectory
from rustok_server.cli import _prepare
from rustok_server.db import Database

README = Path(__file__).parents[1] / "README.md"
_PIPELINE = re.compile(r"^(curl\s.+?)\s*\|\s*jq -r (.+)$")
_CAPTURE = re.compile(r"^([A-Z_]+)=\$\((.+)\)$")
_EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)$")
_VARIABLE = re.compile(r"\$(\w+)")


def tour() -> tuple[list[str], list[str]]:
    """The commands of the quick tour's ``bash`` block and the lines it says it prints."""
    text = README.read_text()
    section = text[text.index("### Quick tour") :]
    script = re.search(r"```bash\n(.*?)```", section, re.S)
    output = re.search(r"```text\n(.*?)```", section, re.S)
    assert script is not None, "the quick tour lost its bash block"
    assert output is not None, "the quick tour lost its output block"
    joined = script.group(1).replace("\\\n", " ")
    commands = [" ".join(line.split()) for line in joined.splitlines()]
    return [c for c in commands if c and not c.startswith("#")], output.group(1).splitlines()


def jq_raw(expression: str, document: object) -> list[str]:
    """``jq -r EXPRESSION`` for the paths the tour uses: ``.a.b`` and ``.items[].c``."""
    values = [document]
    for part in shlex.split(expression)[0].lstrip(".").split("."):
        key, spread = (part[:-2], True) if part.endswith("[]") else (part, False)
        values = [value[key] if key else value for value in values]  # type: ignore[index]
        if spread:
            values = [item for value in values for item in value]  # type: ignore[attr-defined]
    return [value if isinstance(value, str) else json.dumps(value) for value in values]


CLIENTS = ["httpx", *(["curl"] if shutil.which("curl") else [])]


async def run_curl(arguments: list[str], client: str) -> bytes:
    """Run ``curl ARGUMENTS`` with the real curl, or as the same request sent with httpx
    (``client`` says which); returns the response body."""
    executable = shutil.which("curl")
    if client == "curl" and executable is not None:
        process = await asyncio.create_subprocess_exec(
            executable, *arguments, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, f"curl {arguments} failed"
        return out
    method, headers, data, url = "GET", {}, None, ""
    words = iter(arguments)
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(words)
            method = "POST" if method == "GET" else method
        elif not word.startswith("-"):
            url = word
    async with httpx.AsyncClient() as http:
        response = await http.request(method, url, headers=headers, content=data)
    return response.content


async def run_tour(base_url: str, key: str, client: str) -> list[str]:
    """Run the tour's commands against ``base_url`` with the demo ``key``; returns what
    they print."""
    variables: dict[str, str] = {}
    printed: list[str] = []
    commands, _ = tour()
    for command in commands:
        if export := _EXPORT.match(command):
            # The tour's server and demo key are the test's.
            variables[export.group(1)] = key if export.group(1) == "RUSTOK_KEY" else base_url
            continue
        capture = _CAPTURE.match(command)
        pipeline = _PIPELINE.match(capture.group(2) if capture else command)
        assert pipeline is not None, f"the test cannot run {command!r}"
        words = shlex.split(pipeline.group(1))[1:]
        arguments = [_VARIABLE.sub(lambda m: variables[m.group(1)], word) for word in words]
        lines = jq_raw(pipeline.group(2), json.loads(await run_curl(arguments, client)))
        if capture:
            (variables[capture.group(1)],) = lines
        else:
            printed.extend(lines)
    return printed


@pytest.mark.parametrize("client", CLIENTS)
async def test_quick_tour_prints_what_the_readme_shows(
    database_url: str, start_server: ServerFactory, client: str
) -> None:
    database = Database(database_url)
    try:
        key = await _prepare(database, demo=True)
    finally:
        await database.dispose()
    assert key is not None
    api_keys = ApiKeys(demo=key)
    CREATED_KEYS.append(key)
    server = start_server()
    _, expected = tour()
    assert await run_tour(server.url, key, client) == expected
    async with api_keys.client(server, "demo") as demo:
        nodes = await ok(await demo.get(NODES, params={"state": "archived"}))
        orders = await ok(await demo.get(ORDERS, params={"state": "delivered"}))
    assert "hello-rustok" in {node["slug"] for node in nodes["items"]}
    assert len(orders["items"]) == 2  # the demo's and the tour's


async def test_demo_tenant_gets_sample_nodes_and_orders_in_every_state(
    database_url: str, start_server: ServerFactory
) -> None:
    database = Database(database_url)
    try:
        key = await _prepare(database, demo=True)
        assert await _prepare(database, demo=True) is None  # seeded once only
        assert [t.slug for t in await TenantDirectory(database).list()] == ["demo"]
    finally:
        await database.dispose()
    assert key is not None
    api_keys = ApiKeys(demo=key)
    CREATED_KEYS.append(key)
    server = start_server()
    async with api_keys.client(server, "demo") as client:
        nodes = await ok(await client.get(NODES))
        orders = await ok(await client.get(ORDERS))
        delivered = next(o for o in orders["items"] if o["state"] == "delivered")
        history = await ok(await client.get(f"{ORDERS}/{delivered['id']}/history"))
    assert Counter(node["state"] for node in nodes["items"]) == {
        "draft": 1,
        "published": 1,
        "archived": 1,
    }
    assert sorted(order["state"] for order in orders["items"]) == sorted(
        ["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]
    )
    assert [r["to_state"] for r in history["items"]] == [
        "confirmed",
        "paid",
        "shipped",
        "delivered",
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [(".id", ["a"]), (".total.amount", ["1.00"]), (".items[].x", ["1", "null"])],
)
def test_jq_subset_reads_paths_like_jq(expression: str, expected: list[str]) -> None:
    document = {"id": "a", "total": {"amount": "1.00"}, "items": [{"x": 1}, {"x": None}]}
    assert jq_raw(expression, document) == expected
