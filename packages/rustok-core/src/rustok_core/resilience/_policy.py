"""ResiliencePolicy: retry (outside), circuit breaker, timeout (inside), in one object."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from rustok_core.resilience._breaker import CircuitBreaker
from rustok_core.resilience._retry import RetryPolicy
from rustok_core.resilience._timeout import with_timeout

__all__ = ["ResiliencePolicy"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """Retry, circuit breaker and timeout applied together, in that order from outside in.

    Each attempt of the retry policy goes through the breaker, and each call the
    breaker admits runs under the timeout. So a timeout counts as one breaker
    failure, an open breaker refuses an attempt without running it (and is
    retried only if the retry policy's budget allows, see `RetryPolicy`), and
    every part is optional.

    Args:
        retry: the retry policy, outermost; ``None`` for a single attempt.
        breaker: the circuit breaker around each attempt; ``None`` for none.
        timeout: seconds allowed to each attempt, innermost; ``None`` for no limit.

    Raises:
        ValueError: if ``timeout`` is not a positive number.

    Example::

        policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3), breaker=breaker, timeout=2.0)
        rows = await policy.execute(fetch_rows, query)


        @policy
        async def fetch_user(user_id: int) -> User: ...
    """

    retry: RetryPolicy | None = None
    breaker: CircuitBreaker | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        timeout: object = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )

    async def execute(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` under retry, breaker and timeout; return its result.

        Raises:
            CircuitOpenError: the breaker refused the last attempt.
            OperationTimeoutError: the last attempt ran out of time.
            BaseException: the last attempt's own error, unchanged.
        """
        timeout = self.timeout
        breaker = self.breaker

        async def timed() -> T:
            if timeout is None:
                return await fn(*args, **kwargs)
            return await with_timeout(timeout, fn, *args, **kwargs)

        async def attempt() -> T:
            if breaker is None:
                return await timed()
            return await breaker.call(timed)

        if self.retry is None:
            return await attempt()
        return await self.retry.execute(attempt)

    def __call__(
        self, fn: Callable[P, Coroutine[object, object, T]], /
    ) -> Callable[P, Coroutine[object, object, T]]:
        """Decorate a coroutine function so that every call goes through `execute`."""

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.execute(fn, *args, **kwargs)

        return wrapper
