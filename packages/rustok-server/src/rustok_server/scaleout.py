"""What the processes of one deployment share through Redis (``RUSTOK_REDIS_URL``): the
circuit breakers' state, the rate-limit buckets, and a channel announcing every tenant,
key and rate-limit change.

Everything a deployment keeps on Redis is named under its namespace
(``RUSTOK_REDIS_NAMESPACE``, ``rustok`` by default), so that several deployments can share
one Redis: the channel ``<namespace>:changes``, the breakers ``<namespace>:<breaker>``
(core's keys ``rustok:{<namespace>:<breaker>}:circuit*``) and the rate limiters
``<namespace>:api-...`` (keys ``rustok:ratelimit:<namespace>:api-...:<bucket>``).

`RedisLink` holds the connections, and what the process knows of Redis's health:

- one synchronous client, shared by core's breaker storage (``redis_storage``), the rate
  limiters and the change announcements. Those calls run on the event loop, so each has the
  short ``RUSTOK_REDIS_TIMEOUT``; and once one call found Redis unreachable, the next ones
  fail at once (the callers then use this process's own state) until Redis answers a ping
  again. A frozen Redis therefore holds up at most the one call that found it frozen;
- an asyncio client that pings Redis twice a second (the readiness check reads the result,
  it never waits on Redis itself) and listens on the change channel.

Pub/sub drops what is published while a subscriber is disconnected: the change counter of
the database (`rustok_server.db.changes`) stays the safety net, read twice a second by
every process whether Redis is there or not.

The ``redis`` package is imported only when a `RedisLink` is made (the
``rustok-server[redis]`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    CircuitStorage,
    redis_storage,
)

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from rustok_server.db import Database

__all__ = [
    "DEFAULT_NAMESPACE",
    "PING_INTERVAL",
    "RedisHealth",
    "RedisLink",
    "announce_on_redis",
    "change_channel",
    "check_namespace",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.redis")

T = TypeVar("T")

DEFAULT_NAMESPACE: Final = "rustok"
"""The namespace of a deployment that does not set ``RUSTOK_REDIS_NAMESPACE``."""
# Core's namespace of a breaker allows 200 characters; ours is followed by ":<breaker>".
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
PING_INTERVAL: Final = 0.5
"""Seconds between two pings of Redis (and between two attempts to subscribe again)."""
_PROBE_EVERY: Final = 1.0


def check_namespace(namespace: str) -> str:
    """``namespace`` if it can name a deployment's keys and channel on Redis.

    Raises:
        ValueError: it is empty, longer than 100 characters, or has a character other
            than letters, digits, ``_``, ``.``, ``:`` and ``-`` (or does not start with a
            letter or digit).
    """
    if not _NAMESPACE.fullmatch(namespace):  # `$` would let a trailing newline through
        raise ValueError(
            "a Redis namespace is 1-100 characters of letters, digits, '_', '.', ':' or '-', "
            f"starting with a letter or digit, got {namespace!r}"
        )
    return namespace


def change_channel(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The pub/sub channel on which the deployment ``namespace`` announces every tenant,
    key and rate-limit change (``rustok:changes`` by default).

    Examples:
        >>> change_channel("shop-eu")
        'shop-eu:changes'
    """
    return f"{check_namespace(namespace)}:changes"


