"""Tenant cache benchmark: the hit path beside a plain dict, and load coalescing.

Figures, each beside its baseline measured in this same process:

- cache hit, ``TenantCache.get_fresh`` (median and p99) vs ``dict.get`` with the same
  key (target: median at most 2 us);
- cache hit through ``await TenantCache.get`` (median) vs the same ``dict.get``;
- the whole resolver on a cache hit, raw ``X-Tenant-ID`` bytes to a ``Tenant``
  (median), beside ``dict.get``: what every tenant-resolved request pays;
- the resolver's header parsing on a hit, beside ``parse_tenant_identifier`` alone
  (what remembering parsed header values saves);
- 1,000 concurrent requests for one uncached tenant, sent to the real app on a real
  SQLite database: the number of tenant queries it runs (target: exactly 1), beside a
  plain dict cache without load coalescing doing the same 1,000 lookups.

Run: ``python tools/bench/bench_tenant_cache.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, median, percentile
from rustok_core.tenancy import TenantIdentifier, parse_tenant_identifier
from rustok_server import Settings, Tenant, TenantDirectory, create_app
from rustok_server.auth import TENANT_SCOPES, KeyDirectory
from rustok_server.db import Database
from rustok_server.db.migrations import upgrade
from rustok_server.tenancy.tenant_cache import TenantCache
from rustok_server.testing import QueryCounter

BENCH = "tenant_cache"
NUMBER = 500  # calls per sample
REPEAT = 300  # samples
CONCURRENT = 1_000


def _time_sync(step: Callable[[], object], number: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(number):
        step()
    return (clock() - start) / number


async def _time_async(step: Callable[[], Awaitable[object]], number: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(number):
        await step()
    return (clock() - start) / number


async def _hit_path(tenant: Tenant) -> dict[str, list[float]]:
    """ns per call of each step; samples interleaved so noise weighs on all alike."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    resolver = app.state.context.resolver
    key = parse_tenant_identifier(tenant.slug)

    async def load(_key: TenantIdentifier) -> Tenant | None:
        return tenant

    cache: TenantCache[TenantIdentifier, Tenant] = TenantCache(load)
    await cache.get(key)  # one load; every read below is a hit
    resolver.cache = cache
    plain: dict[TenantIdentifier, Tenant] = {key: tenant}
    raw = tenant.slug.encode()

    def dict_get() -> object:
        return plain.get(key)

    def get_fresh() -> object:
        return cache.get_fresh(key)

    async def get() -> object:
        return await cache.get(key)

    async def resolve() -> object:
        return await resolver.resolve(raw, None)

    def parse() -> object:
        return parse_tenant_identifier(raw.decode())

    found = await resolve()
    assert found is tenant, found
    sync_steps: dict[str, Callable[[], object]] = {
        "dict": dict_get,
        "get_fresh": get_fresh,
        "parse": parse,
    }
    async_steps: dict[str, Callable[[], Awaitable[object]]] = {"get": get, "resolve": resolve}
    results: dict[str, list[float]] = {name: [] for name in [*sync_steps, *async_steps]}
    for warm_up in (True, False):
        for _ in range(20 if warm_up else REPEAT):
            for name, sync_step in sync_steps.items():
                value = _time_sync(sync_step, NUMBER)
                if not warm_up:
                    results[name].append(value)
            for name, step in async_steps.items():
                value = await _time_async(step, NUMBER)
                if not warm_up:
                    results[name].append(value)
    await app.state.database.dispose()
    return results


async def _without_coalescing(url: str) -> int:
    """Tenant queries of CONCURRENT lookups at once through a plain dict cache."""
    database = Database(url)
    counter = QueryCounter(database)
    directory = TenantDirectory(database)
    plain: dict[TenantIdentifier, Tenant | None] = {}
    key = parse_tenant_identifier("acme")

    async def lookup() -> Tenant | None:
        if key in plain:
            return plain[key]
        tenant = await directory.find(key)
        plain[key] = tenant
        return tenant

    found = await asyncio.gather(*(lookup() for _ in range(CONCURRENT)))
    await database.dispose()
    assert all(tenant is not None for tenant in found)
    return sum(1 for sql in counter.statements if "FROM tenants" in sql)


