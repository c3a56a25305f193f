"""Rate limits: a token bucket per tenant, and one per client address for failed
authentications.

Per tenant (`TenantRateLimits`), on `rustok_core.resilience.RateLimiter`: every tenant gets
the server's default limit (``RUSTOK_RATE_LIMIT_PER_SECOND`` and ``RUSTOK_RATE_LIMIT_BURST``)
unless the admin API gave it its own. One limiter exists per distinct limit (a limiter has
one rate), keyed by tenant, so tenants never share a bucket. On Redis the limiters are named
under the deployment's namespace (``<namespace>:api-<rate>-<burst>``), so two deployments on
one Redis never share one.

Per client address (`FailureLimits`): each refused credential takes a token of its address's
bucket (``RUSTOK_AUTH_FAILURE_RATE`` a second, bursts of ``RUSTOK_AUTH_FAILURE_BURST``); while
the bucket is empty, every request of that address that carries a credential is a 429 before
the credential is verified, so guessing keys costs the guesser, not the database. These
buckets live in each process, even with Redis: a fleet of N processes lets an address fail
up to N times as often, which still bounds guessing, and no failure waits for Redis.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from rustok_core.resilience import RateLimiter
from rustok_server.auth.keys import RateLimit
from rustok_server.errors import RateLimitExceededError
from rustok_server.scaleout import check_namespace

if TYPE_CHECKING:
    from redis import Redis

__all__ = [
    "FAILURE_ADDRESS_CAPACITY",
    "AuthFailureLimitError",
    "FailureLimits",
    "TenantRateLimits",
    "address_key",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.auth")

FAILURE_ADDRESS_CAPACITY: Final = 10_000
"""Most client addresses whose failed authentications are remembered (the least recently
failed is forgotten first, and starts again with a full bucket)."""


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
        self.namespace: str | None = None if namespace is None else check_namespace(namespace)
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


class AuthFailureLimitError(RateLimitExceededError):
    """A client address used up its failed authentications (429, with ``Retry-After``).

    The request was not verified: its credential, valid or not, is refused until a token
    is back. No ``RateLimit`` headers: those describe the tenant's limit.
    """

    def __init__(self, burst: int, retry_after: float) -> None:
        super().__init__(burst, retry_after)
        self.message: str = (
            f"{burst} failed authentications from this address; retry after {retry_after:.3f} s"
        )
        self.user_message: str | None = (
            "Too many failed authentications from this address; retry after the delay given."
        )
        self.response_headers: dict[str, str] = {}


def address_key(host: str) -> str:
    """The bucket of a client address: an IPv4 address itself, an IPv6 address its /64 (one
    host usually holds a whole /64, so its addresses are one client); an IPv4 address mapped
    into IPv6 is the IPv4 address.

    Examples:
        >>> address_key("203.0.113.7"), address_key("2001:db8:1:2:3:4:5:6")
        ('203.0.113.7', '2001:db8:1:2::/64')
    """
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class FailureLimits:
    """Failed authentications per client address: a token bucket each, in this process.

    A failure (`failed`) takes a token; while an address's bucket holds less than one,
    `refusal` answers the 429 its requests get. Concurrent failures may take the bucket
    below zero (down to ``-burst``): a burst of parallel guesses is paid back by waiting
    longer. A bucket that has filled up again is forgotten, and at most ``capacity``
    addresses are remembered (the least recently failed goes first), so memory stays flat
    whatever is sent. Successful authentications never touch a bucket.

    Args:
        limit: failures a second (``per_second``) and at once (``burst``); a disabled
            limit (``0``) refuses nothing.
        clock: monotonic seconds; tests pass a ``ManualClock``.
        capacity: most addresses remembered.

    Raises:
        ValueError: ``capacity`` is below 1.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = FAILURE_ADDRESS_CAPACITY,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"FailureLimits capacity must be >= 1, got {capacity!r}")
        self.limit = limit
        self.clock = clock
        self.capacity = capacity
        # address -> [tokens, when they were counted]; least recently failed first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self.on_limited: Callable[[], None] = lambda: None
        """Told of each request refused by a limit (for metrics)."""

    @property
    def enabled(self) -> bool:
        """Whether failures are limited at all."""
        return self.limit.enabled

    def __len__(self) -> int:
        """How many addresses have a bucket now."""
        return len(self._buckets)

    def refusal(self, address: str) -> AuthFailureLimitError | None:
        """The 429 for a request of ``address`` that carries a credential, or ``None`` when
        its bucket holds a token (or it has none). Takes nothing."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        tokens = self._refill(bucket, self.clock())
        if tokens >= 1.0:
            if tokens >= self.limit.burst:
                del self._buckets[address]  # full again: as if it never failed
            return None
        self.on_limited()
        return AuthFailureLimitError(self.limit.burst, (1.0 - tokens) / self.limit.per_second)

    def failed(self, address: str) -> None:
        """Take a token of ``address``'s bucket for a refused credential."""
        if not self.limit.enabled:
            return
        now = self.clock()
        buckets = self._buckets
        bucket = buckets.get(address)
        if bucket is None:
            bucket = buckets[address] = [float(self.limit.burst), now]
            if len(buckets) > self.capacity:
                buckets.popitem(last=False)
        else:
            self._refill(bucket, now)
            buckets.move_to_end(address)
        before = bucket[0]
        bucket[0] = max(before - 1.0, -float(self.limit.burst))
        if before >= 1.0 > bucket[0]:
            logger.warning(
                "client %s: too many failed authentications (%d at once, %g a second); "
                "its credentials are refused for %.1f s",
                address,
                self.limit.burst,
                self.limit.per_second,
                (1.0 - bucket[0]) / self.limit.per_second,
            )

    def _refill(self, bucket: list[float], now: float) -> float:
        if now > bucket[1]:
            limit = self.limit
            bucket[0] = min(float(limit.burst), bucket[0] + (now - bucket[1]) * limit.per_second)
            bucket[1] = now
        return bucket[0]
