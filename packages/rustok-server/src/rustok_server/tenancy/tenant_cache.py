"""An async, in-process cache of tenants: TTL, idle expiry, LRU, negative entries,
one load per key, and stale entries served while the database is failing.

cachetools' ``TLRUCache`` holds the entries: it evicts the least recently used
when full and drops an entry once it is past any use (its stale window). On top
of it this module adds only what no library offers together: freshness and idle
expiry checked on each read, negative entries with their own TTL, and which entry may
stand in for a failed load. The loads themselves, one task per key and stale-if-error,
run through the mechanism the API key cache shares (``rustok_server._shared_loads``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeAlias, TypeVar

from cachetools import TLRUCache

from rustok_core.resilience import CircuitOpenError
from rustok_server._shared_loads import SharedLoads

__all__ = ["LookupResult", "TenantCache", "TenantCacheConfig", "TenantCacheStats"]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.tenancy")

LookupResult: TypeAlias = Literal["hit", "negative_hit", "miss", "stale"]
"""How one read was answered: a fresh entry, a fresh "not found", a load, a stale entry."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class TenantCacheConfig:
    """How long entries live and how many are kept.

    Args:
        ttl: seconds a loaded value stays fresh.
        idle: seconds an entry stays fresh without being read.
        capacity: most entries kept; the least recently used is evicted first.
        negative_ttl: seconds a "not found" answer is remembered.
        stale_window: seconds after expiry a value may still be served when a load fails.
    """

    ttl: float = 300.0
    idle: float = 180.0
    capacity: int = 10_000
    negative_ttl: float = 30.0
    stale_window: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("ttl", "idle", "negative_ttl"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"TenantCacheConfig.{name} must be > 0 seconds, got {value!r}")
        if not self.stale_window >= 0:
            raise ValueError(
                f"TenantCacheConfig.stale_window must be >= 0 seconds, got {self.stale_window!r}"
            )
        if self.capacity < 1:
            raise ValueError(f"TenantCacheConfig.capacity must be >= 1, got {self.capacity!r}")


@dataclass(frozen=True, slots=True)
class TenantCacheStats:
    """Counters of a `TenantCache` since it was created.

    Attributes:
        hits: reads answered by a fresh positive entry.
        negative_hits: reads answered by a fresh negative ("not found") entry.
        misses: reads that found no fresh entry and waited for a load.
        loads: loads that completed (found or not found).
        load_failures: loads that raised.
        coalesced_waits: misses that joined a load already running instead of starting one.
        evictions: entries dropped because the cache was full.
        stale_served: reads answered by an expired entry because the load failed.
        entries: entries held now, fresh or stale.
    """

    hits: int
    negative_hits: int
    misses: int
    loads: int
    load_failures: int
    coalesced_waits: int
    evictions: int
    stale_served: int
    entries: int


class _Entry(Generic[V]):
    """One cached answer; ``value is None`` is a negative entry."""

    __slots__ = ("expires_at", "last_read", "value")

    def __init__(self, value: V | None, expires_at: float, now: float) -> None:
        self.value = value
        self.expires_at = expires_at
        self.last_read = now


class _Store(TLRUCache[K, _Entry[V], float]):
    """TLRUCache that counts capacity evictions (its expiries are not evictions)."""

    evictions = 0

    def popitem(self) -> tuple[K, _Entry[V]]:
        item = super().popitem()
        self.evictions += 1
        return item


