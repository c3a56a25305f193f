"""What authentication, metrics, access logs and tracing cost a request: the app against the
same app without them, in one process.

Apps on the same SQLite file and the same logging configuration (JSON lines, INFO, written
to the null device, so formatting is paid and the terminal is not):

- nothing: no observability middleware, and in place of the authentication middleware one
  that puts the same verified principal in the request state (no header parsing, no key
  lookup): the baseline;
- auth: the authentication middleware, no observability;
- auth and metrics (``RUSTOK_ACCESS_LOG=false``);
- auth, metrics and access log (the default app).

Requests go through httpx's ASGI transport, alternating between the apps round by round so
that the machine's drift hits all alike. Reported: the median time of a tenant-resolved read
with a database query (`GET /api/content/nodes/{id}`) and of one without
(`GET /api/tenant`), and the ratio to its baseline. Targets (DESIGN 7): authentication at
most 10% over the app without it, metrics at most 10% over the app without them, and
authentication, metrics and tracing (sampler off) together at most 10% over nothing.

Tracing is measured in a second phase: its hooks are process-wide (one tracer per process,
as a server runs one app), so once an app is traced every app of the process pays the
flag checks. The second phase compares the default app with the same app traced with the
sampler off (FastAPI and SQLAlchemy instrumented, spans not recorded), and the "together"
figure multiplies the two phases' ratios.
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
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from _report import Figure, emit, median
from rustok_content import CreateNodeInput, NodeKind, NodeService
from rustok_server import Settings, create_app
from rustok_server.auth import TENANT_SCOPES, KeyDirectory
from rustok_server.auth.middleware import AuthMiddleware
from rustok_server.auth.principal import Principal
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.observability.logs import logging_config
from rustok_server.observability.middleware import ObservabilityMiddleware
from rustok_server.request_state import request_state
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
        async with database.writing() as session:
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


class _GivenPrincipal:
    """Stands in for the authentication middleware: the same principal, not verified."""

    def __init__(self, app: ASGIApp, principal: Principal) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_state(scope)["principal"] = self.principal
        await self.app(scope, receive, send)


def _without(app: FastAPI, *classes: type) -> None:
    # The middleware stack is built on the first request: drop these before it.
    app.user_middleware = [m for m in app.user_middleware if getattr(m, "cls", None) not in classes]


async def _measure(
    apps: dict[str, FastAPI], paths: dict[str, str], key: str
) -> dict[tuple[str, str], float]:
    """Median seconds per (app, path label), the apps alternating round by round."""
    results: dict[tuple[str, str], list[float]] = {}
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
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
    return {k: median(v) * 1e6 for k, v in results.items()}


async def main() -> None:
    null = open(os.devnull, "w")  # noqa: SIM115, ASYNC230  # before any request, for the run
    config = logging_config("json", "info")
    config["handlers"]["default"]["stream"] = null  # type: ignore[index]
    logging.config.dictConfig(config)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        node_id, key = await _seed(url)
        settings = Settings(database_url=url, rate_limit_per_second=0)
        paths = {"node read": f"/api/content/nodes/{node_id}", "tenant read": "/api/tenant"}
        apps = {
            "nothing": create_app(settings),
            "auth": create_app(settings),
            "auth and metrics": create_app(settings.model_copy(update={"access_log": False})),
            "auth, metrics and access log": create_app(settings),
        }
        principal = await apps["nothing"].state.context.auth.authenticate(key)
        nothing = apps["nothing"]
        _without(nothing, ObservabilityMiddleware)
        nothing.user_middleware = [
            Middleware(_GivenPrincipal, principal=principal)
            if getattr(m, "cls", None) is AuthMiddleware
            else m
            for m in nothing.user_middleware
        ]
        _without(apps["auth"], ObservabilityMiddleware)
        first = await _measure(apps, paths, key)
        # Phase 2: the default app beside the same app traced, sampler off.
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        traced = create_app(
            settings.model_copy(update={"tracing": True}),
            tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
        )
        second = await _measure({"untraced": create_app(settings), "traced": traced}, paths, key)
    for label in paths:
        compared = (
            ("auth", "nothing", "same app without authentication"),
            ("auth and metrics", "auth", "same app without metrics"),
            ("auth, metrics and access log", "auth", "same app without metrics and access log"),
        )
        for name, baseline, baseline_name in compared:
            value, base = first[(name, label)], first[(baseline, label)]
            target = None if "access" in name else "<= 1.10x"
            met = value / base <= 1.10 if target else None
            figures.append(
                Figure(BENCH, f"{label}, {name} (median)", value, "us",
                       baseline_name, base, target, met)
            )  # fmt: skip
        untraced, value = second[("untraced", label)], second[("traced", label)]
        figures.append(
            Figure(BENCH, f"{label}, tracing on, sampler off (median)", value, "us",
                   "same app untraced (second phase)", untraced)
        )  # fmt: skip
        # Authentication, metrics and tracing together (access records off), over nothing.
        together = first[("auth and metrics", label)] * (value / untraced)
        base = first[("nothing", label)]
        figures.append(
            Figure(BENCH, f"{label}, auth, metrics and tracing (sampler off)", together, "us",
                   "nothing", base, "<= 1.10x", together / base <= 1.10)
        )  # fmt: skip
    emit(figures)
    null.close()


if __name__ == "__main__":
    asyncio.run(main())
