"""redis_storage: one circuit shared by several processes, on Redis, updated atomically;
and what every strategy on Redis shares: its client, and what it does while Redis is away.

The ``redis`` package is imported only when a strategy is given Redis (install
the ``redis`` extra: ``pip install 'rustok-core[redis]'``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rustok_core.resilience._events import EventListener, StorageUnavailable, notify
from rustok_core.resilience._fleet import FleetCircuit
from rustok_core.resilience._pybreaker import pybreaker
from rustok_core.resilience._storage import CircuitStorage

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisOutage", "connect", "redis_storage"]

logger = logging.getLogger("rustok.resilience")

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_RETRY = 1.0  # seconds between attempts to reach Redis again after a failure


def connect(
    redis: str | Redis, purpose: str, socket_timeout: float
) -> tuple[Redis, Callable[[], None] | None]:
    """A client for ``redis`` (a URL or a client), and what closes it: a client built here
    from a URL is closed by that callable; one passed in is the caller's (``None``).

    Raises:
        ImportError: the ``redis`` package is not installed (``purpose`` says who needs it).
    """
    try:
        import redis as redis_lib
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{purpose} needs the redis package; install it with pip install 'rustok-core[redis]'"
        ) from exc
    if not isinstance(redis, str):
        return redis, None
    client = redis_lib.Redis.from_url(
        redis,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )
    return client, client.close


class RedisOutage:
    """Whether Redis answers one strategy: when it stops, one log line and a
    `StorageUnavailable` event, and no new attempt for a second; when it answers again,
    another line and event.

    Args:
        strategy: the strategy's kind in events (``"breaker"``, ``"rate_limiter"``).
        label: its kind in log lines (``"circuit breaker"``).
        name: its name.
        meanwhile: what it does while Redis is away, for the log line.
    """

    __slots__ = ("_label", "_meanwhile", "_name", "_strategy", "down_until")

    def __init__(self, strategy: str, label: str, name: str, meanwhile: str) -> None:
        self._strategy = strategy
        self._label = label
        self._name = name
        self._meanwhile = meanwhile
        self.down_until = 0.0
        """0.0 while Redis answers; otherwise when to try it again (on the strategy's clock)."""

    def failed(self, error: Exception, now: float, listeners: Sequence[EventListener]) -> None:
        """Redis did not answer at ``now``."""
        if self.down_until == 0.0:
            logger.warning(
                "%s %r: Redis unreachable (%s); %s until it is back",
                self._label,
                self._name,
                error,
                self._meanwhile,
            )
            if listeners:
                event = StorageUnavailable(
                    self._strategy, self._name, available=False, error=str(error)
                )
                notify(listeners, event)
        self.down_until = now + _RETRY

    def answered(self, listeners: Sequence[EventListener]) -> None:
        """Redis answered."""
        if self.down_until:
            self.down_until = 0.0
            logger.warning("%s %r: Redis reachable again", self._label, self._name)
            if listeners:
                notify(listeners, StorageUnavailable(self._strategy, self._name, available=True))


def redis_storage(
    redis: str | Redis,
    *,
    namespace: str,
    socket_timeout: float = 0.25,
    clock: Callable[[], float] = time.time,
    max_staleness: float = 0.1,
) -> CircuitStorage:
    """A storage on Redis, so that breakers in several processes share one circuit.

    Every breaker given a storage with the same ``namespace`` (on the same Redis)
    shares the state, the counters or sliding window, and the half-open trial
    budget: when one process opens the circuit, the others refuse calls too,
    and while it is half-open the whole fleet sends at most
    ``half_open_max_requests`` trial calls.

    How it works, and what to know:

    - every update is one Lua script, atomic on Redis: no lost updates from
      concurrent processes, and one round trip per call. A closed breaker admits
      a call on the state it learnt from its last reply, if that reply is at
      most ``max_staleness`` seconds old, and records the outcome (one round
      trip, whose reply carries the state); with an older reply it asks Redis
      first (two round trips: a call after a quiet spell). An open breaker
      refuses calls without asking Redis until its timeout has passed; a
      half-open trial asks for a permit first (two round trips). So a process
      admits calls on a state at most ``max_staleness`` old. Round trips are made on the
      calling thread, the event loop's in async code: keep Redis close and
      ``socket_timeout`` short;
    - times are read from ``clock`` (wall-clock seconds by default), which the
      processes sharing a circuit must agree on;
    - when Redis cannot be reached the breaker goes on with local state (this
      process's counts, starting from the last state it saw), logs one line and
      tells its event listeners (`StorageUnavailable`), and tries Redis again a
      second later; when Redis answers again its state wins.

    Args:
        redis: a ``redis://`` URL, or a ``redis.Redis`` client created with
            ``decode_responses=False`` (the default) and short socket timeouts.
        namespace: the circuit's name on Redis (keys ``rustok:{<namespace>}:circuit*``).
        socket_timeout: connect and read timeout in seconds, for a URL.
        clock: wall-clock seconds shared by the processes (tests pass a ``ManualClock``).
        max_staleness: seconds for which a closed breaker trusts the state of its
            last reply (on the breaker's own clock); never more than half the
            breaker's ``timeout``, so that a call admitted on a stale state
            reaches the dependency before a half-open period can begin.

    Raises:
        ImportError: if the ``redis`` package is not installed.
        ValueError: for an empty or malformed namespace, a negative ``max_staleness``,
            or a client that decodes responses.

    Example::

        storage = redis_storage("redis://localhost:6379/0", namespace="tenant-db")
        breaker = CircuitBreaker("tenant-db", storage=storage)
    """
    if not _NAMESPACE.match(namespace):
        raise ValueError(
            "namespace must be 1-200 characters of letters, digits, '_', '.', ':' or '-', "
            f"starting with a letter or digit, got {namespace!r}"
        )
    staleness: object = max_staleness
    if isinstance(staleness, bool) or not isinstance(staleness, int | float) or not staleness >= 0:
        raise ValueError(f"max_staleness must be a number of seconds >= 0, got {max_staleness!r}")
    client, close = connect(redis, "redis_storage", socket_timeout)
    if close is None and client.get_connection_kwargs().get("decode_responses"):
        raise ValueError(
            "the Redis client decodes responses, which the circuit scripts do not expect; "
            "create it with decode_responses=False"
        )
    # The local mirror of the circuit (and the state used while Redis is away).
    mirror = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
    # A client built here from a URL is closed by storage.close(); one passed in
    # belongs to the caller.
    return CircuitStorage(
        mirror,
        close=close,
        _fleet=FleetCircuit(client, namespace, clock=clock, max_staleness=float(max_staleness)),
    )