class TenantCache(Generic[K, V]):
    """Cache of ``loader(key) -> V | None`` results; ``None`` means "no such tenant".

    A fresh entry answers without awaiting anything. On a miss one task runs the
    loader however many callers wait for the key; a caller that is cancelled
    stops waiting but the load goes on for the others. When the load raises
    (database down, breaker open, timeout), an entry that expired less than
    ``stale_window`` ago is returned instead and counted in ``stale_served``;
    without one the loader's exception is raised to every waiter.

    While ``degraded()`` says the store is failing (the server passes "the breaker is
    not closed"), a reader whose key has a stale entry and a load already running gets
    the stale entry at once instead of joining that load: a load that started just
    before the breaker opened can only end at its query timeout, and nobody should
    wait for it when an answer is at hand.

    Args:
        loader: async function loading one key; returns ``None`` when not found.
        config: lifetimes and capacity.
        clock: monotonic seconds; inject a controllable clock in tests.
        degraded: says whether the store behind ``loader`` is failing right now.
        on_result: told how each read was answered (`LookupResult`), exactly once per
            read, for metrics.

    Examples:
        >>> import asyncio
        >>> async def load(slug: str) -> str | None:
        ...     return slug.upper() if slug == "acme" else None
        >>> cache = TenantCache(load)
        >>> asyncio.run(cache.get("acme")), asyncio.run(cache.get("nobody"))
        ('ACME', None)
    """

    def __init__(
        self,
        loader: Callable[[K], Awaitable[V | None]],
        config: TenantCacheConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        degraded: Callable[[], bool] | None = None,
        on_result: Callable[[LookupResult], None] | None = None,
    ) -> None:
        config = config if config is not None else TenantCacheConfig()
        self.config: TenantCacheConfig = config
        self._loader = loader
        self._clock = clock
        self._on_result = on_result
        stale = config.stale_window

        def time_to_use(_key: K, entry: _Entry[V], _now: float) -> float:
            # The store forgets an entry once it can no longer be served, even stale.
            if entry.value is None:
                return entry.expires_at
            return entry.expires_at + stale

        self._store: _Store[K, V] = _Store(config.capacity, time_to_use, timer=clock)
        self._loads: SharedLoads[K, V | None] = SharedLoads(
            self._load, self._stale_value, degraded=degraded
        )
        self._hits = 0
        self._negative_hits = 0
        self._misses = 0
        self._loads_done = 0
        self._load_failures = 0
        self._stale_served = 0

    def get_fresh(self, key: K) -> tuple[bool, V | None]:
        """Answer from a fresh entry without loading: ``(found, value)``.

        ``(True, None)`` is a fresh negative entry; ``(False, None)`` means the
        caller must `get`. This is the synchronous fast path of a request.
        """
        try:
            entry = self._store[key]
        except KeyError:
            return False, None
        now = self._clock()
        if now >= entry.expires_at or now - entry.last_read >= self.config.idle:
            return False, None
        entry.last_read = now
        if entry.value is None:
            self._negative_hits += 1
            if self._on_result is not None:
                self._on_result("negative_hit")
        else:
            self._hits += 1
            if self._on_result is not None:
                self._on_result("hit")
        return True, entry.value

    async def get(self, key: K) -> V | None:
        """The value for ``key``, from a fresh entry or from one shared load.

        Raises:
            Exception: what the loader raised, when no stale entry can stand in.
        """
        found, value = self.get_fresh(key)
        if found:
            return value
        self._misses += 1
        try:
            value, stale = await self._loads.get(key)
        except Exception:
            self._report("miss")
            raise
        if stale:
            self._stale_served += 1
            self._report("stale")
        else:
            self._report("miss")
        return value

    def _report(self, result: LookupResult) -> None:
        if self._on_result is not None:
            self._on_result(result)

    async def _load(self, key: K) -> V | None:
        try:
            value = await self._loader(key)
        except CircuitOpenError:
            # Refused without running: the breaker's opening was logged once already.
            self._load_failures += 1
            raise
        except Exception as exc:
            self._load_failures += 1
            # Once per load, however many readers share it; the key is an identifier the
            # resolver validated, never a secret.
            logger.warning("tenant load for %r failed: %s", key, type(exc).__name__)
            raise
        self._loads_done += 1
        if self._loads.is_current(key):
            # Only the current load of a key may store: an invalidation during the
            # load made its answer suspect.
            now = self._clock()
            lifetime = self.config.ttl if value is not None else self.config.negative_ttl
            self._store[key] = _Entry(value, now + lifetime, now)
        return value

    def _stale_value(self, key: K) -> V | None:
        # What may stand in for a failed load: a positive entry that expired less than
        # the stale window ago (negative entries never stand in).
        entry = self._store.get(key)
        if entry is None or entry.value is None:
            return None
        expired_at = min(entry.expires_at, entry.last_read + self.config.idle)
        if self._clock() - expired_at >= self.config.stale_window:
            return None
        return entry.value

    def invalidate(self, key: K) -> None:
        """Forget ``key``: the next read loads it again. A load under way is not stored."""
        self._store.pop(key, None)
        self._loads.drop(key)

    def mark_all_stale(self) -> None:
        """Something changed, somewhere: every entry is loaded again on its next read,
        and until that load succeeds it may stand in, within ``stale_window``, as it would
        for any failed load (an announcement during an outage must not turn every
        tenant away). Negative entries are dropped; loads under way are not stored.
        """
        now = self._clock()
        store = self._store
        for key, entry in list(store.items()):
            if entry.value is None:
                del store[key]
            elif entry.expires_at > now:
                store[key] = _Entry(entry.value, now, min(entry.last_read, now))
        self._loads.drop_all()

    def stats(self) -> TenantCacheStats:
        """A snapshot of the counters."""
        self._store.expire()
        return TenantCacheStats(
            hits=self._hits,
            negative_hits=self._negative_hits,
            misses=self._misses,
            loads=self._loads_done,
            load_failures=self._load_failures,
            coalesced_waits=self._loads.joined,
            evictions=self._store.evictions,
            stale_served=self._stale_served,
            entries=len(self._store),
        )

    def __len__(self) -> int:
        return len(self._store)
