"""redis_storage: one circuit shared by several processes, through pybreaker's Redis storage.

The ``redis`` package is imported only when this function is called (install
the ``redis`` extra: ``pip install 'rustok-core[redis]'``).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from rustok_core.resilience._breaker import CircuitState
from rustok_core.resilience._pybreaker import enable_redis, pybreaker
from rustok_core.resilience._storage import CircuitStorage

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["redis_storage"]

_TO_PYBREAKER = {
    CircuitState.CLOSED: pybreaker.STATE_CLOSED,
    CircuitState.OPEN: pybreaker.STATE_OPEN,
    CircuitState.HALF_OPEN: pybreaker.STATE_HALF_OPEN,
}
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


logger = logging.getLogger("rustok.resilience")


class _RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, constructible while Redis is down.

    pybreaker writes the initial keys in its constructor and lets a connection
    error escape from there, which would keep an application from starting while
    Redis is away. Here the error is logged; pybreaker writes the keys again on
    the first read that finds them missing.
    """

    def _initialize_redis_state(self, state: str) -> None:
        from redis.exceptions import RedisError

        try:
            super()._initialize_redis_state(state)
        except RedisError as exc:
            logger.warning("circuit storage %r: Redis unreachable (%s)", self._namespace_name, exc)


def redis_storage(
    redis: str | Redis,
    *,
    namespace: str,
    fallback_state: CircuitState = CircuitState.CLOSED,
    socket_timeout: float = 0.25,
) -> CircuitStorage:
    """A storage in Redis, so that breakers in several processes share one circuit.

    Every breaker given a storage with the same ``namespace`` (on the same Redis)
    sees the same state and counters: when one process opens the circuit, the
    others refuse calls too. Each call reads the state from Redis (one round
    trip) and records its outcome (one or two more), on the calling thread.

    What pybreaker's Redis storage does, and what to know about it:

    - when Redis cannot be reached (at start or later), its errors are logged
      (loggers ``pybreaker`` and ``rustok.resilience``) and the state reads as
      ``fallback_state``: ``CLOSED`` (the default) lets
      calls through unprotected, ``OPEN`` refuses them all;
    - the time the circuit opened is kept to the whole second, so another
      process may admit trial calls up to a second early;
    - the half-open trial cap is counted per process.

    Args:
        redis: a ``redis://`` URL, or a ``redis.Redis`` client created with
            ``decode_responses=False`` (the default) and socket timeouts.
        namespace: the circuit's key prefix (``rustok:<namespace>:pybreaker:*``);
            required, since breakers without one would share the same keys.
        fallback_state: the state assumed while Redis cannot be read.
        socket_timeout: connect and read timeout in seconds, for a URL.

    Raises:
        ImportError: if the ``redis`` package is not installed.
        ValueError: for an empty or malformed namespace, or a client that decodes
            responses.

    Example::

        storage = redis_storage("redis://localhost:6379/0", namespace="tenant-db")
        breaker = CircuitBreaker("tenant-db", storage=storage)
    """
    try:
        enable_redis()
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "redis_storage needs the redis package; install it with "
            "pip install 'rustok-core[redis]'"
        ) from exc
    import redis as redis_lib

    if not _NAMESPACE.match(namespace):
        raise ValueError(
            "namespace must be 1-200 characters of letters, digits, '_', '.', ':' or '-', "
            f"starting with a letter or digit, got {namespace!r}"
        )
    close = None
    if isinstance(redis, str):
        client = close_target = redis_lib.Redis.from_url(
            redis,
            decode_responses=False,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        close = close_target.close
    else:
        if redis.get_connection_kwargs().get("decode_responses"):
            raise ValueError(
                "the Redis client decodes responses, which pybreaker's storage cannot read; "
                "create it with decode_responses=False"
            )
        client = redis
    backend = _RedisStorage(
        pybreaker.STATE_CLOSED,
        client,
        namespace=f"rustok:{namespace}",
        fallback_circuit_state=_TO_PYBREAKER[fallback_state],
    )
    # A client built here from a URL is closed by storage.close(); one passed in
    # belongs to the caller.
    return CircuitStorage(backend, shared=True, close=close)
