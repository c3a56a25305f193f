"""RateLimiter: a token bucket per key, in this process's memory or shared on Redis.

Each key (a tenant, a host; ``""`` when there is one bucket) has a bucket of
``burst`` tokens refilled at ``rate`` tokens per second; a call takes one. An
empty bucket refuses the call with `RateLimitedError` carrying the seconds
until a token is back. On Redis, one Lua script per call refills and takes
atomically (one round trip), so every process shares each key's bucket; when
Redis cannot be reached the limiter falls back to local buckets, says so once
(a log line and a `StorageUnavailable` event), and tries Redis again a second later.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from rustok_core.resilience._errors import RateLimitedError
from rustok_core.resilience._events import (
    CallRejected,
    EventListener,
    notify,
)
from rustok_core.resilience._redis import RedisOutage, connect

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["RateLimiter"]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("rustok.resilience")

# KEYS[1] the bucket; ARGV rate, burst, now (seconds), tokens wanted.
# Returns the seconds to wait as a string ("0" when the tokens were taken):
# Lua numbers returned to Redis are truncated to integers.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = (want - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 's', string.format('%.17g', stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""


class RateLimiter:
    """A token bucket per key: ``rate`` calls per second, bursts of up to ``burst``.

    Args:
        name: what the limiter guards, for errors, logs, events and Redis keys.
        rate: tokens added per second (> 0).
        burst: the bucket's size: calls allowed at once after a quiet period (>= 1).
        redis: a ``redis://`` URL or a ``redis.Redis`` client to share the
            buckets between processes; ``None`` keeps them in this process.
        max_keys: local buckets kept (least recently used dropped first; a
            dropped key starts again with a full bucket).
        listeners: callables told of every `CallRejected` and `StorageUnavailable`.
        clock: seconds; ``time.monotonic`` in memory, ``time.time`` on Redis
            (processes sharing buckets must share a clock). Tests pass a ``ManualClock``.
        socket_timeout: connect and read timeout, for a URL.

    Raises:
        ValueError: for an empty name, a ``rate`` that is not positive, or a
            ``burst`` or ``max_keys`` below 1.

    Example::

        per_tenant = RateLimiter("api", rate=50.0, burst=100)
        await per_tenant.acquire(tenant_id)  # raises RateLimitedError when used up
    """

    __slots__ = (
        "_buckets",
        "_burst",
        "_clock",
        "_close",
        "_listeners",
        "_max_keys",
        "_name",
        "_outage",
        "_prefix",
        "_rate",
        "_redis",
        "_script",
    )

    def __init__(
        self,
        name: str,
        rate: float,
        burst: int,
        *,
        redis: str | Redis | None = None,
        max_keys: int = 10_000,
        listeners: Iterable[EventListener] = (),
        clock: Callable[[], float] | None = None,
        socket_timeout: float = 0.25,
    ) -> None:
        if not name:
            raise ValueError("a rate limiter needs a non-empty name, e.g. 'api'")
        value: object = rate
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (value > 0 and math.isfinite(value))
        ):
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        counts: tuple[tuple[str, object], ...] = (("burst", burst), ("max_keys", max_keys))
        for field, count in counts:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{field} must be an integer >= 1, got {count!r}")
        self._name = name
        self._rate = float(rate)
        self._burst = burst
        self._max_keys = max_keys
        self._listeners = list(listeners)
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._redis: Redis | None = None
        self._script: Script | None = None
        self._close: Callable[[], None] | None = None
        self._outage = RedisOutage("rate_limiter", "rate limiter", name, "limiting per process")
        self._prefix = f"rustok:ratelimit:{name}:"
        if redis is not None:
            self._connect(redis, socket_timeout)
        if clock is None:
            clock = time.time if redis is not None else time.monotonic
        self._clock = clock

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def shared(self) -> bool:
        """Whether the buckets live on Redis."""
        return self._redis is not None

    def try_acquire(self, key: str = "", tokens: int = 1) -> float:
        """Take ``tokens`` from ``key``'s bucket if it has them.

        Returns:
            0.0 when they were taken; otherwise the seconds until they would be there
            (nothing is taken then).
        """
        now = self._clock()
        if self._script is not None and now >= self._outage.down_until:
            wait = self._take_on_redis(key, tokens, now)
            if wait is not None:
                return wait
        return self._take_locally(key, tokens, now)

    def acquire_sync(self, key: str = "", tokens: int = 1) -> None:
        """Take ``tokens`` from ``key``'s bucket, or raise.

        Raises:
            RateLimitedError: the bucket is short; ``retry_after`` says for how long.
        """
        wait = self.try_acquire(key, tokens)
        if wait > 0:
            raise self._refused(key, wait)

    async def acquire(self, key: str = "", tokens: int = 1) -> None:
        """`acquire_sync` for async code (on Redis, the round trip is made on this thread).

        Raises:
            RateLimitedError: the bucket is short; ``retry_after`` says for how long.
        """
        self.acquire_sync(key, tokens)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Take a token from the default bucket (key ``""``), then await ``fn(*args, **kwargs)``.

        Raises:
            RateLimitedError: no token; ``fn`` was not called.
        """
        self.acquire_sync("")
        return await fn(*args, **kwargs)

    async def call_for(
        self, key: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Take a token from ``key``'s bucket (per tenant, per host), then await ``fn``.

        Raises:
            RateLimitedError: no token for ``key``; ``fn`` was not called.
        """
        self.acquire_sync(key)
        return await fn(*args, **kwargs)

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Take a token from the default bucket, then call the plain callable ``fn``.

        Raises:
            RateLimitedError: no token; ``fn`` was not called.
        """
        self.acquire_sync("")
        return fn(*args, **kwargs)

    def close(self) -> None:
        """Close the Redis connections opened from a URL (a client passed in is the caller's)."""
        close, self._close = self._close, None
        if close is not None:
            close()

    def __repr__(self) -> str:
        where = "redis" if self.shared else "memory"
        return f"<RateLimiter {self._name!r} {self._rate:g}/s burst {self._burst} ({where})>"

    # -- buckets -----------------------------------------------------------------

    def _take_locally(self, key: str, tokens: int, now: float) -> float:
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = [float(self._burst), now]
            if len(buckets) > self._max_keys:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
            if now > bucket[1]:
                bucket[0] = min(float(self._burst), bucket[0] + (now - bucket[1]) * self._rate)
                bucket[1] = now
        if bucket[0] >= tokens:
            bucket[0] -= tokens
            return 0.0
        return (tokens - bucket[0]) / self._rate

    def _take_on_redis(self, key: str, tokens: int, now: float) -> float | None:
        from redis.exceptions import RedisError

        assert self._script is not None
        try:
            reply = self._script(
                keys=[self._prefix + key], args=[self._rate, self._burst, repr(now), tokens]
            )
        except RedisError as exc:
            self._outage.failed(exc, now, self._listeners)
            return None
        self._outage.answered(self._listeners)
        return float(reply)

    def _refused(self, key: str, wait: float) -> RateLimitedError:
        if self._listeners:
            notify(self._listeners, CallRejected("rate_limiter", self._name, "rate", wait, key))
        return RateLimitedError(self._name, key, wait)

    def _connect(self, redis: str | Redis, socket_timeout: float) -> None:
        client, self._close = connect(redis, "a Redis rate limiter", socket_timeout)
        self._redis = client
        self._script = client.register_script(_TAKE)
