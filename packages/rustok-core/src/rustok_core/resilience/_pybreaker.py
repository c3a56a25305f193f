"""pybreaker, imported without importing redis.

pybreaker imports the ``redis`` package at import time when it is installed,
for its own Redis storage, which this package does not use (`redis_storage`
runs its own scripts). That import is slow (a large part of a second or more)
and useless to a process whose breakers live in memory, so pybreaker is
imported here with ``redis`` hidden.

If ``redis`` or pybreaker was imported before this module, nothing is hidden.
A process that uses pybreaker's own ``CircuitRedisStorage`` directly, besides
this package, should import ``redis`` first.
"""

from __future__ import annotations

import sys

__all__ = ["pybreaker"]

if "pybreaker" in sys.modules or "redis" in sys.modules:
    import pybreaker
else:
    sys.modules["redis"] = None  # type: ignore[assignment]  # makes `import redis` fail
    try:
        import pybreaker
    finally:
        del sys.modules["redis"]
