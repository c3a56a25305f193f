"""Resilience for calls to other systems: breaker, retry, timeout, bulkhead, rate limiter.

A user imports everything from here::

    from rustok_core.resilience import CircuitBreaker, CircuitBreakerConfig, RetryPolicy

The circuit breaker is built on pybreaker (state machine, storage, Redis sharing)
with a native asyncio path and a rate-based mode over sliding windows; retries
are built on tenacity, with a shared retry budget. `Bulkhead` limits concurrent
calls, `RateLimiter` is a token bucket per key (in memory or on Redis),
`Fallback` turns errors into values, and `ResiliencePolicy` composes them in an
explicit order; `PolicyRegistry` builds named policies from plain data (TOML,
JSON, settings) and reloads them without losing breaker state. A breaker
excludes exceptions by type or by predicate (``excluded_if``), and
``judging(failed_if)`` makes a breaker, a retry policy or a whole policy treat
results as failures too (an HTTP 503 returned, not raised). Every strategy
reports events to listeners. See the package README and
``docs/CIRCUIT_BREAKER_GUIDE.md``.
"""

from rustok_core.resilience._breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStats,
    CircuitState,
    Clock,
    JudgedBreaker,
    StateChange,
    StateListener,
)
from rustok_core.resilience._budget import RetryBudget
from rustok_core.resilience._bulkhead import Bulkhead, BulkheadStats
from rustok_core.resilience._chaos import Chaos, ChaosInjected, ChaosKind, ChaosListener
from rustok_core.resilience._config import (
    PolicyChanges,
    PolicyConfigError,
    PolicyProblem,
    PolicyRegistry,
    PolicyWatcher,
)
from rustok_core.resilience._errors import (
    BulkheadFullError,
    CircuitOpenError,
    FailedResultError,
    OperationTimeoutError,
    RateLimitedError,
)
from rustok_core.resilience._events import (
    BudgetExhausted,
    CallOutcome,
    CallRejected,
    Event,
    EventListener,
    FallbackUsed,
    StorageUnavailable,
)
from rustok_core.resilience._fallback import Fallback
from rustok_core.resilience._hedging import (
    Hedge,
    HedgeAttemptEnded,
    HedgeEvent,
    HedgeListener,
    HedgeOn,
    HedgeStarted,
)
from rustok_core.resilience._policy import (
    DEFAULT_ORDER,
    JudgedPolicy,
    PolicyStep,
    ResiliencePolicy,
)
from rustok_core.resilience._ratelimit import RateLimiter
from rustok_core.resilience._redis import redis_storage
from rustok_core.resilience._registry import BreakerRegistry
from rustok_core.resilience._retry import (
    Backoff,
    Exponential,
    Fixed,
    JudgedRetry,
    Linear,
    RetryAttempt,
    RetryOn,
    RetryPolicy,
    RetryStats,
)
from rustok_core.resilience._retry_block import BlockAttempt, retrying, retrying_async
from rustok_core.resilience._storage import CircuitStorage
from rustok_core.resilience._timeout import with_timeout

__all__ = [
    "DEFAULT_ORDER",
    "Backoff",
    "BlockAttempt",
    "BreakerRegistry",
    "BudgetExhausted",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStats",
    "CallOutcome",
    "CallRejected",
    "Chaos",
    "ChaosInjected",
    "ChaosKind",
    "ChaosListener",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStorage",
    "Clock",
    "Event",
    "EventListener",
    "Exponential",
    "FailedResultError",
    "Fallback",
    "FallbackUsed",
    "Fixed",
    "Hedge",
    "HedgeAttemptEnded",
    "HedgeEvent",
    "HedgeListener",
    "HedgeOn",
    "HedgeStarted",
    "JudgedBreaker",
    "JudgedPolicy",
    "JudgedRetry",
    "Linear",
    "OperationTimeoutError",
    "PolicyChanges",
    "PolicyConfigError",
    "PolicyProblem",
    "PolicyRegistry",
    "PolicyStep",
    "PolicyWatcher",
    "RateLimitedError",
    "RateLimiter",
    "ResiliencePolicy",
    "RetryAttempt",
    "RetryBudget",
    "RetryOn",
    "RetryPolicy",
    "RetryStats",
    "StateChange",
    "StateListener",
    "StorageUnavailable",
    "redis_storage",
    "retrying",
    "retrying_async",
    "with_timeout",
]
