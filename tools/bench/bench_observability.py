"""What metrics and access logs cost a request: the app against the same app without its
observability middleware, in one process, tracing off.

Three apps: without the middleware (the baseline), with metrics only
(``RUSTOK_ACCESS_LOG=false``), and with metrics and access records. They run on the same
SQLite file and the same logging configuration (JSON lines, INFO, written to the null device,
so formatting is paid and the terminal is not); requests go through httpx's ASGI transport,
alternating between the apps round by round so that the machine's drift hits all alike.
Reported: the median time of a tenant-resolved read with a database query
(`GET /api/content/nodes/{id}`) and of one without (`GET /api/tenant`), and the ratio to the
app without observability. Target (DESIGN 7, for metrics): at most 10% slower; the access
record's cost is shown beside it, without a target.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import tempfile
import time
from pathlib import Path

import httpx

from _report import Figure, emit, median
from rustok_content import CreateNodeInput, NodeKind, NodeService
from rustok_server import Settings, create_app
from rustok_server.auth import TENANT_SCOPES, KeyDirectory
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.observability.logs import logging_config
from rustok_server.observability.middleware import ObservabilityMiddleware
from rustok_server.tenancy.repository import TenantDirectory

BENCH = "observability"
ROUNDS = 30
PER_ROUND = 200


async def _seed(url: str) -> tuple[str, str]:
    """Migrate, create the tenant acme with one post and a key of every scope: the post's
    id and the key."""
    database = Database(url)
    try:
        await upgrade(database)
        tenant = await TenantDirectory(database).create("acme", "Acme")
        _key, secret = await KeyDirectory(database).create("acme", list(TENANT_SCOPES))
        async with database.sessions() as session:
            node = await NodeService(SqlNodeRepository(session)).create(
                tenant.id, CreateNodeInput(kind=NodeKind.POST, title="Hello", slug="hello")
            )
            await session.commit()
        return str(node.id), secret
    finally:
        await database.dispose()


async def _time(client: httpx.AsyncClient, path: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples


async def main() -> None:
    null = open(os.devnull, "w")  # noqa: SIM115, ASYNC230  # before any request, for the run
    config = logging_config("json", "info")
    config["handlers"]["default"]["stream"] = null  # type: ignore[index]
    logging.config.dictConfig(config)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        node_id, key = await _seed(url)
        settings = Settings(database_url=url, rate_limit_per_second=0)
        apps = {
            "bare": create_app(settings),
            "metrics": create_app(settings.model_copy(update={"access_log": False})),
            "metrics and access log": create_app(settings),
        }
        # The middleware stack is built on the first request: drop ours before it.
        bare = apps["bare"]
        bare.user_middleware = [
            m
            for m in bare.user_middleware
            if getattr(m, "cls", None) is not ObservabilityMiddleware
        ]
        paths = {"node read": f"/api/content/nodes/{node_id}", "tenant read": "/api/tenant"}
        headers = {"Authorization": f"Bearer {key}"}
        results: dict[tuple[str, str], list[float]] = {}
        clients = {
            name: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers
            )
            for name, app in apps.items()
        }
        try:
            for client in clients.values():  # warm up: caches, statements, middleware stacks
                for path in paths.values():
                    await _time(client, path, 50)
            for _ in range(ROUNDS):
                for name, client in clients.items():
                    for label, path in paths.items():
                        results.setdefault((name, label), []).extend(
                            await _time(client, path, PER_ROUND)
                        )
        finally:
            for client in clients.values():
                await client.aclose()
            for app in apps.values():
                await app.state.database.dispose()
    figures = []
    for label in paths:
        without = median(results[("bare", label)]) * 1e6
        for name, target in (("metrics", "<= 1.10x"), ("metrics and access log", None)):
            value = median(results[(name, label)]) * 1e6
            met = value / without <= 1.10 if target else None
            figures.append(
                Figure(BENCH, f"{label}, {name} (median)", value, "us",
                       "same app without them", without, target, met)
            )  # fmt: skip
    emit(figures)
    null.close()


if __name__ == "__main__":
    asyncio.run(main())
