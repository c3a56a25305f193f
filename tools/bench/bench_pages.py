"""Page latency as data grows: ``GET /api/content/nodes`` for each filter, beside the
unfiltered page, at 10k and 100k content nodes in one tenant (1M with ``--million`` or
``RUSTOK_BENCH_MILLION=1``: generating and indexing a million rows takes minutes), on
SQLite and on PostgreSQL (a private cluster, ``rustok_core.testing.PostgresServer``,
when its server binaries are on the machine).

Rows are generated in bulk (``executemany`` on SQLite, ``generate_series`` on
PostgreSQL): states by position (1% archived, 19% published, the rest drafts), kinds in
turn, creation times one millisecond apart. The requests go straight to the ASGI app in
this process (no HTTP): the first page (50 items) and a page from the middle of the
tenant's rows (by cursor), the median of ``REQUESTS`` requests each.

Target: at the largest size, every filtered page at most 2x the unfiltered page (every
list route costs O(page size), whatever the filter).

Run: ``python tools/bench/bench_pages.py [--million]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from starlette.types import ASGIApp, Message, Scope

from _report import Figure, emit, median
from bench_http import _create_postgres_database, _prepare_database

BENCH = "pages"
REQUESTS = 30
PAGE = 50
FILTERS: dict[str, str] = {
    "unfiltered": "",
    "state=published": "state=published",
    "state=archived (1%)": "state=archived",
    "kind=page": "kind=page",
    "state=archived&kind=page": "state=archived&kind=page",
}
START = datetime(2026, 1, 1, tzinfo=UTC)


def _state(n: int) -> tuple[str, str]:
    """(state, state_data JSON) of the n-th row."""
    at = (START + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
    if n % 100 == 0:
        return "archived", json.dumps({"archived_at": at, "reason": "old"})
    if n % 100 < 20:
        return "published", json.dumps({"published_at": at})
    return "draft", "{}"


_KINDS = ("article", "page", "post")


def _fill_sqlite(path: str, tenant: uuid.UUID, start: int, stop: int) -> None:
    connection = sqlite3.connect(path)
    rows = []
    for n in range(start, stop):
        state, data = _state(n)
        at = (START + timedelta(milliseconds=n)).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows.append(
            (
                uuid.uuid4().hex,
                tenant.hex,
                _KINDS[n % 3],
                f"Node {n}",
                f"node-{n}",
                state,
                data,
                at,
                at,
            )
        )
    connection.executemany(
        "INSERT INTO content_nodes (id, tenant_id, kind, title, slug, author_id, parent_id, "
        "category_id, state, state_data, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, 1, ?, ?)",
        rows,
    )
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()


async def _fill_postgres(dsn: str, tenant: uuid.UUID, start: int, stop: int) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            INSERT INTO content_nodes (id, tenant_id, kind, title, slug, author_id, parent_id,
                category_id, state, state_data, version, created_at, updated_at)
            SELECT gen_random_uuid(), $1, (ARRAY['article', 'page', 'post'])[n % 3 + 1],
                'Node ' || n, 'node-' || n, NULL, NULL, NULL,
                CASE WHEN n % 100 = 0 THEN 'archived'
                     WHEN n % 100 < 20 THEN 'published' ELSE 'draft' END,
                CASE WHEN n % 100 = 0 THEN json_build_object('archived_at', stamp, 'reason', 'old')
                     WHEN n % 100 < 20 THEN json_build_object('published_at', stamp)
                     ELSE '{}'::json END,
                1, at, at
            FROM (
                SELECT n, at,
                    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS stamp
                FROM (
                    SELECT n, $4::timestamptz + n * interval '1 millisecond' AS at
                    FROM generate_series($2::int, $3::int - 1) AS n
                ) AS times
            ) AS rows
            """,
            tenant,
            start,
            stop,
            START,
        )
        await connection.execute("ANALYZE content_nodes")
    finally:
        await connection.close()


async def _get(app: ASGIApp, query: str, headers: dict[str, str]) -> tuple[float, bytes]:
    """(seconds, body) of one GET /api/content/nodes?query, straight through ASGI."""
    chunks: list[bytes] = []
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/content/nodes",
        "raw_path": b"/api/content/nodes",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    start = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    if statuses != [200]:
        raise RuntimeError(f"GET /api/content/nodes?{query} answered {statuses}")
    return elapsed, b"".join(chunks)


