"""Per-tenant rate limits: a token bucket per tenant on `rustok_core.resilience.RateLimiter`.

Every tenant gets the server's default limit (``RUSTOK_RATE_LIMIT_PER_SECOND`` and
``RUSTOK_RATE_LIMIT_BURST``) unless the admin API gave it its own. One limiter exists per
distinct limit (a limiter has one rate), keyed by tenant, so tenants never share a bucket.
On Redis the limiters are named under the deployment's namespace
(``<namespace>:api-<rate>-<burst>``), so two deployments on one Redis never share one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from rustok_core.resilience import RateLimiter
from rustok_server.auth.keys import RateLimit
from rustok_server.errors import RateLimitExceededError
from rustok_server.scaleout import check_namespace

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["TenantRateLimits"]


class TenantRateLimits:
    """Admits or refuses each request of a tenant (or of an admin key).

    Args:
        default: the limit of a tenant without its own.
        clock: seconds for the buckets; tests pass a ``ManualClock``. On Redis, wall-clock
            seconds (``time.time``): every process sharing a bucket reads the same clock.
        redis: a ``redis://`` URL or a client, to share the buckets between processes.
            While Redis cannot be reached, each process limits with its own buckets.
        namespace: the deployment's name on Redis (``RUSTOK_REDIS_NAMESPACE``), which
            prefixes each limiter's name and so its keys; ``None`` for none.

    Raises:
        ValueError: a malformed ``namespace``.
    """

    def __init__(
        self,
        default: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        redis: str | Redis | None = None,
        namespace: str | None = None,
    ) -> None:
        self.default = default
        self.clock = clock
        self.redis = redis
        self.namespace = None if namespace is None else check_namespace(namespace)
        self._overrides: dict[uuid.UUID, RateLimit] = {}
        self._limiters: dict[tuple[float, int], RateLimiter] = {}
        self.on_limited: Callable[[], None] = lambda: None
        """Told of each request refused by a limit (the server counts them)."""

    def limit_of(self, tenant_id: uuid.UUID | None) -> RateLimit:
        """The limit that applies to a tenant (the default for ``None``)."""
        if tenant_id is None:
            return self.default
        return self._overrides.get(tenant_id, self.default)

    def override(self, tenant_id: uuid.UUID) -> RateLimit | None:
        """The tenant's own limit, if it has one."""
        return self._overrides.get(tenant_id)

    def replace_overrides(self, overrides: Mapping[uuid.UUID, RateLimit]) -> None:
        """Use these per-tenant limits from now on (read from the database)."""
        self._overrides = dict(overrides)

    def admit(self, tenant_id: uuid.UUID | None, key: str) -> None:
        """Take one token of ``key``'s bucket under the tenant's limit.

        Raises:
            RateLimitExceededError: the bucket is empty (429, with ``Retry-After``).
        """
        limit = self.limit_of(tenant_id)
        if not limit.enabled:
            return
        shape = (limit.per_second, limit.burst)
        limiter = self._limiters.get(shape)
        if limiter is None:
            name = f"api-{limit.per_second:g}-{limit.burst}"
            if self.namespace is not None:
                name = f"{self.namespace}:{name}"
            limiter = RateLimiter(
                name, limit.per_second, limit.burst, redis=self.redis, clock=self.clock
            )
            self._limiters[shape] = limiter
        wait = limiter.try_acquire(key)
        if wait > 0:
            self.on_limited()
            raise RateLimitExceededError(limit.burst, wait)

    def close(self) -> None:
        """Close the limiters' Redis connections (those opened from a URL)."""
        for limiter in self._limiters.values():
            limiter.close()
