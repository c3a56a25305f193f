"""The errors the resilience tools raise themselves (a protected call's own errors pass through)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rustok_core.error import ErrorKind, RichError

if TYPE_CHECKING:
    from rustok_core.resilience._breaker import CircuitState

__all__ = ["CircuitOpenError", "OperationTimeoutError"]


class CircuitOpenError(RichError):
    """A circuit breaker refused a call without running it.

    Raised while the breaker is open, or half-open with every trial slot taken.
    Its kind is ``EXTERNAL_SERVICE`` (HTTP 503): the dependency is being given time
    to recover, and the caller should come back after ``retry_after`` seconds.

    Attributes:
        breaker_name: the name of the breaker that refused the call.
        state: the breaker's state when it refused (``OPEN`` or ``HALF_OPEN``).
        retry_after: seconds until the breaker lets a trial call through (0.0 when
            it is half-open and only waits for the trial calls in flight).
    """

    breaker_name: str
    state: CircuitState
    retry_after: float

    def __init__(self, breaker_name: str, state: CircuitState, retry_after: float) -> None:
        super().__init__(
            ErrorKind.EXTERNAL_SERVICE,
            f"circuit breaker {breaker_name!r} is {state.value} and refused the call; "
            f"retry after {retry_after:.3f} s",
            user_message="The service is temporarily unavailable. Please retry later.",
        )
        self.breaker_name = breaker_name
        self.state = state
        self.retry_after = retry_after


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
