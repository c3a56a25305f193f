"""RetryPolicy: retries with backoff, jitter and a time budget, on tenacity.

tenacity does the retrying (attempt bookkeeping, wait strategies, stop
conditions). This module fixes its defaults (a stop is always set, the last
error is re-raised as itself, never a ``RetryError``), tries the first attempt
before engaging tenacity at all (so a call that succeeds at once costs little),
keeps statistics per policy rather than per thread, and knows about
`CircuitOpenError`: it is retried only when a time budget is set and the
breaker's ``retry_after`` fits in what is left of it.

`JudgedRetry` (``policy.judging(failed_if)``) also retries results that a predicate
judges failed (tenacity's ``retry_if_result``), and returns the last result when the
attempts or budgets run out: an attempt's failed result is raised inside tenacity's
attempt as a `FailedResultError`, so that waits, stops, budgets, logs and events
treat it as they treat an error, and is turned back into the result at the end.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar, Literal, ParamSpec, TypeAlias, TypeVar, cast

import tenacity

from rustok_core.resilience._budget import RetryBudget
from rustok_core.resilience._decorate import (
    Decorates,
    Judging,
    Paths,
    exception_selector,
    predicate_name,
)
from rustok_core.resilience._errors import (
    BulkheadFullError,
    CircuitOpenError,
    FailedResultError,
    RateLimitedError,
)
from rustok_core.resilience._events import BudgetExhausted, EventListener, RetryAttempt, notify
from rustok_core.resilience._waiting import (
    ATTEMPT,
    Elapsed,
    Steps,
    run_steps_async,
    run_steps_sync,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Backoff",
    "Exponential",
    "Fixed",
    "JudgedRetry",
    "Linear",
    "RetryAttempt",
    "RetryOn",
    "RetryPolicy",
    "RetryStats",
]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("rustok.resilience")


# Refusals by our own strategies: retried only within a time budget, never blindly.
_REFUSALS = (CircuitOpenError, BulkheadFullError, RateLimitedError)


def _retry_after_of(error: BaseException) -> float:
    """The seconds an error asks the caller to wait (``retry_after``), or 0.0."""
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        return 0.0
    return float(retry_after) if retry_after > 0 else 0.0


def _name_of(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def _check_delay(name: str, value: object, *, minimum: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}, got {value!r}")


class _FullJitter(tenacity.wait.wait_base):
    """Full jitter over another wait: a uniform draw between 0 and its delay."""

    def __init__(self, inner: tenacity.wait.wait_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return random.uniform(0.0, self.inner(retry_state))


def _delay_of(wait: tenacity.wait.wait_base, attempt: object) -> float:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = attempt
    return float(wait(state))


class _Backoff:
    """What every backoff shares: its delays checked at construction (each a number >= 0,
    or >= its class's minimum), and `delay_after`."""

    __slots__ = ()
    _minimums: ClassVar[Mapping[str, float]] = {}

    def __post_init__(self) -> None:
        for number in fields(cast("DataclassInstance", self)):
            if number.name != "jitter":
                minimum = self._minimums.get(number.name, 0.0)
                _check_delay(number.name, getattr(self, number.name), minimum=minimum)

    def _wait(self) -> tenacity.wait.wait_base:
        raise NotImplementedError  # pragma: no cover - every backoff has its wait

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        return _delay_of(self._wait(), attempt)


@dataclass(frozen=True, slots=True)
class Fixed(_Backoff):
    """The same delay before every retry.

    Args:
        delay: seconds to wait.
        jitter: wait a uniform random time between 0 and ``delay`` instead.
    """

    delay: float = 0.1
    jitter: bool = False

    def _wait(self) -> tenacity.wait.wait_base:
        if self.jitter:
            return tenacity.wait_random(0, self.delay)
        return tenacity.wait_fixed(self.delay)


@dataclass(frozen=True, slots=True)
class Linear(_Backoff):
    """A delay growing by ``step`` after each attempt, up to ``cap``.

    After attempt n the wait is ``min(cap, initial + step * (n - 1))``.

    Args:
        initial: seconds to wait after the first attempt.
        step: seconds added for each further attempt.
        cap: the longest wait.
        jitter: wait a uniform random time between 0 and that delay instead.
    """

    initial: float = 0.1
    step: float = 0.1
    cap: float = 5.0
    jitter: bool = False

    def _wait(self) -> tenacity.wait.wait_base:
        wait = tenacity.wait_incrementing(start=self.initial, increment=self.step, max=self.cap)
        return _FullJitter(wait) if self.jitter else wait


@dataclass(frozen=True, slots=True)
class Exponential(_Backoff):
    """A delay multiplied by ``multiplier`` after each attempt, up to ``cap``.

    After attempt n the wait is ``min(cap, base * multiplier ** (n - 1))``; with
    ``jitter`` (the default, "full jitter") a uniform random time between 0 and
    that, so that many clients retrying together spread out.

    Args:
        base: seconds to wait after the first attempt.
        multiplier: growth factor per attempt (>= 1).
        cap: the longest wait.
        jitter: draw the wait uniformly between 0 and the delay.
    """

    base: float = 0.1
    multiplier: float = 2.0
    cap: float = 5.0
    jitter: bool = True
    _minimums: ClassVar[Mapping[str, float]] = {"multiplier": 1.0}

    def _wait(self) -> tenacity.wait.wait_base:
        kind = tenacity.wait_random_exponential if self.jitter else tenacity.wait_exponential
        return kind(multiplier=self.base, max=self.cap, exp_base=self.multiplier)


Backoff: TypeAlias = Fixed | Linear | Exponential
"""How long to wait between attempts."""

RetryOn: TypeAlias = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""Which errors are retried: an exception type, a tuple of them, or a predicate."""


@dataclass(frozen=True, slots=True)
class RetryStats:
    """Totals of a policy since it was built (over every call, task and thread)."""

    calls: int
    """Calls to `RetryPolicy.execute` / `RetryPolicy.execute_sync` that have finished."""
    attempts: int
    """Attempts made, first ones included."""
    retries: int
    """Attempts that were retries (attempts minus first attempts)."""
    successes: int
    """Calls that returned a result (through `JudgedRetry`, one not judged failed)."""
    failures: int
    """Calls that raised (after their last attempt), or, through `JudgedRetry`, whose
    last result was judged failed."""
    total_delay: float
    """Seconds of waiting between attempts (as computed; skipped, but counted, in test mode)."""


class _Counters:
    __slots__ = ("attempts", "calls", "delay", "failures", "retries", "successes")

    def __init__(self) -> None:
        self.calls = self.attempts = self.retries = self.successes = self.failures = 0
        self.delay = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy(Decorates):
    """Retry a failing call with backoff, up to ``max_attempts`` and a time budget.

    Only ``Exception`` subclasses selected by ``retry_on`` are retried; any other
    error, and the last error once attempts or budget run out, is re-raised as
    itself. An error with a ``retry_after`` (seconds, as `CircuitOpenError`,
    `BulkheadFullError`, `RateLimitedError` and 429/503 errors of other
    libraries carry) is waited for at least that long, and retried only if the
    wait fits the time budget. The refusals of our own strategies
    (`CircuitOpenError`, `BulkheadFullError`, `RateLimitedError`) are retried
    only when ``budget`` is set.

    Args:
        max_attempts: attempts in all, the first one included (>= 1).
        backoff: the wait between attempts: `Fixed`, `Linear` or `Exponential`.
        retry_on: an exception type, a tuple of them, or a predicate.
        budget: seconds from the first attempt after which no retry starts; a
            retry whose wait would end past it is not made.
        on_retry: a hook told of each retry (`RetryAttempt`), for metrics or logs.
        retry_budget: a `RetryBudget` shared by every call of the policy (or of
            several policies): when it runs low, failed calls are not retried, so
            an outage does not multiply the load.
        name: the policy's name, in logs and events.
        listeners: callables told of every `RetryAttempt` and `BudgetExhausted`.
        clock: monotonic seconds, for the budget; tests may pass their own. In test
            mode (``rustok_core.testing.test_mode``) waits are skipped but still
            count toward the budget: advanced on a ``ManualClock``, added to the
            elapsed time otherwise.

    Example::

        policy = RetryPolicy(max_attempts=4, backoff=Exponential(base=0.05), budget=2.0)
        row = await policy.execute(fetch_row, 42)
    """

    max_attempts: int = 3
    backoff: Backoff = field(default_factory=Exponential)
    retry_on: RetryOn = (Exception,)
    budget: float | None = None
    on_retry: Callable[[RetryAttempt], None] | None = None
    clock: Callable[[], float] = time.monotonic
    retry_budget: RetryBudget | None = None
    name: str = "retry"
    listeners: Sequence[EventListener] = ()
    _should_retry: Callable[[Exception], bool] = field(init=False, repr=False, compare=False)
    _counters: _Counters = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        attempts: object = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {attempts!r}")
        budget: object = self.budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0
        ):
            raise ValueError(f"budget must be a positive number of seconds or None, got {budget!r}")
        backoff: object = self.backoff
        if not isinstance(backoff, Fixed | Linear | Exponential):
            raise TypeError(f"backoff must be Fixed, Linear or Exponential, got {backoff!r}")
        retry_budget: object = self.retry_budget
        if retry_budget is not None and not isinstance(retry_budget, RetryBudget):
            raise TypeError(f"retry_budget must be a RetryBudget or None, got {retry_budget!r}")
        object.__setattr__(self, "listeners", tuple(self.listeners))
        object.__setattr__(
            self, "_should_retry", exception_selector("retry_on", self.retry_on, BaseException)
        )
        object.__setattr__(self, "_counters", _Counters())

    def stats(self) -> RetryStats:
        """Totals of this policy's calls and attempts so far."""
        c = self._counters
        return RetryStats(c.calls, c.attempts, c.retries, c.successes, c.failures, c.delay)

    async def execute(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, retrying per this policy; return its result.

        Raises:
            BaseException: the last attempt's own error, when it is not retryable
                or attempts or budget ran out.
        """
        return await run_steps_async(self._steps(fn, None), self.clock, fn, args, kwargs)

    def execute_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the plain callable ``fn(*args, **kwargs)``, retrying per this policy.

        Waits with ``time.sleep`` (skipped in test mode, see ``rustok_core.testing``).

        Raises:
            BaseException: the last attempt's own error, as for `execute`.
        """
        return run_steps_sync(self._steps(fn, None), self.clock, fn, args, kwargs)

    def _paths(self) -> Paths:
        return self.execute, self.execute_sync

    def judging(self, failed_if: Callable[[T], bool]) -> JudgedRetry[T]:
        """This policy, also retrying results that ``failed_if`` judges failed.

        A call that returns a value for which ``failed_if`` is true is retried like a
        retryable error (whatever ``retry_on`` says: the predicate chose it), within
        ``max_attempts``, the time budget and the retry budget; when they run out, the
        last attempt's result is returned (an HTTP client's caller gets the last 503
        response, not an error). The view shares this policy's counters and listeners.

        Give a typed function, or annotate the view when ``failed_if`` is a lambda::

            def server_error(response: Response) -> bool:
                return response.status_code >= 500


            retrying = RetryPolicy(max_attempts=3).judging(server_error)
            response = await retrying.execute(client.get, "/charges")

        Raises:
            TypeError: if ``failed_if`` is not callable.
        """
        return JudgedRetry(self, failed_if)

    def _done(self, result: T, failed: bool) -> T:
        """Count a call that returned ``result`` (``failed``: judged failed) and return it."""
        counters = self._counters
        counters.calls += 1
        if failed:
            counters.failures += 1
        else:
            counters.successes += 1
            if self.retry_budget is not None:
                self.retry_budget.record_success()
        return result

    # -- the retry machinery, engaged only after a first failure -----------------

    def _retryable(self, exc: Exception) -> bool:
        if isinstance(exc, _REFUSALS) and self.budget is None:
            return False  # a refusal is not retried blindly
        return self._should_retry(exc)

    def _steps(self, fn: object, failed_if: Callable[[T], bool] | None) -> Steps[T]:
        """The one body of every call, sync or async (`run_steps_async` and
        `run_steps_sync` drive it): the first attempt, then, only if it failed and may be
        retried, tenacity's retrying; ``failed_if`` (`JudgedRetry`) judges results."""
        counters = self._counters
        counters.attempts += 1
        elapsed = Elapsed(self.clock)
        failed = False
        try:
            result: T = yield ATTEMPT
            failed = failed_if is not None and failed_if(result)
        except Exception as exc:
            if self.max_attempts == 1 or not self._retryable(exc):
                counters.calls += 1
                counters.failures += 1
                raise
            error: Exception = exc
        except BaseException:
            counters.calls += 1
            counters.failures += 1
            raise
        else:
            if not failed or self.max_attempts == 1:
                return self._done(result, failed)
            error = FailedResultError(result)
        # The retry machinery, engaged only after a first failure: tenacity decides (retry,
        # wait, stop, before_sleep) on each failed attempt, the first one included.
        retrying = tenacity.Retrying(
            stop=functools.partial(self._stop, elapsed),
            wait=functools.partial(self._wait, self.backoff._wait()),
            retry=self._retry if failed_if is None else self._retry_judged,
            before_sleep=functools.partial(self._before_sleep, elapsed, _name_of(fn)),
            reraise=True,
        )
        retrying.begin()
        state = tenacity.RetryCallState(retrying, None, (), {})
        # The failed result the last attempt stands for, when it returned one.
        judged = error if failed else None
        try:
            while True:
                state.set_exception((type(error), error, error.__traceback__))
                # Raises the last error (judged or not) when it is not to be retried.
                delay = retrying.iter(state)
                assert isinstance(delay, tenacity.DoSleep)
                state.prepare_for_next_attempt()
                elapsed.add_skipped((yield float(delay)))
                counters.attempts += 1
                try:
                    result = yield ATTEMPT
                    if failed_if is None or not failed_if(result):
                        break
                except Exception as exc:
                    error = exc
                else:
                    error = judged = FailedResultError(result)
        except FailedResultError as last:
            if failed_if is None or last is not judged:
                counters.calls += 1
                counters.failures += 1
                raise
            return self._done(cast(T, last.result), True)
        except BaseException:
            counters.calls += 1
            counters.failures += 1
            raise
        return self._done(result, False)

    @staticmethod
    def _error_of(retry_state: tenacity.RetryCallState) -> BaseException | None:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return None
        return outcome.exception()

    def _retry(self, retry_state: tenacity.RetryCallState) -> bool:
        error = self._error_of(retry_state)
        return isinstance(error, Exception) and self._retryable(error)

    def _retry_judged(self, retry_state: tenacity.RetryCallState) -> bool:
        # A result judged failed is retried whatever retry_on says: the predicate chose it.
        return isinstance(self._error_of(retry_state), FailedResultError) or self._retry(
            retry_state
        )

    def _wait(
        self, backoff: tenacity.wait.wait_base, retry_state: tenacity.RetryCallState
    ) -> float:
        delay = float(backoff(retry_state))
        error = self._error_of(retry_state)
        if error is not None:
            # Retrying before the error's retry_after would only be refused again.
            delay = max(delay, _retry_after_of(error))
        return delay

    def _stop(self, elapsed: Elapsed, retry_state: tenacity.RetryCallState) -> bool:
        # tenacity asks once per failed attempt that is retryable.
        retry_budget = self.retry_budget
        if retry_budget is not None:
            retry_budget.record_failure()
        attempts = retry_state.attempt_number
        if attempts >= self.max_attempts:
            return True
        if retry_budget is not None and not retry_budget.allows_retry():
            self._exhausted("retries", attempts)
            return True
        if self.budget is None:
            return False
        if elapsed() + retry_state.upcoming_sleep > self.budget:
            self._exhausted("time", attempts)
            return True
        return False

    def _exhausted(self, budget: Literal["time", "retries"], attempts: int) -> None:
        logger.info("%s: %s budget exhausted after %d attempts", self.name, budget, attempts)
        if self.listeners:
            notify(self.listeners, BudgetExhausted(self.name, budget, attempts))

    def _before_sleep(
        self, elapsed: Elapsed, name: str, retry_state: tenacity.RetryCallState
    ) -> None:
        delay = retry_state.upcoming_sleep
        self._counters.retries += 1
        self._counters.delay += delay
        error = self._error_of(retry_state)
        assert isinstance(error, Exception)  # only Exceptions are retried
        logger.info(
            "attempt %d of %s failed (%s: %s); retrying in %.3f s",
            retry_state.attempt_number,
            name,
            type(error).__name__,
            error,
            delay,
        )
        if self.on_retry is not None or self.listeners:
            event = RetryAttempt(
                attempt=retry_state.attempt_number,
                error=error,
                delay=delay,
                elapsed=elapsed(),
                policy=self.name,
            )
            if self.on_retry is not None:
                self.on_retry(event)
            if self.listeners:
                notify(self.listeners, event)


class JudgedRetry(Judging[T]):
    """A `RetryPolicy` that also retries results judged failed (from `RetryPolicy.judging`).

    An attempt that returns a value for which ``failed_if`` is true is retried as a
    retryable error would be (its `RetryAttempt` carries a `FailedResultError` holding
    the value), within the policy's ``max_attempts``, time ``budget`` and
    ``retry_budget``. When they run out, the last attempt's outcome is the call's: its
    result, returned unchanged, if it returned one; its error, raised, if it raised.
    What ``failed_if`` raises is treated as the attempt's own error (retried if
    ``retry_on`` selects it). `RetryStats.failures` counts the calls that ended on a
    failed result.

    Args:
        policy: the retry policy whose settings, counters and listeners are used.
        failed_if: the predicate on an attempt's result; true means it failed.

    Raises:
        TypeError: if ``failed_if`` is not callable.
    """

    __slots__ = ("_policy",)

    def __init__(self, policy: RetryPolicy, failed_if: Callable[[T], bool]) -> None:
        super().__init__(failed_if)
        self._policy = policy

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy this view applies."""
        return self._policy

    async def execute(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, retrying errors and failed results; return the
        result of the last attempt.

        Raises:
            BaseException: the last attempt's own error, when it raised one that is not
                retryable or attempts or budget ran out.
        """
        steps = self._policy._steps(fn, self._failed_if)
        return await run_steps_async(steps, self._policy.clock, fn, args, kwargs)

    def execute_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the plain callable ``fn(*args, **kwargs)`` as `execute` awaits a coroutine.

        Raises:
            BaseException: the last attempt's own error, as for `execute`.
        """
        steps = self._policy._steps(fn, self._failed_if)
        return run_steps_sync(steps, self._policy.clock, fn, args, kwargs)

    def _paths(self) -> Paths:
        return self.execute, self.execute_sync

    def __repr__(self) -> str:
        return f"<JudgedRetry {self._policy.name!r} failed_if={predicate_name(self._failed_if)}>"
