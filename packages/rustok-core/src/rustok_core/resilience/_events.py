"""Events every resilience strategy reports to its listeners.

A listener is a plain callable taking one event; what it raises is logged and
ignored. The events are frozen dataclasses, so that a metrics or tracing layer
(a ``prometheus_client`` collector, OpenTelemetry spans) can turn them into its
own figures; nothing here formats metrics text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "BudgetExhausted",
    "CallOutcome",
    "CallRejected",
    "Event",
    "EventListener",
    "FallbackUsed",
    "RetryAttempt",
    "StorageUnavailable",
    "notify",
]

logger = logging.getLogger("rustok.resilience")


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A call a strategy let through has finished (breaker, bulkhead)."""

    strategy: str
    """``"breaker"`` or ``"bulkhead"``."""
    name: str
    """The name of the breaker or bulkhead."""
    outcome: Literal["success", "failure", "excluded", "cancelled"]
    """How it ended."""
    duration: float
    """Seconds it ran (0.0 where the strategy does not time its calls)."""


@dataclass(frozen=True, slots=True)
class CallRejected:
    """A strategy refused a call without running it."""

    strategy: str
    """``"breaker"``, ``"bulkhead"`` or ``"rate_limiter"``."""
    name: str
    """The name of the refusing breaker, bulkhead or limiter."""
    reason: str
    """``"open"``, ``"forced_open"``, ``"half_open_full"``, ``"full"`` or ``"rate"``."""
    retry_after: float
    """Seconds after which a retry may be admitted."""
    key: str = ""
    """The rate limiter's key, if any."""


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """A failed attempt that will be retried (what ``on_retry`` hooks receive)."""

    attempt: int
    """The number of the attempt that failed, from 1."""
    error: Exception
    """What it raised."""
    delay: float
    """Seconds the policy waits before the next attempt."""
    elapsed: float
    """Seconds since the first attempt started."""
    policy: str = "retry"
    """The name of the retry policy."""


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """A retry policy stopped retrying because its budget ran out."""

    policy: str
    """The name of the retry policy."""
    budget: Literal["time", "retries"]
    """``"time"``: the time budget; ``"retries"``: the shared retry budget."""
    attempts: int
    """Attempts made by the call that stopped."""


@dataclass(frozen=True, slots=True)
class FallbackUsed:
    """A fallback step turned an error into a value."""

    name: str
    """The name of the fallback step."""
    error: Exception
    """The error it replaced."""


@dataclass(frozen=True, slots=True)
class StorageUnavailable:
    """A shared store (Redis) could not be reached, or came back.

    While it is unavailable the strategy runs on local state, in this process.
    """

    strategy: str
    """``"breaker"`` or ``"rate_limiter"``."""
    name: str
    """The name of the breaker or limiter."""
    available: bool
    """``False`` when it fell back to local state, ``True`` when shared state is back."""
    error: str = ""
    """What failed, when it became unavailable."""


Event: TypeAlias = (
    CallOutcome | CallRejected | RetryAttempt | BudgetExhausted | FallbackUsed | StorageUnavailable
)
"""Every event a strategy reports (besides a breaker's `StateChange`)."""

EventListener: TypeAlias = Callable[[Event], None]
"""A callable told of events; its exceptions are logged, never raised."""


def notify(listeners: Sequence[EventListener], event: Event) -> None:
    """Tell every listener of ``event``, logging (never raising) what they raise."""
    for listener in tuple(listeners):
        try:
            listener(event)
        except Exception:
            logger.exception("resilience listener %r failed on %r", listener, event)
