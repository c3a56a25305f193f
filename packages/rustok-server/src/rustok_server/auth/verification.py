"""API key verification with a short cache: a hit is a dictionary lookup, one SHA-256
and a constant-time compare, no database round trip.

An entry is reloaded when it is `KEY_CACHE_TTL` old (one query per key per second at
most, one loader per key), so a revoked key, or a key of a disabled tenant, stops working
within a second even when the change was made by another process. An expiry is a wall
clock time: when an entry is loaded it is turned into a reading of the monotonic clock
(the time left on the wall clock, added to the monotonic now), so a key is refused from
the moment it expires, cached or not. The last-used time is written at most once a
minute per key, by a background task that no request waits for.

A change announced from anywhere (`KeyVerifier.clear`) marks every entry for reloading
rather than dropping it, so the entry still stands in when that reload fails: while the
database is down or its breaker open, a key verified in the last `KEY_STALE_LIMIT` seconds
keeps working (stale-on-error, as the tenant cache does), and only a request that needs a
load the cache cannot answer gets the 503 of the store. The loads themselves run through
the mechanism the tenant cache runs its own through (``rustok_server._shared_loads``): one
task per key, which a cancelled request does not cancel for the others.

Memory stays flat whatever ids are sent. A key id that the table does not hold is
remembered as unknown for `KEY_NEGATIVE_TTL` seconds (``RUSTOK_KEY_NEGATIVE_TTL``), so
repeating it costs no query; at most `KEY_NEGATIVE_CAPACITY` of them
(``RUSTOK_KEY_NEGATIVE_CAPACITY``), the oldest forgotten first. Only keys that exist get an
entry, at most `KEY_CACHE_CAPACITY` of them, the least recently used forgotten first (and
read again on its next use). Concurrent lookups of one id, known or not, share one load.
Random ids still cost a query each: what bounds them is the failure limit per client
address (`rustok_server.auth.rate_limits.FailureLimits`), checked before a key is looked up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from rustok_core.tenancy import IdentifierKind, TenantIdentifier
from rustok_server._shared_loads import SharedLoads
from rustok_server.auth.keys import KeyDirectory, KeyRecord, parse_key, secret_matches
from rustok_server.auth.principal import Principal
from rustok_server.db.base import utcnow
from rustok_server.errors import (
    InvalidCredentialError,
    TenantNotFoundError,
    TenantStoreUnavailableError,
)

__all__ = [
    "KEY_CACHE_CAPACITY",
    "KEY_CACHE_TTL",
    "KEY_NEGATIVE_CAPACITY",
    "KEY_NEGATIVE_TTL",
    "KEY_STALE_LIMIT",
    "LAST_USED_INTERVAL",
    "KeyVerifier",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.auth")

KEY_CACHE_TTL: Final = 1.0
"""Seconds a verified key is trusted before its row is read again."""
KEY_STALE_LIMIT: Final = 3600.0
"""Seconds after its last load an entry may stand in for a load that fails: the tenant
cache's default stale window (``RUSTOK_CACHE_STALE_WINDOW``), so that a tenant served stale
through an outage is not refused for its key. It bounds how long a key revoked just before
an outage may be honoured by a process that could not read the revocation."""
LAST_USED_INTERVAL: Final = 60.0
"""Seconds between two writes of one key's last-used time."""
KEY_CACHE_CAPACITY: Final = 10_000
"""Most keys with an entry; the least recently used is forgotten first."""
KEY_NEGATIVE_TTL: Final = 5.0
"""Seconds an id the key table does not hold is remembered as unknown (no query)."""
KEY_NEGATIVE_CAPACITY: Final = 10_000
"""Most unknown ids remembered; the oldest is forgotten first."""


@dataclass(frozen=True, slots=True)
class _Entry:
    record: KeyRecord | None
    principal: Principal | None
    loaded_at: float
    # On the monotonic clock: when the key expires (inf when it never does).
    expires_at: float
    # The verifier's generation when the load began: an older one is due for reloading.
    generation: int


