"""The tenant cache and resolver on a real database (SQLite and PostgreSQL): one query
for a thousand concurrent requests, not-found is no breaker failure, changes invalidate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rustok_core.tenancy import InvalidTenantIdentifierError
from rustok_core.testing import ManualClock
from rustok_server import ServerContext, Settings, Tenant, TenantNotFoundError, create_app
from rustok_server.testing import QueryCounter


@pytest.fixture
async def context(database_url: str, tenants: dict[str, Tenant]) -> AsyncIterator[ServerContext]:
    app = create_app(Settings(database_url=database_url), clock=ManualClock())
    server_context: ServerContext = app.state.context
    yield server_context
    await server_context.database.dispose()


async def test_thousand_concurrent_requests_for_one_uncached_tenant_run_one_query(
    context: ServerContext,
) -> None:
    counter = QueryCounter(context.database)
    results = await asyncio.gather(*(context.resolver.resolve(b"acme", None) for _ in range(1000)))
    assert {tenant.slug for tenant in results if tenant is not None} == {"acme"}
    assert len(results) == 1000
    assert counter.count == 1
    assert context.tenant_cache.stats().loads == 1


async def test_unknown_tenants_never_count_as_breaker_failures(context: ServerContext) -> None:
    for slug in ("nobody", "no-one", "none-at-all", "missing", "absent", "gone"):
        with pytest.raises(TenantNotFoundError):
            await context.resolver.resolve(slug.encode(), None)
    stats = context.breaker.stats()
    assert stats.total_failures == 0
    assert stats.state.value == "closed"


async def test_malformed_header_raises_before_any_query(context: ServerContext) -> None:
    counter = QueryCounter(context.database)
    with pytest.raises(InvalidTenantIdentifierError):
        await context.resolver.resolve(b"../../etc", None)
    assert counter.count == 0


async def test_renaming_and_changing_domain_invalidate_old_and_new_keys(
    context: ServerContext,
) -> None:
    resolver = context.resolver
    assert (await resolver.resolve(None, b"shop.acme.example")) is not None
    with pytest.raises(TenantNotFoundError):
        await resolver.resolve(None, b"new.acme.example")  # cached as unknown
    await context.tenants.update("acme", name="Acme Renamed", domain="new.acme.example")
    renamed = await resolver.resolve(None, b"new.acme.example")
    assert renamed is not None
    assert renamed.name == "Acme Renamed"
    with pytest.raises(TenantNotFoundError):
        await resolver.resolve(None, b"shop.acme.example")
    by_slug = await resolver.resolve(b"acme", None)
    assert by_slug is not None
    assert by_slug.name == "Acme Renamed"
