"""pybreaker, imported without importing redis.

pybreaker imports the ``redis`` package at import time when it is installed,
for its Redis storage. That import is slow (a large part of a second or more)
and useless to a process whose breakers live in memory, so pybreaker is
imported here with ``redis`` hidden, and `enable_redis` gives it the package
when `redis_storage` first needs it.

If ``redis`` or pybreaker was imported before this module, nothing is hidden.
A process that uses pybreaker's own ``CircuitRedisStorage`` directly, besides
this package, should import ``redis`` first.
"""

from __future__ import annotations

import sys

__all__ = ["enable_redis", "pybreaker"]

if "pybreaker" in sys.modules or "redis" in sys.modules:
    import pybreaker
else:
    sys.modules["redis"] = None  # type: ignore[assignment]  # makes `import redis` fail
    try:
        import pybreaker
    finally:
        del sys.modules["redis"]


def enable_redis() -> None:
    """Give pybreaker the ``redis`` package (imports it).

    Raises:
        ImportError: if ``redis`` is not installed.
    """
    if pybreaker.HAS_REDIS_SUPPORT:
        return
    import redis
    from redis.client import Pipeline
    from redis.exceptions import RedisError

    pybreaker.Redis = redis.Redis  # type: ignore[attr-defined]  # set only when redis imports
    pybreaker.Pipeline = Pipeline  # type: ignore[attr-defined]  # idem
    pybreaker.RedisError = RedisError  # type: ignore[attr-defined]  # idem
    pybreaker.HAS_REDIS_SUPPORT = True
