"""The ``rustok-server`` command: serve, migrate, and administer tenants."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from rustok_core.error import RichError
from rustok_server.__about__ import __version__
from rustok_server.db import Database
from rustok_server.db.demo_data import seed_demo_data
from rustok_server.db.migrations import upgrade
from rustok_server.settings import Settings
from rustok_server.tenancy.repository import Tenant, TenantDirectory

__all__ = ["main"]

DEMO_SLUG = "demo"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rustok-server",
        description="The RusTok multi-tenant server. Settings come from RUSTOK_* variables.",
    )
    parser.add_argument("--version", action="version", version=f"rustok-server {__version__}")
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy async URL (default: $RUSTOK_DATABASE_URL or sqlite+aiosqlite:///./rustok.db)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="migrate the database, create the demo tenant if there is none, and serve HTTP",
        description="Migrate the database, create the tenant 'demo' when there are no "
        "tenants (unless RUSTOK_DEMO_TENANT=false), then serve HTTP.",
    )
    serve.add_argument("--host", help="address to listen on (default: $RUSTOK_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: $RUSTOK_PORT or 8000)")
    serve.add_argument("--reload", action="store_true", help="restart when the code changes")

    commands.add_parser(
        "migrate", help="migrate the database to the newest schema", description="Migrate."
    )

    tenants = commands.add_parser("tenants", help="create, list, show or disable tenants")
    actions = tenants.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a tenant", description="Create a tenant.")
    create.add_argument("slug", help="unique short name: lowercase letters, digits and '-'")
    create.add_argument("--name", required=True, help="display name")
    create.add_argument("--domain", help="the tenant's own host name, e.g. shop.acme.test")
    actions.add_parser("list", help="list tenants", description="List every tenant.")
    for action, text in (
        ("show", "show one tenant"),
        ("disable", "disable a tenant (it then resolves to 404)"),
        ("enable", "enable a disabled tenant"),
    ):
        sub = actions.add_parser(action, help=text, description=text.capitalize() + ".")
        sub.add_argument("tenant", help="the tenant's UUID or slug")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rustok-server`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.database_url:
        # The environment, not an argument, so that `serve --reload` workers see it too.
        os.environ["RUSTOK_DATABASE_URL"] = args.database_url
    settings = Settings()
    try:
        if args.command == "serve":
            return _serve(settings, args.host, args.port, reload=args.reload)
        if args.command == "migrate":
            asyncio.run(_with_database(settings, _migrate))
            print(f"database migrated: {_describe(settings.database_url)}")
            return 0
        return asyncio.run(_with_database(settings, lambda db: _tenants(db, args)))
    except RichError as exc:
        print(f"rustok-server: {exc.user_message or exc.message}", file=sys.stderr)
        return 1


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    database = Database(settings.database_url)
    try:
        return await work(database)
    finally:
        await database.dispose()


async def _migrate(database: Database) -> int:
    await upgrade(database)
    return 0


async def _prepare(database: Database, *, demo: bool) -> int:
    """Migrate; create the demo tenant (with sample nodes and orders) when asked and there
    is no tenant. 1 if created."""
    await upgrade(database)
    directory = TenantDirectory(database)
    if demo and await directory.count() == 0:
        tenant = await directory.create(DEMO_SLUG, "Demo tenant")
        await seed_demo_data(database, tenant.id)
        return 1
    return 0


def _serve(settings: Settings, host: str | None, port: int | None, *, reload: bool) -> int:
    import uvicorn  # only `serve` needs it

    host = host or settings.host
    port = settings.port if port is None else port
    demo = asyncio.run(_with_database(settings, lambda db: _prepare(db, demo=settings.demo_tenant)))
    url = f"http://{host}:{port}"
    print(f"rustok-server {__version__} listening on {url}", flush=True)
    print(f"  database: {_describe(settings.database_url)}", flush=True)
    if demo:
        print(f"  created the demo tenant '{DEMO_SLUG}'", flush=True)
    print(f"  try: curl -H 'X-Tenant-ID: {DEMO_SLUG}' {url}/health/ready", flush=True)
    uvicorn.run(
        "rustok_server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        log_level="info",
    )
    return 0


async def _tenants(database: Database, args: argparse.Namespace) -> int:
    directory = TenantDirectory(database)
    if args.action == "create":
        _print_tenant(await directory.create(args.slug, args.name, domain=args.domain))
    elif args.action == "list":
        tenants = await directory.list(limit=10_000)
        for tenant in tenants:
            state = "active" if tenant.active else "disabled"
            domain = tenant.domain or "-"
            print(f"{tenant.id}  {tenant.slug:<24} {state:<8} {domain:<30} {tenant.name}")
        if not tenants:
            print("no tenants; create one with: rustok-server tenants create SLUG --name NAME")
    elif args.action == "show":
        _print_tenant(await directory.get(args.tenant))
    else:
        _print_tenant(await directory.set_active(args.tenant, args.action == "enable"))
    return 0


def _print_tenant(tenant: Tenant) -> None:
    print(f"id:      {tenant.id}")
    print(f"slug:    {tenant.slug}")
    print(f"name:    {tenant.name}")
    print(f"domain:  {tenant.domain or '-'}")
    print(f"active:  {'yes' if tenant.active else 'no'}")
    print(f"created: {tenant.created_at.isoformat()}")
    print(f"updated: {tenant.updated_at.isoformat()}")


def _describe(url: str) -> str:
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return f"{shown} (file {Path(parsed.database).resolve()})"
    return shown


if __name__ == "__main__":
    raise SystemExit(main())
