"""The errors the resilience tools raise themselves (a protected call's own errors pass through)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rustok_core.error import ErrorKind, FieldViolation, RichError

if TYPE_CHECKING:
    from rustok_core.resilience._breaker import CircuitState

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "FailedResultError",
    "OperationTimeoutError",
    "RateLimitedError",
]


class CircuitOpenError(RichError):
    """A circuit breaker refused a call without running it.

    Raised while the breaker is open, or half-open with every trial slot taken.
    Its kind is ``EXTERNAL_SERVICE`` (HTTP 503): the dependency is being given time
    to recover, and the caller should come back after ``retry_after`` seconds.

    Attributes:
        breaker_name: the name of the breaker that refused the call.
        state: the breaker's state when it refused (``OPEN``, ``HALF_OPEN`` or
            ``FORCED_OPEN``).
        retry_after: seconds until the breaker lets a trial call through (0.0 when
            it is half-open and only waits for the trial calls in flight; forced open,
            its ``timeout``, as a hint: only an operator ends that state).

    Args:
        breaker_name: the name of the refusing breaker.
        state: its state.
        retry_after: seconds until it admits a trial call.
        message: the internal message; one naming the breaker and state if omitted.
    """

    breaker_name: str
    state: CircuitState
    retry_after: float

    # Open breakers raise this on their hot path, so what is the same for every
    # instance lives on the class and __init__ sets only what varies (building
    # one through RichError.__init__ costs about four times as much). The result
    # reads exactly like RichError(ErrorKind.EXTERNAL_SERVICE, message,
    # user_message=...), which the tests check attribute by attribute; the
    # fluent setters (with_tenant, ...) still set instance values.
    kind: ErrorKind = ErrorKind.EXTERNAL_SERVICE
    user_message: str | None = "The service is temporarily unavailable. Please retry later."
    code: str = ErrorKind.EXTERNAL_SERVICE.code
    status: int = ErrorKind.EXTERNAL_SERVICE.status
    tenant_id: str | None = None
    trace_id: str | None = None
    violations: tuple[FieldViolation, ...] = ()

    def __init__(
        self,
        breaker_name: str,
        state: CircuitState,
        retry_after: float,
        *,
        message: str | None = None,
    ) -> None:
        if message is None:
            message = rejection_message(breaker_name, state)
        Exception.__init__(self, message)
        self.message = message
        self.fields = {}
        self.breaker_name = breaker_name
        self.state = state
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{super().__str__()}; retry after {self.retry_after:.3f} s"


def rejection_message(breaker_name: str, state: CircuitState) -> str:
    """The message of a `CircuitOpenError` (a breaker computes its own once); its text
    ends with the retry time."""
    if state.value == "forced_open":
        return (
            f"circuit breaker {breaker_name!r} is forced open and refused the call: an "
            "operator isolated the dependency it protects until the breaker is released"
        )
    return (
        f"circuit breaker {breaker_name!r} is {state.value} and refused the call: "
        "the dependency it protects failed repeatedly"
    )


class OperationTimeoutError(RichError, TimeoutError):
    """An operation did not finish within its time limit and was cancelled.

    A `TimeoutError`, so ``except TimeoutError`` catches it too. Its kind is
    ``TIMEOUT`` (HTTP 504).

    Attributes:
        seconds: the time limit that was exceeded.
        operation: the name of the operation that timed out.
    """

    seconds: float
    operation: str

    def __init__(self, seconds: float, operation: str) -> None:
        super().__init__(
            ErrorKind.TIMEOUT,
            f"operation {operation!r} did not finish within {seconds:g} s and was cancelled; "
            f"raise the limit if it is legitimately slow, or look at what it waits for",
            user_message="The operation took too long. Please retry later.",
        )
        self.seconds = seconds
        self.operation = operation


class BulkheadFullError(RichError):
    """A bulkhead refused a call: every slot was taken and none freed within ``max_wait``.

    Its kind is ``EXTERNAL_SERVICE`` (HTTP 503, with ``Retry-After``): the
    dependency is busy, not broken.

    Attributes:
        bulkhead_name: the name of the refusing bulkhead.
        max_concurrent: its number of slots.
        retry_after: seconds after which a retry may find a free slot (a hint:
            the bulkhead's ``max_wait``, or 1 s when it does not wait).
    """

    bulkhead_name: str
    max_concurrent: int
    retry_after: float

    def __init__(self, bulkhead_name: str, max_concurrent: int, retry_after: float) -> None:
        super().__init__(
            ErrorKind.EXTERNAL_SERVICE,
            f"bulkhead {bulkhead_name!r} refused the call: all {max_concurrent} slots are busy; "
            f"retry after {retry_after:g} s, or raise max_concurrent if the dependency can "
            "take more",
            user_message="The service is busy. Please retry later.",
        )
        self.bulkhead_name = bulkhead_name
        self.max_concurrent = max_concurrent
        self.retry_after = retry_after


class RateLimitedError(RichError):
    """A rate limiter refused a call: the key's token bucket is empty.

    Its kind is ``RATE_LIMITED`` (HTTP 429, with ``Retry-After``).

    Attributes:
        limiter_name: the name of the refusing limiter.
        key: the key whose bucket is empty (a tenant id, a host; ``""`` for one bucket).
        retry_after: seconds until the bucket holds enough tokens again.
    """

    limiter_name: str
    key: str
    retry_after: float

    def __init__(self, limiter_name: str, key: str, retry_after: float) -> None:
        which = f" for key {key!r}" if key else ""
        super().__init__(
            ErrorKind.RATE_LIMITED,
            f"rate limiter {limiter_name!r} refused the call{which}: the rate is used up; "
            f"retry after {retry_after:.3f} s",
            user_message="Too many requests. Please retry later.",
        )
        self.limiter_name = limiter_name
        self.key = key
        self.retry_after = retry_after


class FailedResultError(RichError):
    """A call returned a result that a result predicate judged failed.

    It stands for that result wherever the resilience tools expect an error: as the
    `RetryAttempt` of a `JudgedRetry` whose attempt returned a failed result (the
    error that was retried), and as the error the fallback step of a `JudgedPolicy`
    is offered when the final result failed. A judged strategy never raises it to its
    caller: the caller gets the result itself. Its kind is ``EXTERNAL_SERVICE`` (HTTP
    503), should code of yours raise it. Its message names the result's type, not the
    result (which may hold data that does not belong in logs).

    Attributes:
        result: the value the call returned.
    """

    result: object

    def __init__(self, result: object) -> None:
        super().__init__(
            ErrorKind.EXTERNAL_SERVICE,
            f"the call returned a {type(result).__name__} that its result predicate judged failed",
            user_message="The service is temporarily unavailable. Please retry later.",
        )
        self.result = result