class RedisHealth:
    """Whether Redis answers, kept by a circuit breaker of rustok-core named ``redis``.

    The first call that does not reach Redis (a connection error or a timeout; any other
    Redis error says nothing of its health) opens the breaker, and the calls that follow
    fail at once, so that callers fall back to their own state instead of each waiting out
    the timeout. Something must find out when Redis is back: while a running `RedisLink`
    pings it (``monitored``), the breaker is held open (`CircuitBreaker.force_open`) until a
    ping is answered; otherwise the breaker lets one trial call through a second.

    Listeners (`add_listener`) are told of each change, ``True`` when Redis answers again
    and ``False`` when it stops (the ``rustok_redis_up`` gauge is one).

    Args:
        clock: monotonic seconds.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._unreachable: Final = (RedisConnectionError, RedisTimeoutError)
        self.clock = clock
        self.breaker: CircuitBreaker = CircuitBreaker(
            "redis",
            CircuitBreakerConfig(
                failure_threshold=1,
                success_threshold=1,
                timeout=_PROBE_EVERY,
                half_open_max_requests=1,
                excluded_if=lambda exc: not isinstance(exc, self._unreachable),
            ),
            clock=clock,
        )
        """The breaker every call of `RedisLink.client` goes through."""
        self.available: bool = True
        """Whether the last call or ping reached Redis."""
        self.lost_at: float | None = None
        """When Redis stopped answering (on ``clock``), while it does not answer."""
        self.error: str | None = None
        """What the call that found Redis unreachable raised (its type's name)."""
        self.monitored: bool = False
        """Whether a ping finds out that Redis is back (no call is let through as a trial)."""
        self._listeners: list[Callable[[bool], None]] = []

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(available)`` whenever Redis stops or starts answering (quick and
        synchronous: it runs in the call or ping that found out)."""
        self._listeners.append(listener)

    def _tell(self) -> None:
        for listener in self._listeners:
            try:
                listener(self.available)
            except Exception:  # a listener must not turn a Redis call into a failure
                logger.exception("a Redis health listener failed")

    def call(self, command: Callable[..., T], *args: object, **options: object) -> T:
        """Run one Redis command through the breaker.

        Raises:
            redis.exceptions.ConnectionError: Redis did not answer this call, or the
                breaker is open (not tried again until Redis answers).
        """
        try:
            result = self.breaker.call_sync(command, *args, **options)
        except CircuitOpenError:
            raise self._unreachable[0](
                "Redis unreachable: not tried again until it answers"
            ) from None
        except self._unreachable as exc:
            self.lost(exc)
            raise
        self.reached()
        return result

    def lost(self, error: BaseException) -> None:
        """A call or ping did not reach Redis."""
        if self.monitored and self.breaker.state is not CircuitState.FORCED_OPEN:
            self.breaker.force_open()  # the ping says when it is back
        if not self.available:
            return
        self.available = False
        self.lost_at = self.clock()
        self.error = type(error).__name__
        logger.warning(
            "Redis unreachable (%s): breakers and rate limits go on with this process's own "
            "state, changes arrive through the database's change counter, until it answers",
            self.error,
        )
        self._tell()

    def reached(self) -> None:
        """A call or ping reached Redis."""
        if self.breaker.state is CircuitState.FORCED_OPEN:
            self.breaker.release()
        if self.available:
            return
        down = self.clock() - (self.lost_at or self.clock())
        self.available = True
        self.lost_at = None
        self.error = None
        logger.warning("Redis reachable again after %.1f s: shared state in use again", down)
        self._tell()

    def check(self) -> dict[str, object]:
        """What readiness reports to an admin."""
        if self.available:
            return {"status": "ok"}
        down = self.clock() - (self.lost_at or self.clock())
        return {"status": "unreachable", "reason": self.error, "seconds": round(down, 3)}


def _guarded_client(url: str, timeout: float, health: RedisHealth) -> redis.Redis:
    """A ``redis.Redis`` from ``url`` whose every command goes through ``health``."""
    import redis as redis_lib

    class _Guarded(redis_lib.Redis):
        def execute_command(self, *args: Any, **options: Any) -> Any:  # redis-py's signature
            # redis-py leaves execute_command untyped.
            command: Callable[..., Any] = super().execute_command
            return health.call(command, *args, **options)

    return _Guarded.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class RedisLink:
    """This process's connections to the deployment's Redis.

    Args:
        url: a ``redis://`` (or ``rediss://``) URL.
        timeout: seconds any one Redis call may take (connect and read).
        namespace: the deployment's name on Redis (``RUSTOK_REDIS_NAMESPACE``): its
            channel, breakers and rate limiters are named under it.

    Raises:
        ImportError: the ``redis`` package is not installed.
        ValueError: a malformed ``namespace`` (see `check_namespace`).
    """

    def __init__(
        self, url: str, *, timeout: float = 0.25, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        import redis.asyncio as redis_asyncio

        self.namespace: str = check_namespace(namespace)
        self.channel: str = change_channel(namespace)
        """Where this deployment's changes are announced (``<namespace>:changes``)."""
        self.timeout = timeout
        self.health: RedisHealth = RedisHealth()
        self.client: redis.Redis = _guarded_client(url, timeout, self.health)
        """The synchronous client of the breakers, the rate limiters and `publish`."""
        self._async: redis.asyncio.Redis = redis_asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.messages: int = 0
        """Change announcements received."""

    def breaker_storage(self, name: str) -> CircuitStorage:
        """The shared storage of the breaker ``name`` (core's namespace
        ``<namespace>:<name>``)."""
        return redis_storage(self.client, namespace=f"{self.namespace}:{name}")

    def publish(self) -> None:
        """Announce a change on `channel` (quietly nothing while Redis is away: the
        database's change counter carries it)."""
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError):
            self.client.publish(self.channel, b"changed")

    def start(self, on_change: Callable[[], None]) -> None:
        """Ping Redis and listen for changes in the running loop; ``on_change`` is called
        for every announcement (this process's own too)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self.health.monitored = True
        self._tasks = [
            loop.create_task(self._watch()),
            loop.create_task(self._listen(on_change)),
        ]

    async def stop(self) -> None:
        """Stop pinging and listening; close every connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.health.monitored = False
        await self._async.aclose()
        self.client.close()

    async def _watch(self) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                # The client's own timeout ends the ping; wait_for only guards against a bug.
                await asyncio.wait_for(self._async.ping(), self.timeout * 2)
            except (RedisError, OSError, TimeoutError) as exc:
                self.health.lost(exc)
            else:
                self.health.reached()
            await asyncio.sleep(PING_INTERVAL)

    async def _listen(self, on_change: Callable[[], None]) -> None:
        from redis.exceptions import RedisError

        while True:
            pubsub = self._async.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self.messages += 1
                        try:
                            on_change()
                        except Exception:  # keep listening; the counter is the safety net
                            logger.exception("could not apply a change announcement")
            except (RedisError, OSError):
                pass  # the ping says so once; subscribe again in a moment
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
            await asyncio.sleep(PING_INTERVAL)


def announce_on_redis(
    database: Database,
    url: str,
    *,
    timeout: float = 0.25,
    namespace: str = DEFAULT_NAMESPACE,
) -> Callable[[], None]:
    """Announce on the channel of the deployment ``namespace`` (`change_channel`) every
    change committed through ``database`` (for a one-off command such as
    ``rustok-server tenants disable``); returns what closes the connection. An
    announcement Redis does not take is dropped: the serving processes read the database's
    change counter too.

    Raises:
        ValueError: a malformed ``namespace`` (see `check_namespace`).
    """
    channel = change_channel(namespace)
    import redis as redis_lib
    from redis.exceptions import RedisError

    client = redis_lib.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def publish() -> None:
        with contextlib.suppress(RedisError):
            client.publish(channel, b"changed")

    def close() -> None:
        database.on_change.remove(publish)
        client.close()

    database.on_change.append(publish)
    return close
