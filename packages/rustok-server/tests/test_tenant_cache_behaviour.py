"""TenantCache: lifetimes, capacity, negative entries, invalidation, coalescing and
stale-if-error, on a clock moved by hand."""

from __future__ import annotations

import asyncio

import pytest

from rustok_core.testing import ManualClock
from rustok_server.tenancy.tenant_cache import TenantCache, TenantCacheConfig


class DatabaseDown(Exception):
    pass


class Loader:
    """Stands in for the database: known names load as upper case; counts calls."""

    def __init__(self, known: set[str] | None = None) -> None:
        self.known = known if known is not None else {"acme", "globex", "initech"}
        self.calls: list[str] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self, key: str) -> str | None:
        self.calls.append(key)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise DatabaseDown(f"database down while loading {key}")
        return key.upper() if key in self.known else None


CONFIG = TenantCacheConfig(ttl=300, idle=180, capacity=3, negative_ttl=30, stale_window=3600)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def loader() -> Loader:
    return Loader()


@pytest.fixture
def cache(loader: Loader, clock: ManualClock) -> TenantCache[str, str]:
    return TenantCache(loader, CONFIG, clock=clock)


async def test_fresh_entry_answers_without_loading(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    assert await cache.get("acme") == "ACME"
    assert await cache.get("acme") == "ACME"
    assert cache.get_fresh("acme") == (True, "ACME")
    assert loader.calls == ["acme"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.entries) == (2, 1, 1, 1)


async def test_entry_reloads_after_ttl_even_when_read_often(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    await cache.get("acme")
    for _ in range(4):
        clock.advance(70)  # read every 70 s: never idle for 180 s
        await cache.get("acme")
    assert loader.calls == ["acme"]
    clock.advance(21)  # 301 s after the load
    await cache.get("acme")
    assert loader.calls == ["acme", "acme"]


async def test_entry_reloads_after_idle_expiry(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    await cache.get("acme")
    clock.advance(179.9)
    assert cache.get_fresh("acme") == (True, "ACME")
    clock.advance(179.9)  # 359.8 s after load would be past TTL anyway; reset below
    assert cache.get_fresh("acme") == (False, None)

    loader.calls.clear()
    await cache.get("globex")
    clock.advance(180)
    assert cache.get_fresh("globex") == (False, None)
    await cache.get("globex")
    assert loader.calls == ["globex", "globex"]


async def test_full_cache_evicts_least_recently_used(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.known |= {"umbrella"}
    for key in ("acme", "globex", "initech"):
        await cache.get(key)
    await cache.get("acme")  # acme is now the most recently used; globex the least
    await cache.get("umbrella")
    assert cache.get_fresh("globex") == (False, None)
    assert cache.get_fresh("acme") == (True, "ACME")
    assert cache.stats().evictions == 1
    assert len(cache) == 3


async def test_unknown_key_is_remembered_for_negative_ttl_only(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    assert await cache.get("nobody") is None
    clock.advance(29)
    assert await cache.get("nobody") is None
    assert loader.calls == ["nobody"]
    assert cache.stats().negative_hits == 1
    clock.advance(1)
    assert await cache.get("nobody") is None
    assert loader.calls == ["nobody", "nobody"]


async def test_invalidate_forgets_one_key(cache: TenantCache[str, str], loader: Loader) -> None:
    await cache.get("acme")
    await cache.get("globex")
    cache.invalidate("acme")
    assert cache.get_fresh("acme") == (False, None)
    assert cache.get_fresh("globex") == (True, "GLOBEX")


async def test_marking_all_stale_reloads_every_entry_on_its_next_read(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    await cache.get("acme")
    await cache.get("nobody")
    cache.mark_all_stale()
    assert cache.get_fresh("acme") == (False, None)
    assert cache.get_fresh("nobody") == (False, None)  # a negative entry is dropped
    assert len(cache) == 1
    assert await cache.get("acme") == "ACME"
    assert await cache.get("nobody") is None
    assert loader.calls == ["acme", "nobody", "acme", "nobody"]


async def test_an_entry_marked_stale_stands_in_while_its_reload_fails(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    # A change announced while the database is down must not turn the tenant away.
    await cache.get("acme")
    cache.mark_all_stale()
    loader.fail = True
    assert await cache.get("acme") == "ACME"
    assert cache.stats().stale_served == 1
    clock.advance(CONFIG.stale_window)  # the stale window counts from the marking
    with pytest.raises(DatabaseDown):
        await cache.get("acme")


async def test_a_load_invalidated_while_running_is_not_stored(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.gate = asyncio.Event()
    waiter = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)  # let the load start
    cache.invalidate("acme")
    loader.gate.set()
    assert await waiter == "ACME"
    assert cache.get_fresh("acme") == (False, None)


async def test_thousand_concurrent_misses_cause_exactly_one_load(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get("acme")) for _ in range(1000)]
    await asyncio.sleep(0)
    loader.gate.set()
    assert await asyncio.gather(*waiters) == ["ACME"] * 1000
    assert loader.calls == ["acme"]
    stats = cache.stats()
    assert (stats.loads, stats.misses, stats.coalesced_waits) == (1, 1000, 999)


async def test_cancelled_waiter_does_not_cancel_the_shared_load(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.get("acme"))
    second = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    loader.gate.set()
    assert await second == "ACME"
    assert loader.calls == ["acme"]
    assert cache.get_fresh("acme") == (True, "ACME")


async def test_load_goes_on_when_every_waiter_is_cancelled(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.gate = asyncio.Event()
    only = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    loader.gate.set()
    assert await cache.get("acme") == "ACME"
    assert loader.calls == ["acme"]


async def test_load_error_reaches_every_waiter_and_is_not_cached(
    cache: TenantCache[str, str], loader: Loader
) -> None:
    loader.fail = True
    loader.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get("acme")) for _ in range(3)]
    await asyncio.sleep(0)
    loader.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, DatabaseDown) for r in results)
    assert cache.stats().load_failures == 1
    loader.fail = False
    assert await cache.get("acme") == "ACME"


async def test_expired_entry_is_served_stale_when_load_fails(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    await cache.get("acme")
    clock.advance(301)
    loader.fail = True
    assert await cache.get("acme") == "ACME"
    assert cache.stats().stale_served == 1
    loader.fail = False
    assert await cache.get("acme") == "ACME"
    assert len(loader.calls) == 3  # the failed load did not stop the next one


async def test_stale_window_ends_an_hour_after_expiry(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    await cache.get("acme")
    for _ in range(2):
        clock.advance(100)  # read every 100 s: it expires by TTL, at 300 s
        await cache.get("acme")
    clock.advance(100 + 3599)
    loader.fail = True
    assert await cache.get("acme") == "ACME"
    clock.advance(1)
    with pytest.raises(DatabaseDown):
        await cache.get("acme")


async def test_stale_window_of_idle_entry_starts_at_idle_expiry(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    await cache.get("acme")
    clock.advance(180 + 3600)  # idle-expired 3600 s ago, TTL-expired 3480 s ago
    loader.fail = True
    with pytest.raises(DatabaseDown):
        await cache.get("acme")


async def test_negative_entries_are_not_served_stale(
    cache: TenantCache[str, str], loader: Loader, clock: ManualClock
) -> None:
    assert await cache.get("nobody") is None
    clock.advance(31)
    loader.fail = True
    with pytest.raises(DatabaseDown):
        await cache.get("nobody")


@pytest.mark.parametrize(
    ("field", "value"),
    [("ttl", 0.0), ("idle", -1.0), ("negative_ttl", 0.0), ("stale_window", -1.0), ("capacity", 0)],
)
def test_config_refuses_out_of_range_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"TenantCacheConfig.{field}"):
        TenantCacheConfig(**{field: value})  # type: ignore[arg-type]  # each field by name


async def test_degraded_store_serves_stale_instead_of_joining_a_running_load(
    loader: Loader, clock: ManualClock
) -> None:
    degraded = False
    cache = TenantCache(loader, CONFIG, clock=clock, degraded=lambda: degraded)
    await cache.get("acme")
    clock.advance(301)
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.get("acme"))  # starts the reload, which hangs
    await asyncio.sleep(0)
    assert not first.done()
    degraded = True  # the breaker opened while the reload hangs
    assert await cache.get("acme") == "ACME"  # stale, at once
    assert cache.stats().stale_served == 1
    assert cache.stats().coalesced_waits == 0
    loader.gate.set()
    assert await first == "ACME"
    assert loader.calls == ["acme", "acme"]


async def test_healthy_store_joins_the_running_load(loader: Loader, clock: ManualClock) -> None:
    cache = TenantCache(loader, CONFIG, clock=clock, degraded=lambda: False)
    await cache.get("acme")
    clock.advance(301)
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    assert not second.done()  # waits for the load rather than taking the stale entry
    loader.gate.set()
    assert (await first, await second) == ("ACME", "ACME")
    stats = cache.stats()
    assert (stats.coalesced_waits, stats.stale_served) == (1, 0)


async def test_degraded_store_without_stale_entry_joins_the_load(
    loader: Loader, clock: ManualClock
) -> None:
    cache = TenantCache(loader, CONFIG, clock=clock, degraded=lambda: True)
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("acme"))
    await asyncio.sleep(0)
    loader.gate.set()
    assert (await first, await second) == ("ACME", "ACME")
    assert cache.stats().coalesced_waits == 1
