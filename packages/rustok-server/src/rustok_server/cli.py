"""The ``rustok-server`` command: serve, migrate, and administer tenants and API keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from rustok_core.error import RichError
from rustok_server.__about__ import __version__
from rustok_server.auth.keys import KeyDirectory
from rustok_server.auth.scopes import TENANT_SCOPES
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.demo_data import seed_demo_data
from rustok_server.scaleout import announce_on_redis
from rustok_server.settings import Settings
from rustok_server.tenancy.repository import Tenant, TenantDirectory

if TYPE_CHECKING:
    import uvicorn

__all__ = ["main"]

T = TypeVar("T")
DEMO_SLUG = "demo"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
STARTUP_FAILED = 2
"""Exit status of `serve` when it cannot start: a bad setting, a busy port, no database."""


class _StartupError(Exception):
    """Why `serve` cannot start, as the one line it prints."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit status 2) naming the flag."""

    def error(self, message: str) -> NoReturn:
        self.exit(STARTUP_FAILED, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    serve.add_argument(
        "--port", type=_port, help="port to listen on (default: $RUSTOK_PORT or 8000)"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the port (default: 1; use PostgreSQL for more than one)",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="least severe log records shown (default: $RUSTOK_LOG_LEVEL or info)",
    )
    serve.add_argument(
        "--metrics-port",
        type=_port,
        help="also answer GET /metrics on this port, without credentials, on "
        "$RUSTOK_METRICS_HOST (default 127.0.0.1); default: $RUSTOK_METRICS_PORT or none",
    )
    serve.add_argument("--reload", action="store_true", help="restart when the code changes")

    deliver = commands.add_parser(
        "deliver",
        help="deliver webhook events, without serving HTTP",
        description="Deliver the due webhook events of the database until stopped (SIGINT "
        "or SIGTERM), without serving HTTP: run it beside `serve` processes started with "
        "RUSTOK_WEBHOOKS=false, so that sending webhooks takes no time from requests.",
    )
    deliver.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="least severe log records shown (default: $RUSTOK_LOG_LEVEL or info)",
    )

    commands.add_parser(
        "migrate",
        help="migrate the database to the newest schema",
        description="Create the database if there is none, and migrate it to the newest "
        "schema (serve does this too before it starts).",
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

    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_key = key_actions.add_parser(
        "create",
        help="create a key; prints it once, alone on the last line",
        description="Create an API key. The key is printed once, alone on the last line of "
        "stdout, and never shown again.",
    )
    create_key.add_argument("tenant", nargs="?", help="the tenant's UUID or slug")
    create_key.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=[scope.value for scope in TENANT_SCOPES],
        help="a scope of the key (repeat for more)",
    )
    create_key.add_argument("--admin", action="store_true", help="a platform admin key")
    create_key.add_argument("--expires", type=_positive_int, metavar="DAYS", help="expiry")
    create_key.add_argument("--name", default="", help="a note of what the key is for")
    list_keys = key_actions.add_parser(
        "list",
        help="list keys (never their secrets)",
        description="List a tenant's API keys, or the admin keys: id, state (active, "
        "expired or revoked), scopes, expiry and last use. Secrets are never shown.",
    )
    list_keys.add_argument("tenant", nargs="?", help="the tenant's UUID or slug")
    list_keys.add_argument("--admin", action="store_true", help="list the admin keys")
    revoke = key_actions.add_parser(
        "revoke",
        help="revoke a key (it stops within a second)",
        description="Revoke an API key by its id; every serving process refuses it within "
        "a second.",
    )
    revoke.add_argument("key_id", help="the key's id (the part after rsk_)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rustok-server`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.database_url:
        # The environment, not an argument, so that `serve --reload` workers see it too.
        os.environ["RUSTOK_DATABASE_URL"] = args.database_url
    try:
        settings = Settings()
    except ValidationError as exc:
        flags = {"database_url": "--database-url"} if args.database_url else {}
        print(f"rustok-server: {_settings_problem(exc, flags)}", file=sys.stderr)
        return STARTUP_FAILED
    if args.command == "serve":
        try:
            return _serve(settings, args)
        except RichError as exc:
            return _refused(exc)
    try:
        if args.command == "migrate":
            asyncio.run(_with_database(settings, _migrate))
            print(f"database migrated: {_describe(settings.database_url)}")
            return 0
        missing = _missing_database(settings.database_url)
        if missing is not None:
            print(
                f"rustok-server: no database at {missing}: run `rustok-server migrate` there, "
                "or set RUSTOK_DATABASE_URL (or --database-url)",
                file=sys.stderr,
            )
            return STARTUP_FAILED
        if args.command == "keys":
            return asyncio.run(_with_database(settings, lambda db: _keys(db, args)))
        if args.command == "deliver":
            return _deliver(settings, args.log_level or settings.log_level)
        return asyncio.run(_with_database(settings, lambda db: _tenants(db, args)))
    except RichError as exc:
        return _refused(exc)
    except ModuleNotFoundError as exc:
        print(f"rustok-server: the database driver {exc.name} is not installed", file=sys.stderr)
        return STARTUP_FAILED
    except (OSError, SQLAlchemyError) as exc:
        reason = _reason(exc)
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            reason = "it has no tables yet: run `rustok-server migrate`"
        described = _describe(settings.database_url)
        print(f"rustok-server: cannot use the database {described}: {reason}", file=sys.stderr)
        return STARTUP_FAILED


def _refused(error: RichError) -> int:
    print(f"rustok-server: {error.user_message or error.message}", file=sys.stderr)
    return 1


def _missing_database(url: str) -> Path | None:
    """The file of a SQLite ``url`` when it does not exist (commands other than `serve` and
    `migrate` need a database and must not create an empty one), else ``None``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database).resolve()
    return None if path.exists() else path


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    database = Database(settings.database_url)
    # Serving processes hear of a tenant or key change at once (the counter is the fallback).
    url = settings.redis_url
    close = (
        None
        if url is None
        else announce_on_redis(
            database, url, timeout=settings.redis_timeout, namespace=settings.redis_namespace
        )
    )
    try:
        return await work(database)
    finally:
        await database.dispose()
        if close is not None:
            close()


def _deliver(settings: Settings, level: str) -> int:
    """`deliver`: the webhook deliverer of `serve`, alone, until SIGINT or SIGTERM."""
    import logging.config
    import signal

    from rustok_server.db.guard import DatabaseGuard
    from rustok_server.observability.logs import logging_config
    from rustok_server.webhooks.delivery import Deliverer

    logging.config.dictConfig(logging_config(settings.log_format, level))

    async def run() -> int:
        guard = DatabaseGuard(
            None, read_timeout=settings.db_query_timeout, write_timeout=settings.db_write_timeout
        )
        database = Database(settings.database_url, guard=guard)
        deliverer = Deliverer(database, settings)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        try:
            await database.read("SELECT 1 FROM webhook_deliveries LIMIT 1", [])
            print(
                f"rustok-server {__version__} delivering webhooks from "
                f"{_describe(settings.database_url)}",
                flush=True,
            )
            deliverer.start()
            await stopped.wait()
        finally:
            await deliverer.stop()
            await database.dispose()
        return 0

    return asyncio.run(run())


async def _migrate(database: Database) -> int:
    await upgrade(database)
    return 0


async def _prepare(database: Database, *, demo: bool) -> str | None:
    """Migrate; create the demo tenant (with sample nodes and orders) and a demo key of
    every scope when asked and there is no tenant. Returns the demo key if it made one."""
    await upgrade(database)
    directory = TenantDirectory(database)
    if demo and await directory.count() == 0:
        tenant = await directory.create(DEMO_SLUG, "Demo tenant")
        await seed_demo_data(database, tenant.id)
        _key, token = await KeyDirectory(database).create(
            DEMO_SLUG, [scope.value for scope in TENANT_SCOPES], name="demo key"
        )
        return token
    return None


def _settings_problem(error: ValidationError, flags: dict[str, str]) -> str:
    """One line naming the first bad setting, as the user gave it (the flag in ``flags``
    for a field set by one, else its ``RUSTOK_*`` variable), and what is wrong with it."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    variable = f"RUSTOK_{field.upper()}"
    value = os.environ.get(variable)
    variable = flags.get(field, variable)
    # A URL may hold a password, a key is a secret: never echo those.
    secret = any(word in field for word in ("url", "key", "secret", "token", "password"))
    shown = f" (got {value!r})" if value is not None and not secret else ""
    return f"{variable}: {first['msg']}{shown}"


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything else, so a busy port fails at once."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise _StartupError(f"cannot listen on {host}:{port}: {reason.lower()}") from exc
    sock.set_inheritable(True)  # the worker processes serve on this socket too
    return sock


async def _prepare_or_explain(settings: Settings) -> str | None:
    try:
        return await _with_database(settings, lambda db: _prepare(db, demo=settings.demo_tenant))
    except ModuleNotFoundError as exc:
        raise _StartupError(
            f"the database driver {exc.name} is not installed; for PostgreSQL install "
            "rustok-server[postgres]"
        ) from exc
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise _StartupError(
            f"cannot use the database {_describe(settings.database_url)}: {_reason(exc)}"
        ) from exc


def _reason(error: BaseException) -> str:
    """The root cause of a connection failure, in one line."""
    while error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig  # the driver's own exception
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # only `serve` needs it

    from rustok_server.observability.logs import logging_config

    host: str = args.host or settings.host
    port: int = settings.port if args.port is None else args.port
    metrics_port: int | None = args.metrics_port or settings.metrics_port
    level: str = args.log_level or settings.log_level
    if args.reload and args.workers > 1:
        print("rustok-server: --reload and --workers exclude each other", file=sys.stderr)
        return STARTUP_FAILED
    with contextlib.ExitStack() as cleanup:
        try:
            sock = cleanup.enter_context(_listen(host, port))
            if args.workers > 1 or metrics_port is not None:
                metrics_dir = Path(tempfile.mkdtemp(prefix="rustok-metrics-"))
                cleanup.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
                _share_metrics(metrics_dir, settings.metrics_host, metrics_port, cleanup)
            if settings.tracing and importlib.util.find_spec("opentelemetry.sdk") is None:
                raise _StartupError(
                    "RUSTOK_TRACING needs the OpenTelemetry packages: "
                    "pip install 'rustok-server[otel]'"
                )
            demo = asyncio.run(_prepare_or_explain(settings))
        except _StartupError as exc:
            print(f"rustok-server: {exc}", file=sys.stderr)
            return STARTUP_FAILED
        port = sock.getsockname()[1]
        url = (
            f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
        )
        workers = f", {args.workers} workers" if args.workers > 1 else ""
        print(f"rustok-server {__version__} listening on {url}{workers}", flush=True)
        print(f"  database: {_describe(settings.database_url)}", flush=True)
        if metrics_port is not None:
            print(f"  metrics: http://{settings.metrics_host}:{metrics_port}/metrics", flush=True)
        if demo:
            print(f"  created the demo tenant '{DEMO_SLUG}'", flush=True)
            print(
                "  demo key (every scope of 'demo', for trying things out; shown once):",
                flush=True,
            )
            print(f"  {demo}", flush=True)
            print(f"  try: curl -H 'Authorization: Bearer {demo}' {url}/api/tenant", flush=True)
        else:
            if settings.demo_tenant:  # the demo key was shown once, on the first start
                print(
                    f"  a key for '{DEMO_SLUG}': rustok-server keys create {DEMO_SLUG} "
                    + " ".join(f"--scope {scope.value}" for scope in TENANT_SCOPES),
                    flush=True,
                )
            print(f"  try: curl {url}/health/ready", flush=True)
        config = uvicorn.Config(
            APP,
            factory=True,
            # Imported by each worker: limits on request heads, slow clients and connections.
            http="rustok_server.http.protocol:HttpProtocol",
            # uvicorn declares an int, but only waits that long: a float works.
            timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=settings.max_header_bytes,  # without httptools
            workers=args.workers,
            reload=args.reload,
            log_config=logging_config(settings.log_format, level),
            log_level=level,
            access_log=False,  # requests are logged once, with tenant and route, by the app
            server_header=False,  # no "server: uvicorn" banner
        )
        _run(config, sock)
    return 0


APP = "rustok_server.app:create_app_from_env"
"""What `serve` runs: the app factory, read from the environment in every worker."""


def _run(config: uvicorn.Config, sock: socket.socket) -> None:
    """Serve on the socket bound by `serve`, with one worker, N, or the reloader.

    uvicorn is handed the socket object, as its own `run` does after binding, never its file
    descriptor: uvicorn takes a descriptor for a Unix socket, so the connections it accepted
    missed TCP_NODELAY, and every keep-alive response waited about 40 ms for the client's
    delayed ACK (Nagle's algorithm).
    """
    import uvicorn
    from uvicorn.supervisors import ChangeReload, Multiprocess

    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[sock]).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])


