"""Test helpers for code built on rustok-core: a clock that moves only when told to, and real
Redis and PostgreSQL servers on loopback for integration tests.

The resilience strategies (breaker, retry, bulkhead, rate limiter) all accept
``clock=``; in test mode their waits are skipped but counted on that clock.

Examples:
    >>> from rustok_core.testing import ManualClock
    >>> clock = ManualClock()
    >>> clock.advance(2.5)
    >>> clock()
    1002.5
"""

from rustok_core.testing._clock import ManualClock
from rustok_core.testing._mode import is_test_mode, set_test_mode, test_mode
from rustok_core.testing._servers import (
    PostgresServer,
    RedisServer,
    ServerStartError,
    find_postgres_bindir,
    find_redis_server,
    system_servers_allowed,
)

__all__ = [
    "ManualClock",
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "find_postgres_bindir",
    "find_redis_server",
    "is_test_mode",
    "set_test_mode",
    "system_servers_allowed",
    "test_mode",
]
