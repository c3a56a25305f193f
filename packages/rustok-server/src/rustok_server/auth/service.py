"""`Authentication`: what one server holds to authenticate and limit requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Final

from rustok_core.resilience import RetryAttempt
from rustok_server.auth.keys import KEY_PREFIX, KeyDirectory, RateLimit
from rustok_server.auth.principal import Principal
from rustok_server.auth.rate_limits import FailureLimits, TenantRateLimits
from rustok_server.auth.tokens import JwtConfig, JwtVerifier
from rustok_server.auth.verification import (
    KEY_NEGATIVE_CAPACITY,
    KEY_NEGATIVE_TTL,
    KEY_STALE_LIMIT,
    KeyVerifier,
)
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.db.changes import ChangeFeed, ChangeWatcher, DatabaseChangeFeed
from rustok_server.errors import InvalidCredentialError
from rustok_server.scaleout import RedisLink

__all__ = ["Authentication"]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.auth")


class Authentication:
    """Key and token verification, rate limits, the failure limits of client addresses, and
    the watcher that keeps them (and the tenant cache) in step with changes made by other
    processes.

    Args:
        database: the server's database.
        rate_limit: the default per-tenant limit.
        jwt: how to verify JWTs, or ``None`` to accept API keys only.
        clock: monotonic seconds; tests pass a ``ManualClock`` (the rate-limit buckets
            use wall-clock seconds on Redis, which every process shares).
        wall_clock: the current time (timezone-aware) of key creation, expiry, revocation
            and last use; tests pass one that moves with their ``clock``.
        redis: the deployment's Redis: the rate-limit buckets and the JWKS breaker live
            there, and changes are announced and heard on its channel.
        feed: where changes are counted (the database's change counter by default); it
            is read twice a second, with Redis too.
        on_retry: told of each retried JWKS fetch (for metrics).
        stale_limit: seconds after its last load a verified key may stand in for a
            failed load (the server passes ``RUSTOK_CACHE_STALE_WINDOW``, the tenant
            cache's limit).
        degraded: says whether the database is failing (for the key cache, as for the
            tenant cache).
        failure_limit: failed authentications a second and at once per client address
            (``RUSTOK_AUTH_FAILURE_RATE``, ``RUSTOK_AUTH_FAILURE_BURST``), counted in this
            process even with Redis; ``None`` (or a ``0`` rate) for no limit.
        key_negative_ttl: seconds an unknown key id is remembered as unknown
            (``RUSTOK_KEY_NEGATIVE_TTL``).
        key_negative_capacity: most unknown key ids remembered
            (``RUSTOK_KEY_NEGATIVE_CAPACITY``).
        on_tenant_change: told of every change of tenants, keys or limits, here or
            elsewhere (the server marks its cached tenants stale).
        on_limited: told of each request a rate limit refused (for metrics).

    Every change committed through ``database`` (`Database.on_change`) drops the cached
    keys at once and, with Redis, is announced to the other processes.
    """

    def __init__(
        self,
        database: Database,
        *,
        rate_limit: RateLimit,
        jwt: JwtConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
        redis: RedisLink | None = None,
        feed: ChangeFeed | None = None,
        on_retry: Callable[[RetryAttempt], None] | None = None,
        stale_limit: float = KEY_STALE_LIMIT,
        degraded: Callable[[], bool] | None = None,
        failure_limit: RateLimit | None = None,
        key_negative_ttl: float = KEY_NEGATIVE_TTL,
        key_negative_capacity: int = KEY_NEGATIVE_CAPACITY,
        on_tenant_change: Callable[[], None] = lambda: None,
        on_limited: Callable[[], None] = lambda: None,
    ) -> None:
        # Key loads, like every statement, pass the database's breaker and deadline.
        self.keys: KeyDirectory = KeyDirectory(database, clock=wall_clock)
        self.verifier: KeyVerifier = KeyVerifier(
            self.keys,
            clock=clock,
            wall_clock=wall_clock,
            stale_limit=stale_limit,
            degraded=degraded,
            negative_ttl=key_negative_ttl,
            negative_capacity=key_negative_capacity,
        )
        self.failures: FailureLimits = FailureLimits(
            failure_limit or RateLimit(0.0, 0), clock=clock
        )
        self.redis = redis
        self.tokens: JwtVerifier | None = None
        if jwt is not None:
            storage = None if redis is None else redis.breaker_storage("jwks")
            self.tokens = JwtVerifier(jwt, clock=clock, on_retry=on_retry, storage=storage)
        self.rate_limits: TenantRateLimits = (
            TenantRateLimits(rate_limit, clock=clock)
            if redis is None
            else TenantRateLimits(
                rate_limit, clock=time.time, redis=redis.client, namespace=redis.namespace
            )
        )
        self.rate_limits.on_limited = self.failures.on_limited = on_limited
        self.on_tenant_change = on_tenant_change
        database.on_change.append(self.changed)
        if redis is not None:
            database.on_change.append(redis.publish)
        self.watcher: ChangeWatcher = ChangeWatcher(
            feed or DatabaseChangeFeed(database), self._changed_elsewhere, clock=clock
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token: an ``rsk_`` key, or a JWT when configured.

        Raises:
            InvalidCredentialError: the credential is not valid.
            TenantNotFoundError: a key of a disabled tenant.
        """
        if token.startswith(KEY_PREFIX):
            return await self.verifier.verify(token)
        if self.tokens is not None:
            return await self.tokens.verify(token)
        raise InvalidCredentialError("not an API key, and no token issuer is configured")

    async def start(self) -> None:
        """Start watching for changes and load the per-tenant limits, in the background
        (a database that does not answer must not keep the server from starting)."""
        self._spawn(self._reload_quietly())
        self.watcher.start()
        if self.redis is not None:
            self.redis.start(self._changed_elsewhere)

    async def stop(self) -> None:
        """Stop watching; finish the pending last-used write; close the limiters and the
        Redis connections."""
        await self.watcher.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.verifier.close()
        self.rate_limits.close()
        if self.redis is not None:
            await self.redis.stop()

    async def reload(self) -> None:
        """Read the per-tenant limits again."""
        self.rate_limits.replace_overrides(await self.keys.rate_limits())

    def changed(self) -> None:
        """Something changed here: drop every cached key (and reload the limits soon)."""
        self.verifier.clear()
        self.on_tenant_change()

    def _changed_elsewhere(self) -> None:
        self.changed()
        self._spawn(self._reload_quietly())

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except Exception as exc:
            logger.warning("could not reload the rate limits: %s", type(exc).__name__)
