"""Resilience for calls to other systems: circuit breaker, retry, timeouts, and all three.

A user imports everything from here::

    from rustok_core.resilience import CircuitBreaker, CircuitBreakerConfig, RetryPolicy

The circuit breaker is built on pybreaker (state machine, storage, Redis sharing)
with a native asyncio path; retries are built on tenacity. See the package
README and ``docs/CIRCUIT_BREAKER_GUIDE.md``.
"""

from rustok_core.resilience._breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStats,
    CircuitState,
    Clock,
    StateChange,
    StateListener,
)
from rustok_core.resilience._errors import CircuitOpenError, OperationTimeoutError
from rustok_core.resilience._policy import ResiliencePolicy
from rustok_core.resilience._redis import redis_storage
from rustok_core.resilience._retry import (
    Backoff,
    Exponential,
    Fixed,
    Linear,
    RetryAttempt,
    RetryOn,
    RetryPolicy,
    RetryStats,
)
from rustok_core.resilience._storage import CircuitStorage
from rustok_core.resilience._timeout import with_timeout

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStorage",
    "Clock",
    "Exponential",
    "Fixed",
    "Linear",
    "OperationTimeoutError",
    "ResiliencePolicy",
    "RetryAttempt",
    "RetryOn",
    "RetryPolicy",
    "RetryStats",
    "StateChange",
    "StateListener",
    "redis_storage",
    "with_timeout",
]