class KeyVerifier:
    """Verifies ``rsk_...`` keys against the key table, through a one-second cache.

    While the database fails, a key verified in the last ``stale_limit`` seconds keeps its
    last entry, even after `clear` (the first failure is logged, the load retried on each
    use: the breaker makes that cheap); a key not seen, or not loaded for longer, is then
    a 503 (`TenantStoreUnavailableError`).

    Args:
        keys: the key directory (for loads and last-used writes).
        clock: monotonic seconds; tests pass a ``ManualClock``.
        wall_clock: the current time (timezone-aware), against which expiry dates are
            read and last uses written; tests pass one that moves with their clock.
        ttl: seconds an entry is trusted.
        load: how to load one key (the server wraps `KeyDirectory.load` in its breaker
            and query timeout); ``keys.load`` by default.
        stale_limit: seconds after its last load an entry may stand in for a failed load.
        degraded: says whether the database is failing right now (the server passes "the
            database breaker is not closed"): a key whose reload is already under way is
            then answered from its last entry at once, instead of waiting for that reload.
        capacity: most keys with an entry (the least recently used is forgotten first).
        negative_ttl: seconds an unknown id is remembered as unknown.
        negative_capacity: most unknown ids remembered (the oldest is forgotten first).

    Raises:
        ValueError: ``ttl`` or ``negative_ttl`` is not positive, ``stale_limit`` is
            negative, or a capacity is below 1.
    """

    def __init__(
        self,
        keys: KeyDirectory,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
        ttl: float = KEY_CACHE_TTL,
        load: Callable[[str], Awaitable[KeyRecord | None]] | None = None,
        stale_limit: float = KEY_STALE_LIMIT,
        degraded: Callable[[], bool] | None = None,
        capacity: int = KEY_CACHE_CAPACITY,
        negative_ttl: float = KEY_NEGATIVE_TTL,
        negative_capacity: int = KEY_NEGATIVE_CAPACITY,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"KeyVerifier ttl must be > 0 seconds, got {ttl!r}")
        if not stale_limit >= 0:
            raise ValueError(f"KeyVerifier stale_limit must be >= 0 seconds, got {stale_limit!r}")
        if not negative_ttl > 0:
            raise ValueError(f"KeyVerifier negative_ttl must be > 0 seconds, got {negative_ttl!r}")
        for name, count in (("capacity", capacity), ("negative_capacity", negative_capacity)):
            if count < 1:
                raise ValueError(f"KeyVerifier {name} must be >= 1, got {count!r}")
        self.keys = keys
        self.load: Callable[[str], Awaitable[KeyRecord | None]] = load or keys.load
        self.clock = clock
        self.wall_clock = wall_clock
        self.ttl = ttl
        self.stale_limit = stale_limit
        self.degraded = degraded
        self.capacity = capacity
        self.negative_ttl = negative_ttl
        self.negative_capacity = negative_capacity
        # Keys that exist, least recently used first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Ids the table did not hold, with when that was read; oldest first.
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._generation = 0
        self._failing: set[str] = set()
        # One load per key at a time, in a task of its own; the generation is the one
        # when the load began.
        self._loads: SharedLoads[str, _Entry] = SharedLoads(
            lambda key_id: self._load_entry(key_id, self._generation),
            self._stale,
            degraded=degraded,
        )
        self._noted: dict[str, float] = {}
        self._pending: dict[str, datetime] = {}
        self._writer: asyncio.Task[None] | None = None

    async def verify(self, token: str) -> Principal:
        """The principal of a key.

        Raises:
            InvalidCredentialError: malformed, unknown, wrong secret, revoked or expired.
            TenantNotFoundError: the key's tenant is disabled.
        """
        parsed = parse_key(token)
        if parsed is None:
            raise InvalidCredentialError("not a well-formed API key")
        key_id, secret = parsed
        now = self.clock()
        entry = self._entries.get(key_id)
        if entry is None:
            known_unknown = self._unknown.get(key_id)
            if known_unknown is not None:
                if now - known_unknown < self.negative_ttl:
                    raise InvalidCredentialError(f"no key {key_id}")
                del self._unknown[key_id]
            entry = await self._load(key_id)
        elif entry.generation != self._generation or now - entry.loaded_at >= self.ttl:
            entry = await self._load(key_id)
        else:
            self._entries.move_to_end(key_id)
        record, principal = entry.record, entry.principal
        if record is None or principal is None:
            raise InvalidCredentialError(f"no key {key_id}")
        if not secret_matches(secret, record.secret_hash):
            raise InvalidCredentialError(f"wrong secret for key {key_id}")
        if record.key.revoked_at is not None:
            raise InvalidCredentialError(f"key {key_id} is revoked")
        if now >= entry.expires_at:
            raise InvalidCredentialError(f"key {key_id} has expired")
        if not record.tenant_active:
            raise TenantNotFoundError(str(record.key.tenant_id))
        if now - self._noted.get(key_id, -LAST_USED_INTERVAL) >= LAST_USED_INTERVAL:
            self._note_use(key_id, now)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop one key's entry, which then never stands in for a failed load (this process
        changed the key: it is read again on its next use)."""
        self._entries.pop(key_id, None)
        self._unknown.pop(key_id, None)

    def clear(self) -> None:
        """Mark every entry for reloading (something changed, somewhere): each key is read
        again on its next use, and its old entry stands in only while that read fails.
        The ids remembered as unknown are forgotten."""
        self._generation += 1
        self._unknown.clear()

    @property
    def entry_count(self) -> int:
        """How many keys have an entry now (at most ``capacity``)."""
        return len(self._entries)

    @property
    def unknown_count(self) -> int:
        """How many ids are remembered as unknown now (at most ``negative_capacity``)."""
        return len(self._unknown)

    async def _load(self, key_id: str) -> _Entry:
        # The key's load, shared with every caller waiting for it; while it fails, the
        # entry of the last load stands in up to the stale limit (and, while the database
        # is failing, answers at once rather than waiting out a reload under way).
        try:
            entry, _ = await self._loads.get(key_id)
        except Exception as exc:
            retry_after = max(float(getattr(exc, "retry_after", 1.0)), 1.0)
            raise TenantStoreUnavailableError(f"key {key_id}", retry_after) from exc
        return entry

    def _stale(self, key_id: str) -> _Entry | None:
        stale = self._entries.get(key_id)
        if stale is not None and self.clock() - stale.loaded_at > self.stale_limit:
            return None
        return stale

    async def _load_entry(self, key_id: str, generation: int) -> _Entry:
        try:
            record = await self.load(key_id)
        except Exception as exc:
            self._note_failure(key_id, exc, self._stale(key_id))
            raise
        if key_id in self._failing:
            self._failing.discard(key_id)
            logger.info("API key %s loaded again", key_id)
        entry = self._entry(record, generation)
        self._keep(key_id, entry)
        return entry

    def _keep(self, key_id: str, entry: _Entry) -> None:
        entries = self._entries
        if entry.record is None:
            # Unknown: no entry (a row that vanished loses its own), only the id and when,
            # unless a change was announced while the load was on its way.
            entries.pop(key_id, None)
            if entry.generation == self._generation:
                unknown = self._unknown
                unknown.pop(key_id, None)
                unknown[key_id] = entry.loaded_at
                if len(unknown) > self.negative_capacity:
                    unknown.popitem(last=False)
            return
        self._unknown.pop(key_id, None)
        entries[key_id] = entry
        entries.move_to_end(key_id)
        if len(entries) > self.capacity:
            forgotten, _ = entries.popitem(last=False)
            self._noted.pop(forgotten, None)

    def _note_failure(self, key_id: str, exc: Exception, stale: _Entry | None) -> None:
        # The first failure of a run is a warning; the retries of each later use, while
        # the database stays down, are not worth a line each. The failing ids are kept up
        # to the cache's capacity, then started over (random ids sent during an outage).
        failing = self._failing
        level = logging.DEBUG if key_id in failing else logging.WARNING
        if len(failing) >= self.capacity:
            failing.clear()
        failing.add(key_id)
        if stale is None:
            logger.log(level, "could not load API key %s: %s", key_id, type(exc).__name__)
        else:
            age = self.clock() - stale.loaded_at
            logger.log(
                level,
                "could not load API key %s: %s; its entry of %.1f s ago stands in",
                key_id,
                type(exc).__name__,
                age,
            )

    def _entry(self, record: KeyRecord | None, generation: int) -> _Entry:
        now = self.clock()
        if record is None:
            return _Entry(None, None, now, float("inf"), generation)
        key = record.key
        expires_at = float("inf")
        if key.expires_at is not None:
            expires_at = now + (key.expires_at - self.wall_clock()).total_seconds()
        tenant = None
        if key.tenant_id is not None:
            tenant = TenantIdentifier(IdentifierKind.UUID, str(key.tenant_id))
        principal = Principal(key.id, tenant, frozenset(key.scopes), "key")
        return _Entry(record, principal, now, expires_at, generation)

    def _note_use(self, key_id: str, now: float) -> None:
        self._noted[key_id] = now
        self._pending[key_id] = self.wall_clock()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_uses())

    async def _write_uses(self) -> None:
        while self._pending:
            used, self._pending = self._pending, {}
            try:
                await self.keys.record_use(used)
            except Exception as exc:  # last use is a hint: never fail a request for it
                logger.warning("could not record API key use: %s", type(exc).__name__)

    async def close(self) -> None:
        """Wait for a pending last-used write."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
