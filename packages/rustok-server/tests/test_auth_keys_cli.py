"""The keys CLI, last-used times and the actor of history rows, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_fixtures import (
    CREATED_KEYS,
    NODES,
    ApiKeys,
    ServerFactory,
    node_in,
    ok,
    secret_of,
    start_serve,
)

from rustok_server import ServerContext, Tenant
from rustok_server.auth import KeyDirectory, parse_key
from rustok_server.cli import main
from rustok_server.db import Database


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    status = main(list(argv))
    return status, capsys.readouterr().out.splitlines()


async def test_keys_create_prints_the_key_alone_on_the_last_line_and_list_never_shows_it(
    database_url: str,
    tenants: dict[str, Tenant],
    start_server: ServerFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUSTOK_DATABASE_URL", database_url)  # main() sets it; undone after
    db = ["--database-url", database_url]
    status, out = await asyncio.to_thread(
        _run, capsys, *db, "keys", "create", "acme", "--scope", "orders:read", "--expires", "7"
    )
    assert status == 0
    token = out[-1]
    assert token in CREATED_KEYS  # every key made is looked for in the logs
    parsed = parse_key(token)
    assert parsed is not None
    status, listed = await asyncio.to_thread(_run, capsys, *db, "keys", "list", "acme")
    assert status == 0
    assert any(line.startswith(parsed[0]) and "orders:read" in line for line in listed)
    assert parsed[1] not in "\n".join(listed)
    status, admin_out = await asyncio.to_thread(_run, capsys, *db, "keys", "create", "--admin")
    assert status == 0
    assert admin_out[-1] in CREATED_KEYS
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        mine = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/commerce/orders", headers=mine)).status_code == 200
        assert (await client.get("/api/content/nodes", headers=mine)).status_code == 403
        admin = {"Authorization": f"Bearer {admin_out[-1]}"}
        assert (await client.get("/api/admin/tenants", headers=admin)).status_code == 200


async def test_the_acting_key_is_the_actor_of_history_rows_and_its_use_is_recorded(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    context: ServerContext = server.app.state.context  # type: ignore[attr-defined]  # FastAPI app
    key_id = api_keys["acme"].split("_")[1]
    async with httpx.AsyncClient(base_url=server.url, headers=api_keys.auth("acme")) as client:
        node = await node_in(client, "published")
        history = await ok(await client.get(f"{NODES}/{node['id']}/history"))
    assert [entry["actor"] for entry in history["items"]] == [key_id]
    assert api_keys["acme"].split("_", 2)[2] not in str(history)
    await server.call(context.auth.verifier.close)  # the background last-used write
    key = await server.call(lambda: context.auth.keys.get(key_id))
    assert key.last_used_at is not None


def test_serve_prints_its_demo_key_and_never_logs_it(tmp_path: Path) -> None:
    """The demo key ``serve`` makes (in another process, out of reach of this run's log
    capture): its secret is printed with the banner only (the key, and the curl line using
    it), and its server's log, which records the requests made with it, never shows it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = start_serve(tmp_path, "--port", str(port))
    logged: list[str] = []
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        banner: list[str] = []
        # The whole banner: the key, then the curl line that uses it, the banner's last.
        while not any(line.lstrip().startswith("try: curl") for line in banner):
            line = process.stdout.readline()
            assert line, f"serve printed no whole banner: {banner}"
            banner.append(line)
        key = next(line.strip() for line in banner if parse_key(line.strip()))
        CREATED_KEYS.append(key)
        key_id, secret = key.split("_")[1], secret_of(key)
        for line in process.stderr:  # its log: wait until it accepts connections
            logged.append(line)
            if "Application startup complete" in line:
                break
        url = f"http://127.0.0.1:{port}/api/tenant"
        served = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        refused = httpx.get(url, headers={"Authorization": f"Bearer {wrong}"})
        assert served.status_code == 200
        assert refused.status_code == 401
    finally:
        process.terminate()
        rest, errors = process.communicate(timeout=30)
    logged.extend(errors.splitlines())
    assert [line for line in logged if key_id in line]  # the refusal is logged, by key id
    assert not [line for line in logged if secret in line or secret_of(wrong) in line]
    assert secret not in rest


async def test_keys_list_shows_an_expired_key_as_expired(
    database_url: str,
    tenants: dict[str, Tenant],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUSTOK_DATABASE_URL", database_url)
    database = Database(database_url)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    try:  # made two days ago, valid for one
        old = KeyDirectory(database, clock=lambda: two_days_ago)
        expired, token = await old.create("acme", ["orders:read"], expires_in=timedelta(days=1))
        CREATED_KEYS.append(token)
        current, token = await KeyDirectory(database).create(
            "acme", ["orders:read"], expires_in=timedelta(days=1)
        )
        CREATED_KEYS.append(token)
    finally:
        await database.dispose()
    status, listed = await asyncio.to_thread(_run, capsys, "keys", "list", "acme")
    assert status == 0
    states = {line.split()[0]: line.split()[1] for line in listed}
    assert states[expired.id] == "expired"
    assert states[current.id] == "active"