async def _latencies(
    url: str, size: int, headers: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Per filter, (first page ms, middle page ms)."""
    from rustok_server import Settings, create_app
    from rustok_server.http.pagination import Cursor

    # The limiter runs, at a limit no run reaches.
    app = create_app(
        Settings(database_url=url, rate_limit_per_second=1e6, rate_limit_burst=1_000_000)
    )
    middle = Cursor.of((START + timedelta(milliseconds=size // 2), uuid.UUID(int=0)))
    assert middle is not None
    results: dict[str, tuple[float, float]] = {}
    async with app.router.lifespan_context(app):
        for name, query in FILTERS.items():
            base = f"limit={PAGE}" + (f"&{query}" if query else "")
            pages = (base, f"{base}&cursor={middle}")
            times: list[list[float]] = [[], []]
            for _ in range(REQUESTS):
                for i, page in enumerate(pages):
                    elapsed, body = await _get(app, page, headers)
                    times[i].append(elapsed * 1e3)
            if not json.loads(body)["items"]:
                raise RuntimeError(f"{name}: the page of the middle is empty at {size} rows")
            results[name] = (median(times[0]), median(times[1]))
    return results


def _figures(
    database: str, size: int, results: dict[str, tuple[float, float]], last: bool
) -> list[Figure]:
    figures: list[Figure] = []
    first_base, middle_base = results["unfiltered"]
    for name, (first, middle) in results.items():
        if name == "unfiltered":
            continue
        for label, value, base in (
            ("first page", first, first_base),
            ("middle page", middle, middle_base),
        ):
            figures.append(
                Figure(
                    BENCH,
                    f"{database}, {size:,} rows: {name}, {label}",
                    value,
                    "ms",
                    "unfiltered page",
                    base,
                    "<= 2x baseline" if last else None,
                    value <= 2 * base if last else None,
                )
            )
    return figures


def main(argv: list[str]) -> int:
    sizes = [10_000, 100_000]
    if "--million" in argv or os.environ.get("RUSTOK_BENCH_MILLION") == "1":
        sizes.append(1_000_000)
    figures: list[Figure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rustok-bench-pages-") as tmp:
        path = str(Path(tmp) / "pages.db")
        url = f"sqlite+aiosqlite:///{path}"
        tenant, headers = asyncio.run(_prepare_database(url))
        runs: list[tuple[str, str, dict[str, str], Callable[[int, int], None]]] = [
            ("SQLite", url, headers, lambda a, b: _fill_sqlite(path, tenant, a, b))
        ]
        try:
            from rustok_core.testing import PostgresServer, ServerStartError

            postgres = PostgresServer().start()
        except (ImportError, ServerStartError) as error:
            postgres = None
            notes.append(f"PostgreSQL not measured: {str(error).splitlines()[0]}")
        try:
            if postgres is not None:
                pg_url = asyncio.run(_create_postgres_database(postgres.url, "pages"))
                pg_tenant, pg_headers = asyncio.run(_prepare_database(pg_url))
                dsn = pg_url.replace("+asyncpg", "")
                runs.append(
                    (
                        "PostgreSQL",
                        pg_url,
                        pg_headers,
                        lambda a, b: asyncio.run(_fill_postgres(dsn, pg_tenant, a, b)),
                    )
                )
            for database, database_url, database_headers, fill in runs:
                filled = 0
                for size in sizes:
                    started = time.perf_counter()
                    fill(filled, size)
                    filled = size
                    print(
                        f"[{BENCH}] {database}: {size:,} rows in "
                        f"{time.perf_counter() - started:.1f} s",
                        flush=True,
                    )
                    results = asyncio.run(_latencies(database_url, size, database_headers))
                    figures += _figures(database, size, results, size == sizes[-1])
                    for name, (first, middle) in results.items():
                        if name == "unfiltered":
                            figures.append(
                                Figure(
                                    BENCH,
                                    f"{database}, {size:,} rows: unfiltered, first page",
                                    first,
                                    "ms",
                                )
                            )
                            figures.append(
                                Figure(
                                    BENCH,
                                    f"{database}, {size:,} rows: unfiltered, middle page",
                                    middle,
                                    "ms",
                                )
                            )
        finally:
            if postgres is not None:
                postgres.stop()
    emit(figures)
    if "--million" not in argv and os.environ.get("RUSTOK_BENCH_MILLION") != "1":
        notes.append("1M rows not measured: pass --million (or RUSTOK_BENCH_MILLION=1)")
    for note in notes:
        print(f"[{BENCH}] ({note})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
