"""Test helpers for code built on rustok-core: a clock that moves only when told to, real
Redis and PostgreSQL servers on loopback for integration tests, and type-level tests run
by mypy and pyright over snippet files (`check_types`, `marked_lines`).

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
from rustok_core.testing._typing import (
    PYRIGHT_RULES,
    TYPE_CHECKERS,
    MarkedLine,
    TypeChecker,
    TypeCheckError,
    TypeCheckErrors,
    check_types,
    marked_lines,
)

__all__ = [
    "PYRIGHT_RULES",
    "TYPE_CHECKERS",
    "ManualClock",
    "MarkedLine",
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "TypeCheckError",
    "TypeCheckErrors",
    "TypeChecker",
    "check_types",
    "find_postgres_bindir",
    "find_redis_server",
    "is_test_mode",
    "marked_lines",
    "set_test_mode",
    "system_servers_allowed",
    "test_mode",
]
