"""ResiliencePolicy: fallback, retry, breaker, rate limiter, bulkhead and timeout, composed.

Each step wraps the next one; ``describe()`` says the order. The default order,
outside in, is the one that works for almost every caller: a fallback sees only
what everything else could not fix, each retry attempt goes through the
breaker (which counts it), a refused attempt costs no rate-limit token and no
bulkhead slot, and the timeout bounds the call itself, not the waits around it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Generic, Literal, ParamSpec, TypeAlias, TypeVar, overload

from rustok_core.resilience._breaker import CircuitBreaker
from rustok_core.resilience._bulkhead import Bulkhead
from rustok_core.resilience._decorate import decorate
from rustok_core.resilience._fallback import Fallback
from rustok_core.resilience._ratelimit import RateLimiter
from rustok_core.resilience._retry import RetryPolicy
from rustok_core.resilience._timeout import with_timeout

if sys.version_info >= (3, 13):
    from typing import Never
    from typing import TypeVar as DefaultTypeVar
else:
    from typing import Never

    from typing_extensions import TypeVar as DefaultTypeVar

__all__ = ["DEFAULT_ORDER", "PolicyStep", "ResiliencePolicy"]

P = ParamSpec("P")
T = TypeVar("T")
R = DefaultTypeVar("R", default=Never)

PolicyStep: TypeAlias = Literal["fallback", "retry", "breaker", "limiter", "bulkhead", "timeout"]
"""The name of a step of a `ResiliencePolicy`, for its ``order``."""

DEFAULT_ORDER: tuple[PolicyStep, ...] = (
    "fallback",
    "retry",
    "breaker",
    "limiter",
    "bulkhead",
    "timeout",
)
"""The steps outside in, when a policy is given no ``order``."""


# Not slotted: on Python 3.11 a generic slotted frozen dataclass cannot be built
# through its subscripted alias (``Fallback[int](...)`` raises TypeError while
# typing sets ``__orig_class__``).
@dataclass(frozen=True)
class ResiliencePolicy(Generic[R]):
    """Any of fallback, retry, breaker, rate limiter, bulkhead and timeout, in one order.

    Every step is optional. Without ``order`` they apply in `DEFAULT_ORDER`
    (outside in); with it, in the order given, which must name each configured
    step once. `describe` says what the policy does, outside in.

    Args:
        retry: the retry policy.
        breaker: the circuit breaker around each attempt.
        timeout: seconds allowed to each attempt (async calls only).
        bulkhead: the concurrency limit.
        limiter: a rate limiter; each attempt takes a token.
        limiter_key: gives the limiter's key for each call (a tenant id read from
            a context variable, say); the default key ``""`` if omitted.
        fallback: turns chosen errors into a value; the result type of the
            policy is then the call's type or the fallback's.
        order: the configured steps, outside in; `DEFAULT_ORDER` if omitted.

    Raises:
        ValueError: if ``timeout`` is not a positive number, or ``order`` names
            a step that is not configured, misses one that is, or repeats one.

    Example::

        policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3), breaker=breaker, timeout=2.0)
        rows = await policy.execute(fetch_rows, query)


        @policy
        async def fetch_user(user_id: int) -> User: ...
    """

    retry: RetryPolicy | None = None
    breaker: CircuitBreaker | None = None
    timeout: float | None = None
    bulkhead: Bulkhead | None = None
    limiter: RateLimiter | None = None
    limiter_key: Callable[[], str] | None = None
    fallback: Fallback[R] | None = None
    order: tuple[PolicyStep, ...] | None = None

    def __post_init__(self) -> None:
        timeout: object = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        configured = [step for step in DEFAULT_ORDER if self._configured(step)]
        if self.order is None:
            object.__setattr__(self, "order", tuple(configured))
            return
        order = tuple(self.order)
        unknown = [step for step in order if step not in DEFAULT_ORDER]
        if unknown:
            raise ValueError(
                f"order names unknown steps {unknown}; the steps are {list(DEFAULT_ORDER)}"
            )
        if len(set(order)) != len(order):
            raise ValueError(f"order names a step twice: {list(order)}")
        if set(order) != set(configured):
            raise ValueError(
                f"order must name each configured step once: configured {configured}, "
                f"order {list(order)}"
            )
        object.__setattr__(self, "order", order)

    def _configured(self, step: PolicyStep) -> bool:
        value: object = getattr(self, step)
        return value is not None

    @property
    def steps(self) -> tuple[PolicyStep, ...]:
        """The configured steps, outside in."""
        assert self.order is not None  # set by __post_init__
        return self.order

    def describe(self) -> str:
        """What the policy does, outside in, e.g.
        ``"retry(max_attempts=3) > breaker('payments') > timeout(2 s) > call"``."""
        parts: list[str] = []
        for step in self.steps:
            if step == "fallback" and self.fallback is not None:
                parts.append(self.fallback.describe())
            elif step == "retry" and self.retry is not None:
                budget = f", budget={self.retry.budget:g} s" if self.retry.budget else ""
                parts.append(f"retry(max_attempts={self.retry.max_attempts}{budget})")
            elif step == "breaker" and self.breaker is not None:
                parts.append(f"breaker({self.breaker.name!r})")
            elif step == "limiter" and self.limiter is not None:
                per_key = ", per key" if self.limiter_key is not None else ""
                parts.append(f"limiter({self.limiter.name!r}{per_key})")
            elif step == "bulkhead" and self.bulkhead is not None:
                slots = self.bulkhead.max_concurrent
                parts.append(f"bulkhead({self.bulkhead.name!r}, max_concurrent={slots})")
            elif step == "timeout" and self.timeout is not None:
                parts.append(f"timeout({self.timeout:g} s)")
        return " > ".join([*parts, "call"])

    async def execute(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | R:
        """Await ``fn(*args, **kwargs)`` through every step; return its result or the fallback's.

        Raises:
            CircuitOpenError: the breaker refused the last attempt.
            BulkheadFullError: the bulkhead refused the last attempt.
            RateLimitedError: the rate limiter refused the last attempt.
            OperationTimeoutError: the last attempt ran out of time.
            BaseException: the last attempt's own error, unchanged (unless a
                fallback turned it into a value).
        """

        async def call() -> T | R:
            return await fn(*args, **kwargs)

        step: Callable[[], Awaitable[T | R]] = call
        for name in reversed(self.steps):
            step = self._wrap_async(name, step)
        return await step()

    def execute_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | R:
        """Call the plain callable ``fn(*args, **kwargs)`` through every step.

        Raises:
            TypeError: the policy has a timeout, which only an async call can honour.
            BaseException: as for `execute`.
        """
        if self.timeout is not None:
            raise TypeError(
                "this policy has a timeout, which only execute() (async) can enforce; "
                "use a policy without timeout for plain callables"
            )

        def call() -> T | R:
            return fn(*args, **kwargs)

        step: Callable[[], T | R] = call
        for name in reversed(self.steps):
            step = self._wrap_sync(name, step)
        return step()

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[object, object, T]], /
    ) -> Callable[P, Coroutine[object, object, T | R]]: ...

    @overload
    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T | R]: ...

    def __call__(self, fn: Callable[P, object], /) -> Callable[P, object]:
        """Decorate a coroutine function (through `execute`) or a plain one (`execute_sync`)."""
        return decorate(fn, self.execute, self.execute_sync)

    # -- steps ------------------------------------------------------------------------

    def _limiter_key(self) -> str:
        return self.limiter_key() if self.limiter_key is not None else ""

    def _wrap_async(
        self, name: PolicyStep, inner: Callable[[], Awaitable[T | R]]
    ) -> Callable[[], Awaitable[T | R]]:
        if name == "retry" and self.retry is not None:
            return functools.partial(self.retry.execute, inner)
        if name == "breaker" and self.breaker is not None:
            return functools.partial(self.breaker.call, inner)
        if name == "bulkhead" and self.bulkhead is not None:
            return functools.partial(self.bulkhead.call, inner)
        if name == "limiter" and self.limiter is not None:
            return functools.partial(self.limiter.call_for, self._limiter_key(), inner)
        if name == "timeout" and self.timeout is not None:
            return functools.partial(with_timeout, self.timeout, inner)
        fallback = self.fallback
        assert name == "fallback"
        assert fallback is not None

        async def with_fallback() -> T | R:
            try:
                return await inner()
            except Exception as error:
                if not fallback.handles(error):
                    raise
                return fallback.apply(error)

        return with_fallback

    def _wrap_sync(self, name: PolicyStep, inner: Callable[[], T | R]) -> Callable[[], T | R]:
        if name == "retry" and self.retry is not None:
            return functools.partial(self.retry.execute_sync, inner)
        if name == "breaker" and self.breaker is not None:
            return functools.partial(self.breaker.call_sync, inner)
        if name == "bulkhead" and self.bulkhead is not None:
            return functools.partial(self.bulkhead.call_sync, inner)
        if name == "limiter" and self.limiter is not None:
            limiter, key = self.limiter, self._limiter_key()

            def limited() -> T | R:
                limiter.acquire_sync(key)
                return inner()

            return limited
        fallback = self.fallback
        assert name == "fallback"
        assert fallback is not None

        def with_fallback() -> T | R:
            try:
                return inner()
            except Exception as error:
                if not fallback.handles(error):
                    raise
                return fallback.apply(error)

        return with_fallback