async def _coalescing(directory: Path) -> tuple[int, int, int, int]:
    """(tenant queries, 200 answers, coalesced waits, queries without coalescing) for
    CONCURRENT requests at once."""
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    database = Database(url)
    await upgrade(database)
    await TenantDirectory(database).create("acme", "Acme Corporation")
    _key, secret = await KeyDirectory(database).create("acme", list(TENANT_SCOPES))
    await database.dispose()

    # No rate limit: the 1,000 requests of one tenant at once are more than its burst.
    app = create_app(Settings(database_url=url, rate_limit_per_second=0))
    counter = QueryCounter(app.state.context.database)
    transport = httpx.ASGITransport(app=app)
    limits = httpx.Limits(max_connections=None)
    # The tenant's own key: anonymous requests are refused before the tenant is looked up.
    headers = {"X-Tenant-ID": "acme", "Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", limits=limits) as client:
        answers = await asyncio.gather(
            *(client.get("/api/tenant", headers=headers) for _ in range(CONCURRENT))
        )
    ok = sum(1 for answer in answers if answer.status_code == 200)
    tenant_queries = sum(1 for sql in counter.statements if "FROM tenants" in sql)
    coalesced = app.state.context.tenant_cache.stats().coalesced_waits
    await app.state.database.dispose()
    return tenant_queries, ok, coalesced, await _without_coalescing(url)


def main() -> None:
    gc.collect()
    stamp = datetime.now(UTC)
    tenant = Tenant(uuid.uuid4(), "acme", None, "Acme Corporation", True, stamp, stamp)
    samples = asyncio.run(_hit_path(tenant))
    with tempfile.TemporaryDirectory(prefix="rustok-bench-") as tmp:
        queries, ok, coalesced, plain_queries = asyncio.run(_coalescing(Path(tmp)))

    us = 1 / 1000
    dict_median = median(samples["dict"]) * us
    dict_p99 = percentile(samples["dict"], 99) * us
    hit_median = median(samples["get_fresh"]) * us
    hit_p99 = percentile(samples["get_fresh"], 99) * us
    get_median = median(samples["get"]) * us
    resolve_median = median(samples["resolve"]) * us
    resolve_p99 = percentile(samples["resolve"], 99) * us
    parse_median = median(samples["parse"]) * us
    emit(
        [
            Figure(
                BENCH,
                "cache hit, get_fresh (median)",
                hit_median,
                "us",
                "dict.get, same key (median)",
                dict_median,
                "<= 2 us",
                hit_median <= 2.0,
            ),
            Figure(
                BENCH,
                "cache hit, get_fresh (p99)",
                hit_p99,
                "us",
                "dict.get, same key (p99)",
                dict_p99,
            ),
            Figure(
                BENCH,
                "cache hit, await get (median)",
                get_median,
                "us",
                "dict.get, same key (median)",
                dict_median,
                "<= 2 us",
                get_median <= 2.0,
            ),
            Figure(
                BENCH,
                "resolver, header bytes to tenant on a hit (median)",
                resolve_median,
                "us",
                "dict.get, same key (median)",
                dict_median,
            ),
            Figure(
                BENCH,
                "resolver on a hit, beside header parsing alone (median)",
                resolve_median,
                "us",
                "parse_tenant_identifier alone (median)",
                parse_median,
            ),
            Figure(
                BENCH,
                "resolver, header bytes to tenant on a hit (p99)",
                resolve_p99,
                "us",
                "dict.get, same key (p99)",
                dict_p99,
            ),
            Figure(
                BENCH,
                f"{CONCURRENT:,} concurrent requests, one uncached tenant: tenant queries",
                float(queries),
                "queries",
                "plain dict cache, no coalescing",
                float(plain_queries),
                "exactly 1 query, all answered",
                queries == 1 and ok == CONCURRENT,
            ),
        ]
    )
    print(
        f"[{BENCH}] ({ok:,} of the {CONCURRENT:,} requests answered 200; "
        f"{coalesced:,} joined the one load)"
    )


if __name__ == "__main__":
    main()