def _share_metrics(
    directory: Path, host: str, port: int | None, cleanup: contextlib.ExitStack
) -> None:
    """Multiprocess metrics for the workers, and the metrics port served from here."""
    from rustok_server.observability.multiprocess import prepare_multiprocess_dir

    # Before this process or a worker imports prometheus_client (see that module).
    prepare_multiprocess_dir(directory)
    if port is None:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise _StartupError(f"cannot listen on {host}:{port} for metrics: {reason}") from exc
    cleanup.callback(server.shutdown)


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


async def _keys(database: Database, args: argparse.Namespace) -> int:
    directory = KeyDirectory(database)
    if args.action == "revoke":
        key = await directory.revoke(args.key_id)
        print(f"revoked {key.id} (it stops working within a second)")
        return 0
    if args.admin == (args.tenant is not None):
        print("rustok-server: name a tenant, or pass --admin (not both)", file=sys.stderr)
        return 1
    tenant = None if args.admin else args.tenant
    if args.action == "list":
        keys = await directory.list(tenant)
        now = directory.clock()
        for key in keys:
            until = key.expires_at.isoformat() if key.expires_at else "never"
            used = key.last_used_at.isoformat() if key.last_used_at else "never"
            if key.revoked_at:
                state = "revoked"
            elif key.expires_at is not None and key.expires_at <= now:
                state = "expired"
            else:
                state = "active"
            print(f"{key.id}  {state:<8} {' '.join(key.scopes):<50} expires {until}  used {used}")
        if not keys:
            print("no keys; create one with: rustok-server keys create SLUG --scope SCOPE")
        return 0
    scopes = ["admin"] if args.admin else args.scope
    if not scopes:
        print("rustok-server: give at least one --scope", file=sys.stderr)
        return 1
    expires = None if args.expires is None else timedelta(days=args.expires)
    key, token = await directory.create(tenant, scopes, expires_in=expires, name=args.name)
    what = "admin key" if args.admin else f"key of {args.tenant}"
    print(f"created the {what} {key.id} with scopes {' '.join(key.scopes)}", flush=True)
    print("the key is shown once; store it now:", flush=True)
    print(token, flush=True)
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
